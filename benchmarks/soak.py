"""Soak run: train copy with the default recipe for a million sequences and report the non-finite
steps (target 0) and, after convergence, the held-out bit errors every few thousand steps (target:
all below 0.01, no relapse). Writes benchmarks/results/soak.json.

    python benchmarks/soak.py [--sequences 1000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    import torch

    from ntmkit.evaluate import evaluate
    from ntmkit.train import TrainConfig, train

    p = argparse.ArgumentParser()
    p.add_argument("--sequences", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check_every", type=int, default=2500, help="steps between held-out checks")
    args = p.parse_args()
    checks = []
    g = torch.Generator().manual_seed(args.seed + 424242)

    def on_step(step, model):
        if step % args.check_every == 0:
            e = evaluate(model, result_task[0], 1000, g)
            checks.append(
                {"step": step, "sequences": step * 32, "bit_errors": e["bit_errors"], "perfect": e["perfect"]}
            )
            print(json.dumps(checks[-1]), flush=True)

    from ntmkit.train import make_task

    result_task = [make_task("copy", {})]
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        r = train(
            TrainConfig(
                seed=args.seed,
                max_steps=args.sequences // 32,
                stop_when_learned=False,
                checkpoint_dir=tmp + "/ck",
                train_log_dir=tmp + "/logs",
                report_interval=5000,
            ),
            progress=False,
            on_step=on_step,
        )
    after = [c for c in checks if c["step"] >= 2500]
    out = {
        "sequences": r["sequences"],
        "steps": r["step"],
        "seconds": round(time.time() - start, 1),
        "non_finite_steps": r["skipped_steps"],
        "recoveries": r["recoveries"],
        "checks": checks,
        "worst_bit_errors_after_step_2500": max((c["bit_errors"] for c in after), default=None),
    }
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "soak.json").write_text(json.dumps(out, indent=1))
    print(
        f"{out['sequences']:,} sequences in {out['seconds']} s: {out['non_finite_steps']} non-finite steps, "
        f"worst held-out bit errors per sequence after step 2500: {out['worst_bit_errors_after_step_2500']}"
    )


if __name__ == "__main__":
    main()
