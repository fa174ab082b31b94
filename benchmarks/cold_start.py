"""Time of `ntm train` on defaults from a cold process with an empty compile cache, per seed.

    python benchmarks/cold_start.py --seeds 0,1,2,3,4 [--generalise] [--flags '--optimizer adam']
        [--warm] [--out benchmarks/results/cold_start.json]

Run it with nothing else on the machine: it is a timing. For each seed it prints the process's
wall seconds until `ntm train` stopped (compilation, learning, the steps after learning and the
final checks) and until its first training step was done, the step from which it ran compiled
(0: from the start), and the training seconds and sequences at the moment the stop test first
passed; then the medians. The JSON file holds the same figures. With ``--generalise`` each run is kept and,
after all the timed runs, scored on copy lengths beyond training (``--lengths``, 100 fresh
sequences each, in the model's own 128 rows; wrong bits per sequence). With ``--warm`` one
untimed run (seed 999) first fills a compile cache that every timed run then starts from: the
time of a second `ntm train` on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def generalisation(run_dir: str, lengths: str) -> dict[str, float]:
    """Wrong bits per sequence of the run's final model at each copy length (`ntm evaluate`)."""
    out = os.path.join(run_dir, "eval")
    cmd = [sys.executable, "-m", "ntmkit", "evaluate", "--task", "copy", "--checkpoint_dir"]
    cmd += [os.path.join(run_dir, "ck"), "--axis", "length", "--values", lengths, "--sequences", "100"]
    cmd += ["--figure_dir", out, "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    report = json.loads(next(Path(out).glob("*.json")).read_text())
    return {str(row["length"]): row["bit_errors"] for row in report["rows"]}


def main() -> None:
    from ntmkit.bench import cold_run

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--generalise", action="store_true", help="score each run beyond the training lengths")
    p.add_argument("--lengths", default="20,30,40,50,60,70,80")
    p.add_argument("--flags", default="", help="more `ntm train` flags, e.g. '--optimizer adam'")
    p.add_argument(
        "--warm", action="store_true", help="one untimed run first fills a compile cache that the timed runs share"
    )
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cold_start.json"))
    a = p.parse_args()
    keep_root = tempfile.mkdtemp(prefix="ntm-cold-") if a.generalise else None
    seeds = [int(s) for s in a.seeds.split(",")]
    cache = tempfile.mkdtemp(prefix="ntm-cache-") if a.warm else None
    if cache:  # the untimed run (seed 999, the same flags), so the cache holds the steps the runs compile
        cold_run(999, extra=tuple(a.flags.split()), cache=cache)
    which = "a compile cache filled by one earlier run" if a.warm else "empty compile cache"
    print(f"cold 'ntm train' on defaults, {which}, {os.cpu_count()} CPUs, {platform.machine()}")
    print(
        f"{'seed':>4}  {'wall s (to stop)':>16}  {'first step at s':>15}  {'compiled from step':>18}  "
        f"{'learned at s':>12}  {'sequences to learn':>18}"
    )
    runs = []
    for seed in seeds:
        keep = os.path.join(keep_root, f"seed-{seed}") if keep_root else None
        r = cold_run(seed, keep=keep, extra=tuple(a.flags.split()), cache=cache)
        runs.append(r or {"seed": seed, "learned": False})
        if r is None:
            print(f"{seed:>4}  not learned")
            continue
        print(
            f"{seed:>4}  {r['wall_seconds']:>16.1f}  {r['first_step_seconds']:>15.1f}  "
            f"{r['compiled_from_step']!s:>18}  {r['learned_seconds']:>12.1f}  {r['learned_sequences']:>18,}",
            flush=True,
        )
    done = [r for r in runs if "wall_seconds" in r]
    if keep_root:
        print(f"wrong bits per sequence at copy lengths {a.lengths} (100 fresh sequences each, 128 rows):")
        for r in done:
            r["generalisation"] = generalisation(os.path.join(keep_root, f"seed-{r['seed']}"), a.lengths)
            errors = r["generalisation"]
            r["perfect_to_longest"] = all(v == 0 for v in errors.values())
            print(f"{r['seed']:>4}  " + "  ".join(f"{v:.3g}" for v in errors.values()), flush=True)
        shutil.rmtree(keep_root, ignore_errors=True)
    result = {
        "command": "python benchmarks/cold_start.py --seeds "
        + a.seeds
        + (f" --generalise --lengths {a.lengths}" if a.generalise else "")
        + (f" --flags '{a.flags}'" if a.flags else "")
        + (" --warm" if a.warm else ""),
        "seeds": seeds,
        "runs": runs,
        "learned": f"{len(done)}/{len(seeds)}",
    }
    if done:
        result.update(
            median_wall_seconds=statistics.median(r["wall_seconds"] for r in done),
            max_wall_seconds=max(r["wall_seconds"] for r in done),
            median_learned_seconds=statistics.median(r["learned_seconds"] for r in done),
            median_first_step_seconds=statistics.median(r["first_step_seconds"] for r in done),
            max_first_step_seconds=max(r["first_step_seconds"] for r in done),
        )
        if keep_root:
            result["perfect_to_longest"] = f"{sum(r['perfect_to_longest'] for r in done)}/{len(seeds)}"
        print(
            f"median wall seconds to stop: {result['median_wall_seconds']:.1f} (max {result['max_wall_seconds']:.1f}); "
            f"median training seconds to learn: {result['median_learned_seconds']:.1f}; learned {result['learned']}; "
            f"first step at {result['median_first_step_seconds']:.1f} s "
            f"(median; max {result['max_first_step_seconds']:.1f})"
        )
    if cache:
        shutil.rmtree(cache, ignore_errors=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
