"""Time of `ntm train` on defaults from a cold process with an empty compile cache, per seed.

    python benchmarks/cold_start.py --seeds 0,1,2,3,4 [--out benchmarks/results/cold_start.json]

Run it with nothing else on the machine: it is a timing. For each seed it prints the process's
wall seconds until `ntm train` stopped (compilation, learning, the steps after learning and the
final checks), and the training seconds and sequences at the moment the stop test first passed;
then the medians. The JSON file holds the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    from ntmkit.bench import cold_run

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cold_start.json"))
    a = p.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    print(f"cold 'ntm train' on defaults, empty compile cache, {os.cpu_count()} CPUs, {platform.machine()}")
    print(f"{'seed':>4}  {'wall s (to stop)':>16}  {'learned at s':>12}  {'sequences to learn':>18}")
    runs = []
    for seed in seeds:
        r = cold_run(seed)
        runs.append(r or {"seed": seed, "learned": False})
        if r is None:
            print(f"{seed:>4}  not learned")
            continue
        print(
            f"{seed:>4}  {r['wall_seconds']:>16.1f}  {r['learned_seconds']:>12.1f}  {r['learned_sequences']:>18,}",
            flush=True,
        )
    done = [r for r in runs if "wall_seconds" in r]
    result = {
        "command": f"python benchmarks/cold_start.py --seeds {a.seeds}",
        "seeds": seeds,
        "runs": runs,
        "learned": f"{len(done)}/{len(seeds)}",
    }
    if done:
        result.update(
            median_wall_seconds=statistics.median(r["wall_seconds"] for r in done),
            max_wall_seconds=max(r["wall_seconds"] for r in done),
            median_learned_seconds=statistics.median(r["learned_seconds"] for r in done),
        )
        print(
            f"median wall seconds to stop: {result['median_wall_seconds']:.1f} (max {result['max_wall_seconds']:.1f}); "
            f"median training seconds to learn: {result['median_learned_seconds']:.1f}; learned {result['learned']}"
        )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
