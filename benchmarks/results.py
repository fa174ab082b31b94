"""The results page, docs/results.md, with its pictures in docs/results/.

    python benchmarks/results.py            # redraw the page from the stored runs and the shipped models
    python benchmarks/results.py --train    # first train every task x model with `ntm sweep` (hours)

For every task it shows: learning curves of NTM (feed-forward controller), NTM (LSTM controller)
and the LSTM baseline, each the median of its seeds with the quartile band (from the sweeps'
sweep.json files, stored in benchmarks/results/sweeps/); the shipped model's generalisation
table and plot (``ntm evaluate``); a picture of its memory use (``ntm visualize``); and the
paper's reported numbers beside ours.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SWEEPS = ROOT / "benchmarks" / "results" / "sweeps"
PICTURES = ROOT / "docs" / "results"
PAGE = ROOT / "docs" / "results.md"
VARIANTS = {
    "ntm-ff": ["--controller", "feedforward"],
    "ntm-lstm": ["--controller", "lstm"],
    "lstm": ["--model", "lstm"],
    "dnc": ["--model", "dnc"],
    "dnc-changes": ["--model", "dnc", "--masked_lookup", "--deallocation", "--link_sharpness"],
}
LABELS = {
    "ntm-ff": "NTM, feed-forward controller",
    "ntm-lstm": "NTM, LSTM controller",
    "lstm": "LSTM baseline",
    "dnc": "DNC",
    "dnc-changes": "DNC, masking + de-allocation + sharpness",
}
COLORS = {
    "ntm-ff": "tab:blue",
    "ntm-lstm": "tab:orange",
    "lstm": "tab:gray",
    "dnc": "tab:green",
    "dnc-changes": "tab:red",
}
# The equal-budget comparison (--train): every model gets the same wall-clock budget per seed,
# two runs at a time (one per core, nothing else on the machine); a run that learns stops early.
SEEDS, MINUTES = 3, 3
# Further evaluations of the shipped models (flags for `ntm evaluate`).
EXTRA = {
    "copy": [["--memory_locations", "1024", "--values", "20,30,50,80,120,200,500,1000"]],
    "repeat_copy": [
        ["--axis", "repeats", "--values", "10,20", "--min_sequence", "10", "--max_sequence", "10"],
        ["--axis", "repeats", "--values", "10", "--min_sequence", "20", "--max_sequence", "20"],
        ["--axis", "repeats", "--values", "15", "--min_sequence", "15", "--max_sequence", "15"],
    ],
    "associative_recall": [],
    "ngrams": [],
    "priority_sort": [],
}
PAPER = {  # what the paper's figures show, in its unit (cost = cross-entropy bits per sequence)
    "copy": "both NTMs near 0 bits by about 100k sequences; LSTM about 0.5 bits from 600k. Lengths 10-50 "
    "copied with very few mistakes; a few local errors and one global error at 120",
    "repeat_copy": "solved; generalises to twice the length and to more repeats, but after the 11th repeat "
    "emits the end marker after every repeat",
    "associative_recall": "near 0 by about 30k episodes; NTM-FF nearly perfect up to 12 items, under 1 bit per "
    "sequence at 15 items; LSTM not at 0 after 1M",
    "ngrams": "NTM about 133.5-134 bits per 200-bit sequence against about 133 for the optimal estimator "
    "and 136 for the LSTM (so the NTM about 0.5-1 bit above the optimum)",
    "priority_sort": "NTM about 18-20 bits per sequence at 1M sequences, LSTM about 58",
}


# What the pictures and curves show, per task (no figures here: every number on the page is
# written from a stored JSON file).
NOTES = {
    "ngrams": "Estimators that count the last k bits as context spend more the shorter their context: the "
    "optimum needs all five previous bits, and a model reaches it only once it keeps counts per "
    "five-bit context.",
    "priority_sort": "The shipped NTM has a feed-forward controller (1 layer of 256 units) with 4 read and 4 write "
    "heads. It is seed 1 of the feed-forward run to the paper's budget below, trained on at the lower rate "
    "(Adam 1e-4) from 860,160 to 1,269,760 sequences and then given the same batch-128 polish (163,840 sequences, "
    "1,433,600 in all), chosen over the model shipped before (the NTM-LSTM seed 0, polished) on a separate fresh "
    "set of 4,000 sequences that the manifest's figures do not use; the manifest has its command. The longer run "
    "is one seed's, beyond the paper's budget, so the per-seed table below, the same recipe for every seed, stops "
    "at 1,024,000.",
    "associative_recall": "In the picture the read head of the shipped model (LSTM controller) jumps by content "
    "to the queried item when the query ends, moves on by one item and reads out the next one.\n\n"
    "Why the feed-forward machine stalls on the 2-item plateau, from two seeds of the run to 800,000 sequences "
    "below (`ntm visualize --checkpoint_dir <seed>/ck --min_items 6 --max_items 6`): the seed that learned "
    "(seed 0, left) writes one row per time step from its first input to its last, so every item lies in its "
    "own rows and the read head finds the query by content and reads on; a seed on the plateau (seed 1, right) "
    "makes its write weighting jump at every item delimiter and split over a few rows that earlier items "
    "used, so the items overlap in memory and the read head, finding the query, reads a blend. "
    "With two items no look-up is needed (the query is always "
    "the first item), which is the case the plateau solves.\n\n"
    "| learned (seed 0) | on the plateau (seed 1) |\n|---|---|\n"
    "| ![feed-forward recall, learned](results/ar_ff_learned_seed0.png) | "
    "![feed-forward recall, plateau](results/ar_ff_plateau_seed1.png) |",
}
MANIFEST = ROOT / "src" / "ntmkit" / "pretrained" / "manifest.json"
# Runs to the paper's budget (`ntm sweep` summaries, TASK-VARIANT.json; --collect_long DIR copies
# them from DIR/TASK/VARIANT): the paper's x axis, up to 10^6 sequences.
LONG = ROOT / "benchmarks" / "results" / "long"
# Long runs whose recipe made a model once shipped, on another seed: task -> (variant, seed, file).
# That seed's held-out figures come from its manifest entry, kept in the file (same 1,000-sequence
# check), and join the median.
LONG_SHIPPED = {"ngrams": ("ntm-lstm", 0, LONG / "ngrams-ntm-lstm-seed0.json")}
# Points read from the paper's learning curves (sequences, cost), drawn as markers: (label, points).
PAPER_POINTS = {
    "priority_sort": [
        ("paper: NTM-FF, read from Fig. 17", [(200_000, 55.0), (400_000, 30.0), (600_000, 22.0), (1_000_000, 19.0)]),
        ("paper: NTM-LSTM, read from Fig. 17", [(200_000, 45.0), (400_000, 25.0), (800_000, 18.0), (1_000_000, 17.0)]),
    ],
}
# What the paper's learning-curve figures show, as reference lines in each task's cost unit:
# (label, level). Read from the figures (approximate).
PAPER_LEVELS = {
    "copy": [("paper: both NTMs near 0 by ~100k (Fig. 3)", 0.0)],
    "repeat_copy": [("paper: both NTMs near 0 by ~200k (Fig. 7)", 0.0)],
    "associative_recall": [("paper: both NTMs near 0 by ~30k (Fig. 10)", 0.0)],
    "ngrams": [
        ("paper: NTMs ~0.5-1 bit above the optimum (Fig. 13)", 0.75),
        ("paper: LSTM ~3 bits above the optimum (Fig. 13)", 3.0),
    ],
    "priority_sort": [
        ("paper: NTM-LSTM ~17, NTM-FF ~19 at 1M (Fig. 17)", 18.0),
        ("paper: LSTM ~47-58 at 1M (Fig. 17)", 55.0),
    ],
}


def shipped_note(task: str) -> str:
    """The shipped model against its target and the paper, from manifest.json (``python -m
    ntmkit.pretrained record``)."""
    entry = (_load(MANIFEST) or {}).get(task)
    if not entry or "cross_entropy_bits" not in entry:
        return ""
    met = "met" if entry["meets_target"] else "not met"
    return (
        f"The shipped model (`{entry['command']}`, {entry['sequences_trained']:,} sequences) scores "
        f"{entry['cross_entropy_bits']:.4g} cross-entropy bits and {entry['bit_errors']:.4g} wrong bits per sequence "
        f"on {entry.get('sequences', 1000):,} fresh sequences of its training range; its cost "
        f"({entry['cost_name']}) is {entry['training_range_cost']:.4g}"
        + (
            ""
            if entry.get("cost_on_another_set") is None
            else f" ({entry['cost_on_another_set']:.4g} on a second fresh set)"
        )
        + f" against the target of < {entry['target']:g}: {met}."
        + (f" {entry['note']}" if entry.get("note") else "")
    )


def equal_budget_note(task: str) -> str:
    """The models after the same budget, from the stored sweeps."""
    parts = []
    for variant in VARIANTS:
        sweep = _load(SWEEPS / f"{task}-{variant}.json")
        if not sweep:
            continue
        ends = [_end(s, "bits") for s in sweep["seeds"]]
        known = [e for e in ends if e is not None]
        median = sorted(known)[len(known) // 2] if known else None
        parts.append(
            f"{LABELS[variant]}: learned {sweep['learned']}"
            + ("" if median is None else f", median {median:.3g} cross-entropy bits per sequence at the end")
            + (f" ({sweep['note']})" if sweep.get("note") else "")
        )
    if not parts:
        return ""
    return f"After {MINUTES} minutes per seed ({SEEDS} seeds each): " + "; ".join(parts) + "."


def _end(seed: dict, key: str) -> float | None:
    """A seed's figure at its end: the stop test's if it ran, else the mean of the last logged batches."""
    final = seed.get(f"final_{key}") if key != "cost" else seed.get("final_cost")
    return final if final is not None else seed.get(f"last_training_{key}")


GENERALISATION = ROOT / "benchmarks" / "results" / "generalisation"


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _errors_by_value(report: dict) -> list[tuple[int, float, float]]:
    axis = report["axis"]
    return [(r[axis], r["bit_errors"], r.get("wrong_share", float("nan"))) for r in report["rows"]]


def copy_note() -> str:
    """What the shipped copy model and the default recipe's seeds do beyond the training range,
    written from the evaluate and sweep JSON files (never typed by hand)."""
    parts = []
    own = _load(PICTURES / "evaluate_copy_length.json")
    if own:
        rows = _errors_by_value(own)
        wrong = [(v, e, w) for v, e, w in rows if e > 0]
        lo, hi = rows[0][0], rows[-1][0]
        if not wrong:
            parts.append(
                f"With its own {own['memory_locations']} locations the shipped model makes no wrong bit at any "
                f"length {lo}-{hi} ({own['sequences_per_value']} fresh sequences at each of the {len(rows)} lengths)."
            )
        else:
            worst = max(wrong, key=lambda r: r[1])
            parts.append(
                f"With its own {own['memory_locations']} locations the shipped model is perfect at "
                f"{len(rows) - len(wrong)} of the {len(rows)} lengths {lo}-{hi} ({own['sequences_per_value']} fresh "
                f"sequences each); the first length with a wrong bit is {wrong[0][0]}, and the worst is {worst[0]} "
                f"with {worst[1]:.3g} wrong bits per sequence ({worst[2]:.3%} of the output bits)."
            )
    big = _load(PICTURES / "evaluate_copy_length_N1024.json")
    if big:
        rows = _errors_by_value(big)
        parts.append(
            f"With the memory enlarged to {big['memory_locations']} locations: "
            + ", ".join(f"{e:.3g} at length {v} ({w:.3%} of bits)" for v, e, w in rows)
            + f" (wrong bits per sequence, {big['sequences_per_value']} sequences each)."
        )
    for path in (GENERALISATION / "focus-gate-polish.json", GENERALISATION / "default-seeds5-9.json"):
        if not path.exists():
            continue
        sweep = json.loads(path.read_text())
        gens = [s.get("generalisation") for s in sweep["seeds"]]
        evaluated = [g for g in gens if g]
        if not evaluated:
            continue
        perfect = [g for g in evaluated if all(e == 0 for e in g["bit_errors"].values())]
        values = list(evaluated[0]["bit_errors"])
        top = values[-1]
        at_top = ", ".join(f"{g['bit_errors'][top]:.3g}" for g in evaluated)
        parts.append(
            f"`{sweep['command']}` (seeds {sweep['seeds'][0]['seed']}-{sweep['seeds'][-1]['seed']}): learned "
            f"{sweep['learned']}, a median of {sweep['median_sequences_to_learn']:,.0f} sequences to learn; "
            f"evaluated at lengths {values[0]}-{top} ({len(values)} values, "
            f"{evaluated[0]['sequences_per_value']} fresh sequences each), {len(perfect)} of {len(evaluated)} seeds "
            f"make no wrong bit at any of them; wrong bits per sequence at {top}, per seed: {at_top}."
        )
    return " ".join(parts)


def attempts_note(folder: str) -> str:
    """Recipe attempts, one sweep JSON file each in benchmarks/results/FOLDER/."""
    parts = []
    for path in (
        sorted((ROOT / "benchmarks" / "results" / folder).glob("*.json"))
        if (ROOT / "benchmarks" / "results" / folder).is_dir()
        else []
    ):
        sweep = json.loads(path.read_text())
        costs = ", ".join(
            f"{s['final_cost']:.3g}" if s.get("final_cost") is not None else f"~{s.get('last_training_cost', 0):.3g}"
            for s in sweep["seeds"]
        )
        seqs = ", ".join(
            f"{s.get('total_sequences') or s.get('sequences') or s.get('logged_sequences') or 0:,}"
            for s in sweep["seeds"]
        )
        secs = ", ".join(
            f"{t:,.0f} s" if (t := s.get("total_seconds") or s.get("seconds")) else "seconds not recorded"
            for s in sweep["seeds"]
        )
        gens = [s["generalisation"] for s in sweep["seeds"] if s.get("generalisation")]
        beyond = ""
        if gens:
            values = list(gens[0]["bit_errors"])
            beyond = f"; wrong bits per sequence at {gens[0]['axis']} {values[-1]}, per seed: " + ", ".join(
                f"{g['bit_errors'][values[-1]]:.3g}" for g in gens
            )
            if all(g.get("cost") and g["cost"] != g["bit_errors"] for g in gens):
                beyond += (
                    f"; {sweep['cost']} on {gens[0]['sequences_per_value']:,} fresh sequences at {gens[0]['axis']} "
                    f"{values[-1]}, per seed: " + ", ".join(f"{g['cost'][values[-1]]:.4g}" for g in gens)
                )
        parts.append(
            f"`{sweep['command']}`: learned {sweep['learned']}, {seqs} sequences ({secs} of training), cost at the "
            f"end {costs}{beyond}."
        )
    return " ".join(parts)


def repeat_copy_note() -> str:
    return attempts_note("repeat_copy")


def associative_recall_note() -> str:
    return attempts_note("associative_recall")


def priority_sort_note() -> str:
    return attempts_note("priority_sort")


def ngrams_note() -> str:
    return attempts_note("ngrams")


# Recall attempts at one sequence per update compared along their curves: (file stem, what differs).
RECALL_BATCH1 = [
    ("06-ff-paper-preset-batch1", "RMSProp*, focused start, gate bias -2"),
    ("11-ff-4heads-256-batch1-lr1e-4", "Adam, neutral start"),
    ("12-ff-closed-layout-4heads-256-batch1-adam1e-4", "Adam, neutral start, closed layout"),
    ("13-ff-closed-layout-4heads-256-batch1-rmsprop1e-4", "RMSProp*, neutral start, closed layout"),
    ("14-ff-open-layout-4heads-256-batch1-rmsprop1e-4", "RMSProp*, neutral start"),
    ("15-ff-open-layout-4heads-256-batch1-rmsprop-then-3e-5", "RMSProp*, neutral start; lr 3e-5 after the plateau"),
    ("16-ff-open-layout-4heads-256-batch1-reproduction-recipe", "PyTorch's RMSProp, linear key and add, random memory"),
    ("17-ff-open-layout-4heads-256-batch1-torch-rmsprop", "PyTorch's RMSProp, neutral start"),
    ("18-ff-open-layout-4heads-256-batch1-rmsprop-random-memory", "RMSProp*, neutral start, random memory"),
    ("19-ff-open-layout-4heads-256-batch1-rmsprop-per-sequence", "RMSProp on the cost per sequence, neutral start"),
    ("20-ff-batch1-then-batch32-polish", "15, then a batch-32 polish (RMSProp on the cost per sequence)"),
    ("21-ff-polish-then-batch128-full-memory", "20, then a batch-128 polish with the whole memory at lr 3e-5 to 3e-6"),
    (
        "22-ff-recipe-again-batch1-then-batch32",
        "20's recipe again from the start: SGD at batch 1 to 60,000, then the polish",
    ),
    ("23-ff-one-write-head-batch1-then-batch32", "22 with one write head (4 read heads)"),
    ("24-ff-one-write-head-then-batch128-full-memory", "23, then 21's batch-128 polish with the whole memory"),
    ("25-ff-one-write-head-then-batch256-polish", "24, then a batch-256 polish at lr 1e-5 to 3e-6"),
    (
        "26-ff-one-write-head-whole-memory-from-the-start",
        "24 with the whole memory in every phase (`--memory_sizes full`)",
    ),
    ("27-ff-one-write-head-then-batch256-polish-on-6-items", "25's polish on 6 items only (`--min_items 6`)"),
    ("30-ff-one-write-head-tape-start", "24 with the heads starting as a tape (`--shift_bias 3`)"),
    ("32-ff-tape-start-then-batch256-polish-on-6-items", "30, then 27's polish on 6 items"),
    ("33-ff-tape-start-read-before-write", "30 with the reads before the write (`--read_before_write`)"),
    ("34-ff-read-before-write-then-batch256-polish-on-6-items", "33, then 27's polish on 6 items"),
    ("34b-ff-read-before-write-then-batch256-polish-second-fresh-set", "34 on a second fresh set (`--seed 4` to `7`)"),
]

# Graves' RMSProp before commit 0e44aea (rows marked *): see RMSPROP_NOTE.
RMSPROP_NOTE = (
    "RMSProp* marks runs of Graves' RMSProp before commit 0e44aea. Its eps (1e-4) sits inside the square "
    "root, so the update depends on the gradient's scale; Graves differentiated a loss summed over the "
    "sequence, while a training step here differentiates the mean over the target bits, whose gradient is "
    "smaller by the target bits per sequence. In those runs' checkpoints the gradients' variance n - m^2 "
    "was 1e-14-1e-6 (10-99th percentiles) against eps = 1e-4, so the update was SGD with momentum at 100 "
    "times the learning rate, not RMSProp. Since 0e44aea the optimiser runs on the gradient of the cost "
    "per sequence (`GravesRMSprop`, `grad_scale`), as Graves did; attempt 19 is attempt 14 with that alone."
)


def curve_at(sweep: dict, at: list[int]) -> list[str]:
    """The median smoothed training cost of ``sweep`` at each of ``at`` sequences; '-' past the end of
    its shortest seed (beyond it the median would mix in seeds holding their last value)."""
    import numpy as np

    c = sweep.get("curve_sequences")
    ends = [s.get("logged_sequences") or s.get("total_sequences") or 0 for s in sweep["seeds"]]
    if not c:
        return ["-"] * len(at)
    return [f"{float(np.interp(x, c['x'], c['median'])):.2g}" if x <= min(ends) else "-" for x in at]


def recall_batch1_lines() -> list[str]:
    """Feed-forward recall at batch 1 (4 + 4 heads, one layer of 256 units): one row per attempt."""
    folder = ROOT / "benchmarks" / "results" / "associative_recall"
    at = [5_000, 10_000, 15_000, 20_000, 30_000, 40_000, 60_000, 100_000]
    attempts = [
        (stem, what, json.loads(path.read_text()))
        for stem, what in RECALL_BATCH1
        if (path := folder / f"{stem}.json").is_file()
    ]
    rows = []
    for stem, what, sweep in attempts:
        seeds = sweep["seeds"]
        held = ", ".join(f"{s['final_cost']:.3g}" if s.get("final_cost") is not None else "-" for s in seeds)
        seen = ", ".join(f"{s.get('logged_sequences') or s.get('total_sequences') or 0:,}" for s in seeds)
        cells = " | ".join(curve_at(sweep, at))
        rows.append(f"| {what} ({stem[:2]}) | {len(seeds)} | {seen} | {cells} | {held} |")
    if not rows:
        return []
    return [*recall_batch1_table(rows, at), *recall_batch1_generalisation(attempts)]


def recall_batch1_table(rows: list[str], at: list[int]) -> list[str]:
    """The attempts' table (one row each, from ``recall_batch1_lines``) with its heading and prose."""
    return [
        "Feed-forward recall at one sequence per update, 4 read + 4 write heads and one layer of 256 units, lr 1e-4 "
        "(the paper's settings for it) unless the row says otherwise; what each difference changed, on the median "
        "over seeds of the smoothed training cost (bit errors per sequence; about 6.4 is the 2-item plateau) at "
        "the sequences shown ('-': past the shortest seed's end), and each seed's last held-out check "
        "(bit errors per sequence, 1,000 fresh sequences; '-': a run stopped before its first). The numbers in "
        "brackets name the attempt files above. " + RMSPROP_NOTE,
        "",
        "| attempt | seeds | sequences per seed | "
        + " | ".join(f"{x // 1000}k" for x in at)
        + " | last held-out check |",
        "|---|---|---|" + "---|" * len(at) + "---|",
        *rows,
        "",
    ]


def recall_batch1_generalisation(attempts: list[tuple[str, str, dict]]) -> list[str]:
    """Each evaluated seed of the batch-1 attempts (stem, label, stored sweep) against the number of
    items (``ntm evaluate``)."""
    rows, levels = [], None
    for stem, what, sweep in attempts:
        for seed in sweep["seeds"]:
            gen = seed.get("generalisation")
            if not gen or gen["axis"] != "items":
                continue
            levels = levels or list(gen["bit_errors"])
            cells = " | ".join(f"{gen['bit_errors'][v]:.3g}" if v in gen["bit_errors"] else "-" for v in levels)
            seen = seed.get("logged_sequences") or seed.get("total_sequences") or 0
            scored = gen.get("sequences_per_value") or 1000
            rows.append(f"| {what} ({stem[:2]}) | {seed['seed']} | {seen:,} | {scored:,} | {cells} |")
    if not rows or levels is None:
        return []
    return [
        "The same seeds where their checkpoints were evaluated (`ntm evaluate --values "
        + ",".join(levels)
        + " --sequences 1000`, on one fresh set, or pooled over the sets `--seed 0` to `--seed 3` where the "
        "row says 4,000; bit errors per sequence on fresh sequences of each number of items; 2-6 is "
        "the training range). The paper's feed-forward NTM: nearly perfect up to 12 items, under 1 bit "
        "per sequence at 15:",
        "",
        "| attempt | seed | sequences | scored per value | " + " | ".join(f"{v} items" for v in levels) + " |",
        "|---|---|---|---|" + "---|" * len(levels),
        *rows,
        "",
    ]


GENERATED = {
    "copy": copy_note,
    "repeat_copy": repeat_copy_note,
    "associative_recall": associative_recall_note,
    "priority_sort": priority_sort_note,
    "ngrams": ngrams_note,
}


def ntm(*args: str, check: bool = True) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([sys.executable, "-m", "ntmkit", *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if check and r.returncode != 0:
        raise SystemExit(f"ntm {' '.join(args)} failed:\n{r.stderr[-2000:]}")
    return r.stdout


def sweep_command(task: str, variant: str) -> str:
    return " ".join(["ntm sweep --task", task, *VARIANTS[variant], f"--seeds {SEEDS} --max_minutes {MINUTES}"])


def train_all(runs_dir: Path, tasks: list[str]) -> None:
    """The equal-budget sweeps: every task x model, SEEDS seeds of MINUTES each, two at a time."""
    for task in tasks:
        for variant, flags in VARIANTS.items():
            out = runs_dir / task / variant
            print(f"sweep {task} {variant}: {SEEDS} seeds x {MINUTES} min", flush=True)
            ntm(
                "sweep",
                "--task",
                task,
                *flags,
                "--seeds",
                str(SEEDS),
                "--jobs",
                "2",
                "--max_minutes",
                str(MINUTES),
                "--no-evaluate",
                "--sweep_dir",
                str(out),
                check=False,
            )


def collect(runs_dir: Path, into: Path = SWEEPS, command=None) -> None:
    """Summarise every sweep under ``runs_dir`` (``TASK/VARIANT/seed-K``) into ``into``."""
    from ntmkit.sweep import summarise
    from ntmkit.tasks import TASKS

    for variant_dir in sorted(runs_dir.glob("*/*")):
        task, variant = variant_dir.parent.name, variant_dir.name
        seeds = sorted(int(d.name.split("-")[1]) for d in variant_dir.glob("seed-*"))
        if task not in TASKS or variant not in VARIANTS or not seeds:
            continue
        stored = _load(variant_dir / "sweep.json") or {}  # command.txt, if there, says more (e.g. a resumed run)
        written = (variant_dir / "command.txt").read_text().strip() if (variant_dir / "command.txt").exists() else ""
        how = sweep_command(task, variant) if command is None else written or stored.get("command", "")
        summarise(variant_dir, seeds, task, TASKS[task].cost_name, command=how)
        into.mkdir(parents=True, exist_ok=True)
        shutil.copy(variant_dir / "sweep.json", into / f"{task}-{variant}.json")
        print(f"collected {task} {variant}: seeds {seeds}")


def curves_section(task: str) -> list[str]:
    """The models' learning curves (cross-entropy bits per sequence, the paper's unit) against
    sequences and against wall seconds, and a table of what each seed reached."""
    import numpy as np

    from ntmkit import plots

    rows, panels = [], {"sequences": {}, "seconds": {}}
    for variant in VARIANTS:
        data = _load(SWEEPS / f"{task}-{variant}.json")
        if not data:
            continue
        rows.append({"variant": variant, **data})
        for xkey in panels:
            c = data.get(f"curve_bits_{xkey}")
            if c:
                panels[xkey][LABELS[variant]] = tuple(np.array(c[k]) for k in ("x", "median", "q1", "q3"))
    if not rows:
        return []
    if panels["sequences"]:
        plots.compare_panels(
            [("sequences seen", panels["sequences"]), ("wall seconds", panels["seconds"])],
            PICTURES / f"{task}_curves.png",
            ylabel="cross-entropy bits per sequence",
            title=f"{task}: median of {SEEDS} seeds, quartiles shaded; {MINUTES} minutes per seed for every model",
        )
    lines = [
        f"Learning curves with equal budgets: {MINUTES} minutes of wall-clock time per seed for every model, "
        f"{SEEDS} seeds, two runs at a time (one core each), y = cross-entropy bits per sequence on the training "
        "batches (the paper's unit), smoothed:",
        "",
        f"![{task} learning curves](results/{task}_curves.png)",
        "",
        "| model | learned | median sequences to learn | sequences in the budget (median) | cross-entropy bits per "
        "sequence at the end, per seed | wrong bits per sequence at the end, per seed | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        med = r["median_sequences_to_learn"]
        seen = sorted(s.get("total_sequences") or 0 for s in r["seeds"])[len(r["seeds"]) // 2]

        def ends(key: str, seeds=r["seeds"]) -> str:
            return ", ".join(
                "-"
                if _end(s, key) is None
                else ("" if s.get(f"final_{key}") is not None else "~") + f"{_end(s, key):.3g}"
                for s in seeds
            )

        lines.append(
            f"| {LABELS[r['variant']]} | {r['learned']} | {'-' if med is None else f'{med:,.0f}'} | {seen:,} | "
            f"{ends('bits')} | {ends('bit_errors')} | `{r.get('command', '')}` |"
        )
    lines += ["", "(~: the mean of the last logged training batches; otherwise the held-out stop test.)", ""]
    return lines


def paper_axis_section(task: str) -> list[str]:
    """The long runs on the paper's axis: the task's cost against sequences seen (log scale), median
    and quartiles over the seeds run, the paper's levels as reference lines, and a per-seed table."""
    import matplotlib.pyplot as plt

    from ntmkit import plots
    from ntmkit.tasks import TASKS

    runs = {v: d for v in VARIANTS if (d := _load(LONG / f"{task}-{v}.json")) and d.get("curve_logx_sequences")}
    if not runs:
        return []
    cost_name = TASKS[task].cost_name
    # the task's cost, cross-entropy bits (when that is not the cost) and wrong bits, per sequence
    columns, keys = [cost_name], ["final_cost"]
    if cost_name != "cross-entropy bits per sequence":
        columns, keys = [*columns, "cross-entropy bits per sequence"], [*keys, "final_bits"]
    columns, keys = [*columns, "wrong bits per sequence"], [*keys, "final_bit_errors"]
    held_out_unit = " and ".join(columns)
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = COLORS
    for variant, data in runs.items():
        c = data["curve_logx_sequences"]
        n = len(data["seeds"])
        ax.fill_between(c["x"], c["q1"], c["q3"], alpha=0.2, color=colors[variant])
        ax.plot(c["x"], c["median"], color=colors[variant], label=f"{LABELS[variant]} ({n} seed{'s' * (n > 1)})")
    for (label, level), style in zip(PAPER_LEVELS.get(task, []), ("--", ":")):
        ax.axhline(level, color="black", linestyle=style, linewidth=1, label=label)
    for (label, points), marker in zip(PAPER_POINTS.get(task, []), ("^", "s")):
        ax.plot(*zip(*points), linestyle="none", marker=marker, color="black", fillstyle="none", label=label)
    ax.set_xscale("log")
    ax.set_xlim(right=max(1e6, max(max(d["curve_logx_sequences"]["x"]) for d in runs.values())))
    ax.set_xlabel("sequences seen (the paper's axis, log scale)")
    ax.set_ylabel(cost_name)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title(f"{task}: training batches, smoothed; median and quartiles over seeds", fontsize=9)
    plots._save(fig, PICTURES / f"{task}_paper_axis.png")
    lines = [
        f"Runs to the paper's budget (x: sequences seen, up to the paper's 10^6; y: {cost_name} on the "
        "training batches, smoothed; the paper's levels as reference lines):",
        "",
        f"![{task} on the paper's axis](results/{task}_paper_axis.png)",
        "",
        f"Each seed's held-out check at its end: {held_out_unit} on 1,000 fresh sequences of the training range "
        "that no stop rule or selection saw (`final_eval` in the run's summary; '-': a run still going, or one that "
        "never came within ten times its target, where training makes no held-out check); "
        "the last column is the mean of the last logged training batches.",
        "",
        f"| model | seed | sequences | {' | '.join(f'held-out {c}' for c in columns)} | {cost_name} on the last "
        "training batches |",
        "|---|---|---|" + "---|" * len(columns) + "---|",
    ]
    commands = []
    for variant, data in runs.items():
        # a summary at least as far as the log: the run ended there (a running seed logs past its old summary)
        finished = [s for s in data["seeds"] if (s.get("total_sequences") or 0) >= (s.get("logged_sequences") or 0)]
        for seed in data["seeds"]:
            held = [_fmt(seed.get(k)) if seed in finished else "-" for k in keys]
            lines.append(
                f"| {LABELS[variant]} | {seed['seed']} | {seed.get('logged_sequences') or 0:,} | {' | '.join(held)} | "
                f"{seed['last_training_cost']:.4g} |"
            )
        # a median only over every seed: one without a held-out figure (still running, or a run that never
        # came near its target, whose summary has no held-out check) leaves it out
        held_out = [s["final_cost"] for s in finished if s.get("final_cost") is not None]
        complete = len(held_out) == len(data["seeds"])
        shipped = LONG_SHIPPED.get(task)
        if shipped and shipped[0] == variant and all(s["seed"] != shipped[1] for s in data["seeds"]):
            # a model once shipped is another seed of this recipe: its manifest figures (1,000 fresh sequences)
            entry = _load(shipped[2]) or {}
            figures = {"final_cost": entry["training_range_cost"], "final_bits": entry["cross_entropy_bits"]}
            figures["final_bit_errors"] = entry["bit_errors"]
            lines.append(
                f"| {LABELS[variant]} | {shipped[1]} (a model once shipped; its curve was not kept) | "
                f"{entry['sequences_trained']:,} | {' | '.join(_fmt(figures[k]) for k in keys)} | - |"
            )
            held_out.append(entry["training_range_cost"])
        if complete and len(held_out) > 1:
            lines.append(
                f"| {LABELS[variant]} | median of {len(held_out)} | | **{_median(held_out):.4g}** (range "
                f"{min(held_out):.4g}-{max(held_out):.4g}) |" + " |" * len(columns)
            )
        commands.append(f"- {LABELS[variant]}: `{data.get('command', '')}`")
    lines += ["", "Commands:", "", *commands]
    lines += ["", f"(`{LONG.relative_to(ROOT)}/{task}-*.json`; the runs resume from their directories.)", ""]
    return lines


ANALYSES = ROOT / "benchmarks" / "results" / "analysis"


def sort_analysis_section(task: str) -> list[str]:
    """Where the shipped priority-sort model's cost goes (benchmarks/priority_sort_analysis.py)."""
    data = _load(ANALYSES / f"{task}.json") if task == "priority_sort" else None
    if data is None:
        return []
    heads = data["write_heads"]
    best = max(range(len(heads)), key=lambda h: abs(heads[h]["spearman"]))
    head = heads[best]
    readers = data.get("read_heads") or []
    if not readers:
        return []  # an analysis from before the read heads were measured: run the script again
    reader = max(range(len(readers)), key=lambda h: readers[h]["near_hits_by_write_head"][best])
    close = [r for r in data["by_gap"] if r["gap_to"] <= 0.02]
    far = [r for r in data["by_gap"] if r["gap_from"] >= 0.05]
    share = {k: sum(r[k] for r in close) for k in ("share_of_ranks", "share_of_cost")}
    far_share = {k: sum(r[k] for r in far) for k in ("share_of_ranks", "share_of_cost")}
    span = 2 * abs(head["rows_per_unit_priority"])
    lines = [
        f"Where the shipped model's cost goes (`{data['command']}`: {data['sequences']:,} fresh sequences, "
        f"{data['cost']:.2f} cross-entropy bits per sequence on them). It sorts by where it writes, as the paper "
        f"supposed its NTM did (section 4.5). Write head {best} puts each item that is output on a row set by its "
        f"priority (Spearman {head['spearman']:.3f} over a sequence's items; rows read on the circle, since shifts "
        f"wrap around the memory): {abs(head['rows_per_unit_priority']):.1f} rows per unit of priority, so the "
        f"whole range [-1, 1] spans about {span:.0f} of the memory's rows, with {head['scatter_rows']:.2f} rows "
        f"of scatter about that line. Read head {reader} then takes the rows in turn: its peak row follows the "
        f"output rank with Spearman {readers[reader]['rank_spearman']:.3f}, and it lies within one row of where "
        f"write head {best} wrote that rank's item at {readers[reader]['near_hits_by_write_head'][best]:.0%} of "
        f"the output steps (on that very row at {readers[reader]['hits_by_write_head'][best]:.0%})."
        " The cost falls on close calls: the output ranks whose priority lies within "
        f"0.02 of a neighbour's ({share['share_of_ranks']:.0%} of ranks) carry {share['share_of_cost']:.0%} of "
        f"it, those more than 0.05 from both neighbours ({far_share['share_of_ranks']:.0%}) "
        f"{far_share['share_of_cost']:.1%}. Two items 0.02 apart in priority are written "
        f"{0.02 * abs(head['rows_per_unit_priority']):.1f} rows apart.",
        "",
        "| priority gap to the nearer neighbour | share of output ranks | cross-entropy bits per rank | "
        "share of the cost |",
        "|---|---|---|---|",
    ]
    for r in data["by_gap"]:
        lines.append(
            f"| {r['gap_from']:g}-{r['gap_to']:g} | {r['share_of_ranks']:.1%} | {_fmt(r['bits_per_rank'])} | "
            f"{r['share_of_cost']:.1%} |"
        )
    return [*lines, ""]


def ngrams_analysis_section(task: str) -> list[str]:
    """Where the shipped N-grams model's excess over the optimum falls (benchmarks/ngrams_analysis.py)."""
    data = _load(ANALYSES / f"{task}.json") if task == "ngrams" else None
    if data is None:
        return []
    total = data["excess_per_sequence"]
    late = sum(r["excess_per_sequence"] for r in data["by_window"] if r["steps_from"] >= 100)
    early = [r for r in data["by_window"] if r["steps_to"] <= 25]
    windows = data["by_window"]
    thin = [r["excess_per_step"] for r in data["by_times_seen"] if not r["or_more"] and r["excess_per_step"]]
    many = data["by_times_seen"][-1]
    lines = [
        f"Where the shipped model's excess falls (`{data['command']}`: {data['sequences']:,} fresh sequences, "
        f"{total:.3f} bits per sequence above the optimal estimator on them). It grows along the sequence: the "
        f"first {early[-1]['steps_to']} steps carry {sum(r['excess_per_sequence'] for r in early):.3f} bits, "
        f"steps 100-200 carry {late:.3f} ({late / total:.0%}); per step it rises from "
        f"{windows[0]['excess_per_step']:.4f} in the first {windows[0]['steps_to']} steps to "
        f"{windows[-1]['excess_per_step']:.4f} in the last {windows[-1]['steps_to'] - windows[-1]['steps_from']}. "
        f"Per step it is about the same ({min(thin):.4f}-{max(thin):.4f}) for contexts that came 0 to "
        f"{len(thin) - 1} times before, and {many['excess_per_step']:.4f} where it came {many['seen']} times or "
        "more.",
        *_lookup_lines(data),
        "",
        "| time steps | bits above the optimum per sequence | per step |",
        "|---|---|---|",
        *(
            f"| {r['steps_from']}-{r['steps_to']} | {r['excess_per_sequence']:.3f} | {r['excess_per_step']:.4f} |"
            for r in data["by_window"]
        ),
        "",
        "| times the context came before | share of steps | bits above the optimum per sequence | per step |",
        "|---|---|---|---|",
        *(
            f"| {r['seen']}{' or more' if r['or_more'] else ''} | {r['share_of_steps']:.1%} | "
            f"{r['excess_per_sequence']:.3f} | {_fmt(r['excess_per_step'])} |"
            for r in data["by_times_seen"]
        ),
    ]
    return [*lines, ""]


def _lookup_lines(data: dict) -> list[str]:
    """The read head's table of contexts, where the N-grams analysis measured it."""
    look, reads, writes = data.get("read_lookup"), data.get("read_focus"), data.get("write_focus")
    if not (look and reads and writes):
        return []
    total = look["excess_shared_per_sequence"] + look["excess_own_per_sequence"]
    old = {r["bit"]: r["share_of_pairs"] for r in look["pairs_by_newest_difference"]}
    oldest = list(old)[-2:]  # the rows run from bit t-1 to the oldest
    # the limit the figures point to: contexts crowded into shared rows, or look-ups that spread
    shared_limit = look["excess_shared_per_sequence"] > 0.5 * total
    full = ", but not a full one" if look["contexts_per_row"] > 1.25 else ", nearly a full one"
    spread = reads[-1]["peak"][0] / reads[1]["peak"][0]
    focus = "hardly changes" if spread > 0.9 else "spreads"
    return [
        "",
        f"Where that comes from: the read head keeps a table, one row per context{full}. At each "
        f"step the row with its largest weight is its context's row on {look['agreement']:.1%} of steps (a "
        f"context's row: the one it is read from most in the sequence); the {look['contexts']:.1f} contexts "
        f"met in a sequence (of {2 ** len(old)}) get {look['rows']:.1f} rows, "
        f"{look['contexts_per_row']:.2f} per row. Two contexts that share a row differ only in their two oldest "
        f"bits: for {old[oldest[0]] + old[oldest[1]]:.1%} "
        f"of such pairs the newest bit that differs is {oldest[0]} or {oldest[1]}. The steps whose context shares "
        f"its row ({look['shared_share_of_steps']:.0%} of steps) carry {look['excess_shared_per_sequence']:.3f} "
        f"of the {total:.3f} bits above the optimum ({look['excess_per_step_shared']:.5f} per step against "
        f"{look['excess_per_step_own']:.5f} on the others). The heads' focus {focus} along the sequence: "
        f"the read head's largest weight is {reads[1]['peak'][0]:.3f} in steps {reads[1]['steps_from']}-"
        f"{reads[1]['steps_to']} and {reads[-1]['peak'][0]:.3f} in steps {reads[-1]['steps_from']}-"
        f"{reads[-1]['steps_to']}; the write head's {writes[1]['peak'][0]:.3f} and {writes[-1]['peak'][0]:.3f}. "
        + (
            "That points to the size of the table as the limit, not to blurred look-ups or the arithmetic of small "
            "counts: the excess grows along the sequence as the counts of contexts told apart only in part drift "
            "apart."
            if shared_limit
            else "So the table's size is not the limit here: most of the excess falls on contexts with a row of "
            "their own, and it grows along the sequence as the focus spreads."
        ),
    ]


# Recall analyses of feed-forward machines (benchmarks/recall_analysis.py), one JSON file per seed:
# analysis/associative_recall-ff-NN-seedS.json for attempt NN.
RECALL_ANALYSES = {
    "22": "attempt 22 (4 write heads)",
    "23": "attempt 23 (1 write head)",
    "24": "attempt 24 (1 write head, polished)",
    "26": "attempt 26 (1 write head, whole memory throughout)",
    "30": "attempt 30 (1 write head, tape start)",
    "33": "attempt 33 (1 write head, tape start, reads before the write)",
    "34": "attempt 34 (33, polished on 6 items)",
}


def recall_analysis_section(task: str) -> list[str]:
    """Where the feed-forward recall machines miss beyond the training range (benchmarks/recall_analysis.py)."""
    runs = [
        (label, int(f.stem.rsplit("seed", 1)[1]), data)
        for attempt, label in RECALL_ANALYSES.items()
        for f in sorted(ANALYSES.glob(f"{task}-ff-{attempt}-seed*.json"))
        if task == "associative_recall" and (data := _load(f))
    ]
    if not runs:
        return []
    first = runs[0][2]
    lines = [
        "Where the feed-forward machines miss as the items grow (`"
        + first["command"].replace(first["model"], "<the seed's last checkpoint>")
        + f"`, {first['sequences']:,} fresh sequences per number of items and seed). Each place is the wrong bits "
        "per sequence of the sequences whose query was that item (0: the first; 2-6 items train places 0-4). "
        "Next, the sequences split by whether another item has one of the query's vectors at the same place "
        "within the item, which a machine that finds the query by one vector alone cannot tell apart. The "
        "last column is from one sequence: each machine keeps the items on a tape (a write head that moves on "
        "along the rows as the inputs come, about a row per input); it lists the items whose tape rows another "
        "write head also writes, with a largest weight of 0.1 or more (none where there is one write head), and the "
        "rows the tape moves per step with its mean largest weight:",
        "",
        "| machine | seed | items | wrong bits per sequence | perfect | by the query's place | query unique "
        "| query shares a vector | items another head writes on | tape: rows per step (peak) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, seed, data in runs:
        for r in data["by_items"]:
            places = ", ".join(_fmt2(p["wrong_bits_per_sequence"]) for p in r["by_place"])
            u = r["unique_at_every_position"]
            hit = sorted({j for w in r.get("write_paths") or [] for j in w["writes_on_items"] or []})
            lines.append(
                f"| {label} | {seed} | {r['items']} | {r['wrong_bits_per_sequence']:.3f} | {r['perfect']:.1%} | "
                f"{places} | {_fmt2(u['yes']['wrong_bits_per_sequence'])} ({u['yes']['share']:.0%}) | "
                f"{_fmt2(u['no']['wrong_bits_per_sequence'])} ({u['no']['share']:.0%}) | "
                f"{', '.join(map(str, hit)) or 'none'} | {_tape(r.get('write_paths'))} |"
            )
    return [*lines, "", *answer_reads_table(runs)]


def _tape(paths: list[dict] | None) -> str:
    tape = next((w for w in paths or [] if w["tape"]), None)
    return "-" if tape is None else f"{tape['rows_per_step']:+.2f} ({tape['mean_peak']:.2f})"


def answer_reads_table(runs: list[tuple[str, int, dict]]) -> list[str]:
    """Where the reading head looks while the answer comes out, perfect sequences against wrong ones
    (the analyses that measured it)."""
    rows = [(label, seed, r) for label, seed, data in runs for r in data["by_items"] if r.get("answer_reads")]
    if not rows:
        return []
    lines = [
        "While the answer comes out: the read head that puts the most weight on written rows, and how its "
        "weighting splits between the rows the tape wrote the answer on (the item's steps and the delimiter "
        "after it), the rows of the other items, rows no write head wrote with a weight of 0.1 or more (the "
        "learned initial memory) and the rest (delimiters, the query), averaged over the answer's steps; the "
        "sequences answered perfectly against those with a wrong bit:",
        "",
        "| machine | seed | items | head | wrong sequences | perfect: answer / other items / unwritten / rest "
        "| wrong: answer / other items / unwritten / rest |",
        "|---|---|---|---|---|---|---|",
    ]

    def parts(group: dict) -> str:
        if group.get("answer") is None:
            return "-"
        return " / ".join(f"{group[p]:.2f}" for p in ("answer", "other_items", "unwritten", "rest"))

    for label, seed, r in rows:
        a = r["answer_reads"]
        lines.append(
            f"| {label} | {seed} | {r['items']} | {a['reading_head']} | {a['wrong']['share']:.1%} | "
            f"{parts(a['perfect'])} | {parts(a['wrong'])} |"
        )
    return [*lines, ""]


def _fmt2(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _median(values: list[float]) -> float:
    import numpy as np

    return float(np.median(values))


def evaluation_table(report: dict, rows: list[dict], axis: str) -> list[str]:
    """The shipped model's figures along one axis, the paper's unit first."""
    from ntmkit.tasks import TASKS

    own_cost = TASKS[report["task"]].cost_score is None
    lines = [
        f"| {axis} | " + " | ".join(str(r[axis]) for r in rows) + " |",
        "|---|" + "---|" * len(rows),
        "| cross-entropy bits per sequence | " + " | ".join(f"{r['bits']:.3g}" for r in rows) + " |",
        "| wrong bits per sequence | " + " | ".join(f"{r['bit_errors']:.3g}" for r in rows) + " |",
        "| % of bits wrong | " + " | ".join(f"{r.get('wrong_share', float('nan')):.2%}" for r in rows) + " |",
        "| perfect sequences | " + " | ".join(f"{r['perfect']:.0%}" for r in rows) + " |",
    ]
    if own_cost:
        lines.append(f"| {report['cost']} | " + " | ".join(f"{r['cost']:.3g}" for r in rows) + " |")
    if "end_marker_errors" in rows[0]:
        lines.append("| end-marker errors | " + " | ".join(f"{r['end_marker_errors']:.3g}" for r in rows) + " |")
    return [*lines, ""]


def evaluation_section(task: str) -> list[str]:
    """``ntm evaluate`` of the shipped model along each axis (and the EXTRA settings)."""
    from ntmkit.tasks import TASKS

    cls = TASKS[task]
    lines: list[str] = []
    runs = [(axis, []) for axis in cls.axes] + [
        (extra[extra.index("--axis") + 1] if "--axis" in extra else next(iter(cls.axes)), extra)
        for extra in EXTRA.get(task, [])
    ]
    for axis, extra in runs:
        memory = extra[extra.index("--memory_locations") + 1] if "--memory_locations" in extra else None
        extra = [a for i, a in enumerate(extra) if a != "--axis" and (i == 0 or extra[i - 1] != "--axis")]
        out = ntm(
            "evaluate",
            "--task",
            task,
            "--axis",
            axis,
            *extra,
            "--checkpoint_dir",
            "docs/results/none",  # no checkpoint there: the shipped model (paths relative to the repo)
            "--figure_dir",
            "docs/results",
        )
        json_path = ROOT / next(line for line in out.splitlines() if line.startswith("saved ")).split()[1]
        report = json.loads(json_path.read_text())
        lo, hi = report["training_range"]
        rows = report["rows"]
        if len(rows) > 14:  # the plot has every value; the table a readable selection
            rows = [rows[round(i * (len(rows) - 1) / 11)] for i in range(12)]
        command = " ".join(["ntm evaluate --task", task, "--axis", axis, *extra])
        lines += [
            f"Shipped model against {axis}"
            + (f" with the memory enlarged to {memory} locations" if memory else "")
            + "".join(f", {k} {v}" for k, v in report.get("fixed", {}).items())
            + f" (`{command}`, {report['sequences_per_value']} fresh sequences each, trained on {lo}-{hi}):",
            "",
        ]
        if not extra or len(report["rows"]) > 3:
            lines += [f"![{task} against {axis}](results/{json_path.stem}.png)", ""]
        lines += evaluation_table(report, rows, axis)
    return lines


def render(tasks: list[str]) -> None:
    from ntmkit.pretrained import pretrained_path
    from ntmkit.tasks import TASKS

    PICTURES.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Results",
        "",
        "Every number here was measured on a 2-core CPU machine and is written by `python benchmarks/results.py` "
        "from stored JSON files: the equal-budget sweeps in `benchmarks/results/sweeps/` (rerun with "
        "`python benchmarks/results.py --train`), `ntm evaluate` of the models shipped in "
        "`src/ntmkit/pretrained/`, and their manifest (`python -m ntmkit.pretrained record`).",
        "",
        "Units. *Cross-entropy bits per sequence* is the paper's cost, the unit of its learning curves; every "
        "comparison with the paper below is in it. *Wrong bits per sequence* counts output bits on the wrong "
        "side of 0.5; *% of bits wrong* divides them by the output bits scored (the unit reproductions report "
        "for generalisation). Each task's stop rule uses its own cost, named under its heading.",
        "",
    ]
    for task in tasks:
        cls = TASKS[task]
        lines += [
            f"## {task}",
            "",
            f"Cost (the stop rule): {cls.cost_name}; learned below {cls.learned_below:g}.",
            "",
            f"**The paper** (cross-entropy bits per sequence): {PAPER[task]}.",
            "",
        ]
        generated = [shipped_note(task), equal_budget_note(task)] + ([GENERATED[task]()] if task in GENERATED else [])
        generated = [g for g in generated if g]
        if generated:
            lines += ["Measured (written from the stored JSON files): " + " ".join(generated), ""]
        if task in NOTES:
            lines += [NOTES[task], ""]
        lines += sort_analysis_section(task)
        lines += ngrams_analysis_section(task)
        if task == "associative_recall":
            lines += recall_batch1_lines()
            lines += recall_analysis_section(task)
        lines += paper_axis_section(task)
        lines += curves_section(task)
        if not pretrained_path(task).is_file():
            lines += ["No shipped model for this task yet.", ""]
            continue
        lines += evaluation_section(task)
        ntm("visualize", "--task", task, "--checkpoint_dir", "docs/results/none", "--figure_dir", "docs/results")
        pic = next(PICTURES.glob(f"visualize_{task}_*.png"))
        lines += [
            f"Memory use of the shipped model (`ntm visualize --task {task}`):",
            "",
            f"![{task} memory use](results/{pic.name})",
            "",
        ]
    lines += dnc_section()
    from ntmkit.clidoc import reflow

    PAGE.write_text(reflow("\n".join(lines)))
    print(f"wrote {PAGE}")


def generalisation_table(paths: list[Path]) -> list[str]:
    """One row per seed of each sweep file: sequences to learn, the cost at the end and the wrong bits
    per sequence at each level the sweep evaluated (the sweep's own fresh sequences); the sweeps'
    commands under the table."""
    sweeps = [(p.stem, json.loads(p.read_text())) for p in paths]
    gens = [s["generalisation"] for _, d in sweeps for s in d["seeds"] if s.get("generalisation")]
    if not gens:
        return []
    axis = gens[0]["axis"]
    levels = sorted({int(v) for g in gens for v in g["bit_errors"]})
    lines = [
        "| run | seed | learned at (sequences) | cost at the end | " + " | ".join(f"{axis} {v}" for v in levels) + " |",
        "|---|---|---|---|" + "---|" * len(levels),
    ]
    for name, d in sweeps:
        for s in d["seeds"]:
            g = (s.get("generalisation") or {}).get("bit_errors", {})
            cost = s.get("final_cost")
            cost_text = f"{cost:.3g}" if cost is not None else f"~{s.get('last_training_cost', 0):.3g}"
            learned = f"{s['sequences']:,}" if s.get("learned") else "not learned"
            cells = " | ".join(f"{g[str(v)]:.3g}" if str(v) in g else "-" for v in levels)
            lines.append(f"| {name} | {s['seed']} | {learned} | {cost_text} | {cells} |")
    lines += ["", "Commands: " + "; ".join(f"{name}: `{d['command']}`" for name, d in sweeps) + ".", ""]
    return lines


def settings_table(path: Path) -> list[str]:
    """Each seed at the shipped models' further settings (EXTRA), from benchmarks/settings_table.py."""
    if not path.exists():
        return []
    d = json.loads(path.read_text())
    names = list(
        dict.fromkeys(
            ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("bit_errors", "bits", "perfect"))
            for s in d["seeds"]
            for r in s["settings"]
        )
    )
    lines = [
        f"Each seed at further settings (`{d['command']}`; {d['sequences']} fresh sequences each; wrong bits per "
        "sequence, cross-entropy bits per sequence in brackets):",
        "",
        "| seed | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for s in d["seeds"]:
        cells = [f"{r['bit_errors']:.3g} ({r['bits']:.3g})" for r in s["settings"]]
        lines.append(f"| {s['seed']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _enlarged(report: dict) -> bool:
    """Whether an ``ntm evaluate`` report ran the model with more rows than it was trained with
    (reports written before the trained size was stored say so only in their model description)."""
    trained = report.get("trained_memory_locations")
    return report["memory_locations"] != trained if trained is not None else "enlarged" in report["model"]


def memory_rows_tables(folder: Path, task: str) -> list[str]:
    """The shipped DNC along its axis at several memory sizes (`ntm evaluate --model dnc` reports,
    ``TASK_*.json`` in ``folder``), fewest rows first."""
    reports = [json.loads(p.read_text()) for p in sorted(folder.glob(f"{task}_*.json"))] if folder.is_dir() else []
    lines = []
    for report in sorted(reports, key=lambda r: r["memory_locations"]):
        axis, rows = report["axis"], report["rows"]
        n, lo, hi = report["memory_locations"], *report["training_range"]
        command = (
            f"ntm evaluate --task {task} --model dnc --axis {axis}"
            + (f" --memory_locations {n}" if _enlarged(report) else "")
            + f" --values {','.join(str(r[axis]) for r in rows)} --sequences {report['sequences_per_value']}"
        )
        lines += [
            f"Shipped {task} DNC with {n} memory rows (`{command}`; fresh sequences, trained on {lo}-{hi} "
            "with 128 rows):",
            "",
            *evaluation_table(report, rows, axis),
        ]
    return lines


def dnc_section() -> list[str]:
    """The Differentiable Neural Computer's runs (`ntm sweep --model dnc ...`), one sweep JSON file
    each in benchmarks/results/dnc/, as tables of wrong bits per sequence beyond the training range."""
    folder = ROOT / "benchmarks" / "results" / "dnc"
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not paths:
        return []
    lines = [
        "## The Differentiable Neural Computer",
        "",
        "`--model dnc` (Graves et al. 2016): the same tasks, training loop, stop test and evaluation as the NTM. "
        "Runs so far, written from `benchmarks/results/dnc/*.json`: wrong bits per sequence on fresh sequences "
        "(the sweep's `--sequences` per level, 128 memory rows), per seed; cost at the end: the held-out stop "
        "test's wrong bits per sequence (~: the last logged training batches).",
        "",
    ]
    for task in dict.fromkeys(json.loads(p.read_text())["task"] for p in paths):
        lines += [f"**{task}**", ""]
        lines += generalisation_table([p for p in paths if json.loads(p.read_text())["task"] == task])
        lines += settings_table(folder / "settings" / f"{task}.json")
        lines += memory_rows_tables(folder / "evaluate", task)
    return [
        *lines,
        "Memory use of the first of them (seed 0 of the default run: `ntm visualize --checkpoint_dir "
        "<its seed-0/ck> --max_sequence 20`): the write head follows the allocation weighting to a fresh row for "
        "every input vector, and the link matrix records the order; at the delimiter the read head switches from "
        "content look-up to the forward read mode and replays the writes in order through the links.",
        "",
        "![DNC memory use on copy](results/visualize_copy_dnc.png)",
        "",
    ]


README = ROOT / "README.md"
SUMMARY = ("<!-- summary:begin -->", "<!-- summary:end -->")
MODEL_NAMES = {"feedforward": "NTM, feed-forward", "lstm": "NTM, LSTM controller"}  # by controller


def readme_summary() -> None:
    """The README's table of shipped models, from manifest.json (between the summary markers)."""
    from ntmkit.pretrained import load_pretrained
    from ntmkit.registry import model_kind

    entries = _load(MANIFEST) or {}
    lines = [
        SUMMARY[0],
        "| task | shipped model | cross-entropy bits per sequence (the paper's unit) | wrong bits per sequence | "
        "its cost against the target | the paper |",
        "|---|---|---|---|---|---|",
    ]
    for task, e in entries.items():
        if "cross_entropy_bits" not in e:
            continue
        data = load_pretrained(task)
        kind = data["model_kind"]
        config = data["model_config"]
        model = MODEL_NAMES[config["controller"]] if kind == "ntm" else model_kind(kind).label
        if kind != "ntm" and "controller" in config:
            model += f", {'feed-forward' if config['controller'] == 'feedforward' else 'LSTM'} controller"
        verdict = "met" if e["meets_target"] else "not met"
        other = e.get("cost_on_another_set")
        second = "" if other is None else f", {other:.4g} on a second set"
        lines.append(
            f"| {data['task']['name']} | {model} | {e['cross_entropy_bits']:.4g} | {e['bit_errors']:.4g} | "
            f"{e['training_range_cost']:.4g} {e['cost_name']}{second} (< {e['target']:g} on both: {verdict}) | "
            f"{PAPER[data['task']['name']] if kind != 'dnc' else '(the NTM paper has no DNC)'} |"
        )
    lines.append(SUMMARY[1])
    text = README.read_text()
    start, end = text.index(SUMMARY[0]), text.index(SUMMARY[1]) + len(SUMMARY[1])
    README.write_text(text[:start] + "\n".join(lines) + text[end:])
    print(f"wrote the summary table in {README}")


def main() -> None:
    from ntmkit.tasks import TASKS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", action="store_true", help="run the sweeps first (hours)")
    p.add_argument("--runs_dir", default=str(ROOT / "benchmarks" / "runs"), help="where --train puts the runs")
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks (default all)")
    p.add_argument(
        "--collect",
        action="store_true",
        help="summarise the runs in --runs_dir again into benchmarks/results/sweeps/ first",
    )
    p.add_argument(
        "--collect_long",
        metavar="DIR",
        help="summarise the long runs in DIR/TASK/VARIANT into benchmarks/results/long/ first (keeping their commands)",
    )
    a = p.parse_args()
    tasks = [t for t in a.tasks.split(",") if t]
    if a.collect_long:
        collect(Path(a.collect_long), LONG, command="stored")
    if a.train:
        train_all(Path(a.runs_dir), tasks)
    if a.train or a.collect:
        collect(Path(a.runs_dir))
    render(tasks)
    readme_summary()


if __name__ == "__main__":
    main()
