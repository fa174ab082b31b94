"""benchmarks/recall_analysis.py: the items and the query read back off a recall batch."""

import importlib.util
from pathlib import Path

import pytest
import torch

from ntmkit.tasks.associative_recall import AssociativeRecallTask

_SPEC = importlib.util.spec_from_file_location(
    "recall_analysis", Path(__file__).resolve().parents[1] / "benchmarks" / "recall_analysis.py"
)
assert _SPEC is not None and _SPEC.loader is not None
recall_analysis = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(recall_analysis)


@pytest.mark.parametrize("layout", ["open", "closed"])
def test_the_items_and_the_query_read_back_give_the_target(layout):
    task = AssociativeRecallTask(bits=3, layout=layout)  # 3 bits: many shared vectors
    b = task.make_batch(256, torch.Generator().manual_seed(0), level=5)
    stored, query = recall_analysis.stored_items(b.inputs, 5, task.item_length, task.bits)
    assert stored.shape == (256, 5, 3, 3) and query.shape == (256, 3, 3)
    place = recall_analysis.query_place(stored, query)
    rows = torch.arange(256)
    assert torch.equal(stored[rows, place], query)
    answer = b.targets[b.mask.bool()].reshape(256, 3, 3)
    # where two items equal the query the first is taken; its successor must then be the answer too
    unambiguous = (stored[:, :-1] == query.unsqueeze(1)).flatten(2).all(2).sum(1) == 1
    assert unambiguous.float().mean() > 0.5
    assert torch.equal(stored[rows, place + 1][unambiguous], answer[unambiguous])


def test_a_vector_shared_with_another_item_is_found_at_its_position_only():
    stored = torch.zeros(1, 3, 2, 1)
    stored[0, :, :, 0] = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])  # item 0 = (1, 0)
    shared = recall_analysis.shared_vectors(stored, torch.tensor([0]))
    assert shared.tolist() == [[True, True]]  # first vector with item 1, second with item 2
    shared = recall_analysis.shared_vectors(stored, torch.tensor([1]))
    assert shared.tolist() == [[True, False]]  # item 1 = (1, 1): only its first vector is item 0's


def test_wrong_bits_split_by_group():
    rows = recall_analysis.split(torch.tensor([0.0, 2.0, 4.0, 1.0]), torch.tensor([0, 1, 1, 0]), ["a", "b", "c"])
    assert [r["share"] for r in rows] == [0.5, 0.5, 0.0]
    assert [r["wrong_bits_per_sequence"] for r in rows] == [0.5, 3.0, None]


def test_write_paths_find_the_tape_and_the_items_another_head_writes_on():
    items, k, n = 4, 3, 32
    steps = items * (k + 1)
    w = torch.full((steps, 2, n), 0.01)
    for t in range(steps):
        w[t, 0, (10 + t) % n] = 0.9  # head 0: a tape from row 10, one row per step
        w[t, 1, 17 + t // 8] = 0.5  # head 1: sharp, slow, on rows 17 and 18
    heads = recall_analysis.write_paths(w, items, k)
    tape, other = heads
    assert tape["tape"] and not other["tape"]
    assert (tape["first_row"], tape["last_row"], tape["rows_per_step"]) == (10, 25, 1.0)
    assert tape["mean_peak"] == pytest.approx(0.9)
    # item 1 sits at steps 5-7 (rows 15-17), item 2 at steps 9-11 (rows 19-21): row 17 is item 1's
    assert other["writes_on_items"] == [1]
    assert other["rows_per_step"] == pytest.approx(1 / 15)


def test_a_diffuse_head_writes_on_no_item():
    w = torch.full((8, 2, 16), 0.05)
    for t in range(8):
        w[t, 0, t] = 0.9
        w[t, 1, t] = 0.06  # on the tape's rows, but too faint to count
    assert recall_analysis.write_paths(w, 2, 3)[1]["writes_on_items"] == []


def test_answer_reads_split_the_reading_heads_weight_by_kind_of_row():
    items, k, n, steps = 2, 2, 16, 12  # items at steps 1-2 (+3) and 4-5 (+6), query 7-8, answer 10-11
    write = torch.full((2, steps, 1, n), 0.01)
    for t in range(steps):
        write[:, t, 0, t] = 0.9  # the tape: row t at step t
    read = torch.zeros(2, steps, 2, n)
    read[:, :, 0, 14] = 1.0  # head 0 counts on a row no head writes: sharp, but not the reader
    read[0, 10, 1, 5] = read[0, 11, 1, 6] = 1.0  # seq 0 reads item 1's rows (the answer), a step late
    read[1, 10:, 1, 15] = 0.6  # seq 1: an unwritten row and item 0's first row
    read[1, 10:, 1, 1] = 0.4
    mask = torch.zeros(2, steps)
    mask[:, 10:] = 1
    out = recall_analysis.answer_reads(read, write, mask, torch.tensor([0, 0]), torch.tensor([0.0, 5.0]), 0, items, k)
    assert out["reading_head"] == 1
    assert out["perfect"]["share"] == 0.5 and out["wrong"]["share"] == 0.5
    assert (out["perfect"]["answer"], out["perfect"]["other_items"], out["perfect"]["unwritten"]) == (1.0, 0.0, 0.0)
    assert out["wrong"]["answer"] == 0.0
    assert out["wrong"]["other_items"] == pytest.approx(0.4)
    assert out["wrong"]["unwritten"] == pytest.approx(0.6)
    assert out["wrong"]["rest"] == pytest.approx(0.0)


def test_tape_rows_mark_each_items_rows_and_the_delimiter_after_it():
    write = torch.zeros(1, 9, 2, 10)
    for t in range(9):
        write[0, t, 1, (2 * t) % 10] = 1.0  # head 1: two rows per step
    rows = recall_analysis.tape_rows(write, 1, 2, 3)  # items at steps 1-3 and 5-7, delimiters at 4 and 8
    assert rows[0, 0].nonzero().flatten().tolist() == [2, 4, 6, 8]
    assert rows[0, 1].nonzero().flatten().tolist() == [0, 2, 4, 6]  # rows 10-16 wrap round
