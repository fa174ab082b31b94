"""``ntm test``, ``ntm visualize`` and ``ntm evaluate``: load a trained (or the shipped) model, grow its
memory if asked, and score or draw it."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from .checks import EVAL_CHUNK, check_inference_fits
from .models import MemoryModel
from .options import (
    MODEL_FLAGS,
    TASK_FLAGS,
    UsageError,
    config_key,
    model_options,
    task_options,
    value,
)
from .registry import model_kind


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
