"""The command-line reference, generated from the parser: ``python -m ntmkit.clidoc > docs/cli.md``.

Every command with its help, and every option it takes with its help and default, grouped as
``ntm COMMAND --help`` groups them; a test keeps docs/cli.md equal to this output.
"""

from __future__ import annotations

import argparse
import sys

from .options import COMMAND_GROUPS, COMMAND_HELP, OPTIONS, build_parser


def _flags(action: argparse.Action) -> str:
    return ", ".join(f"`{s}`" for s in action.option_strings) if action.option_strings else f"`{action.dest}`"


def reference() -> str:
    """The markdown reference of every command and option."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    group_of = {o.name: o.group for o in OPTIONS}
    out = [
        "# Command-line reference",
        "",
        "Generated from the parser by `python -m ntmkit.clidoc > docs/cli.md`; `ntm COMMAND --help` prints the same.",
        "The starting project's flat spelling (`ntm --train --max_sequence=20`) takes every option.",
        "",
    ]
    for command, groups in COMMAND_GROUPS.items():
        p = sub.choices[command]
        out += [f"## ntm {command}", "", COMMAND_HELP[command] + ".", ""]
        positionals = [a for a in p._actions if not a.option_strings and a.dest != "help"]
        for a in positionals:
            out += [f"`ntm {command} [{a.dest.upper()}]`: {a.help}.", ""]
        for group in groups:
            rows = [
                a
                for a in p._actions
                if a.option_strings and a.help != argparse.SUPPRESS and group_of.get(a.dest) == group
            ]
            if not rows:
                continue
            out += [f"**{group}**", "", "| option | what it does |", "|---|---|"]
            out += [f"| {_flags(a)} | {(a.help or '').replace('|', '/')} |" for a in rows]
            out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(reference())


def reflow(text: str, width: int = 100) -> str:
    """Markdown with its long prose lines wrapped at ``width`` (a list item's continuation indented
    under its text); headings, tables, code blocks and short lines are left as they are."""
    import textwrap

    out, code = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            code = not code
        if code or len(line) <= width or line.lstrip().startswith(("|", "#", "<!--", "![")):
            out.append(line)
            continue
        stripped = line.lstrip()
        lead = line[: len(line) - len(stripped)]
        marker = next((m for m in ("- ", "* ") if stripped.startswith(m)), "")
        if not marker and stripped[:1].isdigit() and ". " in stripped[:4]:
            marker = stripped[: stripped.index(". ") + 2]
        out += textwrap.wrap(
            stripped,
            width,
            initial_indent=lead,
            subsequent_indent=lead + " " * len(marker),
            break_long_words=False,
            break_on_hyphens=False,
        )
    return "\n".join(out)
