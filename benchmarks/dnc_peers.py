"""Our DNC (eager and compiled) against the public PyTorch DNCs, same sizes, same batches, one run.

Ours runs four ways: eager and compiled, each with the link update through the reference equations
(differentiated automatically) and through the fused operator of ``ntmkit.models.dnc_link`` (the
default).

    python benchmarks/dnc_peers.py --csordas DIR --pytorch_dnc DIR [--batch 32] [--length 20]
        [--steps 15] [--repeats 3] [--out benchmarks/results/dnc_peers.json]

Run it with nothing else on the machine: it is a timing. The peers are run from their own clones
(outside this repository; neither is a dependency):

- ``--csordas``: a clone of github.com/RobertCsordas/dnc (Csordás & Schmidhuber, ICLR 2019),
  ``Models/DNC.py``, run as the plain DNC (no masking, no de-allocation, no link sharpness).
- ``--pytorch_dnc``: a clone of github.com/ixaxaar/pytorch-dnc (the ``dnc`` package: DNC, SAM, SDNC),
  run as its dense ``DNC`` with one layer and one hidden LSTM layer.

Every model has the sizes of ``ntm train --model dnc`` on copy: an LSTM controller of 100 units in
one layer, N = 128 rows of W = 20, one read head, one write head. Each measurement is training
sequences per second of the full step (forward, backward, gradient clipping at 10, Adam) on copy
batches of one fixed length (``2 * length + 1`` time steps), all models on the same batches, one
thread; the models take turns, ``repeats`` times, and the figure is min / median / max.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CONTROLLER, N, W, R = 100, 128, 20, 1


EAGER = "ntmkit DNC, eager (reference equations)"


def ours(engine: str, task, fused_link: bool = True):
    """Our DNC at the shared sizes; logits [B, T, 8] from inputs [B, T, 9]. ``fused_link=False``:
    the link update through the reference equations, differentiated automatically (the eager
    reference)."""
    from ntmkit import DNC

    model = DNC(task.input_size, task.output_size, controller_size=CONTROLLER, memory_locations=N, read_heads=R)
    model.cell.fused_link = fused_link
    if engine == "compiled":
        model.compile_step()
    return model, lambda x: model(x)[0]


def csordas(path: Path, task):
    sys.path.insert(0, str(path))
    from Models.DNC import DNC, LSTMController  # type: ignore[import-not-found]

    model = DNC(
        task.input_size,
        task.output_size,
        W,
        N,
        R,
        LSTMController([CONTROLLER]),
        batch_first=True,
        mask=False,
        dealloc_content=False,
        link_sharpness_control=False,
    )
    return model, model


def pytorch_dnc(path: Path, task):
    sys.path.insert(0, str(path))
    from dnc import DNC  # type: ignore[import-not-found]

    model = DNC(
        task.input_size,
        CONTROLLER,
        rnn_type="lstm",
        num_layers=1,
        num_hidden_layers=1,
        nr_cells=N,
        cell_size=W,
        read_heads=R,
        batch_first=True,
    )
    # With batch_first=True its output comes back time-first (it transposes only when batch_first is
    # False), and it has the input's width (9): turned batch-first, the copy loss reads 8 channels.
    return model, lambda x: model(x, (None, None, None), reset_experience=True)[0].transpose(0, 1)[..., :8]


def commit(path: Path) -> str:
    """The peer clone's checked-out commit."""
    import subprocess

    return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def rate(forward, model, batches, task) -> float:
    import torch

    opt = torch.optim.Adam(model.parameters(), 1e-3)
    start = time.perf_counter()
    for batch in batches:
        loss = task.loss(forward(batch.inputs), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
    return sum(b.inputs.shape[0] for b in batches) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csordas", type=Path, help="clone of github.com/RobertCsordas/dnc")
    p.add_argument("--pytorch_dnc", type=Path, help="clone of github.com/ixaxaar/pytorch-dnc")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=20, help="copy length (2 * length + 1 time steps)")
    p.add_argument("--steps", type=int, default=15, help="timed training steps per measurement")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dnc_peers.json"))
    a = p.parse_args()
    import torch

    from ntmkit.engine import keep_freed_memory
    from ntmkit.tasks import CopyTask

    torch.set_num_threads(1)
    torch.manual_seed(0)
    task = CopyTask()
    keep_freed_memory()  # as every ntm command does (ntmkit.engine)
    g = torch.Generator().manual_seed(0)
    batches = [task.make_batch(a.batch, g, level=a.length) for _ in range(a.steps)]
    warm = [task.make_batch(a.batch, g, level=a.length) for _ in range(3)]
    builders = {
        EAGER: lambda: ours("eager", task, fused_link=False),
        "ntmkit DNC, eager, fused link": lambda: ours("eager", task),
        "ntmkit DNC, compiled, reference equations": lambda: ours("compiled", task, fused_link=False),
        "ntmkit DNC, compiled": lambda: ours("compiled", task),
    }
    if a.csordas:
        builders["RobertCsordas/dnc (plain DNC)"] = lambda: csordas(a.csordas, task)
    if a.pytorch_dnc:
        builders["ixaxaar/pytorch-dnc (DNC)"] = lambda: pytorch_dnc(a.pytorch_dnc, task)
    models = {}
    for name, build in builders.items():
        model, forward = build()
        n_params = sum(p.numel() for p in model.parameters())
        rate(forward, model, warm, task)  # warm-up (and compilation)
        models[name] = (model, forward, n_params)
        print(f"{name}: {n_params:,} parameters, warmed up", flush=True)
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(a.repeats):
        for name, (model, forward, _) in models.items():
            rates[name].append(rate(forward, model, batches, task))
    eager = statistics.median(rates[EAGER])
    rows = []
    print(f"\ncopy length {a.length} ({2 * a.length + 1} time steps), batch {a.batch}, one thread: sequences/s")
    print(f"  {'model':<34} {'params':>8} {'min':>7} {'median':>7} {'max':>7} {'x eager':>8}")
    for name, values in rates.items():
        med = statistics.median(values)
        rows.append({"model": name, "parameters": models[name][2], "sequences_per_second": values, "median": med})
        spread = f"{min(values):>7.1f} {med:>7.1f} {max(values):>7.1f}"
        print(f"  {name:<34} {models[name][2]:>8,} {spread} {med / eager:>8.2f}")
    peers = {flag: getattr(a, flag) for flag in ("csordas", "pytorch_dnc") if getattr(a, flag)}
    given = [(k, v) for k, v in vars(a).items() if v and k != "out"]
    command = " ".join(f"--{k} {'CLONE' if k in peers else v}" for k, v in given)
    out = {
        "command": "python benchmarks/dnc_peers.py " + command,
        "peer_commits": {k: commit(v) for k, v in peers.items()},
        "batch": a.batch,
        "copy_length": a.length,
        "time_steps": 2 * a.length + 1,
        "steps_per_measurement": a.steps,
        "sizes": {"controller": f"LSTM {CONTROLLER}", "N": N, "W": W, "read_heads": R},
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
