"""Every command-line setting, defined once: its flags, help, and where its default lives.

The defaults come from the config dataclasses (:class:`ntmkit.train.TrainConfig`,
:class:`ntmkit.model.NTMConfig`), so the command line cannot drift from the Python API; the few
settings that exist only on the command line (``--epochs``, ``--figure_dir``, ...) carry their
own. Argparse itself keeps every default at None, so that "given on the command line" can be
told apart from "left at its default" (a checkpoint's settings and a task's recommended ones win
over defaults, never over flags): :func:`value` resolves a setting.

The starting project's spellings (``--batches``, ``--train``, ``--max_sequence``, dashes or
underscores) all stay valid; :data:`ALIASES` lists the other spellings each flag accepts.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any

from .models import DNCConfig, NTMConfig, TransformerConfig
from .models.transformer import POSITIONS
from .optim import OPTIMIZERS
from .registry import MODELS, model_kind
from .tasks import TASKS
from .tasks.associative_recall import LAYOUTS as RECALL_LAYOUTS
from .train import TrainConfig

COMMANDS = ("train", "test", "visualize", "evaluate", "sweep", "bench", "recipes")


class UsageError(Exception):
    """A bad command line: the message names the problem and the fix."""


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one line naming the help to read (not the whole usage block)."""

    def error(self, message: str):
        self.exit(2, f"ntm: error: {message} (see '{self.prog} --help')\n")


@dataclass(frozen=True)
class Option:
    """One flag. ``default``: a value, or ``(dataclass, field)`` whose default it takes.
    ``action``: "value", "flag" (store_true) or "bool" (--x / --no-x). ``least``: the smallest
    value an integer flag takes."""

    name: str
    group: str
    help: str
    default: Any = None
    type: Any = None
    choices: tuple | None = None
    action: str = "value"
    least: int = 1


def _field(cls, name: str):
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


T, N = TrainConfig, NTMConfig
# fmt: off
OPTIONS: tuple[Option, ...] = (
    # the task
    Option("task", "task", "task", (T, "task"), choices=tuple(TASKS)),
    Option("max_sequence", "task", "longest sequence (copy 20, repeat_copy 10, ngrams 200; the test length)", type=int),
    Option("min_sequence", "task", "shortest sequence (default 1; ngrams 200)", type=int),
    Option("in_bits", "task", "width of a data vector (default 8; associative_recall 6)", type=int),
    Option("out_bits", "task", "width of the output (copy: = in_bits)", type=int),
    Option("min_repeats", "task", "repeat_copy: fewest repeats (default 1)", type=int),
    Option("max_repeats", "task", "repeat_copy: most repeats (default 10)", type=int),
    Option("min_items", "task", "associative_recall: fewest items (default 2); priority_sort: fewest inputs "
           "(default 20)", type=int),
    Option("max_items", "task", "associative_recall: most items (default 6); priority_sort: most inputs "
           "(default 20)", type=int),
    Option("item_length", "task", "associative_recall: vectors per item (3)", type=int),
    Option("recall_layout", "task", "associative_recall: open (items after a delimiter, the query between "
           "query delimiters; default) or closed (every item and the query between item delimiters)",
           choices=RECALL_LAYOUTS),
    Option("ngram", "task", "ngrams: N, the table's order (default 6)", type=int),
    Option("sort_outputs", "task", "priority_sort: vectors output (default 16)", type=int),
    Option("preset", "task", "paper: the heads, controller size, optimiser and learning rate of the paper's "
           "tables for this task and model (flags given explicitly still win)", choices=("paper",)),
    # the model
    Option("model", "model", "ntm, dnc (the Differentiable Neural Computer), the lstm baseline, or the models of "
           "the Chomsky-hierarchy study: stack_rnn, tape_rnn, transformer", (T, "model"), choices=tuple(MODELS)),
    Option("controller", "model", "controller of the NTM (default feedforward), the DNC (default lstm) or the "
           "Stack-RNN and Tape-RNN (rnn, the default, or lstm)", choices=("feedforward", "lstm", "rnn")),
    Option("controller_size", "model", "units per controller layer", (N, "controller_size"), type=int),
    Option("controller_layers", "model", "controller layers (default 3 feed-forward, 1 LSTM)", type=int),
    Option("memory_locations", "model", "N, memory rows", (N, "memory_locations"), type=int),
    Option("memory_vector_size", "model", "M, memory width", (N, "memory_vector_size"), type=int),
    Option("maximum_shifts", "model", "size of the shift window, odd (3: shifts -1, 0, +1)",
           2 * _field(N, "shift_range") + 1, type=int),
    Option("read_heads", "model", "read heads", (N, "read_heads"), type=int),
    Option("write_heads", "model", "write heads", (N, "write_heads"), type=int),
    Option("memory_init", "model", "initial memory: constant 1e-6 or random", (N, "memory_init"),
           choices=("constant", "random")),
    Option("init_weighting", "model", "the heads' initial weightings: focused on the first row or random",
           (N, "init_weighting"), choices=("random", "focused")),
    Option("head_vectors", "model", "the heads' key and add vectors: tanh, bounded to (-1, 1), or linear "
           "(unbounded)", (N, "head_vectors"), choices=("tanh", "linear")),
    Option("gate_bias", "model", "initial bias of the heads' interpolation gates (negative: favour "
           "location-based moves at the start)", (N, "gate_bias"), type=float),
    Option("shift_bias", "model", "initial bias of the heads' shift logit for one row forward (positive: "
           "start as a tape that moves one row per step; 3 puts 0.91 on +1)", (N, "shift_bias"), type=float),
    Option("read_before_write", "model", "the read heads read the memory before this step's write "
           "(--no-read_before_write: after it, the paper's order)", (N, "read_before_write"), action="bool"),
    Option("learn_r_bias", "model", "learn the initial read vectors (--no-learn_r_bias keeps them fixed)",
           (N, "learn_r_bias"), action="bool"),
    Option("learn_w_bias", "model", "learn the initial head weightings (--no-learn_w_bias keeps them fixed)",
           (N, "learn_w_bias"), action="bool"),
    Option("learn_m_bias", "model", "learn the initial memory (--no-learn_m_bias keeps it fixed)",
           (N, "learn_m_bias"), action="bool"),
    Option("attention_heads", "model", "Transformer: attention heads", (TransformerConfig, "num_heads"), type=int),
    Option("position", "model", "Transformer: sincos (encodings added to the inputs) or rope (rotary, relative)",
           (TransformerConfig, "position"), choices=POSITIONS),
    Option("masked_lookup", "model", "DNC: content look-ups through a learned mask (Csordás & Schmidhuber 2019)",
           (DNCConfig, "masked_lookup"), action="bool"),
    Option("deallocation", "model", "DNC: erase the rows the free gates release (Csordás & Schmidhuber 2019)",
           (DNCConfig, "deallocation"), action="bool"),
    Option("link_sharpness", "model", "DNC: sharpen the forward and backward weightings (Csordás & Schmidhuber "
           "2019)", (DNCConfig, "link_sharpness"), action="bool"),
    # training
    Option("epochs", "training", "epochs; training stops earlier once the task is learned", 100, type=int),
    Option("steps_per_epoch", "training", "optimiser steps per epoch", 2000, type=int),
    Option("batches", "training", "batch size (with --nproc N, each process takes batch / N)", (T, "batch_size"),
           type=int),
    Option("optimizer", "training", "adam, amsgrad (Adam keeping the largest second moment), rmsprop (Graves "
           "2013, as in the paper), rmsprop-torch or sgd (with momentum)", (T, "optimizer"), choices=OPTIMIZERS),
    Option("learning_rate", "training", "learning rate (default 1e-3 for adam, 1e-4 for rmsprop, 1e-2 for sgd)",
           type=float),
    Option("lr_schedule", "training", "learning rates by sequences seen, SEQUENCES:RATE,... (e.g. "
           "70000:3e-5,100000:1e-5: --learning_rate until 70,000 sequences, then 3e-5, from 100,000 on 1e-5)"),
    Option("batch_schedule", "training", "batch sizes by sequences seen, SEQUENCES:BATCH,... (e.g. 100000:32: "
           "--batches until 100,000 sequences, then 32; each batch size compiles the step once)"),
    Option("momentum", "training", "momentum (rmsprop, sgd) or beta1 (adam)", (T, "momentum"), type=float),
    Option("clip_grad_min", "training", "with --clip_grad_max: the gradient's global norm is clipped to "
           "max(|min|, |max|)", -_field(T, "clip_grad_norm"), type=float),
    Option("clip_grad_max", "training", "see --clip_grad_min", _field(T, "clip_grad_norm"), type=float),
    Option("spike_clip", "training", "clip a step whose gradient norm is over this many times the median of the "
           "last --spike_window steps' norms to that bound (0: off)", (T, "spike_clip"), type=float, least=0),
    Option("state_grad_clip", "training", "bound each sample's gradient reaching the memory model's state "
           "between time steps to this norm in the backward pass (0: off)", (T, "state_grad_clip"), type=float,
           least=0),
    Option("spike_window", "training", "steps of gradient norms --spike_clip compares with", (T, "spike_window"),
           type=int, least=1),
    Option("curriculum", "training", "start on short sequences and widen the range each time it is learned "
           "(or after 300 steps at one range); off: on copy the whole range converges more reliably",
           (T, "curriculum"), action="bool"),
    Option("curriculum_start", "training", "first curriculum range top", (T, "curriculum_start"), type=int),
    Option("curriculum_step", "training", "widen the range by this", (T, "curriculum_step"), type=int),
    Option("batch_lengths", "training", "same: one length per batch, drawn from [min, max], so no step is "
           "spent on padding; mixed: lengths differ inside a batch (padded, masked)", (T, "batch_levels"),
           choices=("same", "mixed")),
    Option("memory_sizes", "training", "memory rows per training batch: auto (drawn per batch from 3/16, 1/4, "
           "3/8, 1/2, 3/4 and all of --memory_locations, at least the rows the batch needs + 4; teaches the "
           "machine to generalise), full (always --memory_locations) or sizes such as 32,64,128",
           (T, "memory_sizes")),
    Option("steps_after_learned", "training", "once the stop test passes, train this many more steps before "
           "stopping", (T, "steps_after_learned"), type=int, least=0),
    Option("lr_after_learned", "training", "multiply the learning rate by this for the steps after learning",
           (T, "lr_after_learned"), type=float),
    Option("max_minutes", "training", "stop after this many minutes of training in this run (a fixed budget; "
           "a resumed run gets the budget afresh; checkpoint kept)", type=float),
    Option("keep_training", "training", "do not stop when the task is learned; run all epochs", action="flag"),
    Option("seed", "training", "random seed; runs repeat exactly on CPU", (T, "seed"), type=int, least=0),
    Option("device", "training", "cpu, cuda or mps", (T, "device")),
    Option("threads", "training", "intra-op threads (1 is fastest for NTM-sized ops)", (T, "threads"), type=int),
    Option("nproc", "training", "train data-parallel in N processes (launches torchrun; the batch is split "
           "over them, the gradient is the mean over the whole batch; default 1, ngrams 2 on the CPU, up to the "
           "cores there are)", type=int),
    Option("engine", "training", "auto (compiled; on a cold compile cache, eager while a helper process "
           "compiles), compiled (torch.compile of the time step before the first step; runs repeat exactly) "
           "or eager (op by op)", (T, "engine"), choices=("auto", "compiled", "eager")),
    Option("unroll", "training", "time steps per call of the compiled step (default 1; ngrams 8): K > 1 compiles a "
           "second graph of K steps, which share each call's fixed cost (measured on ngrams: 1.69x at batch 1 with "
           "K = 8, 1.37x at batch 32; README, Speed); it takes longer to compile", (T, "unroll"), type=int, least=1),
    # files
    Option("checkpoint_dir", "files", "checkpoints; training resumes from the latest", (T, "checkpoint_dir")),
    Option("init_from", "files", "start a new run from a trained model's weights, with a fresh optimiser: a "
           "checkpoint file or directory, or a shipped model's name (a task, e.g. priority_sort, or TASK-dnc); its "
           "settings fill in the model flags left out. Ignored when --checkpoint_dir already holds a run (that "
           "run resumes)", (T, "init_from")),
    Option("run_dir", "files", "one directory for a run's checkpoints, logs and config.toml (a recipe's: "
           "default ./ntm_runs/NAME, each phase in phase-K)"),
    Option("config", "files", "run a recipe: a shipped recipe's name, a .toml file, or a run's config.toml or "
           "directory (the same as naming it after 'train'); flags given win over it"),
    Option("max_to_keep", "files", "checkpoints kept", (T, "max_to_keep"), type=int),
    Option("report_interval", "files", "steps between checkpoints", (T, "report_interval"), type=int),
    Option("train_log_dir", "files", "TensorBoard logs and metrics.jsonl", (T, "train_log_dir")),
    Option("figure_dir", "files", "where pictures are saved", "./ntm_figures"),
    Option("sequences", "files", "sequences to test", 100, type=int),
    Option("quiet", "files", "no progress bar", action="flag"),
    # evaluate and sweep
    Option("axis", "evaluate and sweep", "evaluate: the axis to vary (copy: length; repeat_copy: length or "
           "repeats; associative_recall and priority_sort: items; default the task's first)"),
    Option("values", "evaluate and sweep", "evaluate: comma-separated values of the axis (default: copy every "
           "length 1-120; the top can be raised with --max_sequence / --max_items / --max_repeats)"),
    Option("seeds", "evaluate and sweep", "sweep: how many seeds to train", 3, type=int),
    Option("first_seed", "evaluate and sweep", "sweep: the first seed", 0, type=int, least=0),
    Option("evaluate", "evaluate and sweep", "sweep: evaluate each trained seed on fresh sequences at --values "
           "(default: the task's generalisation levels, copy 10,20,30,50,80,120), --sequences each", True,
           action="bool"),
    Option("jobs", "evaluate and sweep", "sweep: training processes at once (default: the number of cores)",
           type=int),
    Option("sweep_dir", "evaluate and sweep", "sweep: where runs and plots go (default ./ntm_sweep/TASK)"),
    Option("suite", "evaluate and sweep", "sweep: chomsky runs the Chomsky-hierarchy grid (15 tasks x 7 models x "
           "--seeds; --epochs x --steps_per_epoch steps, --batches, --learning_rate; scored at --values with "
           "--sequences each) in --sweep_dir (default ./ntm_sweep/chomsky), resumably, and writes its table",
           choices=("chomsky",)),
    # bench
    Option("quick", "bench", "bench: a reduced run (under 2 minutes)", action="flag"),
    Option("history", "bench", "bench: append this run's figures, with the date and commit, as one JSON line "
           "to this file (the benchmarks page's history is such a file)"),
)
# fmt: on
BY_NAME = {o.name: o for o in OPTIONS}
# Other spellings a flag accepts besides --name and --name-with-dashes.
ALIASES = {"batches": ("--batch_size", "--batch-size")}
# Which option groups each command takes (the starting project's flat spelling takes them all).
COMMAND_GROUPS = {
    "train": ("task", "model", "training", "files"),
    "test": ("task", "model", "training", "files"),
    "visualize": ("task", "model", "training", "files"),
    "evaluate": ("task", "model", "training", "files", "evaluate and sweep"),
    "sweep": ("task", "model", "training", "files", "evaluate and sweep"),
    "bench": ("bench", "model"),
    "recipes": (),
}
COMMAND_HELP = {
    "train": "train (or resume) a model; stops when the task is learned",
    "test": "test a trained (or the shipped) model on one setting",
    "visualize": "draw the machine's internals on one example",
    "evaluate": "cost against one axis of the task (e.g. every copy length 1-120): table, JSON, plot",
    "sweep": "train several seeds in parallel; median learning curves and a per-seed table",
    "bench": "training throughput (sequences per second), eager against compiled",
    "recipes": "the shipped recipes: task, model, phases, budget and the figure each reaches",
}


def default(name: str):
    """The default of option ``name`` (read from its dataclass field where it has one)."""
    d = BY_NAME[name].default
    return _field(*d) if isinstance(d, tuple) else d


DEFAULTS = {o.name: default(o.name) for o in OPTIONS}

# Task flags -> the task option they set; each task takes the ones its class has (its own
# defaults fill in the rest, e.g. lengths 1-20 for copy and 1-10 for repeat copy).
TASK_FLAGS = {
    "in_bits": "bits",
    "min_sequence": "min_length",
    "max_sequence": "max_length",
    "min_repeats": "min_repeats",
    "max_repeats": "max_repeats",
    "min_items": "min_items",
    "max_items": "max_items",
    "item_length": "item_length",
    "recall_layout": "layout",
    "ngram": "n",
    "sort_outputs": "outputs",
}
MODEL_FLAGS = tuple(o.name for o in OPTIONS if o.group == "model" and o.name != "model")


def flags_not_for(kind: str) -> tuple[str, ...]:
    """The flags that mean nothing to model ``kind`` (e.g. the shift window to a DNC, any memory
    setting to the LSTM baseline, which has no memory)."""
    k = model_kind(kind)
    return (*(f for f in MODEL_FLAGS if f not in k.flags), *(() if k.has_memory else ("memory_sizes",)))


def _add(group, option: Option, suppress: bool) -> None:
    flags = [f"--{option.name}"]
    if "_" in option.name:
        flags.append(f"--{option.name.replace('_', '-')}")
    flags += ALIASES.get(option.name, ())
    d = default(option.name)
    shown = "" if d is None or option.action == "flag" or "(default" in option.help else f" (default {d})"
    kwargs: dict[str, Any] = {"help": option.help + shown, "dest": option.name}
    kwargs["default"] = argparse.SUPPRESS if suppress else None
    if option.action == "flag":
        kwargs["action"] = "store_true"
        if not suppress:
            kwargs["default"] = False
    elif option.action == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs.update(type=option.type, choices=option.choices)
    group.add_argument(*flags, **kwargs)
    if option.name == "curriculum":  # the starting project's spelling of --no-curriculum
        legacy = {"dest": "curriculum", "action": "store_false", "default": kwargs["default"]}
        group.add_argument("--no_curriculum", help=argparse.SUPPRESS, **legacy)


def _add_legacy_commands(p: argparse.ArgumentParser, suppress: bool) -> None:
    a = p.add_argument_group("what to do (the starting project's spelling)")
    d = argparse.SUPPRESS if suppress else False
    a.add_argument("--train", action="store_true", default=d, help="train (same as the 'train' command)")
    a.add_argument("--test", action="store_true", default=d, help="test one batch (same as 'test')")
    a.add_argument("--visualize", action="store_true", default=d, help="draw the machine's internals")
    a.add_argument(
        "--random_seq_len",
        "--random-seq-len",
        action="store_true",
        default=d,
        help="test at random lengths in [min_sequence, max_sequence] instead of exactly max_sequence",
    )


def _add_groups(p: argparse.ArgumentParser, groups: tuple[str, ...], suppress: bool) -> None:
    for title in groups:
        g = p.add_argument_group(title)
        for option in OPTIONS:
            if option.group == title:
                _add(g, option, suppress)


def build_parser() -> argparse.ArgumentParser:
    """``ntm COMMAND [options]`` (one subcommand each), and the starting project's flat spelling
    ``ntm --train [options]``: options may come before or after the command word."""
    from . import __version__

    p = Parser(
        prog="ntm",
        description="Neural Turing Machines: train, test and draw them on the tasks of Graves et al. (2014).",
        epilog="examples:\n  ntm train                              # copy task, lengths 1-20, stops when learned\n"
        "  ntm --train --min_sequence=1 --max_sequence=20\n"
        "  ntm --test --max_sequence=30\n  ntm --test --max_sequence=120 --random_seq_len\n"
        "  ntm --test --visualize --max_sequence=20\n  ntm bench --quick\n"
        "run 'ntm COMMAND --help' for a command's own options",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"ntm (ntmkit) {__version__}")
    _add_legacy_commands(p, suppress=False)
    _add_groups(p, tuple(dict.fromkeys(g for groups in COMMAND_GROUPS.values() for g in groups)), suppress=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command, groups in COMMAND_GROUPS.items():
        c = sub.add_parser(command, help=COMMAND_HELP[command], description=COMMAND_HELP[command])
        if command == "train":
            c.add_argument("recipe", nargs="?", help="a recipe to run: a shipped recipe (ntm recipes), a .toml file "
                           "or a run directory; flags given win over it")  # fmt: skip
        _add_legacy_commands(c, suppress=True)
        _add_groups(c, groups, suppress=True)
    return p


def resolve_command(args) -> str:
    """The command asked for, by word or by the starting project's --train / --test / --visualize."""
    chosen = set()
    if args.command:
        chosen.add(args.command)
    if args.train:
        chosen.add("train")
    if args.test and args.visualize:
        chosen.add("visualize")
    elif args.test:
        chosen.add("test")
    elif args.visualize:
        chosen.add("visualize")
    if not chosen:
        raise UsageError(
            "no command given: use 'ntm train', 'ntm test', 'ntm visualize' or 'ntm bench' "
            "(or --train / --test / --visualize)"
        )
    if len(chosen) > 1:
        raise UsageError(f"choose one command, got {' and '.join(sorted(chosen))}")
    return chosen.pop()


def value(args, name):
    """A flag's value: as given, else the task's recommended setting, else the default."""
    v = getattr(args, name, None)
    if v is not None:
        return v
    if name != "task":
        recommended = task_recommended(args)
        if name in recommended:
            return recommended[name]
    return DEFAULTS[name]


def task_recommended(args) -> dict:
    """Settings the chosen task trains best with, for flags left unset: ``Task.recommended``, and
    ``Task.recommended_for`` the model and the controller in use (given, recommended, or the
    model's default), each only where the model takes the flag."""
    task = getattr(args, "task", None) or DEFAULTS["task"]
    if task not in TASKS:
        return {}
    cls = TASKS[task]
    model = getattr(args, "model", None) or DEFAULTS["model"]
    kind = model_kind(model)
    fields = {f.name: f.default for f in dataclasses.fields(kind.config_class)}
    controller = getattr(args, "controller", None) or cls.recommended.get("controller") or fields.get("controller")
    out = {**cls.recommended, **cls.recommended_for.get(f"{model}/{controller}", {})}
    return {k: v for k, v in out.items() if k not in MODEL_FLAGS or k in kind.flags}


def config_key(flag: str, kind: str) -> str:
    """The model-config entry a model flag sets (each model may name its sizes its own way)."""
    return model_kind(kind).flag_fields.get(flag, flag)


def given(args, name):
    """A flag's value as given, else the task's recommended setting, else None (the model's own
    default then applies)."""
    v = getattr(args, name, None)
    return v if v is not None else task_recommended(args).get(name)


def model_options(args, kind: str) -> dict:
    """Every setting of model ``kind``'s config (but its sizes in and out): the flags given (or the
    task's recommended ones) over the config's defaults."""
    k = model_kind(kind)
    options = {
        f.name: f.default for f in dataclasses.fields(k.config_class) if f.name not in ("input_size", "output_size")
    }
    for flag in k.flags:
        v = given(args, flag)
        if v is None:
            continue
        if flag == "maximum_shifts":
            v = (v - 1) // 2  # the window's size -> the shift range
        options[config_key(flag, kind)] = v
    return options


def task_options(args) -> dict:
    """The task options the flags given set (the task's own defaults fill in the rest)."""
    task = value(args, "task")
    fields = {f.name for f in dataclasses.fields(TASKS[task])}
    options = {}
    for flag, option in TASK_FLAGS.items():
        v = getattr(args, flag, None)
        if v is None:
            continue
        if option not in fields:
            takes = ", ".join(f"--{f}" for f, o in TASK_FLAGS.items() if o in fields)
            raise UsageError(f"--{flag} does not apply to the {task} task (it takes {takes})")
        options[option] = v
    return options
