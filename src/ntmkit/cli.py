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
from typing import cast

from .errors import NTMError
from .models import MemoryModel
from .options import (
    MODEL_FLAGS,
    OPTIONS,
    TASK_FLAGS,
    UsageError,
    apply_preset,
    build_parser,
    config_key,
    flags_not_for,
    model_options,
    preset_settings,
    resolve_command,
    task_options,
    task_recommended,
    value,
)
from .registry import model_kind

__all__ = [
    "UsageError",
    "apply_preset",
    "build_parser",
    "main",
    "model_options",
    "preset_settings",
    "resolve_command",
    "task_options",
    "validate",
]

MIN_FREE_BYTES = 50 * 2**20


def task_from_checkpoint(args) -> None:
    """Without --task, a command that reads --checkpoint_dir acts on the task stored there: set it,
    so that task flags (e.g. --max_items) are checked against that task, not against copy."""
    if args.task is not None:
        return
    from . import checkpoint as ckpt

    directory = value(args, "checkpoint_dir")
    if ckpt.has_checkpoints(directory):
        args.task = ckpt.load_newest_good(directory)[1]["task"]["name"]


def validate(args, command: str | None = None) -> None:
    """Check every option before anything is read or written."""
    if command in ("train", "test", "visualize", "evaluate"):
        task_from_checkpoint(args)
    _check_integers(args)
    _check_task_flags(args)
    if args.memory_sizes is not None:
        from .errors import ConfigError
        from .train import memory_size_choices

        try:
            memory_size_choices(args.memory_sizes, value(args, "memory_locations"), value(args, "maximum_shifts"))
        except ConfigError as e:
            raise UsageError(f"--memory_sizes: {e}") from None
    _check_numbers(args)
    _check_device(value(args, "device"))
    kind = model_kind(value(args, "model"))
    stray = [f for f in flags_not_for(kind.name) if getattr(args, f, None) is not None]
    if stray:
        takes = [f"--{f}" for f in (*kind.flags, *(("memory_sizes",) if kind.has_memory else ()))]
        raise UsageError(
            f"--{stray[0]} does not apply to the {kind.label} (it takes {', '.join(takes)}): drop it, "
            f"or choose another --model"
        )
    if command == "train":
        check_fits(args)


def _check_integers(args) -> None:
    from .train import SEED_LIMIT

    for option in OPTIONS:
        v = getattr(args, option.name, None)
        if option.type is int and v is not None and v < option.least:
            bound = "a positive integer" if option.least == 1 else f">= {option.least}"
            raise UsageError(f"--{option.name} must be {bound}, got {v}")
    last = value(args, "first_seed") + value(args, "seeds") - 1  # ntm sweep's last seed
    for name, v in (("seed", value(args, "seed")), ("first_seed", last)):
        if v >= SEED_LIMIT:
            raise UsageError(f"--{name} must be below 2**63 = {SEED_LIMIT}, got {v}: give a smaller seed")
    if value(args, "maximum_shifts") % 2 == 0:
        raise UsageError(f"--maximum_shifts must be odd (3 means shifts -1, 0, +1), got {args.maximum_shifts}")


def _check_task_flags(args) -> None:
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


def _check_numbers(args) -> None:
    if args.max_minutes is not None and not (math.isfinite(args.max_minutes) and args.max_minutes > 0):
        raise UsageError(f"--max_minutes must be a positive number, got {args.max_minutes}")
    for name in (
        "learning_rate", "momentum", "clip_grad_min", "clip_grad_max", "gate_bias", "shift_bias", "lr_after_learned"
    ):  # fmt: skip
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
    if args.lr_after_learned is not None and not args.lr_after_learned > 0:
        raise UsageError(f"--lr_after_learned must be > 0, got {args.lr_after_learned}")
    from . import schedule

    for kind in ("lr", "batch"):
        if (text := getattr(args, f"{kind}_schedule")) is not None:
            try:
                schedule.parse(text, kind)
            except ValueError as e:
                raise UsageError(f"--{kind}_schedule: {e}") from None


def _check_device(device: str) -> None:
    """Any device ``torch.device`` accepts that exists here: cpu (cpu:0), cuda, cuda:N, mps."""
    import torch

    try:
        d = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise UsageError(f"unknown --device {device!r}: use cpu, cuda, cuda:N or mps") from None
    if d.type == "cpu":
        if d.index not in (None, 0):
            raise UsageError(f"--device {device}: the CPU is device cpu or cpu:0")
    elif d.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device} asked for, but no CUDA GPU is available: use --device cpu")
        count = torch.cuda.device_count()
        if d.index is not None and d.index >= count:
            raise UsageError(
                f"--device {device}: this machine has {count} CUDA device(s), numbered from 0: use --device "
                f"cuda:0 .. cuda:{count - 1}"
            )
    elif d.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise UsageError(f"--device {device} asked for, but MPS is not available: use --device cpu")
    else:
        raise UsageError(f"--device {device}: ntmkit runs on cpu, cuda or mps, not {d.type}")


def check_fits(args) -> None:
    """Refuse a training run that cannot work before it starts: a sequence longer than the memory,
    or a memory whose states would not fit in this machine's RAM."""
    from .tasks import TASKS
    from .train import make_task

    try:
        task = make_task(value(args, "task"), task_options(args))
    except NTMError:
        return  # bad task settings get their own message from the task
    if not model_kind(value(args, "model")).has_memory or (
        args.memory_locations is None
        and args.max_sequence is None
        and args.memory_vector_size is None
        and args.batches is None
        and args.batch_schedule is None
    ):
        return
    kind = model_kind(value(args, "model"))
    config = kind.config_class(task.input_size, task.output_size, **model_options(args, kind.name))
    n, m = config.memory_locations, config.memory_vector_size
    need = task.memory_needed(task.max_level)
    if need > n:
        flag = next(f for f, o in TASK_FLAGS.items() if o == TASKS[task.name].axes[next(iter(task.axes))][1])
        raise UsageError(
            f"--{flag} {task.max_level} needs {need} memory locations but the model has {n}: train "
            f"on shorter sequences, or give --memory_locations >= {need}"
        )
    # The state of every time step is kept for the backward pass (the memory, and a DNC's link matrix).
    steps = 2 * task.max_level + 2
    batch = max(all_batches(args))
    estimate = 4 * batch * config.state_floats() * steps * 3
    total = machine_ram()
    if total and estimate > total:
        raise UsageError(
            f"a {kind.label} with a {n} x {m} memory at batch {batch} needs about "
            f"{estimate / 2**30:,.0f} GiB for one training step, more than this machine's "
            f"{total / 2**30:,.0f} GiB: use a smaller --memory_locations, --memory_vector_size or --batches"
        )


EVAL_CHUNK = 250  # the most sequences evaluation runs at once (ntmkit.evaluate.evaluate's batch)


def machine_ram() -> int | None:
    """This machine's RAM in bytes (None where the OS does not say)."""
    if not hasattr(os, "sysconf"):
        return None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def check_inference_fits(config, batch: int) -> None:
    """Refuse a test whose memory (enlarged with --memory_locations) would not fit in RAM: the state
    of a batch of ``batch`` sequences, a few copies of it alive at once."""
    estimate = 4 * batch * config.state_floats() * 4
    total = machine_ram()
    if total and estimate > total:
        raise UsageError(
            f"a memory of {config.memory_locations} x {config.memory_vector_size} for {batch} sequences needs about "
            f"{estimate / 2**30:,.0f} GiB, more than this machine's {total / 2**30:,.0f} GiB: give a smaller "
            f"--memory_locations or --sequences"
        )


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


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def training_processes(args) -> int:
    """How many data-parallel processes ``ntm train`` runs: ``--nproc`` as given; else the task's
    recommended count (N-grams: 2), which applies on the CPU only, up to the cores this process
    may use, and only where the batch (each one of a --batch_schedule) splits evenly over the processes."""
    batches = all_batches(args)
    if args.nproc is not None:
        if odd := [b for b in batches if b % args.nproc]:
            flag = "--batches" if odd[0] == batches[0] else "--batch_schedule's batch"
            raise UsageError(
                f"{flag} {odd[0]} does not split over --nproc {args.nproc} processes (each takes "
                f"batch / nproc): give a multiple of {args.nproc} or fewer processes"
            )
        return args.nproc
    n = min(int(cast(int, task_recommended(args).get("nproc", 1))), usable_cores())
    if n < 2 or _device_type(value(args, "device")) != "cpu" or any(b % n for b in batches):
        return 1
    return n


def _device_type(device: str) -> str:
    import torch

    return torch.device(device).type


def all_batches(args) -> list[int]:
    """The batch sizes a run takes: --batches, then those of --batch_schedule (already checked)."""
    from . import schedule

    later = schedule.parse(args.batch_schedule, "batch") if args.batch_schedule else ()
    return [value(args, "batches")] + [b for _, b in later]


def cmd_train(args, argv: list[str]) -> int:
    """``ntm train [RECIPE] [flags]``: a recipe's phases (:func:`cmd_recipe`), or one run from the flags."""
    spec = getattr(args, "recipe", None) or args.config
    if spec is not None:
        return cmd_recipe(args, argv, spec)
    if args.run_dir is not None:  # one directory for checkpoints and logs
        args.checkpoint_dir = args.checkpoint_dir or args.run_dir
        args.train_log_dir = args.train_log_dir or args.run_dir
    return _train_once(args, argv)[0]


def _train_once(args, argv: list[str] | None, recipe=None) -> tuple[int, dict | None]:
    """One training run from a resolved namespace; returns the exit code and the run's result."""
    from .train import make_task, train

    # Every setting is checked here, before torchrun starts more processes, so that bad input is
    # one line from one process.
    launcher = "WORLD_SIZE" not in os.environ
    if not launcher and int(os.environ["RANK"]) != 0:  # under torchrun only rank 0 speaks
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    check_writable(value(args, "checkpoint_dir"), "--checkpoint_dir")
    check_writable(value(args, "train_log_dir"), "--train_log_dir")
    said: list[str] = []
    kind, model_opts, task_opts, data = _settings_with_checkpoint(args, say=said.append)
    nproc = training_processes(args)
    if nproc > 1 and launcher:
        make_task(value(args, "task"), task_opts)
        if argv is None:
            raise UsageError("a recipe's phase trains in one process: drop nproc from the recipe or its flags")
        return launch_torchrun(nproc, argv), None  # process 0 says it all again
    for line in said:
        print(line)
    if nproc == 1:
        args.nproc = 1  # a recommendation that does not apply here is not reported as used
    world = int(os.environ.get("WORLD_SIZE", 1))
    if value(args, "batches") % world:
        raise UsageError(f"--batches {value(args, 'batches')} does not split over {world} processes: give a multiple")
    cfg = train_config(args, kind, model_opts, task_opts)
    task = make_task(cfg.task, cfg.task_options)
    _print_header(args, cfg, task, data)
    if recipe is None and int(os.environ.get("RANK", "0")) == 0:
        _write_config(Path(cfg.checkpoint_dir), _recipe_of(args, cfg))
    result = train(cfg, progress=not args.quiet)
    _print_result(result, task)
    if result["signal"] == "SIGINT":
        print("ntm: interrupted (Ctrl-C): checkpoint saved; run the same command again to resume", file=sys.stderr)
        return 130, result
    check = result["final_eval"]
    if check is not None and not math.isfinite(check["cost"]):
        print(
            f"ntm: error: the held-out check is not finite ({check['cost']}): the model is broken; resume from an "
            f"earlier checkpoint with a lower --learning_rate",
            file=sys.stderr,
        )
        return 1, result
    if not result["interrupted"] and recipe is None:
        _short_test(result["model"], task, value(args, "seed"), value(args, "device"))
    return 0, result


def _recipe_of(args, cfg):
    """The resolved settings of a run from flags, as a one-phase recipe (what config.toml holds)."""
    from . import recipes

    settings = {}
    stray = set(flags_not_for(cfg.model))
    for name in recipes.options():
        v = value(args, name)
        if v is not None and name not in stray and name != "init_from":
            settings[name] = v
    if cfg.init_from is not None:
        settings["init_from"] = cfg.init_from
    phase = recipes.Phase(sequences=cfg.max_steps * value(args, "batches"), until_learned=cfg.stop_when_learned)
    name = Path(cfg.checkpoint_dir).name or "run"
    return recipes.Recipe(name=name, task=cfg.task, model=cfg.model, phases=[phase], settings=settings, seed=cfg.seed)


def _versions() -> str:
    """ntmkit's and torch's versions, and the commit of ntmkit's source when it is a git checkout."""
    import subprocess

    import torch

    from . import __version__

    line = f"ntmkit {__version__}, torch {torch.__version__}"
    try:
        commit = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return line + (f", commit {commit}" if commit else "")


def _write_config(directory: Path, recipe) -> None:
    """Save the resolved configuration as ``config.toml`` in the run directory and print it as one block."""
    from . import recipes

    directory.mkdir(parents=True, exist_ok=True)
    header = f"the resolved configuration of this run ({_versions()}); run it again: ntm train --config THIS_FILE"
    (directory / recipes.CONFIG).write_text(recipes.dumps(recipe, header))
    shown = " ".join(f"{k}={v}" for k, v in recipe.settings.items())
    print(f"settings: task={recipe.task} model={recipe.model} seed={recipe.seed} {shown}")
    print(f"saved {directory / recipes.CONFIG}")


def cmd_recipe(args, argv: list[str], spec: str) -> int:
    """``ntm train RECIPE``: every phase of the recipe in one run directory, resuming in the phase
    where it stopped; flags given win over the recipe in every phase."""
    import json

    from . import recipes

    recipe = recipes.load(spec)
    given = {name: getattr(args, name) for name in (*recipes.options(), "task", "model", "seed")}
    recipe = recipe.with_flags({k: v for k, v in given.items() if v is not None})
    for k in range(len(recipe.phases)):
        recipes.check_phase(recipe, k)
    spec_path = Path(spec)
    if args.run_dir is not None:
        run_dir = Path(args.run_dir)
    elif spec_path.is_dir():
        run_dir = spec_path
    elif spec_path.name == recipes.CONFIG:
        run_dir = spec_path.parent
    else:
        run_dir = Path(f"./ntm_runs/{recipe.name}" + (f"-seed{recipe.seed}" if recipe.seed is not None else ""))
    check_writable(str(run_dir), "--run_dir")
    stored = run_dir / recipes.CONFIG
    body = recipes.dumps(recipe)
    if stored.is_file():
        old = recipes.dumps(recipes.parse(stored.read_text(), str(stored)))
        if old != body:
            differ = next(a for a, b in zip([*old.splitlines(), ""], [*body.splitlines(), ""]) if a != b)
            raise UsageError(
                f"{run_dir} holds a run of another configuration ({stored}: {differ!r}): give the same recipe and "
                f"flags, or another --run_dir"
            )
    _write_config(run_dir, recipe)
    n = len(recipe.phases)
    previous = None
    for k, phase in enumerate(recipe.phases):
        d = run_dir if n == 1 else run_dir / f"phase-{k + 1}"
        done = d / "phase.json"
        if done.is_file():
            print(f"phase {k + 1} of {n}: done ({done})")
            previous = d
            continue
        ns = recipes.namespace(recipe, k, d, previous)
        ns.quiet = args.quiet
        left = sum(p.sequences for p in recipe.phases[k:])
        fresh = "a fresh optimiser" if previous is None or phase.fresh_optimizer else "the optimiser carried on"
        stop = ", stops once learned" if phase.until_learned else ""
        print(
            f"phase {k + 1} of {n}: {phase.sequences:,} sequences ({fresh}{stop}); {left:,} sequences left in "
            f"{recipe.name}"
        )
        validate(ns, "train")
        code, result = _train_once(ns, None, recipe=recipe)
        if code != 0 or result is None or result["interrupted"] or result["time_up"]:
            return code
        done.write_text(json.dumps({"phase": k + 1, "step": result["step"], "sequences": result["sequences"],
                                    "seconds": round(result["seconds"], 1), "learned": result["learned"],
                                    "final_eval": result["final_eval"]}, indent=1))  # fmt: skip
        previous = d
    print(f"recipe {recipe.name}: all {n} phase(s) done in {run_dir}")
    return 0


def cmd_recipes(args) -> int:
    """``ntm recipes``: the shipped recipes, what each reaches and its budget."""
    from . import recipes
    from .pretrained import manifest

    entries = manifest()
    print(f"{'recipe':<24} {'task':<20} {'model':<6} {'phases':>6} {'sequences':>11}  reaches (stored figure)")
    for name in recipes.shipped():
        r = recipes.load(name)
        m = entries.get(r.shipped or "", {})
        reached = f"{m['training_range_cost']} {m['cost_name']} (shipped {r.shipped})" if m else "-"
        print(f"{name:<24} {r.task:<20} {r.model:<6} {len(r.phases):>6} {r.sequences:>11,}  {reached}")
    return 0


def _settings_with_checkpoint(args, say=print) -> tuple[str, dict, dict, dict | None]:
    """Model kind, model and task options, and the checkpoint to resume (None: a new run). When
    resuming, the checkpoint's settings fill in what the flags leave out; so do those of the model
    a new run starts from (--init_from). ``say`` is told which of the two it is."""
    from . import checkpoint as ckpt
    from .train import init_source

    kind = value(args, "model")
    existing, data = None, None
    if ckpt.has_checkpoints(value(args, "checkpoint_dir")):
        existing, data = ckpt.load_newest_good(value(args, "checkpoint_dir"))
    source, where = data, str(existing)
    if data is None and value(args, "init_from") is not None:
        source, where = init_source(value(args, "init_from"))
    if source is not None and args.task is None:
        args.task = source["task"]["name"]
    opts = model_options(args, kind)
    topts = task_options(args)
    if source is None:
        return kind, opts, topts, None
    if args.model is None:
        kind = source["model_kind"]
        opts = model_options(args, kind)
    stored = source["model_config"]
    keep = {config_key(f, kind) for f in MODEL_FLAGS if getattr(args, f) is not None}
    for k in list(opts):
        if k not in keep and k in stored:
            opts[k] = stored[k]
    if source["task"]["name"] != value(args, "task"):
        flag = "--checkpoint_dir" if data is not None else "--init_from"
        raise UsageError(
            f"{where} holds a {source['task']['name']} model, not {value(args, 'task')}: give "
            f"--task {source['task']['name']} or another {flag}"
        )
    if data is None:
        seen = ckpt.trained_sequences(source)
        message = f"starting from the weights of {where} ({seen:,} sequences), with a fresh optimiser"
    else:
        message = f"resuming from {existing} (step {data['step']}, {data['sequences']} sequences)"
    say(message)
    return kind, opts, {**source["task"]["options"], **topts}, data


def train_config(args, kind: str, model_opts: dict, task_opts: dict):
    """The :class:`ntmkit.train.TrainConfig` the command line describes."""
    from . import schedule
    from .train import TrainConfig

    world = int(os.environ.get("WORLD_SIZE", 1))
    batches = schedule.parse(args.batch_schedule, "batch") if args.batch_schedule else ()
    return TrainConfig(
        task=value(args, "task"),
        task_options=task_opts,
        model=kind,
        model_options=model_opts,
        batch_size=value(args, "batches") // world,  # the batch, split over the processes
        batch_schedule=tuple((at, batch // world) for at, batch in batches),
        optimizer=value(args, "optimizer"),
        learning_rate=args.learning_rate,
        lr_schedule=schedule.parse(args.lr_schedule, "lr") if args.lr_schedule else (),
        momentum=value(args, "momentum"),
        spike_clip=value(args, "spike_clip"),
        spike_window=value(args, "spike_window"),
        state_grad_clip=value(args, "state_grad_clip"),
        clip_grad_norm=max(abs(value(args, "clip_grad_min")), abs(value(args, "clip_grad_max"))),
        max_steps=value(args, "epochs") * value(args, "steps_per_epoch"),
        curriculum=value(args, "curriculum"),
        curriculum_start=value(args, "curriculum_start"),
        curriculum_step=value(args, "curriculum_step"),
        stop_when_learned=not args.keep_training,
        seed=value(args, "seed"),
        device=value(args, "device"),
        checkpoint_dir=value(args, "checkpoint_dir"),
        init_from=value(args, "init_from"),
        init_optimizer=bool(getattr(args, "init_optimizer", False)),
        train_log_dir=value(args, "train_log_dir"),
        report_interval=value(args, "report_interval"),
        max_to_keep=value(args, "max_to_keep"),
        threads=value(args, "threads"),
        engine=value(args, "engine"),
        unroll=value(args, "unroll"),
        batch_levels=value(args, "batch_lengths"),
        memory_sizes=value(args, "memory_sizes"),
        steps_after_learned=value(args, "steps_after_learned"),
        lr_after_learned=value(args, "lr_after_learned"),
        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
    )


def _print_header(args, cfg, task, data: dict | None) -> None:
    from . import schedule
    from .optim import DEFAULT_LR
    from .registry import build_model
    from .train import model_config_for

    kind = cfg.model
    n_params = sum(p.numel() for p in build_model(kind, model_config_for(kind, task, cfg.model_options)).parameters())
    world = int(os.environ.get("WORLD_SIZE", 1))
    batch_note = (
        f"batch {cfg.batch_size}"
        if world == 1
        else f"batch {cfg.batch_size} x {world} processes = {cfg.batch_size * world} effective"
    ) + schedule.describe([(at, b * world) for at, b in cfg.batch_schedule], "batch ")
    lr = (
        cfg.learning_rate
        if cfg.learning_rate is not None
        else data["optimizer"]["param_groups"][0]["lr"]
        if data is not None
        else DEFAULT_LR[cfg.optimizer]
    )
    print(
        f"training {kind} on {task.describe()}, {n_params:,} parameters, {batch_note}, "
        f"{cfg.optimizer} lr {lr:g}{schedule.describe(cfg.lr_schedule)}; checkpoints in {cfg.checkpoint_dir}, "
        f"logs in {cfg.train_log_dir}"
    )
    used = {k: v for k, v in task_recommended(args).items() if getattr(args, k, None) is None}
    if used:
        flags = " ".join(
            f"--{k}" if v is True else f"--no-{k}" if v is False else f"--{k} {v}" for k, v in used.items()
        )
        print(f"{task.name} trains by default with {flags} (measured: see the results page); flags given win")
    if (cfg.engine == "compiled" or (cfg.engine == "auto" and world > 1)) and model_kind(kind).has_memory:
        print(
            f"the first steps compile the {model_kind(kind).label}'s time step with torch.compile (about 30 s on a "
            "cold cache; "
            "--engine eager skips it)"
        )
    elif cfg.engine == "auto" and model_kind(kind).has_memory:
        print(
            f"the {model_kind(kind).label}'s time step runs compiled (torch.compile); on a cold compile cache a "
            "helper process compiles it (about 30 s) while training runs eagerly"
        )


def _print_result(result: dict, task) -> None:
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
        earlier = f" (the last one, at step {e['step']})" if e.get("step", result["step"]) != result["step"] else ""
        print(f"held-out check{earlier}: {_scores(e, task)} on {e['sequences']} sequences of {task.describe()}")
        if "top" in e:
            top = e["top"]
            print(
                f"  and {_scores(top, task)} on {top['sequences']} more at {task.level_name} "
                f"{top['level']} (the top of the range)"
            )


def _scores(e: dict, task) -> str:
    """Wrong bits, cross-entropy and (where it is another number) the task's cost, per sequence."""
    extra = "" if task.cost_score is not None else f", {e['cost']:.4f} {task.cost_name}"
    return f"{e['bit_errors']:.4f} bit errors per sequence, {e['bits']:.4f} cross-entropy bits per sequence{extra}"


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
    from .pretrained import load_pretrained, shipped_name
    from .registry import build_model

    directory = Path(value(args, "checkpoint_dir"))
    if ckpt.has_checkpoints(directory):
        path, data = ckpt.load_newest_good(directory)
        source = str(path)
    else:
        if args.checkpoint_dir is not None and not directory.exists():
            raise UsageError(
                f"--checkpoint_dir {directory} does not exist: check the path (leave the flag out to use the "
                f"shipped model)"
            )
        if directory.is_file():
            raise UsageError(f"--checkpoint_dir {directory} is a file: give the directory it is in")
        if directory.exists() and any(directory.iterdir()):
            raise UsageError(
                f"--checkpoint_dir {directory} holds no ntmkit checkpoint "
                f"(ckpt-*.pt): point it at a directory written by 'ntm train'"
            )
        name = shipped_name(value(args, "task"), value(args, "model"))
        data = load_pretrained(name)
        source = f"the pretrained {name} model shipped with ntmkit (no checkpoint in {value(args, 'checkpoint_dir')})"
    stored = data["model_config"]
    kind = data["model_kind"]
    asked = model_options(args, kind)
    for flag in MODEL_FLAGS:
        if getattr(args, flag) is None or (flag == "memory_locations" and model_kind(kind).has_memory):
            continue  # a larger memory is allowed at test time (see below)
        key = config_key(flag, kind)
        if key in stored and key in asked and stored[key] != asked[key]:
            raise UsageError(
                f"the model in {source} has {key}={stored[key]!r}, not {asked[key]!r}: drop --{flag} "
                f"(a model is tested as it was trained)"
            )
    model = build_model(kind, stored)
    model.load_state_dict(data["model"])
    if (
        model_kind(kind).has_memory
        and args.memory_locations is not None
        and args.memory_locations != stored["memory_locations"]
    ):
        if args.memory_locations < stored["memory_locations"]:
            raise UsageError(
                f"the model in {source} has {stored['memory_locations']} memory locations; "
                f"--memory_locations can only enlarge it at test time, got {args.memory_locations}"
            )
        import dataclasses

        enlarged = dataclasses.replace(cast(MemoryModel, model).config, memory_locations=args.memory_locations)
        check_inference_fits(enlarged, min(value(args, "sequences"), EVAL_CHUNK))
        cast(MemoryModel, model).resize_memory(args.memory_locations)
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
    import json

    import torch

    from . import plots
    from .evaluate import along_axis

    torch.set_num_threads(value(args, "threads"))
    model, data, source = load_for_inference(args)
    trained, base, axis, fixed_options = _evaluation_task(args, data)
    values = _evaluation_values(args, trained, axis)
    n_locations = getattr(getattr(model, "config", None), "memory_locations", None)
    _check_memory_for_values(base, axis, values, n_locations, args)
    n = value(args, "sequences")
    lo, hi = trained.axis_range(axis)
    name = trained.name
    print(f"model: {source}")
    held = "".join(f", {k} {v}" for k, v in fixed_options.items())
    print(f"{name}: {trained.cost_name} against {axis} ({n} sequences each{held}; trained on {axis} {lo}-{hi})")
    own_cost = trained.cost_score is None
    print(
        f"{axis:>8}  {'bit errors':>10}  {'bits wrong':>10}  {'perfect':>7}  {'bits (CE)':>10}"
        + (f"  {'cost':>8}" if own_cost else "")
    )

    def show(row):
        print(
            f"{row[axis]:>8}  {row['bit_errors']:>10.3f}  {row.get('wrong_share', 0.0):>10.3%}  "
            f"{row['perfect']:>7.1%}  {row['bits']:>10.3f}" + (f"  {row['cost']:>8.3f}" if own_cost else ""),
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
        "trained_memory_locations": data["model_config"].get("memory_locations"),
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


def _evaluation_task(args, data: dict):
    """The task as trained, the task to evaluate (other settings fixed by their flags, e.g.
    ``--axis repeats --min_sequence 20 --max_sequence 20`` evaluates length 20 at every repeat
    count), the axis and the fixed settings."""
    import dataclasses

    from .tasks import TASKS

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
    trained = TASKS[name](**data["task"]["options"])
    # replace() keeps what the task derived from its training range (repeat copy's count encoding).
    fixed_options = {k: v for k, v in task_options(args).items() if k not in axes[axis]}
    base = dataclasses.replace(trained, **fixed_options) if fixed_options else trained
    return trained, base, axis, fixed_options


def _top_flag(task, axis: str) -> str:
    """The flag that sets the top of ``axis`` (e.g. --max_sequence for copy's length)."""
    return next(f for f, o in TASK_FLAGS.items() if o == task.axes[axis][1])


def _evaluation_values(args, trained, axis: str) -> list[int]:
    from .evaluate import default_values

    if not args.values:
        return default_values(trained, axis, getattr(args, _top_flag(trained, axis)))
    try:
        values = sorted({int(v) for v in args.values.split(",") if v.strip()})
    except ValueError:
        raise UsageError(f"--values must be comma-separated integers, got {args.values!r}") from None
    if not values or values[0] < 1:
        raise UsageError(f"--values must be positive integers, got {args.values!r}")
    return values


def _check_memory_for_values(base, axis: str, values: list[int], n_locations: int | None, args) -> None:
    for v in values:
        fixed = base.at(axis, v)
        need = fixed.memory_needed(fixed.max_level)
        if n_locations is not None and need > n_locations:
            raise UsageError(
                f"{axis} {v} needs {need} memory locations but the model has {n_locations}: enlarge "
                f"the memory with --memory_locations {max(need, 2 * n_locations)} (addressing does not "
                f"depend on it) or lower --{_top_flag(base, axis)}"
            )


def cmd_bench(args) -> int:
    """``ntm bench``: the default NTM's full benchmark, or with --model (and its flags) that
    model's throughput, eager against compiled."""
    from .bench import main as bench_main
    from .bench import model_main

    kind = value(args, "model")
    if not model_kind(kind).has_memory:
        raise UsageError(
            f"ntm bench times the compiled step of a memory model; the {model_kind(kind).label} has none: "
            "use --model ntm or --model dnc"
        )
    given_flags = [f for f in MODEL_FLAGS if getattr(args, f, None) is not None]
    if args.model is None and not given_flags:
        return bench_main(quick=args.quick, history=args.history)
    defaults = model_options(argparse.Namespace(), kind)
    options = {k: v for k, v in model_options(args, kind).items() if defaults.get(k) != v}
    return model_main(kind, options, quick=args.quick, history=args.history)


def main(argv=None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(parser, argv)
    except BrokenPipeError:  # the reader went away (ntm test | head -1): end quietly, as cat does
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for a command its pipe closed


def _main(parser, argv: list[str]) -> int:
    from .engine import keep_freed_memory
    from .errors import NTMError

    args = parser.parse_args(argv)
    try:
        command = resolve_command(args)
        if command == "recipes":
            return cmd_recipes(args)
        apply_preset(args)
        validate(args, command)
        keep_freed_memory()
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
    except BrokenPipeError:
        raise
    except OSError as e:
        print(
            f"ntm: error: {e.strerror or e}: {e.filename or ''} (check the path and free disk space)", file=sys.stderr
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
