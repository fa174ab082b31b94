"""Nothing the results stand on changes: fixed-seed eager runs on the CPU end with the parameters
whose SHA-256 digests are stored in tests/data/param_digests.json (written at the commit named
there). A change to the loop, the model or the data that alters training changes a digest. The
recall case names its 3-layer LSTM controller: that was the Python API's default before the API
and the command line were given one derived default (1 LSTM layer, as the command line had)."""

import hashlib
import json
import tempfile
from pathlib import Path

import pytest
import torch

from ntmkit import checkpoint
from ntmkit.train import TrainConfig, train

STORED = json.loads((Path(__file__).parent / "data" / "param_digests.json").read_text())
CASES = {
    "copy-ff-eager-60": dict(max_steps=60, engine="eager"),
    "recall-lstm-controller-eager-30": dict(
        task="associative_recall",
        model_options={"controller": "lstm", "controller_layers": 3},
        max_steps=30,
        engine="eager",
    ),
    "sort-lstm-baseline-eager-20": dict(task="priority_sort", model="lstm", max_steps=20, engine="eager"),
}


def digest(state: dict) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.skipif(
    torch.__version__ != STORED["torch"] or torch.backends.cpu.get_cpu_capability() != STORED["cpu_capability"],
    reason="the stored digests are of another PyTorch build or CPU kind: floating point may differ",
)
@pytest.mark.parametrize("name", list(CASES))
def test_fixed_seed_eager_runs_end_with_the_stored_parameters(name):
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        train(TrainConfig(checkpoint_dir=d, train_log_dir=None, seed=3, **CASES[name]), progress=False)
        got = digest(checkpoint.load(checkpoint.latest(d))["model"])
    assert got == STORED["digests"][name]
