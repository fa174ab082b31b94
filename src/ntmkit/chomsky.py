"""The Chomsky-hierarchy suite: the 15 length-generalisation tasks of Delétang et al., "Neural Networks
and the Chomsky Hierarchy" (ICLR 2023), for the NTM and the DNC beside the models that study found best.

A *cell* is one task, one model and one seed, trained at the suite's budget on input lengths 1-40
and scored on fresh sequences of longer inputs: the score is the mean over the test lengths of the
per-sequence accuracy of the output tokens (the paper's measure); a task is *solved* at >= 90%.
Memory models get a memory as large as each test length needs (``resize_memory``: the trained
size, or the steps of the longest sample and a margin, whichever is larger).

Each cell runs as an ordinary training run in ``ROOT/TASK/MODEL/seed-K`` (resumable) and writes
``result.json`` there when scored; ``ntm sweep --suite chomsky`` runs the cells not yet scored, two
at a time on two cores, and writes the table (:func:`table`) from the stored results.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .tasks.chomsky import CHOMSKY_TASKS

# Column -> (model kind, model options). The NTM and DNC at their defaults but the controller; the
# LSTM at one layer of 256; the study's models at the sizes of their modules' defaults.
MODELS: dict[str, tuple[str, dict]] = {
    "ntm-lstm": ("ntm", {"controller": "lstm", "controller_layers": 1}),
    "ntm-ff": ("ntm", {"controller": "feedforward"}),
    "dnc": ("dnc", {}),
    "lstm": ("lstm", {"hidden_size": 256, "num_layers": 1}),
    "stack_rnn": ("stack_rnn", {}),
    "tape_rnn": ("tape_rnn", {}),
    "transformer": ("transformer", {}),
}
LABELS = {
    "ntm-lstm": "NTM (LSTM)",
    "ntm-ff": "NTM (FF)",
    "dnc": "DNC",
    "lstm": "LSTM",
    "stack_rnn": "Stack-RNN",
    "tape_rnn": "Tape-RNN",
    "transformer": "Transformer",
}
# Done first where the whole grid does not fit (the order): the non-regular tasks for these.
FIRST_MODELS = ("ntm-lstm", "dnc", "lstm", "stack_rnn", "tape_rnn")
SOLVED = 0.9

# Table 2 of Delétang et al. (2023): the score (%, accuracy averaged over test lengths 41-500, the
# best of 10 seeds x 3 learning rates) per task for the models it has. Transcribed by hand.
PAPER: dict[str, dict[str, float]] = {
    "even_pairs": {"lstm": 100.0, "stack_rnn": 100.0, "tape_rnn": 100.0, "transformer": 96.4},
    "modular_arithmetic": {"lstm": 100.0, "stack_rnn": 100.0, "tape_rnn": 100.0, "transformer": 24.2},
    "parity_check": {"lstm": 100.0, "stack_rnn": 100.0, "tape_rnn": 100.0, "transformer": 52.0},
    "cycle_navigation": {"lstm": 100.0, "stack_rnn": 100.0, "tape_rnn": 100.0, "transformer": 61.9},
    "stack_manipulation": {"lstm": 59.1, "stack_rnn": 100.0, "tape_rnn": 100.0, "transformer": 57.5},
    "reverse_string": {"lstm": 60.9, "stack_rnn": 100.0, "tape_rnn": 100.0, "transformer": 62.3},
    "modular_arithmetic_brackets": {"lstm": 59.2, "stack_rnn": 96.1, "tape_rnn": 95.4, "transformer": 32.5},
    "solve_equation": {"lstm": 67.8, "stack_rnn": 56.2, "tape_rnn": 64.4, "transformer": 25.7},
    "duplicate_string": {"lstm": 57.6, "stack_rnn": 52.8, "tape_rnn": 100.0, "transformer": 52.8},
    "missing_duplicate": {"lstm": 54.3, "stack_rnn": 55.2, "tape_rnn": 100.0, "transformer": 56.4},
    "odds_first": {"lstm": 55.6, "stack_rnn": 51.9, "tape_rnn": 100.0, "transformer": 52.8},
    "binary_addition": {"lstm": 55.5, "stack_rnn": 52.7, "tape_rnn": 100.0, "transformer": 54.3},
    "binary_multiplication": {"lstm": 53.1, "stack_rnn": 52.7, "tape_rnn": 58.5, "transformer": 52.2},
    "compute_sqrt": {"lstm": 57.5, "stack_rnn": 56.5, "tape_rnn": 57.8, "transformer": 52.4},
    "bucket_sort": {"lstm": 99.3, "stack_rnn": 78.1, "tape_rnn": 70.7, "transformer": 91.9},
}


@dataclass
class SuiteConfig:
    """The budget and protocol every cell shares."""

    steps: int = 2000  # optimiser steps per cell
    batch_size: int = 32
    learning_rate: float = 1e-3  # Adam
    train_lengths: tuple[int, int] = (1, 40)  # the paper's training range
    test_lengths: tuple[int, ...] = tuple(range(41, 101, 3))  # within the paper's public example's 41-100
    test_sequences: int = 64  # fresh sequences per test length
    seeds: tuple[int, ...] = (0, 1, 2)
    memory_margin: int = 8
    extra: dict = field(default_factory=dict)  # other TrainConfig settings for every cell


def cell_dir(root: Path, task: str, model: str, seed: int) -> Path:
    return Path(root) / task / model / f"seed-{seed}"


def cells(cfg: SuiteConfig, tasks=None, models=None) -> list[tuple[str, str, int]]:
    """Every (task, model, seed) in the order they run: seed by seed; in each, the non-regular tasks
    for the first models, then the rest."""
    tasks = list(tasks or CHOMSKY_TASKS)
    models = list(models or MODELS)
    out = []
    for seed in cfg.seeds:
        first = [(t, m) for t in tasks for m in models if m in FIRST_MODELS and CHOMSKY_TASKS[t].chomsky_level != "R"]
        rest = [(t, m) for t in tasks for m in models if (t, m) not in first]
        out += [(t, m, seed) for t, m in first + rest]
    return out


def train_config(task: str, model: str, seed: int, root: Path, cfg: SuiteConfig):
    """The :class:`ntmkit.train.TrainConfig` of one cell."""
    from .train import TrainConfig

    kind, options = MODELS[model]
    d = cell_dir(root, task, model, seed)
    lo, hi = cfg.train_lengths
    return TrainConfig(
        task=task,
        task_options={"min_length": lo, "max_length": hi},
        model=kind,
        model_options=dict(options),
        batch_size=cfg.batch_size,
        optimizer="adam",
        learning_rate=cfg.learning_rate,
        max_steps=cfg.steps,
        stop_when_learned=False,
        seed=seed,
        checkpoint_dir=str(d / "ck"),
        train_log_dir=str(d / "logs"),
        report_interval=250,
        max_to_keep=2,
        engine="compiled" if kind in ("ntm", "dnc") else "eager",  # the memory models' step, compiled
        memory_margin=4,
        picture_interval=0,
        eval_sequences=100,  # the run's own final check (the suite scores the cell itself)
        eval_top_share=0.0,
        **cfg.extra,
    )


@torch.no_grad()
def score(model: torch.nn.Module, task_name: str, lengths, sequences: int, seed: int, margin: int) -> dict:
    """Accuracy per input length on fresh sequences (a generator seeded apart from training's)."""
    from .evaluate import evaluate
    from .models import MemoryModel

    task = CHOMSKY_TASKS[task_name]()
    g = torch.Generator().manual_seed(10_000 + seed)
    per_length = {}
    memory = model if isinstance(model, MemoryModel) else None
    trained_rows = memory.config.memory_locations if memory is not None else 0
    for n in lengths:
        fixed = task.at("length", n)
        if memory is not None:
            memory.resize_memory(max(trained_rows, fixed.memory_needed(n) + margin))
        e = evaluate(model, fixed, sequences, g, batch_size=min(sequences, 64))
        per_length[str(n)] = e["accuracy"]
    return per_length


def run_cell(task: str, model: str, seed: int, root: Path, cfg: SuiteConfig) -> dict:
    """Train one cell (resuming its directory) and score it; returns and stores ``result.json``."""
    from .train import train

    d = cell_dir(root, task, model, seed)
    out = d / "result.json"
    if out.is_file():
        return json.loads(out.read_text())
    tc = train_config(task, model, seed, root, cfg)
    start = time.time()
    summary = train(tc, progress=False)
    if summary["interrupted"] or summary["time_up"]:
        return {"interrupted": True}
    net = summary["model"].eval()
    g = torch.Generator().manual_seed(20_000 + seed)
    lo, hi = cfg.train_lengths
    from .evaluate import evaluate

    in_range = evaluate(net, CHOMSKY_TASKS[task](min_length=lo, max_length=hi), 256, g, batch_size=64)["accuracy"]
    per_length = score(net, task, cfg.test_lengths, cfg.test_sequences, seed, cfg.memory_margin)
    result = {
        "task": task,
        "level": CHOMSKY_TASKS[task].chomsky_level,
        "model": model,
        "seed": seed,
        "steps": summary["step"],
        "sequences": summary["sequences"],
        "train_seconds": round(summary["seconds"], 1),
        "seconds": round(time.time() - start, 1),
        "training_range_accuracy": in_range,
        "score": statistics.fmean(per_length.values()),
        "accuracy_by_length": per_length,
        "protocol": {k: v for k, v in asdict(cfg).items() if k != "seeds"},
    }
    out.write_text(json.dumps(result, indent=1))
    return result


def run_suite(root: Path, cfg: SuiteConfig, jobs: int = 2, tasks=None, models=None, log=print) -> None:
    """Run every cell not yet scored, ``jobs`` processes at a time (one thread each)."""
    todo = [c for c in cells(cfg, tasks, models) if not (cell_dir(root, *c) / "result.json").is_file()]
    log(f"{len(todo)} of {len(cells(cfg, tasks, models))} cells to run in {root}")
    root.mkdir(parents=True, exist_ok=True)
    (root / "suite.json").write_text(json.dumps(asdict(cfg), indent=1))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    running: list[tuple[subprocess.Popen, tuple]] = []
    try:
        while todo or running:
            while todo and len(running) < jobs:
                c = todo.pop(0)
                d = cell_dir(root, *c)
                d.mkdir(parents=True, exist_ok=True)
                cmd = [sys.executable, "-m", "ntmkit.chomsky", "cell", *map(str, c), str(root)]
                with open(d / "run.log", "a") as f:
                    running.append((subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env), c))
            time.sleep(1.0)
            for proc, c in list(running):
                if proc.poll() is not None:
                    running.remove((proc, c))
                    ok = (cell_dir(root, *c) / "result.json").is_file()
                    log(f"{'scored' if ok else 'FAILED'} {c[0]} {c[1]} seed {c[2]} (exit {proc.returncode})")
    except KeyboardInterrupt:
        for proc, _ in running:
            proc.send_signal(2)
        for proc, _ in running:
            proc.wait()
        raise


def load_results(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(root).glob("*/*/seed-*/result.json"))]


def grid(results: list[dict]) -> dict:
    """``{task: {model: [scores by seed]}}`` from stored results."""
    out: dict = {}
    for r in results:
        out.setdefault(r["task"], {}).setdefault(r["model"], []).append(r["score"])
    return out


def table(results: list[dict], models=None) -> str:
    """The markdown table: task rows grouped by level, a column per model with our median and
    best over seeds (%), and the paper's score beside each model it has."""
    models = list(models or MODELS)
    g = grid(results)
    head = ["level", "task"]
    for m in models:
        head.append(LABELS[m])
        if any(m in p for p in PAPER.values()):
            head.append(f"{LABELS[m]} (paper)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task, cls in CHOMSKY_TASKS.items():
        row = [cls.chomsky_level, task]
        for m in models:
            scores = g.get(task, {}).get(m, [])
            if scores:
                med, best = 100 * statistics.median(scores), 100 * max(scores)
                cell = f"{med:.1f} ({best:.1f}, n={len(scores)})"
                row.append(f"**{cell}**" if best >= 100 * SOLVED else cell)
            else:
                row.append("-")
            if any(m in p for p in PAPER.values()):
                paper = PAPER.get(task, {}).get(m)
                row.append("-" if paper is None else f"{paper:.1f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def cmd_suite(args) -> int:
    """``ntm sweep --suite chomsky``: the grid at the budget the flags give (the suite's defaults for
    those left out), then the table, printed and saved as ``SWEEP_DIR/chomsky.md``."""
    from .options import UsageError

    cfg = SuiteConfig()
    if args.epochs is not None or args.steps_per_epoch is not None:
        cfg.steps = (args.epochs or 1) * (args.steps_per_epoch or cfg.steps)
    if args.batches is not None:
        cfg.batch_size = args.batches
    if args.learning_rate is not None:
        cfg.learning_rate = args.learning_rate
    first = args.first_seed or 0
    cfg.seeds = tuple(range(first, first + (args.seeds or len(cfg.seeds))))
    if args.values:
        try:
            cfg.test_lengths = tuple(sorted({int(v) for v in args.values.split(",") if v.strip()}))
        except ValueError:
            raise UsageError(f"--values must be comma-separated lengths, got {args.values!r}") from None
    if args.sequences is not None:
        cfg.test_sequences = args.sequences
    tasks = [args.task] if args.task else None
    models = None
    if args.model is not None:
        models = [m for m, (kind, _) in MODELS.items() if kind == args.model]
    root = Path(args.sweep_dir or "./ntm_sweep/chomsky")
    stored = root / "suite.json"
    if stored.is_file() and load_config(root) != cfg:
        raise UsageError(
            f"{root} holds a grid run at other settings ({stored}): give the same flags or another --sweep_dir"
        )
    run_suite(root, cfg, jobs=args.jobs or 2, tasks=tasks, models=models)
    text = table(load_results(root))
    (root / "chomsky.md").write_text(text + "\n")
    print(text)
    print(f"saved {root / 'chomsky.md'}")
    return 0


TABLE = ("<!-- table:begin -->", "<!-- table:end -->")


def collect(root: Path) -> dict:
    """Every scored cell of a grid directory, with the suite's settings: what the docs page is written from."""
    return {"suite": asdict(load_config(root)), "cells": load_results(root)}


def page(stored: dict, template: str) -> str:
    """The docs page: ``template`` (hand-written) with its table slot filled from ``stored`` (:func:`collect`)."""
    if TABLE[0] not in template or TABLE[1] not in template:
        raise ValueError(f"the page has no table slot ({TABLE[0]} ... {TABLE[1]})")
    cells = stored["cells"]
    done = sorted({(c["task"], c["model"]) for c in cells})
    seeds = sorted({c["seed"] for c in cells})
    lines = [
        TABLE[0],
        table(cells),
        "",
        f"{len(cells)} runs scored: {len(done)} task-model pairs of {len(CHOMSKY_TASKS) * len(MODELS)}, seeds "
        f"{', '.join(map(str, seeds)) or '-'}. Each cell: our median (best, n = seeds scored) in %; bold where the "
        f"best reaches {SOLVED:.0%}.",
        "",
        "Per seed (score in %, seed 0 / 1 / 2; training-range accuracy in brackets):",
        "",
        seed_table(cells),
        TABLE[1],
    ]
    start, end = template.index(TABLE[0]), template.index(TABLE[1]) + len(TABLE[1])
    return template[:start] + "\n".join(lines) + template[end:]


def seed_table(cells: list[dict]) -> str:
    """Every scored cell's score by seed, with its accuracy on the training range."""
    by = {(c["task"], c["model"], c["seed"]): c for c in cells}
    seeds = sorted({c["seed"] for c in cells})
    models = [m for m in MODELS if any(c["model"] == m for c in cells)]
    lines = ["| task | " + " | ".join(LABELS[m] for m in models) + " |", "|" + "---|" * (len(models) + 1)]
    for task in CHOMSKY_TASKS:
        row = []
        for m in models:
            got = [by.get((task, m, s)) for s in seeds]
            row.append(
                " / ".join(
                    "-" if c is None else f"{100 * c['score']:.1f} ({100 * c['training_range_accuracy']:.0f})"
                    for c in got
                )
            )
        if any(r.strip("-/ ") for r in row):
            lines.append(f"| {task} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m ntmkit.chomsky cell TASK MODEL SEED ROOT`` (one cell, the suite's settings from
    ``ROOT/suite.json``), ``table ROOT`` (print the table), ``collect ROOT OUT.json`` (store every
    scored cell) or ``page STORED.json PAGE.md`` (fill the page's table from the stored cells)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["cell"]:
        task, model, seed, root = argv[1], argv[2], int(argv[3]), Path(argv[4])
        cfg = load_config(root)
        torch.set_num_threads(1)
        result = run_cell(task, model, seed, root, cfg)
        print(json.dumps({k: v for k, v in result.items() if k != "accuracy_by_length"}))
        return 0 if "score" in result else 130
    if argv[:1] == ["table"]:
        print(table(load_results(Path(argv[1]))))
        return 0
    if argv[:1] == ["collect"]:
        Path(argv[2]).parent.mkdir(parents=True, exist_ok=True)
        Path(argv[2]).write_text(json.dumps(collect(Path(argv[1])), indent=1) + "\n")
        print(f"saved {argv[2]}")
        return 0
    if argv[:1] == ["page"]:
        target = Path(argv[2])
        target.write_text(page(json.loads(Path(argv[1]).read_text()), target.read_text()))
        print(f"wrote {target}")
        return 0
    print(main.__doc__)
    return 2


def load_config(root: Path) -> SuiteConfig:
    raw = json.loads((Path(root) / "suite.json").read_text())
    raw["train_lengths"] = tuple(raw["train_lengths"])
    raw["test_lengths"] = tuple(raw["test_lengths"])
    raw["seeds"] = tuple(raw["seeds"])
    return SuiteConfig(**raw)


if __name__ == "__main__":
    sys.exit(main())
