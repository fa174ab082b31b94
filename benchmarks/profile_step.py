"""Where a training time step goes: torch.profiler on the compiled step, per kernel, forward and backward.

    python benchmarks/profile_step.py [--model ntm|dnc] [--batches 1,32] [--length 20]
        [--out benchmarks/results/profile_step_MODEL.json]

Run it with nothing else on the machine: it is a timing. For each batch size, a copy batch of one
length (``2 * length + 1`` time steps) runs forward and backward through the compiled step after
warm-up, once under ``torch.profiler`` with inductor's per-kernel records switched on; the table
gives each kernel's (and each ATen op's) self time per time step and its share of the step, and the
step's wall time per time step (forward alone, and forward plus backward) from untimed-profiler
runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def short(name: str) -> str:
    """A kernel's name without inductor's long list of fused ops."""
    if name.startswith("graph_") and "cpp_fused" in name:
        parts = name.split("_")
        return "_".join(parts[:4]) + ("..." if len(parts) > 4 else "")
    return name[:60]


def profile(model_name: str, batch: int, length: int, repeats: int = 5) -> dict:
    import torch
    import torch._inductor.config as inductor_config
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from ntmkit.engine import keep_freed_memory
    from ntmkit.registry import build_model, model_kind
    from ntmkit.tasks import CopyTask

    inductor_config.cpp.enable_kernel_profile = True
    keep_freed_memory()  # as every ntm command does (ntmkit.engine)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    task = CopyTask()
    model = build_model(model_name, model_kind(model_name).config(task.input_size, task.output_size, {}))
    model.compile_step()
    batch_data = task.make_batch(batch, torch.Generator().manual_seed(0), level=length)
    steps = batch_data.inputs.shape[1]

    def forward():
        return model(batch_data.inputs)[0]

    def both():
        task.loss(forward(), batch_data).backward()

    for _ in range(3):
        both()
    t0 = time.perf_counter()
    for _ in range(repeats):
        forward()  # with gradients recorded, as in training (the compiled step runs only then)
    forward_s = (time.perf_counter() - t0) / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        both()
    both_s = (time.perf_counter() - t0) / repeats
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        both()
    rows = []
    total = 0.0
    for e in prof.key_averages():
        self_us = e.self_cpu_time_total
        total += self_us
        rows.append({"name": short(e.key), "calls_per_step": e.count / steps, "self_us_per_step": self_us / steps})
    rows.sort(key=lambda r: -r["self_us_per_step"])
    for r in rows:
        r["share"] = r["self_us_per_step"] * steps / total if total else 0.0
    return {
        "model": model_name,
        "batch": batch,
        "length": length,
        "time_steps": steps,
        "forward_us_per_step": forward_s / steps * 1e6,
        "forward_backward_us_per_step": both_s / steps * 1e6,
        "sequences_per_second": batch / both_s,
        "top": rows[:15],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ntm")
    p.add_argument("--batches", default="1,32")
    p.add_argument("--length", type=int, default=20)
    p.add_argument("--out")
    a = p.parse_args()
    out = Path(a.out or ROOT / "benchmarks" / "results" / f"profile_step_{a.model}.json")
    results = []
    for b in (int(v) for v in a.batches.split(",")):
        r = profile(a.model, b, a.length)
        results.append(r)
        print(
            f"{a.model}, batch {b}, copy length {a.length} ({r['time_steps']} time steps): "
            f"{r['forward_us_per_step']:.0f} us forward, {r['forward_backward_us_per_step']:.0f} us forward + "
            f"backward per time step ({r['sequences_per_second']:.0f} sequences/s)"
        )
        print(f"  {'share':>6} {'us/step':>8} {'calls/step':>10}  name")
        for row in r["top"][:12]:
            print(
                f"  {row['share']:>6.1%} {row['self_us_per_step']:>8.1f} {row['calls_per_step']:>10.1f}  {row['name']}"
            )
    command = " ".join(["python", "benchmarks/profile_step.py", *sys.argv[1:]])
    out.write_text(json.dumps({"command": command, "profiles": results}, indent=1) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
