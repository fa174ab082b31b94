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
        assert b.mask[i].sum() == L and b.mask[i, L + 1 : 2 * L + 1].all() and b.mask[i, 2 * L + 1 :].sum() == 0
        assert b.inputs[i, L, 8] == 1 and b.inputs[i, :, 8].sum() == 1
        assert torch.equal(b.targets[i, L + 1 : 2 * L + 1], b.inputs[i, :L, :8])
        assert b.inputs[i, L + 1 :].sum() == 0  # no input while recalling


def test_fixed_level_and_range():
    task = CopyTask(min_length=3, max_length=9)
    g = torch.Generator().manual_seed(2)
    assert set(task.make_batch(16, g, level=7).levels.tolist()) == {7}
    levels = task.make_batch(500, g, max_level=5).levels
    assert levels.min() >= 3 and levels.max() <= 5


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(min_length=5, max_length=2), "is larger than --max_sequence"),
        (dict(min_length=0), "must be >= 1"),
        (dict(bits=0), "vector width must be >= 1"),
    ],
)
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


# --- the other four tasks: the format of each, checked against a hand-built example ---------------

from ntmkit.tasks import AssociativeRecallTask, NGramsTask, PrioritySortTask, RepeatCopyTask  # noqa: E402
from ntmkit.tasks.ngrams import contexts, optimal_predictions, sample_bits, sample_tables  # noqa: E402


def test_repeat_copy_matches_a_hand_built_example():
    task = RepeatCopyTask(
        bits=2, min_length=2, max_length=2, min_repeats=2, max_repeats=2, repeat_mean=1.0, repeat_std=4.0
    )
    b = task.make_batch(1, torch.Generator().manual_seed(0))
    v = b.inputs[0, :2, :2]
    expected_in = torch.zeros(8, 4)
    expected_in[:2, :2] = v
    expected_in[2, 2] = 1.0  # delimiter
    expected_in[2, 3] = (2 - 1.0) / 4.0  # the repeat count, normalised
    expected_target = torch.zeros(8, 3)
    expected_target[3:5, :2] = v
    expected_target[5:7, :2] = v
    expected_target[7, 2] = 1.0  # end marker on its own channel
    assert torch.equal(b.inputs[0], expected_in)
    assert torch.equal(b.targets[0], expected_target)
    assert b.mask[0].tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    assert b.lengths.tolist() == [8] and b.levels.tolist() == [2]


def test_repeat_copy_mixed_batches_pad_and_mask():
    task = RepeatCopyTask(bits=3)
    b = task.make_batch(50, torch.Generator().manual_seed(1))
    for i in range(50):
        n = int(b.levels[i])
        r = round(float(b.inputs[i, n, 4]) * task.repeat_std + task.repeat_mean)
        assert 1 <= r <= 10 and b.lengths[i] == (r + 1) * n + 2
        assert b.mask[i].sum() == r * n + 1 and b.targets[i, :, 3].sum() == 1
        assert torch.equal(b.targets[i, n + 1 : n + 1 + r * n, :3], b.inputs[i, :n, :3].repeat(r, 1))


def test_repeat_copy_count_has_mean_0_and_variance_1_over_the_training_range():
    """As in the paper: the count channel is normalised over the training range of repeats."""
    task = RepeatCopyTask(bits=2, min_length=1, max_length=1, min_repeats=1, max_repeats=10)
    assert task.repeat_mean == 5.5 and task.repeat_std == pytest.approx(math.sqrt(99 / 12))
    codes = task.encode_repeats(torch.arange(1, 11))
    assert float(codes.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(codes.var(unbiased=False)) == pytest.approx(1.0, abs=1e-6)
    b = task.make_batch(4000, torch.Generator().manual_seed(3))
    drawn = b.inputs[:, 1, 3]  # length 1: the count sits at step 1
    assert float(drawn.mean()) == pytest.approx(0.0, abs=0.05) and float(drawn.std()) == pytest.approx(1.0, abs=0.05)


def test_repeat_copy_end_marker_follows_the_last_repeat_at_every_count():
    task = RepeatCopyTask(bits=3)
    g = torch.Generator().manual_seed(4)
    for r in (1, 5, 10, 11, 15, 20):
        b = task.at("repeats", r).make_batch(8, g)
        for i in range(8):
            n = int(b.levels[i])
            end = n + 1 + r * n
            assert b.targets[i, :, 3].nonzero().flatten().tolist() == [end] and b.mask[i, end] == 1
            assert b.mask[i, end + 1 :].sum() == 0 and int(b.lengths[i]) == end + 1


def test_repeat_copy_can_be_fixed_along_either_axis():
    task = RepeatCopyTask()
    g = torch.Generator().manual_seed(2)
    more = task.at("repeats", 15).make_batch(20, g)
    # the count keeps the training range's encoding: (15 - 5.5) / 2.87
    assert {round(float(more.inputs[i, int(more.levels[i]), 9]) * task.repeat_std + 5.5) for i in range(20)} == {15}
    assert set(task.at("length", 7).make_batch(20, g).levels.tolist()) == {7}
    with pytest.raises(TaskError, match="no axis 'items'"):
        task.at("items", 3)


def test_associative_recall_matches_a_hand_built_example():
    task = AssociativeRecallTask(bits=2, item_length=1, min_items=3, max_items=3)
    b = task.make_batch(1, torch.Generator().manual_seed(0))
    x = b.inputs[0]
    assert x.shape == (10, 4) and b.lengths.tolist() == [10]
    items = [x[1, :2], x[3, :2], x[5, :2]]
    expected = torch.zeros(10, 4)
    for j, item in enumerate(items):
        expected[2 * j, 2] = 1.0  # item delimiter
        expected[2 * j + 1, :2] = item
    expected[6, 3] = expected[8, 3] = 1.0  # query delimiters around the query
    q = next(j for j in range(2) if torch.equal(x[7, :2], items[j]))
    expected[7, :2] = items[q]
    assert torch.equal(x, expected)
    assert torch.equal(b.targets[0, 9], items[q + 1])
    assert b.mask[0].tolist() == [0] * 9 + [1]


def test_associative_recall_queries_every_item_but_the_last():
    task = AssociativeRecallTask(min_items=4, max_items=4)
    b = task.make_batch(400, torch.Generator().manual_seed(3))
    k = 3
    seen = set()
    for i in range(400):
        query = b.inputs[i, 4 * 4 + 1 : 4 * 4 + 1 + k, :6]
        items = [b.inputs[i, 4 * j + 1 : 4 * j + 4, :6] for j in range(4)]
        j = next(j for j in range(4) if torch.equal(items[j], query))
        seen.add(j)
        assert torch.equal(b.targets[i, 21:24], items[j + 1]) and b.mask[i, 21:24].all()
    assert seen == {0, 1, 2}


def test_associative_recall_batches_with_different_item_counts_follow_the_layout_per_sample():
    task = AssociativeRecallTask(min_items=2, max_items=9)
    b = task.make_batch(64, torch.Generator().manual_seed(5))
    k, d = 3, 6
    assert len(set(b.levels.tolist())) > 4
    for i in range(64):
        n, x = int(b.levels[i]), b.inputs[i]
        assert int(b.lengths[i]) == (k + 1) * (n + 1) + 1 + k
        items = [x[j * (k + 1) + 1 : j * (k + 1) + 1 + k, :d] for j in range(n)]
        assert x[[j * (k + 1) for j in range(n)], d].eq(1).all() and x[:, d].sum() == n
        start = n * (k + 1)
        assert x[start, d + 1] == 1 and x[start + k + 1, d + 1] == 1 and x[:, d + 1].sum() == 2
        q = next(j for j in range(n - 1) if torch.equal(x[start + 1 : start + 1 + k, :d], items[j]))
        out = start + k + 2
        assert torch.equal(b.targets[i, out : out + k], items[q + 1])
        assert b.mask[i].sum() == k and b.mask[i, out : out + k].all()
        assert x[int(b.lengths[i]) :].abs().sum() == 0 and b.targets[i, :out].abs().sum() == 0


def test_associative_recall_closed_layout_bounds_every_item_and_the_query_with_item_delimiters():
    task = AssociativeRecallTask(bits=2, item_length=1, min_items=3, max_items=3, layout="closed")
    b = task.make_batch(1, torch.Generator().manual_seed(0))
    x = b.inputs[0]
    assert x.shape == (11, 4) and b.lengths.tolist() == [11] == [task.steps(3)]
    items = [x[1, :2], x[3, :2], x[5, :2]]
    expected = torch.zeros(11, 4)
    for j, item in enumerate(items):
        expected[2 * j, 2] = 1.0  # item delimiter before each item
        expected[2 * j + 1, :2] = item
    expected[6, 2] = 1.0  # ... and after the last one
    expected[7, 3] = 1.0  # the query delimiter, once
    q = next(j for j in range(2) if torch.equal(x[8, :2], items[j]))
    expected[8, :2] = items[q]
    expected[9, 2] = 1.0  # the query ends like every item: an item delimiter
    assert torch.equal(x, expected)
    assert torch.equal(b.targets[0, 10], items[q + 1])
    assert b.mask[0].tolist() == [0] * 10 + [1]


def test_associative_recall_layouts_differ_only_in_the_delimiters_and_the_extra_step():
    open_, closed = (AssociativeRecallTask(min_items=2, max_items=9, layout=lay) for lay in ("open", "closed"))
    a = open_.make_batch(64, torch.Generator().manual_seed(7))
    b = closed.make_batch(64, torch.Generator().manual_seed(7))
    k, d = 3, 6
    assert torch.equal(a.levels, b.levels) and torch.equal(b.lengths, a.lengths + 1)
    for i in range(64):
        n, la = int(a.levels[i]), int(a.lengths[i])
        start = n * (k + 1)
        assert torch.equal(a.inputs[i, :start], b.inputs[i, :start])  # the items alike
        assert torch.equal(a.inputs[i, start:la, :d], b.inputs[i, start + 1 : la + 1, :d])  # the query, a step later
        assert torch.equal(a.targets[i, :la], b.targets[i, 1 : la + 1])  # the same answer, a step later
        assert b.inputs[i, :, d].sum() == n + 2 and b.inputs[i, :, d + 1].sum() == 1
    with pytest.raises(TaskError, match="layout must be one of open, closed"):
        AssociativeRecallTask(layout="bracketed")


def test_priority_sort_batches_with_different_item_counts_sort_each_sample_by_its_own_items():
    task = PrioritySortTask(min_items=16, max_items=24, outputs=16)
    b = task.make_batch(48, torch.Generator().manual_seed(6))
    assert len(set(b.levels.tolist())) > 4
    for i in range(48):
        n, x = int(b.levels[i]), b.inputs[i]
        assert int(b.lengths[i]) == n + 1 + 16 and x[n].tolist() == [0.0] * 9 + [1.0]
        order = sorted(range(n), key=lambda j: -float(x[j, 8]))[:16]
        assert torch.equal(b.targets[i, n + 1 : n + 17], x[order, :8])
        assert b.mask[i].sum() == 16 and b.mask[i, n + 1 : n + 17].all()
        assert x[n + 1 :].abs().sum() == 0


def test_ngram_tables_are_beta_half_half():
    p = sample_tables(2000, 32, torch.Generator().manual_seed(0))
    assert p.mean().item() == pytest.approx(0.5, abs=0.01)
    assert p.var().item() == pytest.approx(1 / 8, abs=0.005)  # Beta(1/2, 1/2): variance 1/8


def test_ngram_optimal_estimator_by_hand():
    # order 1 (bigrams), context 0 before the start: 1 1 0 1
    p = optimal_predictions(torch.tensor([[1.0, 1, 0, 1]]), order=1)
    assert p[0].tolist() == [0.5, 0.5, 0.75, 0.75]


def _counted_predictions(bits: torch.Tensor, order: int) -> torch.Tensor:
    """The estimator written as the equation reads: count each context's 0s and 1s step by step."""
    out = torch.empty(bits.shape, dtype=torch.float64)
    for i, row in enumerate(bits.long().tolist()):
        counts: dict[int, list[int]] = {}
        context = 0
        for t, bit in enumerate(row):
            n0, n1 = counts.get(context, [0, 0])
            out[i, t] = (n1 + 0.5) / (n0 + n1 + 1.0)
            counts[context] = [n0 + (bit == 0), n1 + (bit == 1)]
            context = ((context << 1) | bit) & ((1 << order) - 1)
    return out


def _drawn_step_by_step(table: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Bits drawn one at a time: bit t is 1 when u[t] < table[context before t]."""
    order = table.shape[1].bit_length() - 1
    out = torch.empty(u.shape)
    for i in range(u.shape[0]):
        context = 0
        for t in range(u.shape[1]):
            bit = int(u[i, t] < table[i, context])
            out[i, t] = bit
            context = ((context << 1) | bit) & ((1 << order) - 1)
    return out


def test_ngram_contexts_hold_the_previous_bits_most_recent_lowest():
    bits = torch.tensor([[1, 0, 1, 1, 0]])
    # order 3: before bit t the bits t-1, t-2, t-3 weigh 1, 2, 4 (zeros before the start)
    assert contexts(bits, 3).tolist() == [[0, 1, 2, 5, 3]]


@pytest.mark.parametrize("order,length,batch", [(1, 30, 4), (5, 200, 16), (8, 120, 5), (11, 64, 3)])
def test_ngram_vectorised_draw_and_estimator_equal_the_step_by_step_ones(order, length, batch):
    g = torch.Generator().manual_seed(order)
    table = sample_tables(batch, 1 << order, g)
    u = torch.rand(batch, length, generator=g, dtype=torch.float64)
    bits = sample_bits(table, u)
    assert torch.equal(bits, _drawn_step_by_step(table, u))
    assert 0 < bits.mean() < 1
    assert torch.equal(optimal_predictions(bits, order), _counted_predictions(bits, order))


def test_ngram_batch_predicts_the_next_bit():
    task = NGramsTask(min_length=50, max_length=50)
    b = task.make_batch(8, torch.Generator().manual_seed(4))
    assert b.inputs.shape == (8, 50, 1) and b.mask.sum() == 8 * 50
    assert torch.equal(b.targets[:, :-1], b.inputs[:, 1:])  # target t is input t + 1
    # The optimal estimator costs less than a coin (50 bits) but not nothing.
    assert 10 < task.optimal_bits(b).mean() < 50
    # A model that predicts the optimal probabilities has cost 0; a constant 1/2 costs more.
    bits = torch.cat([b.inputs[:, :1, 0], b.targets[..., 0]], 1)
    p = optimal_predictions(bits, 5)[:, 1:].float().unsqueeze(-1)
    s = task.score(torch.logit(p), b)
    assert s["cost"] == pytest.approx(0.0, abs=1e-3)
    assert task.score(torch.zeros_like(p), b)["cost"] > 5


def test_priority_sort_matches_a_hand_built_example():
    task = PrioritySortTask(bits=2, min_items=3, max_items=3, outputs=2)
    b = task.make_batch(1, torch.Generator().manual_seed(0))
    x = b.inputs[0]
    assert x.shape == (6, 4) and b.lengths.tolist() == [6]
    prio = x[:3, 2]
    assert ((prio >= -1) & (prio <= 1)).all() and x[3].tolist() == [0, 0, 0, 1]
    first, second = sorted(range(3), key=lambda j: -float(prio[j]))[:2]
    assert torch.equal(b.targets[0, 4], x[first, :2]) and torch.equal(b.targets[0, 5], x[second, :2])
    assert b.mask[0].tolist() == [0, 0, 0, 0, 1, 1]


@pytest.mark.parametrize(
    "cls, kw, message",
    [
        (RepeatCopyTask, dict(min_repeats=5, max_repeats=2), "--min_repeats \\(5\\) is larger than --max_repeats"),
        (AssociativeRecallTask, dict(min_items=1), "--min_items must be >= 2"),
        (NGramsTask, dict(n=1), "n must be in 2-12"),
        (PrioritySortTask, dict(outputs=25), "--sort_outputs must be in 1-20"),
    ],
)
def test_bad_task_settings(cls, kw, message):
    with pytest.raises(TaskError, match=message):
        cls(**kw)


def test_evaluate_reports_the_share_of_output_bits_wrong():
    """A model that always answers 0 gets exactly the target's ones wrong: wrong_share is that
    count over every scored output bit (L x 8 per copy sequence), whatever the lengths."""
    from ntmkit.evaluate import evaluate

    class Zeros(torch.nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], x.shape[1], 8), -1.0), None

    task = CopyTask(min_length=3, max_length=9)
    result = evaluate(Zeros(), task, 300, torch.Generator().manual_seed(0), batch_size=64)
    g = torch.Generator().manual_seed(0)
    ones = scored = 0
    for n in (64, 64, 64, 64, 44):
        b = task.make_batch(n, g)
        ones += float((b.targets * b.mask.unsqueeze(-1)).sum())
        scored += float(b.mask.sum()) * 8
    assert result["wrong_share"] == pytest.approx(ones / scored)
    assert result["bit_errors"] == pytest.approx(ones / 300)
    assert 0.45 < result["wrong_share"] < 0.55


def test_repeat_copy_scores_the_end_marker_on_its_own():
    task = RepeatCopyTask(bits=2, min_length=2, max_length=2, min_repeats=2, max_repeats=2)
    b = task.make_batch(3, torch.Generator().manual_seed(0))
    logits = b.targets * 20 - 10  # a perfect answer
    assert task.score(logits, b)["end_marker_errors"] == 0
    early = logits.clone()
    early[:, 5, 2] = 10.0  # an end marker after the first repeat as well, in every sequence
    late = logits.clone()
    late[:, 7, 2] = -10.0  # the real one missed
    assert task.score(early, b)["end_marker_errors"] == 1.0 and task.score(late, b)["end_marker_errors"] == 1.0
    assert task.score(early, b)["bit_errors"] == 1.0
