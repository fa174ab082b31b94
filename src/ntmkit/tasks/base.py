"""The task interface: how to make a batch, how to score it, what its generalisation test is.

The training loop, the evaluator and the plots see tasks only through :class:`Task`, so adding a
task is one new file and a line in the registry (:mod:`ntmkit.tasks`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F



class Batch(NamedTuple):
    """inputs ``[B, T, input_size]``; targets ``[B, T, output_size]``; mask ``[B, T]`` (1 where a
    target counts); lengths ``[B]`` (each sample's length in time steps); levels ``[B]`` (each
    sample's difficulty, e.g. the copy length)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    levels: torch.Tensor

    def to(self, device) -> "Batch":
        return Batch(*(t.to(device) for t in self))


@dataclass
class Task(ABC):
    """Base class. A task has a difficulty ``level`` (for copy: the sequence length) that the
    curriculum widens from ``curriculum_start`` up to ``max_level``."""

    name = "task"
    level_name = "level"

    @property
    @abstractmethod
    def input_size(self) -> int:
        """Width of an input vector."""

    @property
    @abstractmethod
    def output_size(self) -> int:
        """Width of a target vector."""

    @property
    @abstractmethod
    def min_level(self) -> int:
        """Easiest level of the training range."""

    @property
    @abstractmethod
    def max_level(self) -> int:
        """Hardest level of the training range."""

    @abstractmethod
    def make_batch(self, batch_size: int, generator: torch.Generator, max_level: int | None = None,
                   level: int | None = None) -> Batch:
        """A batch with levels drawn uniformly from [min_level, max_level] (or all = ``level``)."""

    def memory_needed(self, level: int) -> int:
        """Memory locations a machine needs to solve an instance of this level."""
        return 0

    def generalisation_levels(self) -> list[int]:
        """The levels of this task's generalisation test."""
        return [self.max_level]

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Masked binary cross-entropy, mean over the target bits that count."""
        per_bit = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none")
        mask = batch.mask.unsqueeze(-1).to(per_bit.dtype)
        return (per_bit * mask).sum() / (mask.sum() * logits.shape[-1]).clamp_min(1.0)

    @torch.no_grad()
    def score(self, logits: torch.Tensor, batch: Batch) -> dict:
        """Cost in bits per sequence: cross-entropy in bits and output bits wrong after
        thresholding at 0.5, counted only where a target is defined.

        Returns plain floats: ``bits`` (cross-entropy bits per sequence), ``bit_errors`` (wrong
        bits per sequence), ``perfect`` (share of sequences with no wrong bit) and
        ``errors_per_sample`` (a ``[B]`` tensor).
        """
        mask = batch.mask.unsqueeze(-1).to(logits.dtype)
        b = logits.shape[0]
        ce = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none")
        wrong = ((logits > 0).to(logits.dtype) != batch.targets).to(logits.dtype) * mask
        per_sample = wrong.sum(dim=(1, 2))
        return {
            "bits": float((ce * mask).sum() / (b * math.log(2))),
            "bit_errors": float(per_sample.sum() / b),
            "perfect": float((per_sample == 0).to(torch.float32).mean()),
            "errors_per_sample": per_sample,
        }

    def describe(self) -> str:
        return f"{self.name} ({self.level_name} {self.min_level}-{self.max_level})"
