"""``ntm train`` and ``ntm recipes``: one run from flags, or a recipe's phases, on the training API
(:func:`ntmkit.train.train`), with what the command prints around it."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from .checks import (
    check_writable,
    training_processes,
    validate,
)
from .options import (
    MODEL_FLAGS,
    UsageError,
    config_key,
    flags_not_for,
    model_options,
    task_options,
    task_recommended,
    value,
)
from .registry import model_kind


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
    import textwrap

    shown = " ".join(f"{k}={v}" for k, v in recipe.settings.items())
    block = f"settings: task={recipe.task} model={recipe.model} seed={recipe.seed} {shown}"
    print(textwrap.fill(block, 100, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False))
    print(f"saved {directory / recipes.CONFIG}")


def cmd_recipe(args, argv: list[str], spec: str) -> int:
    """``ntm train RECIPE``: every phase of the recipe in one run directory, resuming in the phase
    where it stopped; flags given win over the recipe in every phase."""
    import json

    from . import recipes

    recipe = recipes.load(spec)
    for flag in (
        "epochs",
        "steps_per_epoch",
        "keep_training",
        "max_minutes",
        "preset",
        "checkpoint_dir",
        "train_log_dir",
    ):
        if getattr(args, flag, None) not in (None, False):
            raise UsageError(
                f"--{flag} does not apply to a recipe (its phases set the budget and stop rule, --run_dir the "
                f"directory): drop it, or edit a copy of the recipe"
            )
    given = {name: getattr(args, name) for name in (*recipes.options(), "task", "model", "seed")}
    recipe = recipe.with_flags({k: v for k, v in given.items() if v is not None})
    for k in range(len(recipe.phases)):
        recipes.check_phase(recipe, k)
        if (recipe.phases[k].settings.get("nproc") or recipe.settings.get("nproc") or 1) > 1:
            raise UsageError("a recipe's phase trains in one process: drop nproc from the recipe or its flags")
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
