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
