"""Run `ntm bench` from any source tree (this one, or a `git worktree` of an older commit) and add
its figures to the benchmarks page's history.

    python benchmarks/bench_history.py [--tree DIR] -- [ntm bench flags, e.g. --quick --model dnc]
        [--out benchmarks/results/bench_history.jsonl]

Run it with nothing else on the machine: it is a timing. The bench runs in a fresh process from
DIR/src; its last lines (``eager throughput``, ``train throughput``, ``speedup over eager`` and,
for the full NTM bench, ``time to converge``), which every version of `ntm bench` prints, are
appended as one JSON line with the date and DIR's commit, the format of `ntm bench --history`.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    argv = sys.argv[1:]
    bench_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", type=Path, default=ROOT)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_history.jsonl"))
    a = p.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    tree = a.tree.resolve()
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    run = subprocess.run(
        [sys.executable, "-m", "ntmkit", "bench", *bench_args], env=env, capture_output=True, text=True, check=True
    )
    print(run.stdout)

    def figure(label: str) -> float:
        return float(re.search(rf"^{label}: ([0-9.]+)", run.stdout, re.M).group(1))  # type: ignore[union-attr]

    from ntmkit.bench import record, source_version

    figures = {
        "run": " ".join(["ntm bench", *bench_args]),
        "eager_at_32": figure("eager throughput"),
        "compiled_at_32": figure("train throughput"),
        "speedup": figure("speedup over eager"),
    }
    seeds = re.findall(r"^  seed \d+: ([0-9.]+) s|^  seed \d+: (not learned)", run.stdout, re.M)
    if seeds:
        figures["seconds_to_converge"] = [float(s) if s else None for s, _ in seeds]
    record(a.out, figures, commit=source_version(tree / "src" / "ntmkit"))


if __name__ == "__main__":
    main()
