"""The dynamic N-grams task (section 4.4 of the paper).

Each sequence has its own N-gram table: for each of the ``2**(n-1)`` contexts of the last
``n - 1`` bits, a probability that the next bit is 1, drawn from Beta(1/2, 1/2). The sequence is
``length + 1`` bits drawn from that table (the context before the first bit is all zeros). The
input at step t is bit t, the target bit t + 1: the machine must estimate the table as it goes.

The best any predictor can do is the Bayesian estimator with the Beta(1/2, 1/2) prior,
P(1 | c) = (N1 + 1/2) / (N1 + N0 + 1), where N1 and N0 count how often context c was followed
by 1 and by 0 so far (:func:`optimal_predictions`). The task's cost is how many bits per
sequence the model spends above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..errors import TaskError
from .base import Batch, Task, check_range, draw_levels


def sample_tables(batch_size: int, contexts: int, generator: torch.Generator) -> torch.Tensor:
    """``[B, contexts]`` probabilities from Beta(1/2, 1/2), i.e. sin^2(pi U / 2) for U ~ U(0, 1)."""
    u = torch.rand(batch_size, contexts, generator=generator, dtype=torch.float64)
    return torch.sin(0.5 * math.pi * u) ** 2


def optimal_predictions(bits: torch.Tensor, order: int) -> torch.Tensor:
    """The Bayes-optimal P(next bit = 1) before each bit of ``bits``.

    Args:
        bits: ``[B, T]`` 0/1 sequences, generated with an all-zero context before the first bit.
        order: N - 1, the number of previous bits a prediction depends on.
    Returns:
        ``[B, T]`` probabilities: entry t is (N1 + 1/2) / (N1 + N0 + 1) for the context of
        bit t, counting only bits before t.
    """
    b, t = bits.shape
    mask = (1 << order) - 1
    counts = torch.zeros(b, 1 << order, 2, dtype=torch.float64)
    context = torch.zeros(b, dtype=torch.long)
    rows = torch.arange(b)
    out = torch.empty(b, t, dtype=torch.float64)
    x = bits.long()
    for s in range(t):
        c = counts[rows, context]  # [B, 2]
        out[:, s] = (c[:, 1] + 0.5) / (c.sum(-1) + 1.0)
        counts[rows, context, x[:, s]] += 1.0
        context = ((context << 1) | x[:, s]) & mask
    return out


@dataclass
class NGramsTask(Task):
    n: int = 6
    min_length: int = 200
    max_length: int = 200

    name = "ngrams"
    level_name = "length"
    axes: ClassVar[dict[str, tuple[str, str]]] = {"length": ("min_length", "max_length")}
    cost_name = "bits per sequence above the optimal estimator"
    cost_score = None
    learned_below = 0.5

    def __post_init__(self):
        if not 2 <= self.n <= 12:
            raise TaskError(f"ngrams: n must be in 2-12, got {self.n}")
        check_range("ngrams", self.min_length, self.max_length, "--min_sequence", "--max_sequence")

    @property
    def input_size(self) -> int:
        return 1

    @property
    def output_size(self) -> int:
        return 1

    def generalisation_levels(self) -> list[int]:
        return [50, 100, 200, 400, 800]

    def make_batch(self, batch_size, generator, max_level=None, level=None) -> Batch:
        lengths = draw_levels(
            batch_size, generator, self.min_length, self.max_length, max_level, level, "ngrams: sequence length"
        )
        t = int(lengths.max())
        order = self.n - 1
        table = sample_tables(batch_size, 1 << order, generator)
        u = torch.rand(batch_size, t + 1, generator=generator, dtype=torch.float64)
        bits = torch.zeros(batch_size, t + 1)
        context = torch.zeros(batch_size, dtype=torch.long)
        rows = torch.arange(batch_size)
        for s in range(t + 1):
            x = (u[:, s] < table[rows, context]).long()
            bits[:, s] = x
            context = ((context << 1) | x) & ((1 << order) - 1)
        steps = torch.arange(t)
        mask = (steps.unsqueeze(0) < lengths.unsqueeze(1)).float()
        inputs = (bits[:, :t] * mask).unsqueeze(-1)
        targets = (bits[:, 1:] * mask).unsqueeze(-1)
        return Batch(inputs, targets, mask, lengths, lengths)

    def optimal_bits(self, batch: Batch) -> torch.Tensor:
        """``[B]`` bits per sequence the optimal estimator spends on ``batch``'s targets."""
        bits = torch.cat([batch.inputs[:, :1, 0], batch.targets[..., 0]], dim=1).cpu()  # bits 0 .. T
        p = optimal_predictions(bits, self.n - 1)[:, 1:]  # predictions of bits 1 .. T
        y = bits[:, 1:].double()
        nll = -(y * torch.log2(p) + (1 - y) * torch.log2(1 - p))
        return (nll * batch.mask.cpu().double()).sum(1)

    @torch.no_grad()
    def metrics(self, logits, batch) -> dict[str, torch.Tensor]:
        result = super().metrics(logits, batch)
        result["optimal_bits"] = self.optimal_bits(batch).mean().to(logits.device)
        return result

    def cost(self, score: dict):
        if "optimal_bits" not in score:
            return float("inf")
        return score["bits"] - score["optimal_bits"]
