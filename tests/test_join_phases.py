"""benchmarks/join_phases.py: a recipe's phases end to end, and evaluation reports pooled."""

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "join_phases", Path(__file__).resolve().parents[1] / "benchmarks" / "join_phases.py"
)
assert _SPEC is not None and _SPEC.loader is not None
join_phases = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(join_phases)


def _phase(steps, per_step, seconds, learned_at=None):
    rows = [
        {
            "step": s,
            "sequences": s * per_step,
            "seconds": seconds * s / steps,
            "cost": 1.0 / s,
            "bits": 2.0 / s,
            "bit_errors": 1.0 / s,
        }
        for s in (1, steps)
    ]
    summary = {
        "step": steps,
        "sequences": steps * per_step,
        "seconds": seconds,
        "learned_at": learned_at,
        "final_eval": {"cost": steps},
    }
    return rows, summary


def test_phases_join_end_to_end_each_offset_by_what_came_before():
    first = _phase(100, 1, 10.0, learned_at={"step": 40, "sequences": 40, "seconds": 4.0})
    second = _phase(10, 32, 2.0)
    third = _phase(5, 128, 1.5)
    rows, summary = join_phases.join([first, second, third])
    assert [r["sequences"] for r in rows] == [1, 100, 132, 420, 548, 1060]
    assert all(isinstance(r["sequences"], int) and isinstance(r["step"], int) for r in rows)
    assert [r["step"] for r in rows] == [1, 100, 101, 110, 111, 115]
    assert rows[3]["seconds"] == pytest.approx(12.0)
    assert rows[3]["cost"] == pytest.approx(0.1)  # the phase's own numbers are kept
    assert (summary["step"], summary["sequences"], summary["seconds"]) == (115, 1060, 13.5)
    assert summary["learned"] and summary["learned_at"] == {"step": 40, "sequences": 40, "seconds": 4.0}
    assert summary["final_eval"] == {"cost": 5}  # the last phase's held-out check


def test_a_later_phase_that_learned_is_offset_too():
    _, summary = join_phases.join(
        [_phase(100, 1, 10.0), _phase(10, 32, 2.0, learned_at={"step": 5, "sequences": 160, "seconds": 1.0})]
    )
    assert summary["learned_at"] == {"step": 105, "sequences": 260, "seconds": 11.0}


def _report(n, errors):
    return {
        "axis": "items",
        "sequences_per_value": n,
        "rows": [{"items": v, "bit_errors": e, "perfect": 1 - e} for v, e in errors.items()],
    }


def test_evaluations_pool_as_a_mean_weighted_by_sequences():
    pooled = join_phases.pool([_report(1000, {2: 0.0, 6: 0.02}), _report(3000, {2: 0.004, 6: 0.0})])
    assert pooled["sequences_per_value"] == 4000 and pooled["pooled_sets"] == 2
    assert [r["items"] for r in pooled["rows"]] == [2, 6]
    assert [r["bit_errors"] for r in pooled["rows"]] == pytest.approx([0.003, 0.005])
    assert pooled["rows"][1]["perfect"] == pytest.approx(0.995)


def test_reports_over_other_values_do_not_pool():
    with pytest.raises(SystemExit, match="differ in axis or values"):
        join_phases.pool([_report(1000, {2: 0.0}), _report(1000, {4: 0.0})])


def test_the_command_writes_one_sweep_record_from_phase_directories(tmp_path, capsys, monkeypatch):
    for name, phase in (("p1", _phase(100, 1, 10.0)), ("p2", _phase(10, 32, 2.0))):
        d = tmp_path / name
        d.mkdir()
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in phase[0]) + '{"step": 3, "cut')
        (d / "summary.json").write_text(json.dumps(phase[1]))
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "evaluate_associative_recall_items.json").write_text(json.dumps(_report(1000, {2: 0.0, 6: 0.01})))
    out = tmp_path / "out.json"
    argv = ["join_phases", "--task", "associative_recall", "--seed", f"3={tmp_path / 'p1'},{tmp_path / 'p2'}"]
    argv += ["--evaluations", f"3={ev}", "--command", "the recipe", "--out", str(out)]
    monkeypatch.setattr("sys.argv", argv)
    join_phases.main()
    result = json.loads(out.read_text())
    (seed,) = result["seeds"]
    assert (seed["seed"], seed["total_sequences"], seed["logged_sequences"]) == (3, 420, 420)
    assert seed["generalisation"]["bit_errors"] == {"2": 0.0, "6": 0.01}
    assert result["command"] == "the recipe" and result["curve_sequences"]["x"][-1] == pytest.approx(420)
    assert "saved" in capsys.readouterr().out


def test_a_badly_written_seed_flag_says_how_to_write_it():
    with pytest.raises(SystemExit, match="SEED=DIR"):
        join_phases.seed_lists(["run/p1-logs"], "--seed")
