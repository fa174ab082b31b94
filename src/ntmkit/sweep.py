"""Multi-seed runs: ``ntm sweep --task T --seeds 5`` trains seeds 0 .. N-1 in parallel processes,
then draws the median learning curve with its quartile band (against sequences seen and against
wall seconds) and tabulates, per seed, the sequences and seconds it took to learn the task.

Each seed is an ordinary ``ntm train`` run in ``SWEEP_DIR/seed-K`` (checkpoints, logs,
``summary.json``); a sweep that is interrupted and started again resumes every seed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import numpy as np

# Flags the sweep sets itself for each seed, or that only the sweep reads.
_OWN = {
    "--seeds": 1,
    "--jobs": 1,
    "--sweep_dir": 1,
    "--sweep-dir": 1,
    "--seed": 1,
    "--checkpoint_dir": 1,
    "--checkpoint-dir": 1,
    "--train_log_dir": 1,
    "--train-log-dir": 1,
    "--nproc": 1,
    "--quiet": 0,
    "--threads": 1,
    "--first_seed": 1,
    "--first-seed": 1,
    "--values": 1,
    "--sequences": 1,
    "--evaluate": 0,
    "--no-evaluate": 0,
}


def passthrough(argv: list[str]) -> list[str]:
    """``argv`` without the command word and the flags the sweep sets per seed."""
    out, skip = [], 0
    for a in argv:
        if skip:
            skip -= 1
            continue
        flag = a.split("=", 1)[0]
        if a in ("sweep", "--sweep"):
            continue
        if flag in _OWN:
            skip = _OWN[flag] if "=" not in a else 0
            continue
        out.append(a)
    return out


def run_seeds(
    train_args: list[str],
    seeds: list[int],
    sweep_dir: Path,
    jobs: int,
    log=print,
    command: str = "train",
    log_name: str = "train.log",
    per_seed=lambda d: [],
) -> None:
    """Run ``ntm COMMAND`` for every seed (``jobs`` processes at a time, one thread each) in its
    own directory; returns when all are done.

    Ctrl-C reaches the running seeds too (one process group): each saves a checkpoint and ends.
    The sweep starts no further seed, waits for them, and raises KeyboardInterrupt; run it again
    to resume every seed."""
    pending = list(seeds)
    running: dict[int, tuple[subprocess.Popen, IO[str]]] = {}
    # SIGINT and SIGTERM stop the sweep even where SIGINT was inherited as ignored (a background
    # job of a script); the running seeds are told too, so each saves whoever sent the signal.
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _run(pending, running, train_args, sweep_dir, jobs, log, command, log_name, per_seed)
    except KeyboardInterrupt:
        log(f"interrupted: waiting for {len(running)} running seed(s) to save their checkpoints")
        for proc, out in running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            proc.wait()
            out.close()
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _run(pending, running, train_args, sweep_dir, jobs, log, command, log_name, per_seed) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    while pending or running:
        while pending and len(running) < jobs:
            seed = pending.pop(0)
            d = sweep_dir / f"seed-{seed}"
            d.mkdir(parents=True, exist_ok=True)
            cmd = [
                sys.executable,
                "-m",
                "ntmkit",
                command,
                *train_args,
                "--seed",
                str(seed),
                "--quiet",
                "--threads",
                "1",
                *(("--nproc", "1") if command == "train" else ()),  # each seed is one process
                "--checkpoint_dir",
                str(d / "ck"),
                "--train_log_dir",
                str(d / "logs"),
                *per_seed(d),
            ]
            log_file = open(d / log_name, "a")  # noqa: SIM115 (closed when its process ends, below)
            running[seed] = (subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env), log_file)
            log(f"seed {seed}: {command} started (log {d / log_name})")
        time.sleep(0.5)
        for seed, (proc, out) in list(running.items()):
            if proc.poll() is not None:
                out.close()
                del running[seed]
                log(
                    f"seed {seed}: {command} "
                    + (
                        "done"
                        if proc.returncode == 0
                        else f"failed with exit code {proc.returncode} (see its {log_name})"
                    )
                )


def read_metrics(metrics: Path) -> list[dict]:
    """The rows of a run's metrics.jsonl (none if it is not there yet)."""
    rows = []
    if metrics.exists():
        for line in metrics.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
    return rows


def read_run(run_dir: Path) -> dict:
    """A seed's logged curve and summary."""
    rows = read_metrics(run_dir / "logs" / "metrics.jsonl")
    summary_path = run_dir / "logs" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    evaluations = sorted((run_dir / "eval").glob("evaluate_*.json")) if (run_dir / "eval").is_dir() else []
    evaluation = json.loads(evaluations[0].read_text()) if evaluations else None
    return {"rows": rows, "summary": summary, "evaluation": evaluation}


def generalisation_row(evaluation: dict | None) -> dict | None:
    """A seed's ``ntm evaluate`` result as {value: bit errors per sequence, ...}, the task's cost per value
    (e.g. cross-entropy bits for priority sort) and its settings."""
    if not evaluation:
        return None
    axis = evaluation["axis"]
    return {
        "axis": axis,
        "sequences_per_value": evaluation["sequences_per_value"],
        "memory_locations": evaluation.get("memory_locations"),
        "bit_errors": {str(r[axis]): r["bit_errors"] for r in evaluation["rows"]},
        "wrong_share": {str(r[axis]): r.get("wrong_share") for r in evaluation["rows"]},
        "cost": {str(r[axis]): r.get("cost") for r in evaluation["rows"]},
    }


def smooth(values: np.ndarray, span: int = 10) -> np.ndarray:
    """Exponential moving average (the logged per-batch costs are noisy)."""
    out = np.empty_like(values, dtype=float)
    acc = None
    alpha = 2.0 / (span + 1)
    for i, v in enumerate(values):
        acc = v if acc is None else (1 - alpha) * acc + alpha * v
        out[i] = acc
    return out


def band(
    curves: list[tuple[np.ndarray, np.ndarray]], points: int = 200, log: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Median and quartiles of several (x, y) curves on a common x grid (evenly spaced, or with
    ``log`` evenly spaced in log x from the first logged x); a curve that ended (its run learned
    the task and stopped) holds its last value."""
    top = max(float(x[-1]) for x, _ in curves)
    if log:
        first = max(min(float(x[0]) for x, _ in curves), 1.0)
        grid = np.geomspace(first, max(top, first * 1.001), points)
    else:
        grid = np.linspace(0.0, top, points)
    ys = np.stack([np.interp(grid, x, y, left=y[0], right=y[-1]) for x, y in curves])
    q1, med, q3 = np.percentile(ys, [25, 50, 75], axis=0)
    return grid, med, q1, q3


def _last(rows: list[dict], key: str) -> float | None:
    """Mean of ``key`` over the last 10 logged rows (a run's cost at its end, from training batches)."""
    values = [row[key] for row in rows[-10:] if key in row]
    return float(np.mean(values)) if values else None


def _seed_row(seed: int, run: dict) -> dict:
    summ = run["summary"] or {}
    at = summ.get("learned_at") or {}  # runs that train on after learning record when they learned
    final = summ.get("final_eval") or {}
    rows = run["rows"]
    return {
        "seed": seed,
        "learned": bool(summ.get("learned")),
        "sequences": at.get("sequences", summ.get("sequences")),
        "seconds": at.get("seconds", summ.get("seconds")),
        "total_sequences": summ.get("sequences"),
        "logged_sequences": rows[-1].get("sequences") if rows else None,  # also for a run still going
        "total_seconds": summ.get("seconds"),
        "final_cost": final.get("cost"),
        "final_bits": final.get("bits"),
        "final_bit_errors": final.get("bit_errors"),
        # means over the last 10 logged rows (every run has them, also one stopped by its budget)
        "last_training_cost": _last(rows, "cost") if rows and "cost" in rows[-1] else _last(rows, "bit_errors"),
        "last_training_bits": _last(rows, "bits"),
        "last_training_bit_errors": _last(rows, "bit_errors"),
        "generalisation": generalisation_row(run["evaluation"]),
    }


def _curves(
    runs: dict, xkey: str, ykey: str, log: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    data = [
        (
            np.array([row[xkey] for row in r["rows"]], dtype=float),
            smooth(np.array([row.get(ykey, row["bit_errors"]) for row in r["rows"]], dtype=float)),
        )
        for r in runs.values()
        if len(r["rows"]) >= 2
    ]
    return band(data, log=log) if data else None


def summarise(sweep_dir: Path, seeds: list[int], task: str, cost_name: str, command: str = "") -> dict:
    """Per-seed table and the median/quartile curves (of the task's cost, and of cross-entropy
    bits per sequence, the paper's unit); writes sweep.json and two PNGs."""
    from . import plots

    runs = {s: read_run(sweep_dir / f"seed-{s}") for s in seeds}
    table = [_seed_row(s, r) for s, r in runs.items()]
    learned = [t for t in table if t["learned"]]
    result: dict[str, Any] = {
        "task": task,
        "cost": cost_name,
        "command": command,
        "seeds": table,
        "learned": f"{len(learned)}/{len(table)}",
        "median_sequences_to_learn": float(np.median([t["sequences"] for t in learned])) if learned else None,
        "median_seconds_to_learn": float(np.median([t["seconds"] for t in learned])) if learned else None,
    }
    for xkey in ("sequences", "seconds"):
        for ykey, prefix in (("cost", "curve"), ("bits", "curve_bits")):
            c = _curves(runs, xkey, ykey)
            if c is None:
                continue
            result[f"{prefix}_{xkey}"] = {k: v.tolist() for k, v in zip(("x", "median", "q1", "q3"), c)}
            if ykey == "cost":
                plots.learning_curve(
                    *c,
                    sweep_dir / f"sweep_{xkey}.png",
                    xlabel=xkey if xkey == "sequences" else "wall seconds",
                    ylabel=cost_name,
                    title=f"{task}: median of {len(seeds)} seeds, quartiles shaded",
                )
    for ykey, prefix in (("cost", "curve_logx"), ("bits", "curve_bits_logx")):  # the paper's axis, log scale
        c = _curves(runs, "sequences", ykey, log=True)
        if c is not None:
            result[f"{prefix}_sequences"] = {k: v.tolist() for k, v in zip(("x", "median", "q1", "q3"), c)}
    (sweep_dir / "sweep.json").write_text(json.dumps(result, indent=1))
    return result


def format_table(result: dict) -> str:
    lines = [
        f"{'seed':>4}  {'learned':>7}  {'sequences':>10}  {'seconds':>8}  {'final cost':>10}  "
        f"{'in all (sequences, s)':>21}"
    ]
    for t in result["seeds"]:
        cost = (
            f"{t['final_cost']:.4f}"
            if t["final_cost"] is not None
            else "-"
            if t.get("last_training_cost") is None
            else f"~{t['last_training_cost']:.4g}"
        )
        seqs = "-" if t["sequences"] is None else f"{t['sequences']:,}"
        secs = "-" if t["seconds"] is None else f"{t['seconds']:.1f}"
        total = "-" if t.get("total_sequences") is None else f"{t['total_sequences']:,}, {t['total_seconds']:.1f}"
        lines.append(
            f"{t['seed']:>4}  {'yes' if t['learned'] else 'no':>7}  {seqs:>10}  {secs:>8}  {cost:>10}  {total:>21}"
        )
    med = result["median_sequences_to_learn"]
    lines.append(
        f"learned: {result['learned']}"
        + ("" if med is None else f"; median to learn: {med:,.0f} sequences, {result['median_seconds_to_learn']:.1f} s")
    )
    gen = [t for t in result["seeds"] if t.get("generalisation")]
    if gen:
        g0 = gen[0]["generalisation"]
        values = list(g0["bit_errors"])
        lines.append(
            f"bit errors per sequence against {g0['axis']} (fresh sequences, {g0['sequences_per_value']} "
            f"per value, {g0['memory_locations']} memory locations; `ntm evaluate` on each seed):"
        )
        shown = values if len(values) <= 12 else [v for v in values if int(v) % 10 == 0 or v == values[-1]]
        lines.append(f"{'seed':>4}  " + "  ".join(f"{v:>7}" for v in shown) + "  all perfect")
        for t in gen:
            be = t["generalisation"]["bit_errors"]
            perfect = (
                "yes"
                if all(e == 0 for e in be.values())
                else f"no ({sum(e > 0 for e in be.values())} values with errors)"
            )
            lines.append(
                f"{t['seed']:>4}  " + "  ".join(f"{be.get(v, float('nan')):>7.3g}" for v in shown) + f"  {perfect}"
            )
    return "\n".join(lines)


def cmd_sweep(args, argv: list[str]) -> int:
    from .options import UsageError, value
    from .tasks import TASKS

    if args.suite == "chomsky":
        from .chomsky import cmd_suite

        return cmd_suite(args)
    task = value(args, "task")
    first = args.first_seed or 0
    seeds = list(range(first, first + (args.seeds or 3)))
    jobs = args.jobs or os.cpu_count() or 1
    sweep_dir = Path(args.sweep_dir or f"./ntm_sweep/{task}")
    if args.nproc:
        raise UsageError("--nproc does not combine with sweep (each seed is one process): drop it")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    train_args = passthrough(argv)
    print(f"sweep: {task}, seeds {seeds[0]}-{seeds[-1]}, {jobs} at a time, in {sweep_dir}")
    run_seeds(train_args, seeds, sweep_dir, jobs)
    if args.evaluate is not False:
        # Each seed's generalisation on fresh sequences (the training stop never saw them).
        values = args.values or ",".join(str(v) for v in TASKS[task]().generalisation_levels())
        eval_args = ["--values", values, "--sequences", str(args.sequences or 100)]
        for seed in seeds:
            for old in (sweep_dir / f"seed-{seed}" / "eval").glob("evaluate_*.json"):
                old.unlink()
        run_seeds(
            eval_args,
            seeds,
            sweep_dir,
            jobs,
            command="evaluate",
            log_name="evaluate.log",
            per_seed=lambda d: ["--figure_dir", str(d / "eval")],
        )
    result = summarise(sweep_dir, seeds, task, TASKS[task].cost_name, command="ntm " + " ".join(argv))
    print(format_table(result))
    print(f"saved {sweep_dir / 'sweep.json'}, {sweep_dir / 'sweep_sequences.png'}, {sweep_dir / 'sweep_seconds.png'}")
    return 0
