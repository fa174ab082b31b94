"""The command line the analysis scripts share: score a model (the shipped one unless --checkpoint)
on fresh sequences of its task and store the figures as JSON in benchmarks/results/analysis/."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def run_analysis(task_name: str, doc: str | None, analyse, sequences: int = 2000, seed: int = 99) -> tuple[dict, Path]:
    """Parse the shared flags, load the model, run ``analyse(model, task, sequences, seed)`` and write
    its figures, with the command that made them, to ``--out``. Returns the figures and the path."""
    from ntmkit import checkpoint as ckpt
    from ntmkit.pretrained import load_pretrained
    from ntmkit.registry import build_model
    from ntmkit.train import make_task

    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help=f"a checkpoint file (default: the shipped {task_name} model)")
    p.add_argument("--sequences", type=int, default=sequences)
    p.add_argument("--seed", type=int, default=seed, help="the fresh sequences' seed")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "analysis" / f"{task_name}.json"))
    a = p.parse_args()
    torch.set_num_threads(1)
    data = ckpt.load(a.checkpoint) if a.checkpoint else load_pretrained(task_name)
    model = build_model(data["model_kind"], data["model_config"])
    model.load_state_dict(data["model"])
    model.eval()
    task = make_task(task_name, data["task"]["options"])
    result = {
        "command": shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "model": a.checkpoint or "shipped",
        "sequences": a.sequences,
        "seed": a.seed,
        **analyse(model, task, a.sequences, a.seed),
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result, out
