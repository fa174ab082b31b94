"""benchmarks/ngrams_analysis.py: the heads' focus and the read head's table of contexts."""

import importlib.util
from pathlib import Path

import pytest
import torch

_SPEC = importlib.util.spec_from_file_location(
    "ngrams_analysis", Path(__file__).resolve().parents[1] / "benchmarks" / "ngrams_analysis.py"
)
assert _SPEC is not None and _SPEC.loader is not None
ngrams_analysis = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(ngrams_analysis)


def test_focus_is_the_largest_weight_and_the_entropy_per_window():
    w = torch.zeros(2, 20, 1, 8)
    w[:, :10, 0, 3] = 1.0  # one row: peak 1, entropy 0
    w[:, 10:, 0, :4] = 0.25  # four rows: peak 0.25, entropy 2 bits
    rows = ngrams_analysis.focus_by_window(w, edges=(0, 10, 20, 30))
    assert len(rows) == 2  # the window past T is left out
    assert rows[0]["peak"] == [1.0] and rows[0]["entropy_bits"][0] == pytest.approx(0.0, abs=1e-6)
    assert rows[1]["peak"] == [0.25] and rows[1]["entropy_bits"][0] == pytest.approx(2.0)


def test_contexts_that_share_a_row_and_the_excess_on_them():
    # one sequence, contexts 0..3 (order 2); contexts 1 and 3 differ in bit t-2 and are read from row 7
    ctx = torch.tensor([[0, 0, 1, 2, 3, 1, 3, 2]])
    rows = torch.tensor([[9, 5, 7, 6, 7, 7, 7, 5]])  # step 0 is skipped; context 2 read once from row 5
    excess = torch.tensor([[5.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.5]])
    t = ngrams_analysis.lookup_table(rows, ctx, excess, skip=1, order=2)
    # assigned: 0 -> 5, 1 -> 7, 2 -> 6 (tie 6/5 broken by first seen), 3 -> 7
    assert t["contexts"] == 4 and t["rows"] == 3 and t["contexts_per_row"] == pytest.approx(4 / 3)
    assert t["agreement"] == pytest.approx(6 / 7)  # the last step (context 2 from row 5) is off its row
    assert t["shared_share_of_steps"] == pytest.approx(4 / 7)
    assert t["excess_shared_per_sequence"] == pytest.approx(4.0)
    assert t["excess_own_per_sequence"] == pytest.approx(0.5)
    assert t["excess_per_step_own"] == pytest.approx(0.5 / 3)
    shares = {r["bit"]: r["share_of_pairs"] for r in t["pairs_by_newest_difference"]}
    assert shares == {"t-1": 0.0, "t-2": 1.0}  # 1 = 01 and 3 = 11 differ only in the older bit
