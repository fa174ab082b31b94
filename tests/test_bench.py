"""ntm bench: its history file and its cold runs."""

import json

from ntmkit.bench import cold_run, record, source_version


def test_record_appends_one_json_line_per_run_with_date_commit_and_figures(tmp_path):
    path = tmp_path / "sub" / "history.jsonl"
    record(str(path), {"run": "ntm bench --quick", "compiled_at_32": 1300.0})
    record(str(path), {"run": "ntm bench --model dnc --quick", "compiled_at_32": 500.0})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["run"] for e in lines] == ["ntm bench --quick", "ntm bench --model dnc --quick"]
    assert [e["compiled_at_32"] for e in lines] == [1300.0, 500.0]
    assert all(e["commit"] == source_version() and len(e["date"]) == 16 and "CPUs" in e["machine"] for e in lines)


def test_no_history_file_writes_nothing(tmp_path):
    record(None, {"run": "x"})
    assert list(tmp_path.iterdir()) == []


def test_source_version_names_a_commit_or_the_package_version():
    v = source_version()
    assert v.startswith("ntmkit ") or all(c in "0123456789abcdef" for c in v.split("+")[0])


def test_a_cold_run_reports_when_its_first_step_was_done_and_from_which_step_it_ran_compiled():
    tiny = ("--in_bits", "2", "--out_bits", "2", "--min_sequence", "1", "--max_sequence", "2")
    tiny += ("--controller_size", "32", "--controller_layers", "1", "--memory_locations", "16")
    tiny += ("--learning_rate", "3e-3", "--steps_after_learned", "0", "--engine", "eager")
    r = cold_run(0, timeout=300, extra=tiny)
    assert r is not None, "the tiny copy task was not learned"
    assert 0 < r["first_step_seconds"] < r["wall_seconds"]
    assert r["compiled_from_step"] is None  # eager: never compiled
    assert 0 < r["learned_sequences"] <= r["sequences"]
