"""Tasks: the batch format against the paper's description, and the scoring."""

import math

import pytest
import torch

from ntmkit.errors import TaskError
from ntmkit.tasks import TASKS, CopyTask


def test_copy_batch_matches_a_hand_built_example():
    task = CopyTask(bits=2, min_length=2, max_length=2)
    b = task.make_batch(1, torch.Generator().manual_seed(0))
    v = b.inputs[0, :2, :2]  # the two random vectors
    expected_in = torch.zeros(5, 3)
    expected_in[:2, :2] = v
    expected_in[2, 2] = 1.0  # delimiter on its own channel, at step L
    expected_target = torch.zeros(5, 2)
    expected_target[3:5] = v  # the same vectors after the delimiter
    assert torch.equal(b.inputs[0], expected_in)
    assert torch.equal(b.targets[0], expected_target)
    assert torch.equal(b.mask[0], torch.tensor([0.0, 0, 0, 1, 1]))
    assert b.lengths.tolist() == [5] and b.levels.tolist() == [2]


def test_copy_lengths_differ_inside_a_batch_and_padding_costs_nothing():
    task = CopyTask(bits=8, min_length=1, max_length=20)
    b = task.make_batch(64, torch.Generator().manual_seed(1))
    assert len(set(b.levels.tolist())) > 5
    assert b.inputs.shape == (64, 2 * int(b.levels.max()) + 1, 9)
    for i in range(64):
        L = int(b.levels[i])
        assert b.mask[i].sum() == L and b.mask[i, L + 1: 2 * L + 1].all() and b.mask[i, 2 * L + 1:].sum() == 0
        assert b.inputs[i, L, 8] == 1 and b.inputs[i, :, 8].sum() == 1
        assert torch.equal(b.targets[i, L + 1: 2 * L + 1], b.inputs[i, :L, :8])
        assert b.inputs[i, L + 1:].sum() == 0  # no input while recalling


def test_fixed_level_and_range():
    task = CopyTask(min_length=3, max_length=9)
    g = torch.Generator().manual_seed(2)
    assert set(task.make_batch(16, g, level=7).levels.tolist()) == {7}
    levels = task.make_batch(500, g, max_level=5).levels
    assert levels.min() >= 3 and levels.max() <= 5


@pytest.mark.parametrize("kw, message", [
    (dict(min_length=5, max_length=2), "is larger than --max_sequence"),
    (dict(min_length=0), "must be >= 1"),
    (dict(bits=0), "vector width must be >= 1"),
])
def test_copy_bad_settings(kw, message):
    with pytest.raises(TaskError, match=message):
        CopyTask(**kw)


def test_score_counts_wrong_bits_only_where_a_target_exists():
    task = CopyTask(bits=2, min_length=2, max_length=2)
    b = task.make_batch(2, torch.Generator().manual_seed(3))
    logits = (b.targets * 2 - 1) * 10.0  # perfect where the mask is on...
    logits[0, 0] = 10.0  # ...wrong before the delimiter, which must not count
    logits[1, 3, 0] *= -1  # one wrong bit in a target position
    s = task.score(logits, b)
    assert s["bit_errors"] == 0.5 and s["perfect"] == 0.5
    assert s["errors_per_sample"].tolist() == [0.0, 1.0]
    # Cross-entropy in bits per sequence: one confidently wrong bit costs ~10/ln2 bits.
    small = math.log1p(math.exp(-10))  # cost of a right bit at |logit| = 10
    assert s["bits"] == pytest.approx((8 * small + 10) / 2 / math.log(2), rel=1e-4)


def test_loss_is_masked_mean_bce():
    task = CopyTask(bits=2, min_length=1, max_length=1)
    b = task.make_batch(1, torch.Generator().manual_seed(4))
    logits = torch.zeros_like(b.targets)
    assert task.loss(logits, b).item() == pytest.approx(math.log(2))
    logits[0, 0] = 50.0  # outside the mask: no effect
    assert task.loss(logits, b).item() == pytest.approx(math.log(2))


def test_registry():
    assert TASKS["copy"] is CopyTask
