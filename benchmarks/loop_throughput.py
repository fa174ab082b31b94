"""`ntm train`'s own throughput against `ntm bench`'s bare compiled loop, same machine, same session.

    python benchmarks/loop_throughput.py [--steps 1500] [--batches 32] [--out benchmarks/results/loop_throughput.json]

Run it with nothing else on the machine: it is a timing. First the bare loop of `ntm bench`
(compiled step of the default copy model, batch 32, lengths 1-20 in turn, one full memory); then
`ntm train --keep_training --epochs 1 --steps_per_epoch STEPS` in a fresh process, twice: on
defaults (memory sizes drawn per batch, most of them smaller than the bench's 128 rows) and with
`--memory_sizes full` (the bench's one memory size, so the two differ only by the loop around the
step). Each rate is read from the run's own log (metrics.jsonl) between the first logged row
after the warm-up steps and the last one, so compilation is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def train_rate(steps: int, warmup: int, workdir: Path, extra: tuple[str, ...] = (), src: Path = ROOT / "src") -> dict:
    """Sequences per second of an `ntm train` run (defaults plus ``extra``, the package in ``src``)
    between step ``warmup`` and its end."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(src))
    cmd = [sys.executable, "-m", "ntmkit", "train", "--keep_training", "--epochs", "1"]
    cmd += ["--steps_per_epoch", str(steps), "--quiet", "--checkpoint_dir", str(workdir / "ck")]
    cmd += ["--train_log_dir", str(workdir / "logs"), *extra]
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    rows = [json.loads(line) for line in (workdir / "logs" / "metrics.jsonl").read_text().splitlines()]
    first = next(r for r in rows if r["step"] >= warmup)
    last = rows[-1]
    rate = (last["sequences"] - first["sequences"]) / (last["seconds"] - first["seconds"])
    return {"steps": [first["step"], last["step"]], "sequences_per_second": rate}


def main() -> None:
    from ntmkit.bench import throughput

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--warmup", type=int, default=100, help="steps left out of the train rate (compilation)")
    p.add_argument("--bench_steps", type=int, default=400)
    p.add_argument("--batches", type=int, default=32, help="batch size of the bare loop and of both training runs")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "loop_throughput.json"))
    a = p.parse_args()
    import torch

    torch.set_num_threads(1)
    bench = throughput("compiled", a.batches, a.bench_steps)
    print(f"ntm bench, compiled, batch {a.batches}: {bench:,.0f} sequences/s", flush=True)
    runs = {}
    batches = ("--batches", str(a.batches))
    for name, extra in (("defaults", batches), ("memory_sizes full", (*batches, "--memory_sizes", "full"))):
        with tempfile.TemporaryDirectory() as d:
            runs[name] = run = train_rate(a.steps, a.warmup, Path(d), extra)
        rate = run["sequences_per_second"]
        print(f"ntm train ({name}), steps {run['steps'][0]}-{run['steps'][1]} of {a.steps}: {rate:,.0f} sequences/s")
        print(f"  ratio to the bench: {rate / bench:.3f}", flush=True)
    result = {
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
        "torch": torch.__version__,
        "batch": a.batches,
        "bench_sequences_per_second": bench,
        "train": {name: {**run, "ratio": run["sequences_per_second"] / bench} for name, run in runs.items()},
        "command": f"python benchmarks/loop_throughput.py --steps {a.steps} --warmup {a.warmup}"
        + (f" --batches {a.batches}" if a.batches != 32 else ""),
    }
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
