"""`ntm train`'s sequences per second on each task, for this tree and, side by side, another one.

    python benchmarks/task_throughput.py --tasks ngrams [--steps 300] [--before DIR]
        [--out benchmarks/results/task_throughput.json]

Run it with nothing else on the machine: it is a timing. For each task, `ntm train --task TASK
--keep_training --epochs 1 --steps_per_epoch STEPS` (the task's recommended settings, one thread)
runs in a fresh process from this tree's src/ and, with --before, from DIR/src (e.g. a
`git worktree` of the commit before a change), alternating, --repeats times each. The rate is
read from the run's own log (metrics.jsonl) after the warm-up steps, so compilation is not
counted. ``--variant NAME=FLAGS`` (repeatable) adds a run of this tree with FLAGS, in the same
rotation, and its ratio to this tree's rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from loop_throughput import ROOT, train_rate


def commit_of(tree: Path) -> str:
    out = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "src"], capture_output=True, text=True)
    return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="ngrams", help="comma-separated task names")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=50, help="steps left out of the rate (compilation)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--before", type=Path, help="another tree to time side by side (its src/ is used)")
    p.add_argument("--extra", default="", help="further flags for every run, e.g. '--preset paper'")
    p.add_argument("--variant", action="append", default=[], help="NAME=FLAGS: this tree with FLAGS added")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "task_throughput.json"))
    a = p.parse_args()
    trees = {"this tree": ROOT}
    if a.before:
        trees = {"before": a.before.resolve(), **trees}
    flags = {name: () for name in trees}
    for v in a.variant:
        name, _, extra_flags = v.partition("=")
        trees[name], flags[name] = ROOT, tuple(extra_flags.split())
    result: dict = {
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "command": shlex.join(["python", "benchmarks/task_throughput.py", *sys.argv[1:]]),
        "trees": {name: " ".join([commit_of(tree), *flags[name]]) for name, tree in trees.items()},
        "tasks": {},
    }
    for task in a.tasks.split(","):
        rates: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(a.repeats):
            for name, tree in trees.items():
                with tempfile.TemporaryDirectory() as d:
                    extra = ("--task", task, *a.extra.split(), *flags[name])
                    run = train_rate(a.steps, a.warmup, Path(d), extra, src=tree / "src")
                rates[name].append(run["sequences_per_second"])
                print(f"{task} ({name}): {run['sequences_per_second']:,.1f} sequences/s", flush=True)
        summary = {name: {"runs": r, "median": statistics.median(r)} for name, r in rates.items()}
        if a.before:
            summary["ratio"] = summary["this tree"]["median"] / summary["before"]["median"]
            print(f"{task}: {summary['ratio']:.2f}x the tree before", flush=True)
        for v in a.variant:
            name = v.partition("=")[0]
            summary[f"ratio {name}"] = summary[name]["median"] / summary["this tree"]["median"]
            print(f"{task}: {name} {summary[f'ratio {name}']:.2f}x this tree", flush=True)
        result["tasks"][task] = summary
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
