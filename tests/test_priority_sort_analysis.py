"""benchmarks/priority_sort_analysis.py: close calls, where the write heads put items, what the read heads read."""

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

_SPEC = importlib.util.spec_from_file_location(
    "priority_sort_analysis", Path(__file__).resolve().parents[1] / "benchmarks" / "priority_sort_analysis.py"
)
assert _SPEC is not None and _SPEC.loader is not None
analysis = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(analysis)

N = 16  # memory rows in these examples


def one_hot(rows: torch.Tensor) -> torch.Tensor:
    return F.one_hot(rows % N, N).float()


def test_each_rank_gets_the_gap_to_its_nearer_neighbour():
    gaps = analysis.neighbour_gaps(torch.tensor([[0.9, 0.1, 0.5, 0.45]]), outputs=3)
    # sorted 0.9, 0.5, 0.45, 0.1: the top rank has one neighbour
    assert gaps.tolist()[0] == pytest.approx([0.4, 0.05, 0.05])


def test_rows_in_order_through_row_zero_are_read_on_the_circle():
    rows = torch.tensor([[2.0, 1.0, 0.0, 15.0, 14.0]])
    by = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5]])
    assert float(analysis.spearman(rows, by)) > -0.5  # the wrap hides the order
    assert float(analysis.spearman(analysis.unwrap(rows, by, N), by)) == pytest.approx(-1.0)


def test_a_write_head_that_places_items_by_priority():
    priorities = torch.tensor([[0.3, -0.5, 0.9, 0.1, -0.9]])
    rows = (torch.round(priorities * -5) + 1).long()  # 5 rows per unit, downward, wrapping through row 0
    r = analysis.row_map(one_hot(rows), priorities, outputs=4)
    assert r["spearman"] == pytest.approx(-1.0)
    assert r["rows_per_unit_priority"] == pytest.approx(-5.0, abs=0.6)
    assert r["peak_weight"] == pytest.approx(1.0)
    assert abs(r["order_spearman"]) < 0.9  # not in input order


def test_a_write_head_that_writes_in_input_order():
    priorities = torch.tensor([[0.3, -0.5, 0.9, 0.1, -0.9]])
    r = analysis.row_map(one_hot(torch.arange(5)[None] + 13), priorities, outputs=5)
    assert r["order_spearman"] == pytest.approx(1.0)


def test_a_read_head_that_reads_the_wanted_rows_in_turn():
    priorities = torch.tensor([[0.3, -0.5, 0.9, 0.1]])
    written = torch.tensor([[3, 9, 0, 5]])  # rows by priority: 0.9 -> 0, 0.3 -> 3, 0.1 -> 5, -0.5 -> 9
    writes = one_hot(written)[:, :, None]  # [batch, items, one write head, N]
    exact = analysis.read_lookup(one_hot(torch.tensor([[0, 3, 5]])), writes, priorities)
    assert exact["hits_by_write_head"] == [1.0] and exact["near_hits_by_write_head"] == [1.0]
    assert exact["rank_spearman"] == pytest.approx(1.0)
    # one row off on two of three steps (row 15 is next to row 0 on the circle): near, not on
    off = analysis.read_lookup(one_hot(torch.tensor([[15, 3, 6]])), writes, priorities)
    assert off["hits_by_write_head"] == [pytest.approx(1 / 3)] and off["near_hits_by_write_head"] == [1.0]
    wrong = analysis.read_lookup(one_hot(torch.tensor([[9, 9, 9]])), writes, priorities)
    assert wrong["hits_by_write_head"] == [0.0] and wrong["near_hits_by_write_head"] == [0.0]
