"""The ``ntm`` command line: a thin layer over :mod:`ntmkit.train`, :mod:`ntmkit.evaluate` and
:mod:`ntmkit.plots`.

``ntm train ...`` and the starting project's ``ntm --train ...`` are the same; every option of
the starting project keeps its spelling.
"""

from __future__ import annotations

import argparse
import os
import sys

from .checks import all_batches, check_fits, training_processes, usable_cores, validate
from .errors import NTMError
from .inference import cmd_evaluate, cmd_test, load_for_inference, task_for_inference
from .options import (
    MODEL_FLAGS,
    UsageError,
    build_parser,
    model_options,
    resolve_command,
    task_options,
    value,
)
from .presets import apply_preset, preset_settings
from .registry import model_kind
from .run import cmd_recipe, cmd_recipes, cmd_train, launch_torchrun, train_config

__all__ = [
    "UsageError",
    "all_batches",
    "apply_preset",
    "build_parser",
    "check_fits",
    "cmd_evaluate",
    "cmd_recipe",
    "cmd_recipes",
    "cmd_test",
    "cmd_train",
    "launch_torchrun",
    "load_for_inference",
    "main",
    "model_options",
    "preset_settings",
    "resolve_command",
    "task_for_inference",
    "task_options",
    "train_config",
    "training_processes",
    "usable_cores",
    "validate",
]


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
