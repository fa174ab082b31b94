"""The cost of the DNC's temporal link matrix against the number of memory rows N.

    python benchmarks/dnc_memory_scaling.py [--sizes 64,128,256,512,1024,2048] [--batch 8]
        [--length 10] [--out benchmarks/results/dnc_memory_scaling.json]

Run it with nothing else on the machine: it is a timing. For each N, a fresh process trains the
default DNC (eager, one thread) on copy batches of one length (``2 * length + 1`` time steps):
three warm-up steps, then timed steps; it reports the time of one training step per time step, and
the process's peak resident memory. The link matrix is N x N per sample and every time step's is
kept for the backward pass, so both grow with N squared once it dominates; the NTM's per-step
state is N x M.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(n: int, batch: int, length: int, steps: int) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from ntmkit import DNC
    from ntmkit.optim import make_optimizer
    from ntmkit.tasks import CopyTask

    torch.set_num_threads(1)
    torch.manual_seed(0)
    task = CopyTask(max_length=max(20, length))
    model = DNC(task.input_size, task.output_size, memory_locations=n)
    opt = make_optimizer("adam", model.parameters())
    g = torch.Generator().manual_seed(0)

    def one() -> None:
        b = task.make_batch(batch, g, level=length)
        loss = task.loss(model(b.inputs)[0], b)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        one()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    per_step = (time.perf_counter() - t0) / steps / (2 * length + 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"memory_locations": n, "ms_per_time_step": per_step * 1e3, "peak_mib": peak}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="64,128,256,512,1024,2048")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=10)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dnc_memory_scaling.json"))
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker(a.worker, a.batch, a.length, a.steps)
        return
    rows = []
    print(f"DNC (defaults), eager, batch {a.batch}, copy length {a.length} ({2 * a.length + 1} time steps), 1 thread")
    print(f"  {'N':>6} {'ms per time step':>17} {'peak MiB':>9} {'link floats kept per sequence':>30}")
    for n in (int(v) for v in a.sizes.split(",")):
        cmd = [sys.executable, __file__, "--worker", str(n), "--batch", str(a.batch), "--length", str(a.length)]
        cmd += ["--steps", str(a.steps)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        if out.returncode != 0:
            print(f"  {n:>6} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["link_floats_kept_per_sequence"] = n * n * (2 * a.length + 1)
        rows.append(row)
        print(
            f"  {n:>6} {row['ms_per_time_step']:>17.2f} {row['peak_mib']:>9.0f} "
            f"{row['link_floats_kept_per_sequence']:>30,}",
            flush=True,
        )
    result = {
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "command": " ".join(["python", "benchmarks/dnc_memory_scaling.py", *sys.argv[1:]]),
        "batch": a.batch,
        "length": a.length,
        "rows": rows,
    }
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
