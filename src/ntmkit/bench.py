"""``ntm bench``: training speed of the fast path against the eager reference, and time to converge.

Everything runs on this machine in one process tree, so the eager figure is the in-run reference
that keeps the others honest on a noisy machine. Prints a table of throughput against batch size
and sequence length, the settings used, and as its last four lines::

    eager throughput: <X> sequences/s
    train throughput: <Y> sequences/s
    speedup over eager: <Y/X>
    time to converge: <S> s (median of <n> seeds)
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import torch

from .models import MemoryModel
from .optim import clip_grad_norm, make_optimizer
from .registry import build_model, model_kind
from .tasks import CopyTask


def throughput(
    engine: str,
    batch_size: int,
    steps: int,
    level: int | None = None,
    warmup: int = 3,
    seed: int = 0,
    mixed: bool = False,
    model: str = "ntm",
    options: dict | None = None,
) -> float:
    """Training sequences per second of a copy model (forward, backward, clip, Adam): ``model`` a
    name in the registry with config ``options`` (default: the default NTM).

    ``engine``: "eager" (the reference: the model's equations as written, run eagerly),
    "eager-fused" (eagerly, with the hand-written operators the model has) or "compiled" (the fast
    path, hand-written operators included). ``level`` fixes the copy length; None runs batches of
    one length each, as ``ntm train`` does, taking the lengths 1-20 in turn so that every 20 timed
    steps cost exactly the average of the uniform distribution (``mixed=True``: lengths differ
    inside a batch). Under torchrun the model is wrapped in DistributedDataParallel and the figure
    counts every process's sequences.
    """
    from . import distributed

    rank, world_size = distributed.setup(torch.device("cpu"))
    torch.manual_seed(seed)
    task = CopyTask()
    net = build_model(model, model_kind(model).config(task.input_size, task.output_size, options or {}))
    cell = getattr(net, "cell", None)
    if engine == "eager" and cell is not None:
        cell.use_reference_equations()  # the eager reference: the model's equations as written
    if engine == "eager-fused":  # eager, with the model's hand-written operators
        engine = "eager"
    if engine == "compiled":
        torch._dynamo.reset()  # each measurement compiles afresh, as a new training run would
        cast(MemoryModel, net).compile_step()
    train_model = distributed.wrap(net)
    opt = make_optimizer("adam", net.parameters())
    g = torch.Generator().manual_seed(seed + rank)
    turn = iter(range(10**9))

    def one():
        length = level
        if length is None and not mixed:  # the same length in every process, as in training
            length = task.min_level + next(turn) % (task.max_level - task.min_level + 1)
        batch = task.make_batch(batch_size, g, level=length)
        logits, _ = train_model(batch.inputs)
        loss = task.loss(logits, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_grad_norm(net.parameters(), 10.0)
        opt.step()

    for _ in range(warmup):
        one()
    distributed.mean([0.0])  # start the clock together
    start = time.perf_counter()
    for _ in range(steps):
        one()
    distributed.mean([0.0])
    return steps * batch_size * world_size / (time.perf_counter() - start)


def scaleout_throughput(processes: int, threads: int, steps: int) -> float:
    """Compiled training throughput with ``processes`` x ``threads`` (batch 32 per process), measured in a
    fresh process tree (torchrun for more than one process)."""
    worker = ["-m", "ntmkit.bench", "--worker", str(threads), str(steps)]
    cmd = (
        [sys.executable, *worker]
        if processes == 1
        else [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *worker]
    )
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900).stdout
    rates = [float(line.split()[1]) for line in out.splitlines() if line.startswith("THROUGHPUT ")]
    return rates[0] if rates else float("nan")


def cold_run(
    seed: int, timeout: float = 900.0, extra: tuple = (), keep: str | None = None, cache: str | None = None
) -> dict | None:
    """``ntm train`` on defaults from a cold process with an empty compile cache.

    Returns the process's wall seconds until it stopped (compilation, learning, the steps after
    learning and the checks included) and until its first training step was done, the step from
    which it ran compiled, the training seconds and sequences at the moment the stop test first
    passed, and the run's totals; None if the task was not learned. ``keep``: a
    directory for the run's checkpoints and logs (default: a temporary one, removed). ``cache``: a
    compile cache directory to use instead of an empty one (a warm start when it is filled)."""
    with tempfile.TemporaryDirectory() as scratch:
        tmp = keep or scratch
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache or os.path.join(scratch, "inductor"), PYTHONUNBUFFERED="1")
        cmd = [
            sys.executable,
            "-m",
            "ntmkit",
            "train",
            "--seed",
            str(seed),
            "--quiet",
            "--checkpoint_dir",
            os.path.join(tmp, "ck"),
            "--train_log_dir",
            os.path.join(tmp, "logs"),
            *extra,
        ]
        start, started_at = time.perf_counter(), time.time()
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        wall = time.perf_counter() - start
        summary_path = os.path.join(tmp, "logs", "summary.json")
        if proc.returncode != 0 or not os.path.exists(summary_path):
            return None
        summary = json.loads(Path(summary_path).read_text())
        if not summary["learned"]:
            return None
        at = summary.get("learned_at") or {"seconds": summary["seconds"], "sequences": summary["sequences"]}
        return {
            "seed": seed,
            "wall_seconds": round(wall, 1),
            "learned_seconds": at["seconds"],
            "learned_sequences": at["sequences"],
            "sequences": summary["sequences"],
            "training_seconds": summary["seconds"],
            # from launching the process to the end of its first training step
            "first_step_seconds": round(summary["first_step_time"] - started_at, 1),
            "compiled_from_step": summary["compiled_from_step"],
        }


def source_version(here: Path | None = None) -> str:
    """The commit of the source tree at ``here`` (default: this package's), with ``+changes`` when
    tracked files there differ from it, or the package version outside a git checkout."""
    here = here or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no", "."],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    if commit is None or commit.returncode != 0 or not commit.stdout.strip():
        from . import __version__

        return f"ntmkit {__version__}"
    return commit.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def record(history: str | None, figures: dict, commit: str | None = None) -> None:
    """Append ``figures`` with the date, the source commit (default: this package's) and the machine
    to ``history`` (JSON lines)."""
    if not history:
        return
    entry = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "commit": commit or source_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs",
        "torch": torch.__version__,
        **figures,
    }
    path = Path(history)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    print(f"appended to {path}")


def report(at32: dict[str, float], history: str | None, figures: dict, last_line: str = "") -> None:
    """The summary lines every ``ntm bench`` ends with, and the history line (``--history``)."""
    print(f"eager throughput: {at32['eager']:.0f} sequences/s")
    print(f"train throughput: {at32['compiled']:.0f} sequences/s")
    print(f"speedup over eager: {at32['compiled'] / at32['eager']:.2f}")
    if last_line:
        print(last_line)
    record(
        history,
        {
            "run": figures.pop("run"),
            "eager_at_32": round(at32["eager"], 1),
            "compiled_at_32": round(at32["compiled"], 1),
            "speedup": round(at32["compiled"] / at32["eager"], 2),
            **figures,
        },
    )


def model_main(model: str, options: dict, quick: bool = False, history: str | None = None) -> int:
    """``ntm bench --model X``: that model's training throughput on copy, eager against compiled."""
    torch.set_num_threads(1)
    steps = 20
    label = model_kind(model).label
    print(f"ntmkit bench: {label} ({options or 'defaults'}) on copy, Adam, lengths 1-20 unless stated")
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs; torch {torch.__version__}")
    print(f"settings: 1 process, torch.set_num_threads(1), {steps} timed steps after 3 warm-up steps")
    print("\nthroughput against batch size (sequences/s; lengths 1-20, one length per batch as in training):")
    copy = CopyTask()
    net = build_model(model, model_kind(model).config(copy.input_size, copy.output_size, options))
    cell = getattr(net, "cell", None)
    fused = cell is not None and cell.has_fused_ops  # then the eager run with those operators is timed too
    if fused:
        print("  (eager: the reference equations; eager-fused: eagerly, with the hand-written operators)")
    print(f"  {'batch':>6} {'eager':>9}{' eager-fused' * fused} {'compiled':>9} {'speedup':>8}")
    at32: dict[str, float] = {}
    for b in [32] if quick else [1, 8, 32, 128]:
        e = throughput("eager", b, steps, model=model, options=options)
        f = throughput("eager-fused", b, steps, model=model, options=options) if fused else 0.0
        c = throughput("compiled", b, steps, model=model, options=options)
        at32 = {"eager": e, "compiled": c} if b == 32 else at32
        if fused and b == 32:
            at32["eager_fused"] = f
        column = f" {f:>11.0f}" if fused else ""
        print(f"  {b:>6} {e:>9.0f}{column} {c:>9.0f} {c / e:>7.2f}x", flush=True)
    print()
    if fused:
        print(f"speedup over eager with the hand-written operators: {at32['compiled'] / at32['eager_fused']:.2f}")
    run = " ".join(["ntm bench --model", model, *(f"--{k} {v}" for k, v in options.items())]) + quick * " --quick"
    figures: dict = {"run": run}
    if "eager_fused" in at32:
        figures["eager_fused_at_32"] = round(at32["eager_fused"], 1)
    report(at32, history, figures)
    return 0


def main(quick: bool = False, history: str | None = None) -> int:
    threads = 1
    torch.set_num_threads(threads)
    steps = 20  # one batch of each length 1-20
    print(
        f"ntmkit bench{' (quick)' if quick else ''}: default copy model (feed-forward 3 x 100, 128 x 20 memory, "
        f"1 read + 1 write head), Adam, lengths 1-20 unless stated"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, {platform.processor() or 'cpu'}; "
        f"torch {torch.__version__}; python {platform.python_version()}"
    )
    print(f"settings: 1 process, torch.set_num_threads({threads}), {steps} timed steps after 3 warm-up steps")

    batch_sizes = [32] if quick else [1, 8, 32, 128]
    print("\nthroughput against batch size (sequences/s; lengths 1-20, one length per batch as in training):")
    print(f"  {'batch':>6} {'eager':>9} {'compiled':>9} {'speedup':>8}")
    at32 = {}
    for b in batch_sizes:
        n = steps
        e = throughput("eager", b, n)
        c = throughput("compiled", b, n)
        if b == 32:
            at32 = {"eager": e, "compiled": c}
        print(f"  {b:>6} {e:>9.0f} {c:>9.0f} {c / e:>7.2f}x", flush=True)
    mixed = throughput("compiled", 32, steps, mixed=True)
    print(f"  (batch 32 with lengths mixed inside each batch, padded to the longest: {mixed:.0f} compiled)")

    lengths = [10, 20] if quick else [10, 20, 50, 100]
    print("\nthroughput against copy length (compiled, batch 32; cost per sequence should grow linearly):")
    print(f"  {'length':>6} {'seq/s':>9} {'ms/seq':>8} {'us/seq/step':>12}")
    for L in lengths:
        c = throughput("compiled", 32, max(3, steps // 2), level=L)
        print(f"  {L:>6} {c:>9.0f} {1000 / c:>8.2f} {1e6 / c / (2 * L + 1):>12.1f}", flush=True)

    seeds = [] if quick else [0, 1, 2]  # --quick skips the convergence runs (about a minute each)
    if seeds:
        print(f"\ntime to converge: 'ntm train' on defaults, cold process and empty compile cache, seeds {seeds}:")
    runs: dict[int, dict | None] = {}  # cold_run's record per seed (None: not learned)
    for s in seeds:
        r = runs[s] = cold_run(s)
        line = "not learned" if r is None else f"{r['wall_seconds']:.1f} s, {r['learned_sequences']:,} sequences"
        if r is not None:
            line += f" (first step done at {r['first_step_seconds']:.1f} s, "
            line += f"compiled from step {r['compiled_from_step']})"
        print(f"  seed {s}: {line}", flush=True)

    print(
        "\nscale-out (compiled, batch 32 per process; torchrun + DistributedDataParallel over gloo"
        + ("" if quick else "; converge: seed 0")
        + "):"
    )
    print(f"  {'processes x threads':>20} {'seq/s':>9} {'converge s':>11} {'sequences':>10}")
    for procs, threads in [(1, 1), (1, 2), (2, 1)]:
        rate = scaleout_throughput(procs, threads, steps)
        if quick:
            print(f"  {f'{procs} x {threads}':>20} {rate:>9.0f}", flush=True)
            continue
        split = ("--nproc", str(procs), "--batches", str(32 * procs)) if procs > 1 else ()  # 32 per process
        r = runs[0] if (procs, threads) == (1, 1) else cold_run(0, extra=("--threads", str(threads), *split))
        conv = f"{r['wall_seconds']:>11.1f} {r['learned_sequences']:>10,}" if r else f"{'not learned':>11}"
        print(f"  {f'{procs} x {threads}':>20} {rate:>9.0f} {conv}", flush=True)

    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\npeak memory: {own:.0f} MiB in this process, {children:.0f} MiB in the largest training process")
    print()
    converged = [None if (r := runs[s]) is None else round(r["wall_seconds"], 1) for s in seeds]
    times = [sec for sec in converged if sec is not None]
    median = f"{statistics.median(times):.1f}" if times else "n/a"
    report(
        at32,
        history,
        {"run": "ntm bench" + quick * " --quick", "seconds_to_converge": converged},
        f"time to converge: {median} s (median of {len(times)} seeds)",
    )
    return 0


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--worker":
    torch.set_num_threads(int(sys.argv[2]))
    rate = throughput("compiled", 32, int(sys.argv[3]))
    from . import distributed

    if distributed.world()[0] == 0:
        print(f"THROUGHPUT {rate:.1f}", flush=True)
    distributed.teardown()
