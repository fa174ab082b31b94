"""Evaluation: bit errors per sequence on fresh data, at one level or across many."""

from __future__ import annotations

import torch

from .tasks import Task


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    task: Task,
    sequences: int,
    generator: torch.Generator,
    level: int | None = None,
    max_level: int | None = None,
    batch_size: int = 250,
    device="cpu",
) -> dict:
    """Score ``model`` on ``sequences`` fresh sequences.

    With ``level`` every sequence has that level (copy: length); otherwise levels are drawn from
    the task's range (up to ``max_level``). Returns the means of the task's scores (``bits`` and
    ``bit_errors`` per sequence, ``perfect``: the share of sequences without a wrong bit,
    ``cost``: the task's headline number, and any task-specific ones), ``wrong_share`` (wrong
    output bits / scored output bits, over all the sequences) and ``sequences``.
    """
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    done = 0
    try:
        while done < sequences:
            n = min(batch_size, sequences - done)
            batch = task.make_batch(n, generator, max_level=max_level, level=level).to(device)
            logits, _ = model(batch.inputs)
            score = task.score(logits, batch)
            for k, v in score.items():
                if isinstance(v, float):
                    totals[k] = totals.get(k, 0.0) + v * n
            done += n
    finally:
        model.train(was_training)
    result = {**{k: v / max(done, 1) for k, v in totals.items()}, "sequences": done}
    if totals.get("target_bits"):
        # The share of output bits wrong, the unit of the paper's and other reproductions' tables.
        result["wrong_share"] = totals["bit_errors"] / totals["target_bits"]
    return result


def along_axis(
    model: torch.nn.Module,
    task: Task,
    axis: str,
    values: list[int],
    sequences: int,
    generator: torch.Generator,
    device="cpu",
    on_row=None,
) -> list[dict]:
    """Scores with ``axis`` fixed at each of ``values`` (the task's other settings unchanged).

    Returns one row per value: ``{axis: value, "bit_errors": ..., "bits": ..., "perfect": ...,
    "cost": ..., "sequences": ...}``. ``on_row(row)`` is called as each row is done.
    """
    rows = []
    for v in values:
        fixed = task.at(axis, v)
        row = {axis: int(v), **evaluate(model, fixed, sequences, generator, device=device)}
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def default_values(task: Task, axis: str, top: int | None = None) -> list[int]:
    """The values ``ntm evaluate`` visits: the task's own list, or, with ``top``, every value
    from the bottom of the training range up to ``top`` (at most 120 of them), then a coarse
    grid up to ``top``."""
    if top is None:
        return task.evaluation_values(axis)
    start = min(task.axis_range(axis)[0], top)
    dense = list(range(start, min(top, start + 119) + 1))
    coarse = [v for v in (150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000) if dense[-1] < v < top]
    return dense + coarse + ([top] if top > dense[-1] else [])
