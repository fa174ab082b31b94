"""A recipe's phases joined end to end into one record per seed, as ``ntm sweep`` writes one.

    python benchmarks/join_phases.py --task associative_recall \
        --seed 0=RUN0/p1-logs,RUN0/p2-logs,RUN0/p3-logs --seed 1=... \
        --evaluations 0=RUN0/p3-eval0,RUN0/p3-eval1 --evaluations 1=... \
        --command "what was run" --out benchmarks/results/associative_recall/NN-name.json

A recipe that goes on from a run's weights with ``--init_from`` (a polish at another batch size,
optimiser or learning rate) writes one log directory per phase, each counting its steps,
sequences and seconds from zero. For each seed this script puts the phases' logged rows end to
end (each phase offset by what the phases before it did), pools the ``ntm evaluate`` reports
given for the seed (the same values scored on several fresh sets: their rows averaged, weighted
by sequences), and summarises the seeds with ``ntmkit.sweep.summarise``: the per-seed table, the
median and quartile curves on the paper's axis, one JSON file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ntmkit.sweep import format_table, read_metrics, summarise  # noqa: E402
from ntmkit.tasks import TASKS  # noqa: E402

OFFSET_KEYS = ("step", "sequences", "seconds")


def read_phase(log_dir: Path) -> tuple[list[dict], dict]:
    """One phase's logged rows and its summary.json."""
    rows = read_metrics(log_dir / "metrics.jsonl")
    summary_path = log_dir / "summary.json"
    if not summary_path.exists():
        raise SystemExit(f"{summary_path} is missing: that phase has not finished; let it end, then join")
    return rows, json.loads(summary_path.read_text())


def join(phases: list[tuple[list[dict], dict]]) -> tuple[list[dict], dict]:
    """The phases end to end: rows and summary with steps, sequences and seconds counted from the first
    phase's start; ``learned_at`` from the first phase that passed its stop test; the last phase's
    held-out check."""
    rows: list[dict] = []
    offset: dict[str, float] = {"step": 0, "sequences": 0, "seconds": 0.0}
    learned_at = None
    for phase_rows, summary in phases:
        rows += [{**r, **{k: r[k] + offset[k] for k in OFFSET_KEYS if k in r}} for r in phase_rows]
        if learned_at is None and summary.get("learned_at"):
            learned_at = {k: v + offset.get(k, 0) for k, v in summary["learned_at"].items()}
        for k in OFFSET_KEYS:
            offset[k] += summary[k]
    last = phases[-1][1]
    total = {k: (int(v) if k != "seconds" else round(v, 3)) for k, v in offset.items()}
    return rows, {**last, **total, "learned": learned_at is not None, "learned_at": learned_at}


def pool(reports: list[dict]) -> dict:
    """Several ``ntm evaluate`` reports over the same values as one: each row's numbers averaged,
    weighted by the sequences behind them."""
    axis = reports[0]["axis"]
    if any(r["axis"] != axis or [x[axis] for x in r["rows"]] != [x[axis] for x in reports[0]["rows"]] for r in reports):
        raise SystemExit(
            "the evaluation reports differ in axis or values: pool only reports of one `ntm evaluate` command"
        )
    weights = [r["sequences_per_value"] for r in reports]
    rows = []
    for i, first in enumerate(reports[0]["rows"]):
        row = {axis: first[axis]}
        for key, value in first.items():
            if key != axis and isinstance(value, (int, float)):
                row[key] = sum(w * r["rows"][i][key] for w, r in zip(weights, reports)) / sum(weights)
        rows.append(row)
    return {**reports[0], "sequences_per_value": sum(weights), "rows": rows, "pooled_sets": len(reports)}


def seed_lists(items: list[str], flag: str) -> dict[int, list[Path]]:
    """``S=DIR,DIR,...`` flags as {seed: [paths]}."""
    out = {}
    for item in items:
        seed, sep, dirs = item.partition("=")
        if not sep or not seed.strip().isdigit():
            raise SystemExit(f"{flag} {item!r}: write it as SEED=DIR[,DIR...], e.g. {flag} 0=run/p1-logs,run/p2-logs")
        out[int(seed)] = [Path(d) for d in dirs.split(",") if d]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--seed", action="append", required=True, help="SEED=LOGDIR,LOGDIR,... (the phases, in order)")
    p.add_argument("--evaluations", action="append", default=[], help="SEED=DIR,DIR,... (ntm evaluate --figure_dir)")
    p.add_argument("--command", required=True, help="the recipe's commands, stored with the figures")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    runs = seed_lists(a.seed, "--seed")
    evaluations = seed_lists(a.evaluations, "--evaluations")
    with tempfile.TemporaryDirectory() as tmp:
        for seed, log_dirs in runs.items():
            rows, summary = join([read_phase(d) for d in log_dirs])
            logs = Path(tmp, f"seed-{seed}", "logs")
            logs.mkdir(parents=True)
            (logs / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            (logs / "summary.json").write_text(json.dumps(summary))
            reports = [
                json.loads(f.read_text()) for d in evaluations.get(seed, []) for f in sorted(d.glob("evaluate_*.json"))
            ]
            if reports:
                (logs.parent / "eval").mkdir()
                (logs.parent / "eval" / "evaluate_pooled.json").write_text(json.dumps(pool(reports)))
        result = summarise(Path(tmp), sorted(runs), a.task, TASKS[a.task].cost_name, command=a.command)
    print(format_table(result))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
