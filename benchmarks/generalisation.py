"""Copy recipes measured for generalisation: which training options make machines that copy far
beyond the lengths they were trained on.

    python benchmarks/generalisation.py --run NAME   # train and evaluate one recipe (ntm sweep, resumable)
    python benchmarks/generalisation.py              # the table, from the stored sweeps
    python benchmarks/generalisation.py --collect    # summarise benchmarks/runs/g again first

Each recipe is an ``ntm sweep`` over seeds 0-4 of the copy task (lengths 1-20, the trained 128
locations), every seed then evaluated by ``ntm evaluate`` on fresh sequences at lengths 10, 20,
30, 50, 80 and 120 (100 each), which neither the stop test nor any selection saw. The sweeps'
sweep.json files are stored in benchmarks/results/generalisation/; the table goes into
docs/benchmarks.md between its generalisation markers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "benchmarks" / "results" / "generalisation"
RUNS = ROOT / "benchmarks" / "runs" / "g"
PAGE = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- generalisation:begin -->", "<!-- generalisation:end -->"

# name -> (what it is, the flags given to `ntm sweep --task copy --seeds 5`), in the order they were
# tried. Every setting that differs from today's defaults is spelled out, so each command repeats
# its run.
OLD = ["--init_weighting", "random", "--gate_bias", "0"]  # the start before the focused one
NO_POLISH = ["--steps_after_learned", "0"]
RECIPES = {
    "full": (
        "the trained memory size only, the earlier default (seeds 0-1; the sweep was stopped to free the cores)",
        ["--memory_sizes", "full", *OLD, *NO_POLISH, "--max_minutes", "5"],
    ),
    "auto": (
        "memory size drawn per batch (no time budget; seed 2 stopped by hand at 186,144 sequences)",
        [*OLD, *NO_POLISH],
    ),
    "focus-gate": ("+ heads start on row 0, gate bias -2", [*NO_POLISH, "--max_minutes", "5"]),
    "focus-gate-polish": ("+ 1,000 steps after learning at lr x 0.1 (today's defaults)", ["--max_minutes", "5"]),
    "fg-polish3k": (
        "+ 3,000 steps after learning at lr x 0.1",
        ["--steps_after_learned", "3000", "--max_minutes", "6"],
    ),
    "focus-polish": (
        "heads on row 0, 1,000 steps after learning, but gate bias 0",
        ["--gate_bias", "0", "--max_minutes", "5"],
    ),
    "default-seeds5-9": (
        "today's defaults on five other seeds, every length 1-120 evaluated (up to four runs shared the cores)",
        ["--first_seed", "5", "--values", ",".join(str(v) for v in range(1, 121)), "--max_minutes", "6"],
    ),
}


def run(name: str, seeds: int, jobs: int) -> None:
    _, flags = RECIPES[name]
    out = RUNS / name
    cmd = [
        sys.executable,
        "-m",
        "ntmkit",
        "sweep",
        "--task",
        "copy",
        "--seeds",
        str(seeds),
        "--jobs",
        str(jobs),
        *flags,
        "--sweep_dir",
        str(out),
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run(cmd, check=True, env=env)
    STORED.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "sweep.json", STORED / f"{name}.json")


def collect() -> None:
    """Summarise the stored runs in benchmarks/runs/g again (e.g. after the summary format changed)."""
    sys.path.insert(0, str(ROOT / "src"))
    from ntmkit.sweep import summarise

    for name, (_, flags) in RECIPES.items():
        out = RUNS / name
        seeds = sorted(int(d.name.split("-")[1]) for d in out.glob("seed-*"))
        if not seeds:
            continue
        summarise(
            out,
            seeds,
            "copy",
            "bit errors per sequence",
            command=f"ntm sweep --task copy --seeds {len(seeds)} {' '.join(flags)} --sweep_dir {out.relative_to(ROOT)}",
        )
        STORED.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "sweep.json", STORED / f"{name}.json")
        print(f"collected {name}: seeds {seeds}")


def table() -> str:
    lines = [
        "| recipe | command (`ntm sweep --task copy --seeds 5` plus) | learned | median sequences to learn | "
        "seeds perfect at every evaluated length | bit errors per sequence at 80, per seed | at 120, per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (what, flags) in RECIPES.items():
        path = STORED / f"{name}.json"
        if not path.exists():
            continue
        sweep = json.loads(path.read_text())
        seeds = sweep["seeds"]
        gens = [s.get("generalisation") or {} for s in seeds]
        perfect = sum(1 for g in gens if g and all(v == 0 for v in g["bit_errors"].values()))

        def at(length: str, gens: list = gens) -> str:
            return ", ".join("-" if not g else f"{g['bit_errors'].get(length, float('nan')):.3g}" for g in gens)

        med = sweep["median_sequences_to_learn"]
        shown = " ".join(flags).replace(",".join(str(v) for v in range(1, 121)), "1,2,...,120")
        lines.append(
            f"| {what} | `{shown}` | {sweep['learned']} | "
            f"{'-' if med is None else f'{med:,.0f}'} | {perfect}/{len(seeds)} | {at('80')} | {at('120')} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", choices=list(RECIPES), help="train and evaluate this recipe first")
    p.add_argument("--collect", action="store_true", help="summarise the runs in benchmarks/runs/g again first")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--jobs", type=int, default=2)
    a = p.parse_args()
    if a.run:
        run(a.run, a.seeds, a.jobs)
    if a.collect:
        collect()
    text = table()
    print(text)
    page = PAGE.read_text()
    if BEGIN in page and END in page:
        head, rest = page.split(BEGIN, 1)
        PAGE.write_text(head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])
        print(f"updated {PAGE}")


if __name__ == "__main__":
    main()
