"""The ``ntm`` command line: a thin layer over :mod:`ntmkit.train`, :mod:`ntmkit.evaluate` and
:mod:`ntmkit.plots`.

``ntm train ...`` and the starting project's ``ntm --train ...`` are the same; every option of
the starting project keeps its spelling.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from .errors import NTMError

COMMANDS = ("train", "test", "visualize", "evaluate", "sweep", "bench")

# Defaults live here, not in argparse, so that "given on the command line" can be told apart
# from "left at its default" (a checkpoint's settings win over defaults, never over flags).
DEFAULTS = dict(
    task="copy",
    model="ntm",
    controller="feedforward",
    controller_size=100,
    controller_layers=None,
    memory_locations=128,
    memory_vector_size=20,
    maximum_shifts=3,
    read_heads=1,
    write_heads=1,
    memory_init="constant",
    epochs=100,
    batches=32,
    steps_per_epoch=2000,
    learning_rate=None,
    momentum=0.9,
    optimizer="adam",
    clip_grad_min=-10.0,
    clip_grad_max=10.0,
    seed=0,
    device="cpu",
    checkpoint_dir="./ntm_checkpoints",
    train_log_dir="./ntm_logs",
    figure_dir="./ntm_figures",
    max_to_keep=3,
    report_interval=200,
    sequences=100,
    threads=1,
    curriculum_start=5,
    curriculum_step=5,
    engine="compiled",
    learn_r_bias=True,
    learn_w_bias=True,
    learn_m_bias=True,
    curriculum=False,
    batch_lengths="same",
    memory_sizes="auto",
    init_weighting="focused",
    gate_bias=-2.0,
    steps_after_learned=1000,
    lr_after_learned=0.1,
)
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
    "ngram": "n",
    "sort_outputs": "outputs",
}
MODEL_FLAGS = (
    "controller",
    "controller_size",
    "controller_layers",
    "memory_locations",
    "memory_vector_size",
    "maximum_shifts",
    "read_heads",
    "write_heads",
    "memory_init",
    "learn_r_bias",
    "learn_w_bias",
    "learn_m_bias",
    "init_weighting",
    "gate_bias",
)


# Flags that mean nothing to the LSTM baseline (it has no memory, heads or NTM controller).
NTM_ONLY_FLAGS = (*(f for f in MODEL_FLAGS if f not in ("controller_size", "controller_layers")), "memory_sizes")
MIN_FREE_BYTES = 50 * 2**20
TASK_NAMES = ["copy", "repeat_copy", "associative_recall", "ngrams", "priority_sort"]

# The paper's Tables 1-3: (task, model) -> settings; "ntm-lstm" is the NTM with an LSTM controller.
# Heads count read/write pairs, as in the paper. The paper's optimiser: RMSProp (Graves 2013),
# momentum 0.9.
_PAPER_NTM = {  # task: (feed-forward heads, size, lr), (LSTM-controller heads, size, layers, lr)
    "copy": ((1, 100, 1e-4), (1, 100, 1, 1e-4)),
    "repeat_copy": ((1, 100, 1e-4), (1, 100, 1, 1e-4)),
    "associative_recall": ((4, 256, 1e-4), (1, 100, 1, 1e-4)),
    "ngrams": ((1, 100, 3e-5), (1, 100, 1, 3e-5)),
    "priority_sort": ((8, 512, 3e-5), (5, 100, 2, 3e-5)),
}
_PAPER_LSTM = {
    "copy": (256, 3e-5),
    "repeat_copy": (512, 3e-5),
    "associative_recall": (256, 1e-4),
    "ngrams": (128, 1e-4),
    "priority_sort": (128, 3e-5),
}


def preset_settings(preset: str, task: str, model: str, controller: str) -> dict:
    """The flag values a preset stands for (``paper``: the paper's tables)."""
    if preset != "paper":
        raise UsageError(f"unknown --preset {preset!r}: use paper")
    common = {"optimizer": "rmsprop", "momentum": 0.9}
    if model == "lstm":
        size, lr = _PAPER_LSTM[task]
        return {**common, "controller_size": size, "controller_layers": 3, "learning_rate": lr}
    ff, lstm = _PAPER_NTM[task]
    if controller == "lstm":
        heads, size, layers, lr = lstm
    else:
        (heads, size, lr), layers = ff, 1
    return {
        **common,
        "read_heads": heads,
        "write_heads": heads,
        "controller_size": size,
        "controller_layers": layers,
        "learning_rate": lr,
    }


def apply_preset(args) -> None:
    """Fill the flags left unset from ``--preset`` (explicit flags win)."""
    if getattr(args, "preset", None) is None:
        return
    settings = preset_settings(args.preset, value(args, "task"), value(args, "model"), value(args, "controller"))
    for name, v in settings.items():
        if getattr(args, name) is None:
            setattr(args, name, v)


def config_key(flag: str, kind: str) -> str:
    """The model-config entry a model flag sets (the LSTM baseline names its sizes differently)."""
    if flag == "maximum_shifts":
        return "shift_range"
    if kind == "lstm":
        return {"controller_size": "hidden_size", "controller_layers": "num_layers"}.get(flag, flag)
    return flag


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ntm",
        description="Neural Turing Machines: train, test and draw them on the tasks of Graves et al. (2014).",
        epilog="examples:\n  ntm train                              # copy task, lengths 1-20, stops when learned\n"
        "  ntm --train --min_sequence=1 --max_sequence=20\n"
        "  ntm --test --max_sequence=30\n  ntm --test --max_sequence=120 --random_seq_len\n"
        "  ntm --test --visualize --max_sequence=20\n  ntm bench --quick",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("command", nargs="?", choices=COMMANDS, help="what to do (or use --train / --test / --visualize)")
    a = p.add_argument_group("what to do (the starting project's spelling)")
    a.add_argument("--train", action="store_true", help="train (same as the 'train' command)")
    a.add_argument("--test", action="store_true", help="test one batch (same as 'test')")
    a.add_argument("--visualize", action="store_true", help="draw the machine's internals (same as 'visualize')")
    a.add_argument(
        "--random_seq_len",
        "--random-seq-len",
        action="store_true",
        help="test at random lengths in [min_sequence, max_sequence] instead of exactly max_sequence",
    )

    t = p.add_argument_group("task")
    t.add_argument("--task", choices=TASK_NAMES, help="task (default copy)")
    t.add_argument(
        "--max_sequence",
        "--max-sequence",
        type=int,
        help="longest sequence (copy 20, repeat_copy 10, ngrams 200; the test length)",
    )
    t.add_argument("--min_sequence", "--min-sequence", type=int, help="shortest sequence (default 1; ngrams 200)")
    t.add_argument("--in_bits", "--in-bits", type=int, help="width of a data vector (default 8; associative_recall 6)")
    t.add_argument("--out_bits", "--out-bits", type=int, help="width of the output (copy: = in_bits)")
    t.add_argument("--min_repeats", "--min-repeats", type=int, help="repeat_copy: fewest repeats (default 1)")
    t.add_argument("--max_repeats", "--max-repeats", type=int, help="repeat_copy: most repeats (default 10)")
    t.add_argument(
        "--min_items",
        "--min-items",
        type=int,
        help="associative_recall: fewest items (default 2); priority_sort: fewest inputs (default 20)",
    )
    t.add_argument(
        "--max_items",
        "--max-items",
        type=int,
        help="associative_recall: most items (default 6); priority_sort: most inputs (default 20)",
    )
    t.add_argument("--item_length", "--item-length", type=int, help="associative_recall: vectors per item (3)")
    t.add_argument("--ngram", type=int, help="ngrams: N, the table's order (default 6)")
    t.add_argument("--sort_outputs", "--sort-outputs", type=int, help="priority_sort: vectors output (default 16)")
    t.add_argument(
        "--preset",
        choices=["paper"],
        help="paper: the heads, controller size, optimiser and learning rate of the paper's tables "
        "for this task and model (flags given explicitly still win)",
    )

    m = p.add_argument_group("model")
    m.add_argument("--model", choices=["ntm", "lstm"], help="ntm (default) or the lstm baseline")
    m.add_argument("--controller", choices=["feedforward", "lstm"], help="NTM controller (default feedforward)")
    m.add_argument("--controller_size", "--controller-size", type=int, help="units per controller layer (default 100)")
    m.add_argument(
        "--controller_layers",
        "--controller-layers",
        type=int,
        help="controller layers (default 3 feed-forward, 1 LSTM)",
    )
    m.add_argument("--memory_locations", "--memory-locations", type=int, help="N, memory rows (default 128)")
    m.add_argument("--memory_vector_size", "--memory-vector-size", type=int, help="M, memory width (default 20)")
    m.add_argument(
        "--maximum_shifts",
        "--maximum-shifts",
        type=int,
        help="size of the shift window, odd (default 3: shifts -1, 0, +1)",
    )
    m.add_argument("--read_heads", "--read-heads", type=int, help="read heads (default 1)")
    m.add_argument("--write_heads", "--write-heads", type=int, help="write heads (default 1)")
    m.add_argument(
        "--memory_init",
        "--memory-init",
        choices=["constant", "random"],
        help="initial memory: constant 1e-6 (default) or random",
    )
    m.add_argument(
        "--init_weighting",
        "--init-weighting",
        choices=["random", "focused"],
        help="the heads' initial weightings: focused on the first row (default) or random",
    )
    m.add_argument(
        "--gate_bias",
        "--gate-bias",
        type=float,
        help="initial bias of the heads' interpolation gates (default -2: favour location-based moves at the start)",
    )
    m.add_argument(
        "--learn_r_bias",
        "--learn-r-bias",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="learn the initial read vectors (default: learned; --no-learn_r_bias keeps it fixed)",
    )
    m.add_argument(
        "--learn_w_bias",
        "--learn-w-bias",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="learn the initial head weightings (default: learned; --no-learn_w_bias keeps it fixed)",
    )
    m.add_argument(
        "--learn_m_bias",
        "--learn-m-bias",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="learn the initial memory (default: learned; --no-learn_m_bias keeps it fixed)",
    )

    o = p.add_argument_group("training")
    o.add_argument("--epochs", type=int, help="epochs (default 100); training stops earlier once the task is learned")
    o.add_argument("--steps_per_epoch", "--steps-per-epoch", type=int, help="optimiser steps per epoch (default 2000)")
    o.add_argument("--batches", "--batch_size", "--batch-size", type=int, help="batch size (default 32)")
    o.add_argument(
        "--optimizer",
        choices=["adam", "rmsprop", "rmsprop-torch"],
        help="adam (default), rmsprop (Graves 2013, as in the paper) or rmsprop-torch",
    )
    o.add_argument(
        "--learning_rate", "--learning-rate", type=float, help="learning rate (default 1e-3 for adam, 1e-4 for rmsprop)"
    )
    o.add_argument("--momentum", type=float, help="momentum (rmsprop) or beta1 (adam) (default 0.9)")
    o.add_argument(
        "--clip_grad_min",
        "--clip-grad-min",
        type=float,
        help="with --clip_grad_max: the gradient's global norm is clipped to max(|min|, |max|) (default 10)",
    )
    o.add_argument("--clip_grad_max", "--clip-grad-max", type=float, help="see --clip_grad_min (default 10)")
    o.add_argument(
        "--curriculum",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start on short sequences and widen the range each time it is learned (or after "
        "300 steps at one range); default off: on copy the whole range converges more reliably",
    )
    o.add_argument(
        "--no_curriculum",
        dest="curriculum",
        action="store_false",
        default=None,
        help="train on the whole range from the start (the default)",
    )
    o.add_argument("--curriculum_start", "--curriculum-start", type=int, help="first curriculum range top (default 5)")
    o.add_argument("--curriculum_step", "--curriculum-step", type=int, help="widen the range by this (default 5)")
    o.add_argument(
        "--batch_lengths",
        "--batch-lengths",
        choices=["same", "mixed"],
        help="same (default): one length per batch, drawn from [min, max], so no step is spent on "
        "padding; mixed: lengths differ inside a batch (padded, masked)",
    )
    o.add_argument(
        "--memory_sizes",
        "--memory-sizes",
        help="memory rows per training batch: auto (default: drawn per batch from 3/16, 1/4, 3/8, 1/2, "
        "3/4 and all of --memory_locations, at least the rows the batch needs + 4; teaches the "
        "machine to generalise), full (always --memory_locations) or sizes such as 32,64,128",
    )
    o.add_argument(
        "--steps_after_learned",
        "--steps-after-learned",
        type=int,
        help="once the stop test passes, train this many more steps before stopping (default 1000)",
    )
    o.add_argument(
        "--lr_after_learned",
        "--lr-after-learned",
        type=float,
        help="multiply the learning rate by this for the steps after learning (default 0.1)",
    )
    o.add_argument(
        "--max_minutes",
        "--max-minutes",
        type=float,
        help="stop after this many minutes of training in this run (a fixed budget; a resumed run "
        "gets the budget afresh; checkpoint kept)",
    )
    o.add_argument(
        "--keep_training",
        "--keep-training",
        action="store_true",
        help="do not stop when the task is learned; run all epochs",
    )
    o.add_argument("--seed", type=int, help="random seed (default 0); runs repeat exactly on CPU")
    o.add_argument("--device", help="cpu (default), cuda or mps")
    o.add_argument("--threads", type=int, help="intra-op threads (default 1, fastest for NTM-sized ops)")
    o.add_argument(
        "--nproc",
        type=int,
        help="train data-parallel in N processes (launches torchrun; the batch size is per process)",
    )
    o.add_argument(
        "--engine",
        choices=["compiled", "eager"],
        help="compiled (default: torch.compile of the time step) or eager (op by op)",
    )

    f = p.add_argument_group("files")
    f.add_argument(
        "--checkpoint_dir",
        "--checkpoint-dir",
        help="checkpoints; training resumes from the latest (default ./ntm_checkpoints)",
    )
    f.add_argument("--max_to_keep", "--max-to-keep", type=int, help="checkpoints kept (default 3)")
    f.add_argument("--report_interval", "--report-interval", type=int, help="steps between checkpoints (default 200)")
    f.add_argument("--train_log_dir", "--train-log-dir", help="TensorBoard logs and metrics.jsonl (default ./ntm_logs)")
    f.add_argument("--figure_dir", "--figure-dir", help="where pictures are saved (default ./ntm_figures)")
    f.add_argument("--sequences", type=int, help="sequences to test (default 100)")
    f.add_argument("--quiet", action="store_true", help="no progress bar")

    e = p.add_argument_group("evaluate and sweep")
    e.add_argument(
        "--axis",
        help="evaluate: the axis to vary (copy: length; repeat_copy: length or repeats; "
        "associative_recall and priority_sort: items; default the task's first)",
    )
    e.add_argument(
        "--values",
        help="evaluate: comma-separated values of the axis (default: copy every length "
        "1-120; the top can be raised with --max_sequence / --max_items / "
        "--max_repeats)",
    )
    e.add_argument("--seeds", type=int, help="sweep: how many seeds to train (default 3)")
    e.add_argument("--first_seed", "--first-seed", type=int, help="sweep: the first seed (default 0)")
    e.add_argument(
        "--evaluate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sweep: evaluate each trained seed on fresh sequences at --values (default: the task's "
        "generalisation levels, copy 10,20,30,50,80,120), --sequences each (default on)",
    )
    e.add_argument("--jobs", type=int, help="sweep: training processes at once (default: the number of cores)")
    e.add_argument("--sweep_dir", "--sweep-dir", help="sweep: where runs and plots go (default ./ntm_sweep/TASK)")

    b = p.add_argument_group("bench")
    b.add_argument("--quick", action="store_true", help="bench: a reduced run (under 2 minutes)")
    return p


def resolve_command(args) -> str:
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
    """Settings the chosen task trains best with (``Task.recommended``), for flags left unset."""
    from .tasks import TASKS

    task = getattr(args, "task", None) or DEFAULTS["task"]
    return TASKS[task].recommended if task in TASKS else {}


def task_from_checkpoint(args) -> None:
    """Without --task, a command that reads --checkpoint_dir acts on the task stored there: set it,
    so that task flags (e.g. --max_items) are checked against that task, not against copy."""
    if args.task is not None:
        return
    from . import checkpoint as ckpt

    path = ckpt.latest(value(args, "checkpoint_dir"))
    if path is not None:
        args.task = ckpt.load(path)["task"]["name"]


def validate(args, command: str | None = None) -> None:
    """Check every option before anything is read or written."""
    if command in ("train", "test", "visualize", "evaluate"):
        task_from_checkpoint(args)
    positive = (
        "controller_size",
        "controller_layers",
        "memory_locations",
        "memory_vector_size",
        "read_heads",
        "write_heads",
        "max_sequence",
        "min_sequence",
        "in_bits",
        "out_bits",
        "epochs",
        "batches",
        "steps_per_epoch",
        "max_to_keep",
        "report_interval",
        "sequences",
        "threads",
        "curriculum_start",
        "curriculum_step",
        "maximum_shifts",
        "nproc",
        "min_repeats",
        "max_repeats",
        "min_items",
        "max_items",
        "item_length",
        "ngram",
        "sort_outputs",
        "seeds",
        "jobs",
    )
    if getattr(args, "first_seed", None) is not None and args.first_seed < 0:
        raise UsageError(f"--first_seed must be >= 0, got {args.first_seed}")
    for name in positive:
        v = getattr(args, name)
        if v is not None and v < 1:
            raise UsageError(f"--{name} must be a positive integer, got {v}")
    if value(args, "maximum_shifts") % 2 == 0:
        raise UsageError(f"--maximum_shifts must be odd (3 means shifts -1, 0, +1), got {args.maximum_shifts}")
    task = value(args, "task")
    if args.out_bits is not None:
        if task != "copy":
            raise UsageError(f"--out_bits is set by the task for {task}: drop it")
        if args.out_bits != (args.in_bits or 8):
            raise UsageError(
                f"the copy task outputs what it reads: --in_bits ({args.in_bits or 8}) must equal "
                f"--out_bits ({args.out_bits})"
            )
    task_options(args)  # a flag the task does not take is an error here
    if args.memory_sizes is not None:
        from .errors import ConfigError
        from .train import memory_size_choices

        try:
            memory_size_choices(args.memory_sizes, value(args, "memory_locations"), value(args, "maximum_shifts"))
        except ConfigError as e:
            raise UsageError(f"--memory_sizes: {e}") from None
    if args.max_minutes is not None and not (math.isfinite(args.max_minutes) and args.max_minutes > 0):
        raise UsageError(f"--max_minutes must be a positive number, got {args.max_minutes}")
    for name in ("learning_rate", "momentum", "clip_grad_min", "clip_grad_max", "gate_bias", "lr_after_learned"):
        v = getattr(args, name)
        if v is not None and not math.isfinite(v):
            raise UsageError(f"--{name} must be a finite number, got {v}")
    for name in ("learning_rate", "momentum"):
        v = getattr(args, name)
        if v is not None and not (v > 0 if name == "learning_rate" else 0 <= v < 1):
            raise UsageError(f"--{name} out of range: {v} (learning_rate > 0, 0 <= momentum < 1)")
    if value(args, "clip_grad_min") > value(args, "clip_grad_max"):
        raise UsageError("--clip_grad_min must not be larger than --clip_grad_max")
    if max(abs(value(args, "clip_grad_min")), abs(value(args, "clip_grad_max"))) == 0:
        raise UsageError("the gradient clipping bound is 0, which would stop learning: give --clip_grad_max > 0")
    if args.steps_after_learned is not None and args.steps_after_learned < 0:
        raise UsageError(f"--steps_after_learned must be >= 0, got {args.steps_after_learned}")
    if args.lr_after_learned is not None and not args.lr_after_learned > 0:
        raise UsageError(f"--lr_after_learned must be > 0, got {args.lr_after_learned}")
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    device = value(args, "device")
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA GPU is available: use --device cpu")
    if device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UsageError("--device mps asked for, but MPS is not available: use --device cpu")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise UsageError(f"unknown --device {device!r}: use cpu, cuda or mps")
    if device.startswith("cuda:"):
        index = device.split(":", 1)[1]
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise UsageError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                f"numbered from 0: use --device cuda:0 .. cuda:{torch.cuda.device_count() - 1}"
            )
    if value(args, "model") == "lstm":
        given = [f for f in NTM_ONLY_FLAGS if getattr(args, f, None) is not None]
        if given:
            raise UsageError(
                f"--{given[0]} applies to the NTM only (the LSTM baseline has no memory or heads): "
                f"drop it, or train an NTM"
            )
    if command == "train":
        check_fits(args)


def check_fits(args) -> None:
    """Refuse a training run that cannot work before it starts: a sequence longer than the memory,
    or a memory whose states would not fit in this machine's RAM."""
    from .tasks import TASKS
    from .train import make_task

    try:
        task = make_task(value(args, "task"), task_options(args))
    except NTMError:
        return  # bad task settings get their own message from the task
    if value(args, "model") != "ntm" or (
        args.memory_locations is None
        and args.max_sequence is None
        and args.memory_vector_size is None
        and args.batches is None
    ):
        return
    n, m = value(args, "memory_locations"), value(args, "memory_vector_size")
    need = task.memory_needed(task.max_level)
    if need > n:
        flag = next(f for f, o in TASK_FLAGS.items() if o == TASKS[task.name].axes[next(iter(task.axes))][1])
        raise UsageError(
            f"--{flag} {task.max_level} needs {need} memory locations but the model has {n}: train "
            f"on shorter sequences, or give --memory_locations >= {need}"
        )
    # The memory of every time step is kept for the backward pass: batch x N x M floats per step.
    steps = 2 * task.max_level + 2
    estimate = 4 * value(args, "batches") * n * m * steps * 3
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    if total and estimate > total:
        raise UsageError(
            f"a {n} x {m} memory at batch {value(args, 'batches')} needs about {estimate / 2**30:,.0f} "
            f"GiB for one training step, more than this machine's {total / 2**30:,.0f} GiB: use a "
            f"smaller --memory_locations, --memory_vector_size or --batches"
        )


def model_options(args, kind: str) -> dict:
    """Model settings from the flags given (defaults filled in)."""
    if kind == "lstm":
        return {
            "hidden_size": value(args, "controller_size") if args.controller_size else 256,
            "num_layers": args.controller_layers or 3,
        }
    controller = value(args, "controller")
    layers = args.controller_layers or (3 if controller == "feedforward" else 1)
    return dict(
        controller=controller,
        controller_size=value(args, "controller_size"),
        controller_layers=layers,
        memory_locations=value(args, "memory_locations"),
        memory_vector_size=value(args, "memory_vector_size"),
        read_heads=value(args, "read_heads"),
        write_heads=value(args, "write_heads"),
        shift_range=(value(args, "maximum_shifts") - 1) // 2,
        memory_init=value(args, "memory_init"),
        learn_r_bias=value(args, "learn_r_bias"),
        learn_w_bias=value(args, "learn_w_bias"),
        learn_m_bias=value(args, "learn_m_bias"),
        init_weighting=value(args, "init_weighting"),
        gate_bias=value(args, "gate_bias"),
    )


def task_options(args) -> dict:
    """The task options the flags given set (the task's own defaults fill in the rest)."""
    import dataclasses

    from .tasks import TASKS

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


def check_writable(path: str, what: str) -> None:
    p = Path(path)
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{what} {path} is not a directory (a file is in the way): choose another {what}")
    if not os.access(probe, os.W_OK):
        raise UsageError(f"{what} {path} is not writable: choose another {what}")
    import shutil

    free = shutil.disk_usage(probe).free
    if free < MIN_FREE_BYTES:
        raise UsageError(
            f"only {free / 2**20:.1f} MiB free for {what} {path} (checkpoints need at least "
            f"{MIN_FREE_BYTES // 2**20} MiB): free some space or choose another {what}"
        )


def launch_torchrun(nproc: int, argv: list[str]) -> int:
    """Run this same command in ``nproc`` processes under torchrun (PyTorch's launcher)."""
    import subprocess

    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "ntmkit",
        *rest,
    ]
    print(f"launching: torchrun --standalone --nproc_per_node={nproc} -m ntmkit {' '.join(rest)}", flush=True)
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # the processes got the Ctrl-C too: they save a checkpoint and end
        print("interrupted: waiting for the training processes to save their checkpoint", flush=True)
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.kill()
        return 130


def cmd_train(args, argv: list[str]) -> int:
    from . import checkpoint as ckpt
    from .train import TrainConfig, train

    if (args.nproc or 1) > 1 and "WORLD_SIZE" not in os.environ:
        return launch_torchrun(args.nproc, argv)
    if int(os.environ.get("RANK", 0)) != 0:  # under torchrun only rank 0 speaks
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)

    check_writable(value(args, "checkpoint_dir"), "--checkpoint_dir")
    check_writable(value(args, "train_log_dir"), "--train_log_dir")
    kind = value(args, "model")
    existing = ckpt.latest(value(args, "checkpoint_dir"))
    data = ckpt.load(existing) if existing is not None else None
    if data is not None and args.task is None:
        args.task = data["task"]["name"]
    opts = model_options(args, kind)
    topts = task_options(args)
    if data is not None:  # resume: the checkpoint's settings fill in what the flags leave out
        if args.model is None:
            kind = data["model_kind"]
            opts = model_options(args, kind)
        stored = data["model_config"]
        keep = {config_key(f, kind) for f in MODEL_FLAGS if getattr(args, f) is not None}
        for k in list(opts):
            if k not in keep and k in stored:
                opts[k] = stored[k]
        if data["task"]["name"] != value(args, "task"):
            raise UsageError(
                f"{existing} holds a {data['task']['name']} model, not {value(args, 'task')}: give "
                f"--task {data['task']['name']} or another --checkpoint_dir"
            )
        topts = {**data["task"]["options"], **topts}
        print(f"resuming from {existing} (step {data['step']}, {data['sequences']} sequences)")
    cfg = TrainConfig(
        task=value(args, "task"),
        task_options=topts,
        model=kind,
        model_options=opts,
        batch_size=value(args, "batches"),
        optimizer=value(args, "optimizer"),
        learning_rate=args.learning_rate,
        momentum=value(args, "momentum"),
        clip_grad_norm=max(abs(value(args, "clip_grad_min")), abs(value(args, "clip_grad_max"))),
        max_steps=value(args, "epochs") * value(args, "steps_per_epoch"),
        curriculum=value(args, "curriculum"),
        curriculum_start=value(args, "curriculum_start"),
        curriculum_step=value(args, "curriculum_step"),
        stop_when_learned=not args.keep_training,
        seed=value(args, "seed"),
        device=value(args, "device"),
        checkpoint_dir=value(args, "checkpoint_dir"),
        train_log_dir=value(args, "train_log_dir"),
        report_interval=value(args, "report_interval"),
        max_to_keep=value(args, "max_to_keep"),
        threads=value(args, "threads"),
        engine=value(args, "engine"),
        batch_levels=value(args, "batch_lengths"),
        memory_sizes=value(args, "memory_sizes"),
        steps_after_learned=value(args, "steps_after_learned"),
        lr_after_learned=value(args, "lr_after_learned"),
        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
    )
    from .optim import DEFAULT_LR
    from .train import build_model, make_task, model_config_for

    task = make_task(cfg.task, cfg.task_options)
    n_params = sum(p.numel() for p in build_model(kind, model_config_for(kind, task, opts)).parameters())
    world = int(os.environ.get("WORLD_SIZE", 1))
    batch_note = (
        f"batch {cfg.batch_size}"
        if world == 1
        else f"batch {cfg.batch_size} x {world} processes = {cfg.batch_size * world} effective"
    )
    lr = (
        cfg.learning_rate
        if cfg.learning_rate is not None
        else data["optimizer"]["param_groups"][0]["lr"]
        if data is not None
        else DEFAULT_LR[cfg.optimizer]
    )
    print(
        f"training {kind} on {task.describe()}, {n_params:,} parameters, {batch_note}, "
        f"{cfg.optimizer} lr {lr:g}; checkpoints in {cfg.checkpoint_dir}, logs in {cfg.train_log_dir}"
    )
    used = {k: v for k, v in task_recommended(args).items() if getattr(args, k, None) is None}
    if used:
        flags = " ".join(f"--{k} {v}" for k, v in used.items())
        print(f"{task.name} trains by default with {flags} (measured: see the results page); flags given win")
    if cfg.engine == "compiled" and kind == "ntm":
        print(
            "the first steps compile the NTM's time step with torch.compile (about 30 s on a cold cache; "
            "--engine eager skips it)"
        )
    result = train(cfg, progress=not args.quiet)
    status = (
        "learned"
        if result["learned"]
        else "interrupted"
        if result["interrupted"]
        else "stopped at the time limit"
        if result["time_up"]
        else "stopped at the step limit"
    )
    at = result["learned_at"]
    if at is not None and at["step"] != result["step"]:
        status = (
            f"learned after {at['step']} steps, {at['sequences']:,} sequences, {at['seconds']:.1f} s; "
            f"trained on to step {result['step']}"
            if not result["interrupted"]
            else f"learned at step {at['step']}, then interrupted at step {result['step']}"
        )
        print(
            f"{status} ({result['sequences']:,} sequences, {result['seconds']:.1f} s in all); "
            f"checkpoint {result['checkpoint']}"
        )
    else:
        print(
            f"{status} after {result['step']} steps, {result['sequences']:,} sequences, {result['seconds']:.1f} s; "
            f"checkpoint {result['checkpoint']}"
        )
    if result["final_eval"] is not None:
        e = result["final_eval"]
        extra = "" if task.cost_name.startswith("bit errors") else f", {e['cost']:.4f} {task.cost_name}"
        print(
            f"held-out check: {e['bit_errors']:.4f} bit errors per sequence{extra} on {e['sequences']} "
            f"sequences of {task.describe()}"
        )
        if "top" in e:
            top = e["top"]
            extra = "" if task.cost_name.startswith("bit errors") else f", {top['cost']:.4f} {task.cost_name}"
            print(
                f"  and {top['bit_errors']:.4f}{extra} on {top['sequences']} more at {task.level_name} "
                f"{top['level']} (the top of the range)"
            )
    if not result["interrupted"]:
        _short_test(result["model"], task, value(args, "seed"), value(args, "device"))
    return 0


def _short_test(model, task, seed, device) -> None:
    import torch

    from .evaluate import evaluate

    g = torch.Generator().manual_seed(seed + 7)
    extra = "" if task.cost_name.startswith("bit errors") else f", {task.cost_name}"
    print(f"test ({task.level_name}: bit errors per sequence, share perfect{extra}; 100 sequences each):")
    for level in sorted({task.min_level, (task.min_level + task.max_level) // 2, task.max_level}):
        e = evaluate(model, task, 100, g, level=level, device=device)
        print(f"  {level:>5}: {e['bit_errors']:8.3f}  {e['perfect']:6.1%}" + (f"  {e['cost']:8.3f}" if extra else ""))


def load_for_inference(args):
    """The model to test: the latest checkpoint in --checkpoint_dir, else the shipped one."""
    from . import checkpoint as ckpt
    from .pretrained import load_pretrained
    from .train import build_model

    path = ckpt.latest(value(args, "checkpoint_dir"))
    if path is not None:
        data = ckpt.load(path)
        source = str(path)
    else:
        if Path(value(args, "checkpoint_dir")).exists() and any(Path(value(args, "checkpoint_dir")).iterdir()):
            raise UsageError(
                f"--checkpoint_dir {value(args, 'checkpoint_dir')} holds no ntmkit checkpoint "
                f"(ckpt-*.pt): point it at a directory written by 'ntm train'"
            )
        data = load_pretrained(value(args, "task"))
        source = (
            f"the pretrained {value(args, 'task')} model shipped with ntmkit (no checkpoint in "
            f"{value(args, 'checkpoint_dir')})"
        )
    stored = data["model_config"]
    kind = data["model_kind"]
    asked = model_options(args, kind)
    for flag in MODEL_FLAGS:
        if getattr(args, flag) is None or (flag == "memory_locations" and kind == "ntm"):
            continue  # a larger memory is allowed at test time (see below)
        key = config_key(flag, kind)
        if key in stored and key in asked and stored[key] != asked[key]:
            raise UsageError(
                f"the model in {source} has {key}={stored[key]!r}, not {asked[key]!r}: drop --{flag} "
                f"(a model is tested as it was trained)"
            )
    from .model import NTM

    model = build_model(kind, stored)
    model.load_state_dict(data["model"])
    if (
        isinstance(model, NTM)
        and args.memory_locations is not None
        and args.memory_locations != stored["memory_locations"]
    ):
        if args.memory_locations < stored["memory_locations"]:
            raise UsageError(
                f"the model in {source} has {stored['memory_locations']} memory locations; "
                f"--memory_locations can only enlarge it at test time, got {args.memory_locations}"
            )
        model.resize_memory(args.memory_locations)
        source += f", memory enlarged from {stored['memory_locations']} to {args.memory_locations} locations"
    model.to(value(args, "device")).eval()
    return model, data, source


def task_for_inference(args, data):
    """The checkpoint's task with the flags given applied; a larger top of the task's first axis
    (e.g. ``--max_sequence 120``) lowers its bottom only if needed."""
    from .tasks import TASKS
    from .train import make_task

    name = data["task"]["name"]
    if args.task is not None and args.task != name:
        raise UsageError(
            f"the model holds the {name} task, not {args.task}: give --task {name} or point "
            f"--checkpoint_dir at a {args.task} model"
        )
    args.task = name
    given = task_options(args)
    options = {**data["task"]["options"], **given}
    lo, hi = next(iter(TASKS[name].axes.values()))
    if hi in given and lo not in given and lo in options:
        options[lo] = min(options[lo], given[hi])
    return make_task(name, options)


def cmd_test(args, visualize: bool = False) -> int:
    import torch

    from . import plots
    from .evaluate import evaluate

    torch.set_num_threads(value(args, "threads"))
    model, data, source = load_for_inference(args)
    task = task_for_inference(args, data)
    length = task.max_level
    n_locations = getattr(getattr(model, "config", None), "memory_locations", None)
    if n_locations is not None and task.memory_needed(length) > n_locations:
        raise UsageError(
            f"a {task.level_name} of {length} needs {task.memory_needed(length)} memory locations but "
            f"the model has {n_locations}: test at --max_sequence <= {n_locations}, or enlarge the "
            f"memory with --memory_locations (addressing does not depend on it)"
        )
    print(f"model: {source}")
    g = torch.Generator().manual_seed(value(args, "seed") + 12345)
    fig_dir = Path(value(args, "figure_dir"))
    level = None if args.random_seq_len else length
    if visualize:
        batch = task.make_batch(1, g, level=level)
        out = plots.visualize(model, task, batch, fig_dir / f"visualize_{task.name}_{length}.png")
        print(f"saved {out}")
        return 0
    n = value(args, "sequences")
    what = (
        f"random {task.level_name}s {task.min_level}-{length}" if args.random_seq_len else f"{task.level_name} {length}"
    )
    e = evaluate(model, task, n, g, level=level, max_level=length, device=value(args, "device"))
    extra = "" if task.cost_name.startswith("bit errors") else f", {task.cost_name} {e['cost']:.3f}"
    print(
        f"{what}: {e['bit_errors']:.3f} bit errors per sequence, {e['perfect']:.1%} perfect, "
        f"{e['bits']:.3f} bits (cross-entropy){extra} ({n} sequences)"
    )
    batch = task.make_batch(min(n, 4), g, level=level, max_level=length)
    suffix = "random" if args.random_seq_len else str(length)
    out = plots.test_figure(
        model, task, batch, fig_dir / f"test_{task.name}_{suffix}.png", title=f"{task.name}, {what}"
    )
    print(f"saved {out}")
    return 0


def cmd_evaluate(args) -> int:
    """Cost against one axis of the task (copy: every length 1-120): a table, JSON and a PNG."""
    import dataclasses
    import json

    import torch

    from . import plots
    from .evaluate import along_axis, default_values
    from .tasks import TASKS

    torch.set_num_threads(value(args, "threads"))
    model, data, source = load_for_inference(args)
    name = data["task"]["name"]
    if args.task is not None and args.task != name:
        raise UsageError(
            f"the model holds the {name} task, not {args.task}: give --task {name} or point "
            f"--checkpoint_dir at a {args.task} model"
        )
    axes = TASKS[name].axes
    axis = args.axis or next(iter(axes))
    if axis not in axes:
        raise UsageError(f"--axis {axis} is not an axis of {name}: choose one of {', '.join(axes)}")
    top_flag = next(f for f, o in TASK_FLAGS.items() if o == axes[axis][1])
    trained = TASKS[name](**data["task"]["options"])
    # Flags of the task's other settings fix them for the whole table (e.g. --axis repeats with
    # --min_sequence 20 --max_sequence 20 evaluates length 20 at every repeat count). replace()
    # keeps what the task derived from its training range (repeat copy's count encoding).
    fixed_options = {k: v for k, v in task_options(args).items() if k not in axes[axis]}
    base = dataclasses.replace(trained, **fixed_options) if fixed_options else trained
    if args.values:
        try:
            values = sorted({int(v) for v in args.values.split(",") if v.strip()})
        except ValueError:
            raise UsageError(f"--values must be comma-separated integers, got {args.values!r}") from None
        if not values or values[0] < 1:
            raise UsageError(f"--values must be positive integers, got {args.values!r}")
    else:
        values = default_values(trained, axis, getattr(args, top_flag))
    n_locations = getattr(getattr(model, "config", None), "memory_locations", None)
    for v in values:
        fixed = base.at(axis, v)
        need = fixed.memory_needed(fixed.max_level)
        if n_locations is not None and need > n_locations:
            raise UsageError(
                f"{axis} {v} needs {need} memory locations but the model has {n_locations}: enlarge "
                f"the memory with --memory_locations {max(need, 2 * n_locations)} (addressing does not "
                f"depend on it) or lower --{top_flag}"
            )
    n = value(args, "sequences")
    lo, hi = trained.axis_range(axis)
    print(f"model: {source}")
    held = "".join(f", {k} {v}" for k, v in fixed_options.items())
    print(f"{name}: {trained.cost_name} against {axis} ({n} sequences each{held}; trained on {axis} {lo}-{hi})")
    print(
        f"{axis:>8}  {'bit errors':>10}  {'bits wrong':>10}  {'perfect':>7}  {'bits (CE)':>10}"
        + ("" if trained.cost_name.startswith("bit errors") else f"  {'cost':>8}")
    )

    def show(row):
        print(
            f"{row[axis]:>8}  {row['bit_errors']:>10.3f}  {row.get('wrong_share', 0.0):>10.3%}  "
            f"{row['perfect']:>7.1%}  {row['bits']:>10.3f}"
            + ("" if trained.cost_name.startswith("bit errors") else f"  {row['cost']:>8.3f}"),
            flush=True,
        )

    g = torch.Generator().manual_seed(value(args, "seed") + 4242)
    rows = along_axis(model, base, axis, values, n, g, device=value(args, "device"), on_row=show)
    fig_dir = Path(value(args, "figure_dir"))
    fig_dir.mkdir(parents=True, exist_ok=True)
    stem = (
        f"evaluate_{name}_{axis}"
        + "".join(f"_{k}{v}" for k, v in fixed_options.items())
        + (f"_N{n_locations}" if args.memory_locations else "")
    )
    report = {
        "task": name,
        "axis": axis,
        "fixed": fixed_options,
        "training_range": [lo, hi],
        "sequences_per_value": n,
        "cost": trained.cost_name,
        "model": source,
        "memory_locations": n_locations,
        "rows": rows,
    }
    json_path = fig_dir / f"{stem}.json"
    json_path.write_text(json.dumps(report, indent=1))
    png = plots.generalisation_plot(
        rows,
        axis,
        (lo, hi),
        fig_dir / f"{stem}.png",
        title=f"{name}: {trained.cost_name} against {axis}{held}" + (f", N = {n_locations}" if n_locations else ""),
        cost_name=trained.cost_name,
    )
    print(f"saved {json_path} and {png}")
    return 0


def cmd_bench(args) -> int:
    from .bench import main as bench_main

    return bench_main(quick=args.quick)


def main(argv=None) -> int:
    from .errors import NTMError

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        command = resolve_command(args)
        apply_preset(args)
        validate(args, command)
        if command == "train":
            return cmd_train(args, argv)
        if command == "test":
            return cmd_test(args)
        if command == "visualize":
            return cmd_test(args, visualize=True)
        if command == "evaluate":
            return cmd_evaluate(args)
        if command == "sweep":
            from .sweep import cmd_sweep

            return cmd_sweep(args, argv)
        return cmd_bench(args)
    except (UsageError, NTMError) as e:
        print(f"ntm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ntm: interrupted (run the same command again to resume)", file=sys.stderr)
        return 130
    except OSError as e:
        print(
            f"ntm: error: {e.strerror or e}: {e.filename or ''} (check the path and free disk space)", file=sys.stderr
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
