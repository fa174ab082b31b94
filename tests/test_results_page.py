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


def _ngrams_lookup(shared: float, own: float, contexts_per_row: float, late_peak: float) -> dict:
    return {
        "read_lookup": {
            "agreement": 0.9,
            "contexts": 25.0,
            "rows": 25.0 / contexts_per_row,
            "contexts_per_row": contexts_per_row,
            "pairs_by_newest_difference": [{"bit": f"t-{k}", "share_of_pairs": 0.5 * (k >= 4)} for k in range(1, 6)],
            "shared_share_of_steps": 0.5,
            "excess_shared_per_sequence": shared,
            "excess_own_per_sequence": own,
            "excess_per_step_shared": 0.005,
            "excess_per_step_own": 0.001,
        },
        "read_focus": [
            {"steps_from": a, "steps_to": b, "peak": [p]}
            for a, b, p in ((0, 10, 0.5), (10, 25, 0.6), (150, 200, late_peak))
        ],
        "write_focus": [{"steps_from": a, "steps_to": b, "peak": [0.4]} for a, b in ((0, 10), (10, 25), (150, 200))],
    }


def test_the_ngrams_table_reading_follows_the_figures():
    crowded = " ".join(results._lookup_lines(_ngrams_lookup(0.58, 0.08, 1.53, 0.61)))
    assert "but not a full one" in crowded and "hardly changes" in crowded
    assert "the size of the table as the limit" in crowded and "0.580 of the 0.660 bits" in crowded
    spread = " ".join(results._lookup_lines(_ngrams_lookup(0.12, 0.74, 1.11, 0.45)))
    assert "nearly a full one" in spread and "focus spreads" in spread
    assert "the table's size is not the limit" in spread and "size of the table as the limit" not in spread
    assert results._lookup_lines({"read_lookup": None}) == []
