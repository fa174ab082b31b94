"""Where a gradient explosion grows, and how often runs explode.

    python benchmarks/grad_flow.py --checkpoint CKPT [--runs DIR ...] [--out FILE]

``--checkpoint``: a checkpoint of `ntm train`; the training batch of the step after it is drawn
again from the checkpoint's random streams (with the defaults' batch levels and drawn memory
sizes), and one eager forward and backward pass records, per time step, the norm of the gradient
reaching each head's weighting (after sharpening) and the memory, with each head's sharpening
exponent and interpolation gate: a gradient that grows backwards through time shows as norms that
rise from the last step to the first. ``--runs``: `ntm train` directories (checkpoints in ck/, logs
in logs/, the log in train.log) summarised from their metrics.jsonl: logged windows whose mean
gradient norm is over 100, the largest, and the non-finite restores their train.log reports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def step_breakdown(path: Path) -> dict:
    import torch

    import ntmkit.models.ntm_addressing as A
    from ntmkit import checkpoint as ckpt
    from ntmkit.registry import build_model
    from ntmkit.tasks import TASKS
    from ntmkit.train import Streams, TrainConfig, draw_memory_size, memory_size_choices

    torch.set_num_threads(1)
    data = ckpt.load(path)
    model = build_model(data["model_kind"], data["model_config"])
    model.load_state_dict(data["model"])
    task = TASKS[data["task"]["name"]](**data["task"]["options"])
    cfg = TrainConfig()
    streams = Streams.seeded(0, 0)
    streams.load_state_dict(data["rng"], 0, torch.device("cpu"))
    level = int(torch.randint(task.min_level, task.max_level + 1, (1,), generator=streams.level))
    batch = task.make_batch(cfg.batch_size, streams.data, level=level)
    choices = memory_size_choices(cfg.memory_sizes, model.config.memory_locations, model.cell.min_locations)
    rows = draw_memory_size(choices, task.memory_needed(level) + cfg.memory_margin, streams.level)

    seen: dict[str, list] = {"w": [], "memory": [], "gamma": [], "gate": []}
    sharpen, write, interpolate = A.sharpen, A.write, A.interpolate

    def sharpen_hooked(w, gamma):
        seen["gamma"].append(gamma.detach())
        out = sharpen(w, gamma)
        out.retain_grad()
        seen["w"].append(out)
        return out

    def write_hooked(memory, w, erase, add):
        out = write(memory, w, erase, add)
        out.retain_grad()
        seen["memory"].append(out)
        return out

    def interpolate_hooked(w_content, w_prev, gate):
        seen["gate"].append(gate.detach())
        return interpolate(w_content, w_prev, gate)

    A.sharpen, A.write, A.interpolate = sharpen_hooked, write_hooked, interpolate_hooked
    try:
        logits, _ = model(batch.inputs, memory_locations=rows)
        loss = task.loss(logits, batch)
        loss.backward()
    finally:
        A.sharpen, A.write, A.interpolate = sharpen, write, interpolate
    steps = len(seen["memory"])
    heads = len(seen["w"]) // steps
    per_step = []
    for t in range(steps):
        k = [t * heads + h for h in range(heads)]
        per_step.append(
            {
                "t": t,
                "weighting_grad_norm": [float(seen["w"][i].grad.norm()) for i in k],
                "memory_grad_norm": float(seen["memory"][t].grad.norm()),
                "gamma_median": [float(seen["gamma"][i].median()) for i in k],
                "gate_median": [float(seen["gate"][i].median()) for i in k],
            }
        )
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
    return {
        "checkpoint": str(path),
        "step": data["step"] + 1,
        "level": level,
        "memory_rows": rows,
        "loss": loss.item(),
        "parameter_grad_norm": grad_norm,
        "heads_per_step": heads,
        "per_step": per_step,
    }


def run_summary(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines() if line.strip()]
    log = (run / "train.log").read_text() if (run / "train.log").exists() else ""
    exploded = [r for r in rows if not r["grad_norm"] <= 100]
    return {
        "run": str(run),
        "steps": rows[-1]["step"] if rows else 0,
        "windows_over_100": len(exploded),
        "largest_window_mean_grad_norm": max((r["grad_norm"] for r in rows), default=None),
        "non_finite_restores": log.count("non-finite steps in a row"),
        "last_cost": rows[-1].get("cost") if rows else None,
        "mean_cost_last_500_steps": (
            sum(r["cost"] for r in rows if r["step"] > rows[-1]["step"] - 500)
            / max(1, sum(1 for r in rows if r["step"] > rows[-1]["step"] - 500))
            if rows
            else None
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--runs", type=Path, nargs="*", default=[])
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    out: dict = {"command": "python benchmarks/grad_flow.py " + " ".join(sys.argv[1:])}
    if a.checkpoint:
        out["breakdown"] = b = step_breakdown(a.checkpoint)
        print(f"step {b['step']}: loss {b['loss']:.4f}, parameter gradient norm {b['parameter_grad_norm']:.3g}")
        for r in b["per_step"][:: max(1, len(b["per_step"]) // 12)]:
            norms = " ".join(f"{x:.3g}" for x in r["weighting_grad_norm"])
            print(f"  t={r['t']:4d}  |dL/dw| {norms}  |dL/dM| {r['memory_grad_norm']:.3g}")
    out["runs"] = [run_summary(r) for r in a.runs]
    for r in out["runs"]:
        print(r)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=1) + "\n")
        print(f"saved {a.out}")


if __name__ == "__main__":
    main()
