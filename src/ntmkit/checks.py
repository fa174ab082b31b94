"""Checks of a command line before anything is read or written: every option, the device, the
memory a run needs against this machine's RAM, the directories, the processes to train in. Each
problem is one :class:`~ntmkit.options.UsageError` naming it and the fix."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import cast

from .errors import NTMError
from .options import (
    OPTIONS,
    TASK_FLAGS,
    UsageError,
    flags_not_for,
    model_options,
    task_options,
    task_recommended,
    value,
)
from .registry import model_kind

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
