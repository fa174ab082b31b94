"""Fixed-seed parameter digests: run before and after a change that must not alter training.

    python benchmarks/param_digest.py OUT.json [CASE ...]

Each case trains a small fixed-seed run on the CPU (the default copy NTM eagerly and compiled,
the NTM with an LSTM controller on associative recall, the LSTM baseline on priority sort) and
prints the SHA-256 of its final parameters. Two versions of the code train identically exactly
when every digest agrees (compare the two JSON files).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CASES = {
    "copy-ff-eager": dict(max_steps=300, engine="eager"),
    "copy-ff-compiled": dict(max_steps=120, engine="compiled"),
    "recall-lstm-controller-eager": dict(
        task="associative_recall",
        model_options={"controller": "lstm", "controller_layers": 3},
        max_steps=100,
        engine="eager",
    ),
    "sort-lstm-baseline-eager": dict(task="priority_sort", model="lstm", max_steps=60, engine="eager"),
}


def digest(state: dict) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    from ntmkit import checkpoint
    from ntmkit.train import TrainConfig, train

    out, chosen = sys.argv[1], sys.argv[2:] or list(CASES)
    digests = {}
    for name in chosen:
        with tempfile.TemporaryDirectory() as d:
            train(TrainConfig(checkpoint_dir=d, train_log_dir=None, seed=3, **CASES[name]), progress=False)
            digests[name] = digest(checkpoint.load(checkpoint.latest(d))["model"])
        print(name, digests[name], flush=True)
    Path(out).write_text(json.dumps(digests, indent=1) + "\n")


if __name__ == "__main__":
    main()
