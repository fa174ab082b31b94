"""Schedules by sequences seen: the learning rate (``--lr_schedule``) and the batch size
(``--batch_schedule``) a run changes to once it has seen so many sequences.

A schedule is a tuple of ``(sequences, value)`` pairs with the sequence counts increasing. A run
follows it as it goes (:func:`passed`: the entry a step has just passed) and a resumed run takes
the value of the last entry it has passed (:func:`value_at`), so one schedule spans sittings.
"""

from __future__ import annotations

import math

# kind -> (the value's name in messages, its type, an example schedule)
KINDS = {
    "lr": ("RATE", float, "70000:3e-5,100000:1e-5"),
    "batch": ("BATCH", int, "100000:32"),
}


def parse(text: str, kind: str) -> tuple:
    """``"70000:3e-5,100000:1e-5"`` -> ``((70000, 3e-5), (100000, 1e-5))`` (kind ``"lr"``), or
    ``"100000:32"`` -> ``((100000, 32),)`` (kind ``"batch"``). Raises ValueError naming what is wrong."""
    name, convert, example = KINDS[kind]
    schedule = []
    for part in text.split(","):
        at, sep, value = part.strip().partition(":")
        try:
            entry = (int(at), convert(value)) if sep else None
        except ValueError:
            entry = None
        if entry is None:
            raise ValueError(f"{part.strip()!r} is not SEQUENCES:{name} (e.g. {example})")
        schedule.append(entry)
    check(schedule, kind)
    return tuple(schedule)


def check(schedule, kind: str) -> None:
    """Sequence counts >= 0 and increasing; rates finite and > 0 (``"lr"``), batch sizes whole
    numbers >= 1 (``"batch"``). Raises ValueError otherwise."""
    for i, (at, value) in enumerate(schedule):
        if at < 0 or (i and at <= schedule[i - 1][0]):
            raise ValueError(f"the sequence counts must be >= 0 and increasing, got {[a for a, _ in schedule]}")
        if kind == "lr" and not (math.isfinite(value) and value > 0):
            raise ValueError(f"a learning rate must be a finite number > 0, got {value} at {at} sequences")
        if kind == "batch" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"a batch size must be a whole number >= 1, got {value!r} at {at} sequences")


def passed(schedule, before: int, after: int):
    """The value of the last entry that a run passes on its way from ``before`` (excluded) to
    ``after`` (included) sequences seen, or None where it passes none."""
    values = [value for at, value in schedule if before < at <= after]
    return values[-1] if values else None


def value_at(schedule, sequences: int, default):
    """The value in force after ``sequences`` sequences: the last entry passed, else ``default``."""
    value = passed(schedule, -1, sequences)
    return default if value is None else value


def describe(schedule, unit: str = "") -> str:
    """``", 3e-05 from 70,000 sequences, ..."``: the schedule as the training header prints it."""
    return "".join(f", {unit}{value:g} from {at:,} sequences" for at, value in schedule)
