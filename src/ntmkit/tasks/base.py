"""The task interface: how to make a batch, how to score it, what its generalisation test is.

The training loop, the evaluator and the plots see tasks only through :class:`Task`, so adding a
task is one new file and a line in the registry (:mod:`ntmkit.tasks`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F

from ..errors import TaskError


class Batch(NamedTuple):
    """inputs ``[B, T, input_size]``; targets ``[B, T, output_size]``; mask ``[B, T]`` (1 where a
    target counts); lengths ``[B]`` (each sample's length in time steps); levels ``[B]`` (each
    sample's difficulty, e.g. the copy length)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    levels: torch.Tensor

    def to(self, device) -> Batch:
        return Batch(*(t.to(device) for t in self))


@dataclass
class Task(ABC):
    """Base class. A task has a difficulty ``level`` (for copy: the sequence length) that the
    curriculum widens from ``curriculum_start`` up to ``max_level``."""

    name = "task"
    level_name = "level"
    # Generalisation axes: axis name -> (option holding its minimum, option holding its maximum).
    # The first axis is the task's ``level`` (what the curriculum widens and batches share).
    axes: ClassVar[dict[str, tuple[str, str]]] = {}
    # The task's headline cost (see :meth:`cost`) and the value below which it counts as learned.
    cost_name = "bit errors per sequence"
    # The shared score the cost is ("bit_errors", "bits"), or None for a number of the task's own
    # (then the task overrides :meth:`cost`, and tables show it beside the shared scores).
    cost_score: ClassVar[str | None] = "bit_errors"
    learned_below = 0.01
    # Command-line settings this task trains best with, used where the command line leaves them
    # unset (e.g. ``{"controller": "lstm", "batches": 8}``); measured, see the results page.
    recommended: ClassVar[dict[str, object]] = {}
    # Settings measured to help one model with one controller only: {"model/controller": {flag: value}}
    # (e.g. "ntm/feedforward"), used like ``recommended`` and winning over it.
    recommended_for: ClassVar[dict[str, dict[str, object]]] = {}

    @property
    @abstractmethod
    def input_size(self) -> int:
        """Width of an input vector."""

    @property
    @abstractmethod
    def output_size(self) -> int:
        """Width of a target vector."""

    @property
    def min_level(self) -> int:
        """Easiest level of the training range (the bottom of the first axis)."""
        return self.axis_range(next(iter(self.axes)))[0]

    @property
    def max_level(self) -> int:
        """Hardest level of the training range (the top of the first axis)."""
        return self.axis_range(next(iter(self.axes)))[1]

    @abstractmethod
    def make_batch(
        self, batch_size: int, generator: torch.Generator, max_level: int | None = None, level: int | None = None
    ) -> Batch:
        """A batch with levels drawn uniformly from [min_level, max_level] (or all = ``level``)."""

    def memory_needed(self, level: int) -> int:
        """Memory locations a machine needs to solve an instance of this level."""
        return 0

    def generalisation_levels(self) -> list[int]:
        """The levels of this task's generalisation test."""
        return [self.max_level]

    def evaluation_values(self, axis: str) -> list[int]:
        """Default values of ``axis`` for ``ntm evaluate`` (the first axis: the generalisation levels)."""
        return self.generalisation_levels()

    def axis_range(self, axis: str) -> tuple[int, int]:
        """The training range of ``axis``."""
        lo, hi = self._axis_options(axis)
        return getattr(self, lo), getattr(self, hi)

    def at(self, axis: str, value: int) -> Task:
        """This task with ``axis`` fixed at ``value`` (the other settings unchanged)."""
        lo, hi = self._axis_options(axis)
        return replace(self, **{lo: int(value), hi: int(value)})

    def _axis_options(self, axis: str) -> tuple[str, str]:
        if axis not in self.axes:
            raise TaskError(f"{self.name} has no axis {axis!r}: choose one of {', '.join(self.axes)}")
        return self.axes[axis]

    def cost(self, score: dict):
        """The headline number of a :meth:`score` (floats) or :meth:`metrics` (tensors) result;
        lower is better."""
        assert self.cost_score is not None  # a task with a cost of its own overrides cost()
        return score[self.cost_score]

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Masked binary cross-entropy, mean over the target bits that count."""
        per_bit = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none")
        mask = batch.mask.unsqueeze(-1).to(per_bit.dtype)
        return (per_bit * mask).sum() / (mask.sum() * logits.shape[-1]).clamp_min(1.0)

    @torch.no_grad()
    def metrics(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """The scores of one batch as tensors on the logits' device (no host synchronisation).

        Returns 0-dim tensors ``bits`` (cross-entropy in bits per sequence), ``bit_errors`` (output
        bits wrong after thresholding at 0.5, per sequence), ``target_bits`` (output bits scored
        per sequence) and ``perfect`` (share of sequences with no wrong bit), each counted only
        where a target is defined, and ``errors_per_sample`` (``[B]``). Tasks add their own.
        """
        mask = batch.mask.unsqueeze(-1).to(logits.dtype)
        b = logits.shape[0]
        ce = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none")
        wrong = ((logits > 0).to(logits.dtype) != batch.targets).to(logits.dtype) * mask
        per_sample = wrong.sum(dim=(1, 2))
        return {
            "bits": (ce * mask).sum() / (b * math.log(2)),
            "bit_errors": per_sample.sum() / b,
            "target_bits": mask.sum() * logits.shape[-1] / b,
            "perfect": (per_sample == 0).to(torch.float32).mean(),
            "errors_per_sample": per_sample,
        }

    @torch.no_grad()
    def score(self, logits: torch.Tensor, batch: Batch) -> dict:
        """:meth:`metrics` as plain floats (``errors_per_sample`` stays a ``[B]`` tensor), plus
        ``cost``, the task's headline number (:meth:`cost`)."""
        result: dict = {k: float(v) if v.dim() == 0 else v for k, v in self.metrics(logits, batch).items()}
        result["cost"] = self.cost(result)
        return result

    def describe(self) -> str:
        ranges = ", ".join(
            f"{axis} {lo}-{hi}" if lo != hi else f"{axis} {lo}"
            for axis, (lo, hi) in ((a, self.axis_range(a)) for a in self.axes)
        )
        return f"{self.name} ({ranges})"


def draw_levels(
    batch_size: int, generator: torch.Generator, lo: int, hi: int, max_level: int | None, level: int | None, what: str
) -> torch.Tensor:
    """Per-sample levels: all ``level``, or uniform in [lo, min(hi, max_level)]."""
    if level is not None:
        levels = torch.full((batch_size,), int(level), dtype=torch.long)
    else:
        top = hi if max_level is None else int(max_level)
        levels = torch.randint(min(lo, top), top + 1, (batch_size,), generator=generator)
    if int(levels.min()) < 1:
        raise TaskError(f"{what} must be >= 1, got {int(levels.min())}")
    return levels


def check_range(task: str, lo: int, hi: int, low_flag: str, high_flag: str, least: int = 1) -> None:
    """One-line errors for a bad [lo, hi] option pair."""
    if lo < least:
        raise TaskError(f"{task}: {low_flag} must be >= {least}, got {lo}")
    if lo > hi:
        raise TaskError(f"{task}: {low_flag} ({lo}) is larger than {high_flag} ({hi}): make min <= max")
