"""Where an N-grams training step goes, with the compiled step unrolled over K time steps or not.

    python benchmarks/unroll.py [--batches 1,32] [--unroll 1,4,8] [--repeats 5]
        [--out benchmarks/results/unroll.json]

Run it with nothing else on the machine: it is a timing. One process, one thread: for each batch
size, one NTM per unroll value (the task's default model, compiled; ``--unroll`` of ``ntm train``)
runs the parts of a training step on the same 200-bit N-grams batches, the models taking turns so
that a slower spell of the machine falls on all of them: drawing the batch, forward and loss,
backward, and the metrics (the optimal estimator included). Each part's median over the repeats
after three warm-up steps is printed, with the step's sequences per second and its ratio to K = 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PARTS = ("batch", "forward and loss", "backward", "metrics")


def step_parts(model, task, batch: int, generator) -> list[float]:
    """Seconds of each part of one training step (``PARTS``)."""
    t0 = time.perf_counter()
    data = task.make_batch(batch, generator, level=task.max_level)
    t1 = time.perf_counter()
    logits, _ = model(data.inputs)
    loss = task.loss(logits, data)
    t2 = time.perf_counter()
    loss.backward()
    t3 = time.perf_counter()
    metrics = task.metrics(logits.detach(), data)
    metrics["cost"] = task.cost(metrics)
    t4 = time.perf_counter()
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3]


def measure(batch: int, unrolls: list[int], repeats: int) -> dict:
    import torch

    from ntmkit.registry import build_model, model_kind
    from ntmkit.tasks import TASKS

    task = TASKS["ngrams"]()
    models = {}
    for k in unrolls:
        torch.manual_seed(0)
        model = build_model("ntm", model_kind("ntm").config(task.input_size, task.output_size, {}))
        models[k] = model.compile_step(unroll=k)
    generator = torch.Generator().manual_seed(0)
    for model in models.values():
        for _ in range(3):  # compile and warm up
            step_parts(model, task, batch, generator)
    times: dict[int, list[list[float]]] = {k: [] for k in unrolls}
    for _ in range(repeats):
        for k, model in models.items():
            times[k].append(step_parts(model, task, batch, generator))
    rows = {}
    for k, runs in times.items():
        parts = {name: statistics.median(r[i] for r in runs) * 1e3 for i, name in enumerate(PARTS)}
        total = sum(parts.values())
        rows[str(k)] = {"ms": parts, "total_ms": total, "sequences_per_second": batch / total * 1e3}
    base = rows[str(unrolls[0])]["total_ms"]
    for row in rows.values():
        row["speedup"] = base / row["total_ms"]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default="1,32")
    p.add_argument("--unroll", default="1,4,8", help="K values; the first is the reference")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "unroll.json"))
    a = p.parse_args()
    import torch

    from ntmkit.engine import keep_freed_memory

    keep_freed_memory()  # as every ntm command does
    torch.set_num_threads(1)
    unrolls = [int(v) for v in a.unroll.split(",")]
    result: dict = {"command": " ".join(["python", "benchmarks/unroll.py", *sys.argv[1:]]), "batches": {}}
    for b in (int(v) for v in a.batches.split(",")):
        rows = measure(b, unrolls, a.repeats)
        result["batches"][str(b)] = rows
        for k, row in rows.items():
            parts = ", ".join(f"{name} {ms:.1f}" for name, ms in row["ms"].items())
            print(
                f"ngrams, batch {b}, unroll {k}: {parts} ms; step {row['total_ms']:.1f} ms, "
                f"{row['sequences_per_second']:.1f} sequences/s, {row['speedup']:.2f}x unroll {unrolls[0]}",
                flush=True,
            )
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
