"""Evaluation: bit errors per sequence on fresh data, at one level or across many."""

from __future__ import annotations

import torch

from .tasks import Task


@torch.no_grad()
def evaluate(model: torch.nn.Module, task: Task, sequences: int, generator: torch.Generator,
             level: int | None = None, max_level: int | None = None, batch_size: int = 250,
             device="cpu") -> dict:
    """Score ``model`` on ``sequences`` fresh sequences.

    With ``level`` every sequence has that level (copy: length); otherwise levels are drawn from
    the task's range (up to ``max_level``). Returns the means of the task's scores (``bits`` and
    ``bit_errors`` per sequence, ``perfect``: the share of sequences without a wrong bit,
    ``cost``: the task's headline number, and any task-specific ones) and ``sequences``.
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
    return {**{k: v / max(done, 1) for k, v in totals.items()}, "sequences": done}


def generalisation(model: torch.nn.Module, task: Task, levels: list[int], sequences: int,
                   generator: torch.Generator, device="cpu") -> list[dict]:
    """Bit errors per sequence at each of ``levels``: one row per level."""
    return [{"level": lv, **evaluate(model, task, sequences, generator, level=lv, device=device)} for lv in levels]
