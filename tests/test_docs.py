"""The docs a newcomer reads: the README's shape, no overlong line, the generated CLI reference up
to date, the Chomsky page's table filled from stored results alone."""

import json
from pathlib import Path

from ntmkit import chomsky
from ntmkit.clidoc import reference, reflow

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readme_is_short_and_has_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    commands = [line for line in text.splitlines() if line.startswith("python3 -m venv .venv")]
    assert len(commands) == 2 and commands[0].endswith("&& ntm train") and commands[1].endswith("&& pytest")


def test_no_line_of_the_readme_or_the_docs_is_longer_than_400_characters():
    long = [(p.name, i) for p in PAGES for i, line in enumerate(p.read_text().splitlines(), 1) if len(line) > 400]
    assert not long, long


def test_docs_cli_md_is_the_parser_s_reference():
    assert (ROOT / "docs" / "cli.md").read_text() == reference(), "run: python -m ntmkit.clidoc > docs/cli.md"


def test_reflow_wraps_prose_and_keeps_tables_code_and_list_indents():
    text = "x " * 300 + "\n| a | " + "b " * 300 + "|\n```\n" + "c " * 300 + "\n```\n- " + "d " * 100
    out = reflow(text, 50).splitlines()
    assert all(len(line) <= 50 for line in out[:12])
    assert any(line.startswith("| a |") and len(line) > 500 for line in out)  # a table row stays one line
    assert any(line.startswith("c c") and len(line) > 500 for line in out)  # code is not touched
    items = [line for line in out if line.startswith(("- d", "  d"))]
    assert items[0].startswith("- d") and all(line.startswith("  d") for line in items[1:])


def test_the_chomsky_page_table_is_filled_from_the_stored_results_only():
    stored = json.loads((ROOT / "benchmarks" / "results" / "chomsky" / "grid.json").read_text())
    page = (ROOT / "docs" / "chomsky.md").read_text()
    assert chomsky.page(stored, page) == page, (
        "run: python -m ntmkit.chomsky page benchmarks/results/chomsky/grid.json docs/chomsky.md"
    )
    for cell in stored["cells"]:
        assert 0.0 <= cell["score"] <= 1.0 and cell["steps"] == stored["suite"]["steps"]
        assert len(cell["accuracy_by_length"]) == len(stored["suite"]["test_lengths"])


def test_every_file_the_reproduce_page_names_exists():
    import re

    text = (ROOT / "docs" / "reproduce.md").read_text()
    named = [p for p in re.findall(r"`((?:benchmarks|src)/[^`* ]+)`", text)]
    assert len(named) >= 10
    missing = [p for p in named if not (ROOT / p).exists()]
    assert not missing, missing
