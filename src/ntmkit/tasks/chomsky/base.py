"""Token tasks: the shared layout of the length-generalisation tasks of Delétang et al. (ICLR 2023).

A sample is a string of input tokens and a string of output tokens. The machine reads the input
one-hot, one token per time step; then, for each output token, it gets a step whose only input
is the *answer* channel, and its output at that step is scored (softmax over the output classes).
So a sample takes ``len(input) + len(output)`` steps, the output is read after the input (as the
paper does it), and samples of one batch may differ in length (padded, masked).

The level is the input length ``n`` (the paper's sequence length): training draws ``n`` uniformly
from ``[min_length, max_length]`` (1-40 in the paper), generalisation is scored beyond it.
Scores: ``accuracy`` (the paper's unit: the share of output tokens right, per sequence, averaged
over sequences), ``bit_errors`` (here: wrong output tokens per sequence) and ``bits`` (softmax
cross-entropy in bits per sequence). The cost is ``1 - accuracy``.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ...errors import TaskError
from ..base import Batch, Task, check_range

Sample = tuple[list[int], list[int]]


@dataclass
class TokenTask(Task):
    """Base of the token tasks: subclasses give the vocabulary, the classes and :meth:`sample`."""

    min_length: int = 1
    max_length: int = 40

    name = "token_task"
    level_name = "length"
    axes: ClassVar[dict[str, tuple[str, str]]] = {"length": ("min_length", "max_length")}
    cost_name = "error rate (1 - accuracy)"
    cost_score: ClassVar[str | None] = None
    learned_below = 0.01
    chomsky_level: ClassVar[str] = "R"  # R (regular), DCF (deterministic context-free), CS (context-sensitive)
    vocabulary: ClassVar[tuple[str, ...]] = ()  # input token names
    classes: ClassVar[tuple[str, ...]] = ()  # output class names
    shortest: ClassVar[int] = 1  # the shortest input the task defines

    def __post_init__(self):
        check_range(self.name, self.min_length, self.max_length, "--min_sequence", "--max_sequence")

    @property
    def input_size(self) -> int:
        return len(self.vocabulary) + 1  # the tokens, and the answer channel

    @property
    def output_size(self) -> int:
        return len(self.classes)

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator) -> Sample:
        """One sample of input length ``n`` (>= ``shortest``): input token ids, output class ids."""

    def output_length(self, n: int) -> int:
        """The output length of a sample of input length ``n`` (one token: a decision; the tasks
        whose answer is a string say how long it is)."""
        return 1

    def steps(self, n: int) -> int:
        """Time steps of a sample of input length ``n``."""
        n = max(n, self.shortest)
        return n + self.output_length(n)

    def memory_needed(self, level: int) -> int:
        return self.steps(level)  # a row per step is always enough

    def generalisation_levels(self) -> list[int]:
        return [self.max_length + 1, 2 * self.max_length, 100, 250, 500]

    def evaluation_values(self, axis: str) -> list[int]:
        return list(range(self.max_length + 1, 101))  # the paper's public example: 41-100

    def make_batch(self, batch_size, generator, max_level=None, level=None) -> Batch:
        top = self.max_length if max_level is None else int(max_level)
        if level is not None:
            lengths = [int(level)] * batch_size
        else:
            lo = min(self.min_length, top)
            lengths = torch.randint(lo, top + 1, (batch_size,), generator=generator).tolist()
        if batch_size and min(lengths) < 1:
            raise TaskError(f"{self.name}: the input length must be >= 1, got {min(lengths)}")
        samples = [self.sample(max(n, self.shortest), generator) for n in lengths]
        return self.assemble(samples, lengths)

    def assemble(self, samples: list[Sample], levels: list[int]) -> Batch:
        """A padded batch from samples: inputs one-hot, then the answer channel over the output steps."""
        b = len(samples)
        totals = [len(i) + len(o) for i, o in samples]
        t = max(totals, default=1)
        inputs = torch.zeros(b, t, self.input_size)
        targets = torch.zeros(b, t, self.output_size)
        mask = torch.zeros(b, t)
        answer = self.input_size - 1
        for k, (ins, outs) in enumerate(samples):
            n, m = len(ins), len(outs)
            if n:
                inputs[k, torch.arange(n), torch.tensor(ins)] = 1.0
            inputs[k, n : n + m, answer] = 1.0
            targets[k, n + torch.arange(m), torch.tensor(outs, dtype=torch.long)] = 1.0
            mask[k, n : n + m] = 1.0
        return Batch(inputs, targets, mask, torch.tensor(totals), torch.tensor(levels))

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Softmax cross-entropy (nats), mean over the output tokens that count."""
        per_step = -(F.log_softmax(logits, dim=-1) * batch.targets).sum(-1)
        mask = batch.mask.to(per_step.dtype)
        return (per_step * mask).sum() / mask.sum().clamp_min(1.0)

    @torch.no_grad()
    def metrics(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """``bits``: cross-entropy in bits per sequence; ``bit_errors``: wrong output tokens per
        sequence; ``target_bits``: output tokens per sequence; ``accuracy``: the share of each
        sequence's output tokens that are right, averaged over the sequences; ``perfect``: the share
        of sequences without a wrong token; ``errors_per_sample`` ``[B]``."""
        mask = batch.mask.to(logits.dtype)
        b = max(logits.shape[0], 1)
        per_step = -(F.log_softmax(logits, dim=-1) * batch.targets).sum(-1)
        right = (logits.argmax(-1) == batch.targets.argmax(-1)).to(logits.dtype) * mask
        tokens = mask.sum(1)
        wrong = tokens - right.sum(1)
        return {
            "bits": (per_step * mask).sum() / (b * math.log(2)),
            "bit_errors": wrong.sum() / b,
            "target_bits": tokens.sum() / b,
            "accuracy": (right.sum(1) / tokens.clamp_min(1.0)).sum() / b,
            "perfect": (wrong == 0).to(torch.float32).sum() / b,
            "errors_per_sample": wrong,
        }

    def cost(self, score: dict):
        return 1.0 - score["accuracy"]


@dataclass
class BinaryStringTask(TokenTask):
    """Input: a string over {0, 1}. Output: ``transform`` of it, ``output_factor`` times as long."""

    vocabulary: ClassVar[tuple[str, ...]] = ("0", "1")
    classes: ClassVar[tuple[str, ...]] = ("0", "1")
    output_factor: ClassVar[int] = 1

    @staticmethod
    def transform(s: list[int]) -> list[int]:
        return s

    def output_length(self, n: int) -> int:
        return self.output_factor * n

    def sample(self, n, generator) -> Sample:
        s = uniform(2, n, generator)
        return s, self.transform(s)


def uniform(k: int, n: int, generator: torch.Generator) -> list[int]:
    """``n`` tokens drawn uniformly from ``range(k)``."""
    return torch.randint(0, k, (n,), generator=generator).tolist()


def randint(lo: int, hi: int, generator: torch.Generator) -> int:
    """One integer drawn uniformly from ``[lo, hi]``."""
    return int(torch.randint(lo, hi + 1, (1,), generator=generator))
