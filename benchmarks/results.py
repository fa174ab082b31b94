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
VARIANTS = {"ntm-ff": [], "ntm-lstm": ["--controller", "lstm"], "lstm": ["--model", "lstm"]}
LABELS = {"ntm-ff": "NTM, feed-forward controller", "ntm-lstm": "NTM, LSTM controller", "lstm": "LSTM baseline"}
# Budget per run for --train: (seeds, minutes per seed); the copy NTM learns in about a minute.
BUDGET = {"copy": (3, 10), "repeat_copy": (1, 40), "associative_recall": (1, 40), "ngrams": (1, 40),
          "priority_sort": (1, 40)}
# Further evaluations of the shipped models (flags for `ntm evaluate`).
EXTRA = {"copy": [["--memory_locations", "1024", "--values", "20,30,50,80,120,200,500,1000"],
                  ["--memory_locations", "2048", "--values", "1000"]],
         "repeat_copy": [], "associative_recall": [], "ngrams": [], "priority_sort": []}
PAPER = {
    "copy": "both NTMs near 0 bits by about 100k sequences; LSTM about 0.5 bits from 600k. Lengths 10-50 "
            "copied with very few mistakes; a few local errors and one global error at 120",
    "repeat_copy": "solved; generalises to twice the length and to more repeats, but after the 11th repeat "
                   "emits the end marker after every repeat",
    "associative_recall": "near 0 by about 30k episodes; NTM-FF nearly perfect up to 12 items, under 1 bit per "
                          "sequence at 15 items; LSTM not at 0 after 1M",
    "ngrams": "NTM about 133.5-134 bits per 200-bit sequence against about 133 for the optimal estimator "
              "and 136 for the LSTM",
    "priority_sort": "NTM about 18-20 bits per sequence at 1M sequences, LSTM about 58",
}


def ntm(*args: str, check: bool = True) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([sys.executable, "-m", "ntmkit", *args], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise SystemExit(f"ntm {' '.join(args)} failed:\n{r.stderr[-2000:]}")
    return r.stdout


def train_all(runs_dir: Path, tasks: list[str]) -> None:
    for task in tasks:
        seeds, minutes = BUDGET[task]
        for variant, flags in VARIANTS.items():
            out = runs_dir / task / variant
            print(f"sweep {task} {variant}: {seeds} seeds x {minutes} min", flush=True)
            ntm("sweep", "--task", task, *flags, "--seeds", str(seeds), "--max_minutes", str(minutes),
                "--sweep_dir", str(out), check=False)
            if (out / "sweep.json").exists():
                SWEEPS.mkdir(parents=True, exist_ok=True)
                shutil.copy(out / "sweep.json", SWEEPS / f"{task}-{variant}.json")


def collect(runs_dir: Path) -> None:
    """Summarise every sweep under ``runs_dir`` again (``TASK/VARIANT/seed-K``) into SWEEPS."""
    from ntmkit.sweep import summarise
    from ntmkit.tasks import TASKS
    for variant_dir in sorted(runs_dir.glob("*/*")):
        task, variant = variant_dir.parent.name, variant_dir.name
        seeds = sorted(int(d.name.split("-")[1]) for d in variant_dir.glob("seed-*"))
        if task not in TASKS or variant not in VARIANTS or not seeds:
            continue
        old = variant_dir / "sweep.json"
        command = json.loads(old.read_text()).get("command", "") if old.exists() else ""
        stored = SWEEPS / f"{task}-{variant}.json"
        if not command and stored.exists():
            command = json.loads(stored.read_text()).get("command", "")
        summarise(variant_dir, seeds, task, TASKS[task].cost_name, command=command)
        SWEEPS.mkdir(parents=True, exist_ok=True)
        shutil.copy(old, stored)
        print(f"collected {task} {variant}: seeds {seeds}")


def curves_figure(task: str, path: Path) -> list[dict]:
    import numpy as np
    from ntmkit import plots
    rows, curves = [], {}
    for variant in VARIANTS:
        f = SWEEPS / f"{task}-{variant}.json"
        if not f.exists():
            continue
        data = json.loads(f.read_text())
        c = data.get("curve_sequences")
        if c:
            curves[LABELS[variant]] = tuple(np.array(c[k]) for k in ("x", "median", "q1", "q3"))
        rows.append({"variant": variant, **data})
    if curves:
        plots.compare_curves(curves, path, ylabel=rows[0]["cost"], title=f"{task}: median of seeds, quartiles shaded")
    return rows


def render(tasks: list[str]) -> None:
    from ntmkit.pretrained import pretrained_path
    from ntmkit.tasks import TASKS
    PICTURES.mkdir(parents=True, exist_ok=True)
    lines = ["# Results", "",
             "Every number here was measured on a 2-core CPU machine. The page is regenerated by "
             "`python benchmarks/results.py` (learning curves from the stored sweeps in "
             "`benchmarks/results/sweeps/`, which `python benchmarks/results.py --train` reruns with "
             "`ntm sweep`; everything else from the models shipped in `src/ntmkit/pretrained/`).", ""]
    for task in tasks:
        cls = TASKS[task]
        lines += [f"## {task}", "", f"Cost: {cls.cost_name}; learned below {cls.learned_below:g}.", "",
                  f"**The paper:** {PAPER[task]}.", ""]
        rows = curves_figure(task, PICTURES / f"{task}_curves.png")
        if rows:
            seeds, minutes = BUDGET[task]
            lines += ["Learning curves (x = sequences seen; the command of each row is in the table):", "",
                      f"![{task} learning curves](results/{task}_curves.png)", "",
                      "| model | learned | median sequences to learn | median seconds to learn | cost per seed at the "
                      "end (held-out; ~ = training batches) | command |", "|---|---|---|---|---|---|"]
            for r in rows:
                med = r["median_sequences_to_learn"]
                secs = r["median_seconds_to_learn"]
                finals = ", ".join(f"{s['final_cost']:.3g}" if s["final_cost"] is not None else
                                   "-" if s.get("last_training_cost") is None else f"~{s['last_training_cost']:.3g}"
                                   for s in r["seeds"])
                lines.append(f"| {LABELS[r['variant']]} | {r['learned']} | {'-' if med is None else f'{med:,.0f}'} | "
                             f"{'-' if secs is None else f'{secs:.0f}'} | {finals} | `{r.get('command', '')}` |")
            lines.append("")
        if not pretrained_path(task).is_file():
            lines += ["No shipped model for this task yet.", ""]
            continue
        runs = [(axis, []) for axis in cls.axes] + [(next(iter(cls.axes)), extra) for extra in EXTRA.get(task, [])]
        for axis, extra in runs:
            memory = extra[extra.index("--memory_locations") + 1] if "--memory_locations" in extra else None
            stem = f"evaluate_{task}_{axis}" + (f"_N{memory}" if memory else "")
            ntm("evaluate", "--task", task, "--axis", axis, *extra, "--checkpoint_dir", str(PICTURES / "none"),
                "--figure_dir", str(PICTURES))
            report = json.loads((PICTURES / f"{stem}.json").read_text())
            lo, hi = report["training_range"]
            rows = report["rows"]
            if len(rows) > 14:  # the plot has every value; the table a readable selection
                rows = [rows[round(i * (len(rows) - 1) / 11)] for i in range(12)]
            command = " ".join(["ntm evaluate --task", task, "--axis", axis, *extra])
            lines += [f"Shipped model, {report['cost']} against {axis}"
                      + (f" with the memory enlarged to {memory} locations" if memory else "")
                      + f" (`{command}`, {report['sequences_per_value']} sequences each, trained on {lo}-{hi}):", ""]
            if not extra or len(report["rows"]) > 3:
                lines += [f"![{task} against {axis}](results/{stem}.png)", ""]
            lines += [f"| {axis} | " + " | ".join(str(r[axis]) for r in rows) + " |",
                      "|---|" + "---|" * len(rows),
                      "| cost | " + " | ".join(f"{r['cost']:.3g}" for r in rows) + " |",
                      "| perfect | " + " | ".join(f"{r['perfect']:.0%}" for r in rows) + " |", ""]
        ntm("visualize", "--task", task, "--checkpoint_dir", str(PICTURES / "none"), "--figure_dir", str(PICTURES))
        pic = next(PICTURES.glob(f"visualize_{task}_*.png"))
        lines += [f"Memory use of the shipped model (`ntm visualize --task {task}`):", "",
                  f"![{task} memory use](results/{pic.name})", ""]
    PAGE.write_text("\n".join(lines))
    print(f"wrote {PAGE}")


def main() -> None:
    from ntmkit.tasks import TASKS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", action="store_true", help="run the sweeps first (hours)")
    p.add_argument("--runs_dir", default=str(ROOT / "benchmarks" / "runs"), help="where --train puts the runs")
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks (default all)")
    p.add_argument("--collect", action="store_true",
                   help="summarise the runs in --runs_dir again into benchmarks/results/sweeps/ first")
    a = p.parse_args()
    tasks = [t for t in a.tasks.split(",") if t]
    if a.train:
        train_all(Path(a.runs_dir), tasks)
    if a.train or a.collect:
        collect(Path(a.runs_dir))
    render(tasks)


if __name__ == "__main__":
    main()
