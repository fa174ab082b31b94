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


def contexts(bits: torch.Tensor, order: int) -> torch.Tensor:
    """The context before each bit: the ``order`` bits before it, the most recent in the lowest place.

    Args:
        bits: ``[B, T]`` 0/1 sequences (all-zero context before the first bit).
        order: N - 1, the number of previous bits a context holds.
    Returns:
        ``[B, T]`` integers in ``[0, 2**order)``: entry t is the sum over j = 1..order of
        bit (t - j) times 2**(j - 1), bits before the start counting as 0.
    """
    x = bits.long()
    t = x.shape[1]
    padded = torch.nn.functional.pad(x, (order, 0))
    out = torch.zeros_like(x)
    for j in range(1, order + 1):  # a loop over the order (at most 11), not over time
        out |= padded[:, order - j : order - j + t] << (j - 1)
    return out


def optimal_predictions(bits: torch.Tensor, order: int) -> torch.Tensor:
    """The Bayes-optimal P(next bit = 1) before each bit of ``bits``.

    Args:
        bits: ``[B, T]`` 0/1 sequences, generated with an all-zero context before the first bit.
        order: N - 1, the number of previous bits a prediction depends on.
    Returns:
        ``[B, T]`` float64 probabilities: entry t is (N1 + 1/2) / (N1 + N0 + 1) for the context
        of bit t, counting only bits before t.

    Vectorised over time: the steps are sorted by (context, time), so each context's earlier
    steps stand just before it and N1 + N0 and N1 are a position and a running sum within the
    context's group. Exact (integer counts in float64), on any device.
    """
    b, t = bits.shape
    x = bits.to(torch.float64)
    ctx = contexts(bits, order)
    steps = torch.arange(t, device=bits.device).expand(b, t)
    by_context = torch.argsort(ctx * t + steps, dim=1)  # keys are distinct: a total order
    xs = x.gather(1, by_context)
    cs = ctx.gather(1, by_context)
    ones_before = xs.cumsum(1) - xs  # ones earlier in the sorted row (exclusive running sum)
    starts = torch.ones_like(cs, dtype=torch.bool)
    starts[:, 1:] = cs[:, 1:] != cs[:, :-1]
    first = torch.where(starts, steps, 0).cummax(dim=1).values  # where each step's group begins
    n1 = ones_before - ones_before.gather(1, first)  # ones seen in this context before this step
    n = (steps - first).to(torch.float64)  # times this context was seen before this step
    return torch.empty_like(x).scatter_(1, by_context, (n1 + 0.5) / (n + 1.0))


def sample_bits(table: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Bits drawn from per-sequence N-gram tables, vectorised over time.

    Args:
        table: ``[B, C]`` P(bit = 1 | context), ``C = 2**(N - 1)`` contexts.
        u: ``[B, T]`` uniform draws; bit t is 1 when ``u[:, t] < table[context before bit t]``,
            the context before bit 0 being 0.
    Returns:
        ``[B, T]`` float 0/1 bits, equal to drawing them one step at a time.

    Each step maps the context before it to the context after it (a table ``f_t`` of C entries,
    known before any bit is drawn); the contexts are the prefix compositions ``f_t o ... o f_0``
    applied to 0, computed in log2(T) rounds of doubling (Hillis-Steele scan).
    """
    b, t = u.shape
    c = table.shape[1]
    out = torch.empty(b, t)
    chunk = max(1, (1 << 22) // max(1, t * c))  # bound the [chunk, T, C] tables to ~4M entries
    for lo in range(0, b, chunk):
        uc, tc = u[lo : lo + chunk], table[lo : lo + chunk]
        one_if = (uc.unsqueeze(2) < tc.unsqueeze(1)).long()  # [b, T, C]: bit t if the context were k
        k = torch.arange(c)
        step = ((k << 1) | one_if) & (c - 1)  # f_t(k): the context after bit t
        d = 1
        while d < t:  # step[:, s] becomes f_s o ... o f_0
            step = torch.cat([step[:, :d], step[:, d:].gather(2, step[:, :-d])], dim=1)
            d *= 2
        before = torch.cat([torch.zeros_like(step[:, :1, 0]), step[:, :-1, 0]], dim=1)  # [b, T]
        out[lo : lo + chunk] = one_if.gather(2, before.unsqueeze(2)).squeeze(2).float()
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
    # 200 time steps a sequence: eight of them per call of the compiled step (the same arithmetic,
    # fewer calls), and the batch split over two processes on two cores (the same gradient, the
    # mean over the whole batch); README, Speed; benchmarks/results/task_throughput.json.
    recommended: ClassVar[dict[str, object]] = {"unroll": 8, "nproc": 2}

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
        bits = sample_bits(table, u)
        steps = torch.arange(t)
        mask = (steps.unsqueeze(0) < lengths.unsqueeze(1)).float()
        inputs = (bits[:, :t] * mask).unsqueeze(-1)
        targets = (bits[:, 1:] * mask).unsqueeze(-1)
        return Batch(inputs, targets, mask, lengths, lengths)

    def optimal_bits(self, batch: Batch) -> torch.Tensor:
        """``[B]`` bits per sequence the optimal estimator spends on ``batch``'s targets."""
        bits = torch.cat([batch.inputs[:, :1, 0], batch.targets[..., 0]], dim=1)  # bits 0 .. T
        p = optimal_predictions(bits, self.n - 1)[:, 1:]  # predictions of bits 1 .. T
        y = bits[:, 1:].double()
        nll = -(y * torch.log2(p) + (1 - y) * torch.log2(1 - p))
        return (nll * batch.mask.double()).sum(1)

    @torch.no_grad()
    def metrics(self, logits, batch) -> dict[str, torch.Tensor]:
        result = super().metrics(logits, batch)
        result["optimal_bits"] = self.optimal_bits(batch).mean().to(logits.device)
        return result

    def cost(self, score: dict):
        if "optimal_bits" not in score:
            return float("inf")
        return score["bits"] - score["optimal_bits"]
