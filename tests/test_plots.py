import numpy as np
import torch

from ntmkit.plots import stack_heads, visualize
from ntmkit.registry import build_model, model_kind
from ntmkit.tasks import TASKS


def test_stack_heads_puts_every_heads_weighting_over_the_rows_in_its_own_block():
    rng = np.random.default_rng(0)
    weights = rng.random((5, 3, 16))  # [T, H, N]
    rows = np.array([14, 15, 0, 1, 2])  # a run round the ring
    stacked = stack_heads(weights, rows, gap=2)
    assert stacked.shape == (3 * 5 + 2 * 2, 5)
    for h in range(3):
        block = stacked[h * 7 : h * 7 + 5]
        assert np.array_equal(block, weights[:, h, rows].T)
    assert np.isnan(stacked[5:7]).all() and np.isnan(stacked[12:14]).all()
    assert not np.isnan(stack_heads(weights[:, :1], rows)).any()  # one head: no gap


def test_visualize_draws_a_machine_with_several_heads(tmp_path):
    task = TASKS["copy"](bits=4, min_length=3, max_length=3)
    kind = model_kind("ntm")
    config = kind.config(task.input_size, task.output_size, {"read_heads": 2, "write_heads": 3, "memory_locations": 16})
    torch.manual_seed(0)
    model = build_model("ntm", config)
    batch = task.make_batch(1, torch.Generator().manual_seed(0))
    path = visualize(model, task, batch, tmp_path / "v.png")
    assert path.stat().st_size > 10_000
