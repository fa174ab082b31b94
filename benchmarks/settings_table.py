"""Every seed of a sweep scored at the shipped models' further settings (results.py's EXTRA).

    python benchmarks/settings_table.py --task repeat_copy --sweep_dir DIR \
        --out benchmarks/results/dnc/settings/repeat_copy.json [--sequences 100]

For each ``DIR/seed-K/ck`` it runs ``ntm evaluate`` with each of the task's EXTRA flag sets (for
repeat copy: length 10 with 10 and 20 repeats, length 20 with 10, length 15 with 15) on fresh
sequences, and writes one JSON file: per seed, per setting, wrong bits and cross-entropy bits per
sequence and the share of perfect sequences. results.py draws the table from it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def evaluate(checkpoint_dir: Path, task: str, flags: list[str], sequences: int) -> dict:
    """One ``ntm evaluate`` of a run's latest checkpoint; returns its JSON report."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "ntmkit", "evaluate", "--task", task, "--checkpoint_dir", str(checkpoint_dir)]
        cmd += [*flags, "--sequences", str(sequences), "--figure_dir", out, "--quiet"]
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
        subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        return json.loads(next(Path(out).glob("*.json")).read_text())


def fixed_setting(fixed: dict) -> dict:
    """``min_X`` and ``max_X`` of one value as ``X`` (length 10, not min_length 10 and max_length 10)."""
    out = dict(fixed)
    for key in [k[4:] for k in fixed if k.startswith("min_")]:
        if fixed.get(f"max_{key}") == fixed[f"min_{key}"]:
            out[key] = out.pop(f"min_{key}")
            out.pop(f"max_{key}")
    return out


def main() -> None:
    from results import EXTRA

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True)
    p.add_argument("--sweep_dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sequences", type=int, default=100)
    a = p.parse_args()
    sweep = Path(a.sweep_dir)
    seeds = sorted(int(d.name.split("-")[1]) for d in sweep.glob("seed-*"))
    stored = sweep / "sweep.json"
    result = {
        "task": a.task,
        "sweep": json.loads(stored.read_text())["command"] if stored.exists() else str(sweep),
        "command": f"python benchmarks/settings_table.py --task {a.task} --sweep_dir DIR --sequences {a.sequences}",
        "sequences": a.sequences,
        "seeds": [],
    }
    for seed in seeds:
        rows = []
        for flags in EXTRA[a.task]:
            report = evaluate(sweep / f"seed-{seed}" / "ck", a.task, flags, a.sequences)
            for row in report["rows"]:
                setting = {**fixed_setting(report.get("fixed", {})), report["axis"]: row[report["axis"]]}
                rows.append({**setting, **{k: row[k] for k in ("bit_errors", "bits", "perfect")}})
                print(seed, setting, f"{row['bit_errors']:.3g} wrong bits per sequence", flush=True)
        result["seeds"].append({"seed": seed, "settings": rows})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
