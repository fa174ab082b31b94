"""benchmarks/results.py: tables drawn from stored analysis figures."""

import importlib.util
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "results", Path(__file__).resolve().parents[1] / "benchmarks" / "results.py"
)
assert _SPEC is not None and _SPEC.loader is not None
results = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(results)


def _reads(share_wrong: float, wrong: dict | None) -> dict:
    none = {"answer": None, "other_items": None, "unwritten": None, "rest": None}
    return {
        "reading_head": 3,
        "perfect": {"share": 1 - share_wrong, "answer": 0.75, "other_items": 0.2, "unwritten": 0.01, "rest": 0.04},
        "wrong": {"share": share_wrong, **(wrong or none)},
    }


def test_answer_reads_table_has_a_row_per_measured_item_count():
    wrong = {"answer": 0.26, "other_items": 0.58, "unwritten": 0.15, "rest": 0.01}
    data = {
        "by_items": [
            {"items": 6, "answer_reads": _reads(0.004, wrong)},
            {"items": 12, "answer_reads": _reads(0.0, None)},
            {"items": 15, "answer_reads": None},  # an analysis from before the figure existed
        ]
    }
    lines = results.answer_reads_table([("attempt 24", 1, data)])
    rows = [line for line in lines if line.startswith("| attempt")]
    assert rows == [
        "| attempt 24 | 1 | 6 | 3 | 0.4% | 0.75 / 0.20 / 0.01 / 0.04 | 0.26 / 0.58 / 0.15 / 0.01 |",
        "| attempt 24 | 1 | 12 | 3 | 0.0% | 0.75 / 0.20 / 0.01 / 0.04 | - |",
    ]


def test_no_table_without_the_figure():
    assert results.answer_reads_table([("attempt 22", 0, {"by_items": [{"items": 6}]})]) == []


def test_the_tape_column_gives_the_tape_heads_rows_per_step_and_peak():
    paths = [
        {"head": 0, "tape": False, "rows_per_step": 0.1, "mean_peak": 0.3},
        {"head": 1, "tape": True, "rows_per_step": -0.53, "mean_peak": 0.969},
    ]
    assert results._tape(paths) == "-0.53 (0.97)"
    assert results._tape(None) == "-"
