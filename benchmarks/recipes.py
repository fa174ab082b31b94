"""Which training recipe learns the copy task in the fewest updates? Runs each recipe on several
seeds (two processes at a time), writes one JSON line per run to benchmarks/results/recipes.jsonl
and draws docs/recipes.png (bit errors per sequence against sequences seen, median over seeds).

    python benchmarks/recipes.py [--seeds 3] [--max_steps 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

FIXED = dict(learn_r_bias=False, learn_w_bias=False, learn_m_bias=False)
RECIPES = {
    "default: learned start, one length a batch": {},
    "mixed lengths in a batch": dict(batch_levels="mixed"),
    "fixed initial state": dict(model_options=FIXED),
    "fixed initial state + curriculum": dict(model_options=FIXED, curriculum=True),
    "learned initial state + curriculum": dict(curriculum=True),
}


def run(name: str, seed: int, max_steps: int) -> dict:
    import torch

    from ntmkit.train import TrainConfig, train

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            seed=seed,
            max_steps=max_steps,
            checkpoint_dir=os.path.join(tmp, "ck"),
            train_log_dir=os.path.join(tmp, "logs"),
            **RECIPES[name],
        )
        r = train(cfg, progress=False)
        curve = [
            (row["sequences"], row["bit_errors"])
            for row in map(json.loads, Path(tmp, "logs", "metrics.jsonl").read_text().splitlines())
        ]
    return {
        "recipe": name,
        "seed": seed,
        "learned": r["learned"],
        "steps": r["step"],
        "sequences": r["sequences"],
        "train_seconds": round(r["seconds"], 1),
        "curve": curve,
    }


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in RECIPES:
        curves = [r["curve"] for r in rows if r["recipe"] == name]
        if not curves:
            continue
        grid = np.linspace(0, max(c[-1][0] for c in curves), 200)
        ys = []
        for c in curves:
            x, y = np.array(c).T
            y = np.convolve(y, np.ones(5) / 5, mode="same")
            ys.append(np.interp(grid, x, y, right=0.0))  # a run that stopped had learned
        ys = np.array(ys)
        ax.plot(grid, np.median(ys, 0), label=name)
        ax.fill_between(grid, np.percentile(ys, 25, 0), np.percentile(ys, 75, 0), alpha=0.15)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xlabel("sequences seen")
    ax.set_ylabel("bit errors per sequence (training batches)")
    ax.set_title("copy, lengths 1-20: median over seeds, quartile band")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--max_steps", type=int, default=4000)
    args = p.parse_args()
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(name, seed) for name in RECIPES for seed in range(args.seeds)]
    rows = []
    with ProcessPoolExecutor(2) as pool, open(out / "recipes.jsonl", "w") as f:
        for row in pool.map(run, *zip(*jobs), [args.max_steps] * len(jobs)):
            rows.append(row)
            f.write(json.dumps(row) + "\n")
            f.flush()
            print(
                f"{row['recipe']:<40} seed {row['seed']}: "
                + (
                    f"learned after {row['steps']} steps, {row['sequences']:,} sequences"
                    if row["learned"]
                    else f"not learned in {row['steps']} steps"
                ),
                flush=True,
            )
    print(f"\n{'recipe':<40} {'learned':>8} {'median sequences to learn':>26}")
    for name in RECIPES:
        mine = [r for r in rows if r["recipe"] == name]
        values = [r["sequences"] if r["learned"] else float("inf") for r in mine]  # unlearned: never
        median = statistics.median(values)
        med = f"{median:,.0f}" if median != float("inf") else "not learned"
        print(f"{name:<40} {sum(r['learned'] for r in mine):>4}/{len(mine):<3} {med:>26}")
    plot(rows, ROOT / "docs" / "recipes.png")


if __name__ == "__main__":
    main()
