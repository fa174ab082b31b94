"""The repeat copy task (section 4.2 of the paper).

Input: L random ``bits``-wide vectors, then one step with a delimiter on its own channel and the
repeat count R on another, normalised as in the paper to mean 0 and variance 1 over the training
range of R (the normalisation is fixed by the training range, so R outside it is still encoded
on the same scale). Target: the L vectors R times over, then an end marker on its own output
channel. Per sample the time is ``(R + 1) L + 2`` steps; the target counts on the last
``R L + 1`` of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..errors import TaskError
from .base import Batch, Task, check_range, draw_levels


@dataclass
class RepeatCopyTask(Task):
    bits: int = 8
    min_length: int = 1
    max_length: int = 10
    min_repeats: int = 1
    max_repeats: int = 10
    # The count channel holds (R - repeat_mean) / repeat_std; None: the mean and standard deviation
    # of R uniform over [min_repeats, max_repeats] (fixed when the task is made, so a task with its
    # repeats axis moved for evaluation keeps the training encoding).
    repeat_mean: float | None = None
    repeat_std: float | None = None

    name = "repeat_copy"
    level_name = "length"
    # Measured: the feed-forward controller, and the LSTM controller at batch 32, stayed near
    # chance for 120,000 sequences; the LSTM controller at batch 8 (four times the updates per
    # sequence) learns the task (results page).
    recommended: ClassVar[dict[str, object]] = {"controller": "lstm", "batches": 8}
    axes: ClassVar[dict[str, tuple[str, str]]] = {
        "length": ("min_length", "max_length"),
        "repeats": ("min_repeats", "max_repeats"),
    }

    def __post_init__(self):
        if self.bits < 1:
            raise TaskError(f"repeat_copy: the vector width must be >= 1 bit, got {self.bits}")
        check_range("repeat_copy", self.min_length, self.max_length, "--min_sequence", "--max_sequence")
        check_range("repeat_copy", self.min_repeats, self.max_repeats, "--min_repeats", "--max_repeats")
        if self.repeat_mean is None:
            self.repeat_mean = (self.min_repeats + self.max_repeats) / 2
        if self.repeat_std is None:  # a discrete uniform distribution's: sqrt((n^2 - 1) / 12)
            count = self.max_repeats - self.min_repeats + 1
            self.repeat_std = math.sqrt((count * count - 1) / 12) if count > 1 else 1.0
        if not self.repeat_std > 0:
            raise TaskError(f"repeat_copy: repeat_std must be > 0, got {self.repeat_std}")

    @torch.no_grad()
    def metrics(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """The base scores, plus ``end_marker_errors``: wrong bits per sequence on the end-marker
        channel alone (a marker missed, late, early or repeated after a repeat)."""
        result = super().metrics(logits, batch)
        wrong = ((logits[..., self.bits] > 0).to(logits.dtype) != batch.targets[..., self.bits]).to(logits.dtype)
        result["end_marker_errors"] = (wrong * batch.mask.to(logits.dtype)).sum() / logits.shape[0]
        return result

    def encode_repeats(self, repeats: torch.Tensor) -> torch.Tensor:
        """The count channel's value for ``repeats`` ``[B]`` (mean 0, variance 1 over the training range)."""
        assert self.repeat_mean is not None and self.repeat_std is not None  # set in __post_init__
        return (repeats.float() - self.repeat_mean) / self.repeat_std

    @property
    def input_size(self) -> int:
        return self.bits + 2  # data, delimiter, repeat count

    @property
    def output_size(self) -> int:
        return self.bits + 1  # data, end marker

    def memory_needed(self, level: int) -> int:
        return level

    def generalisation_levels(self) -> list[int]:
        return [5, 10, 15, 20]

    def evaluation_values(self, axis: str) -> list[int]:
        return list(range(1, 21)) if axis == "repeats" else self.generalisation_levels()

    def make_batch(self, batch_size, generator, max_level=None, level=None) -> Batch:
        lengths = draw_levels(
            batch_size, generator, self.min_length, self.max_length, max_level, level, "repeat_copy: sequence length"
        )
        repeats = torch.randint(self.min_repeats, self.max_repeats + 1, (batch_size,), generator=generator)
        total = (repeats + 1) * lengths + 2
        t, lmax = int(total.max()), int(lengths.max())
        vectors = torch.randint(0, 2, (batch_size, lmax, self.bits), generator=generator).float()
        rows = torch.arange(batch_size)
        inputs = torch.zeros(batch_size, t, self.input_size)
        inputs[:, :lmax, : self.bits] = vectors * (torch.arange(lmax) < lengths.unsqueeze(1)).unsqueeze(-1)
        inputs[rows, lengths, self.bits] = 1.0  # the delimiter, at step L
        inputs[rows, lengths, self.bits + 1] = self.encode_repeats(repeats)
        # Output step L + 1 + k (0 <= k < R L) holds vector k mod L; step L + 1 + R L the end marker.
        k = torch.arange(t).unsqueeze(0) - (lengths + 1).unsqueeze(1)  # [B, T]
        span = (repeats * lengths).unsqueeze(1)
        copying = (k >= 0) & (k < span)
        source = (k.clamp_min(0) % lengths.unsqueeze(1)).clamp_max(lmax - 1)
        targets = torch.zeros(batch_size, t, self.output_size)
        targets[..., : self.bits] = torch.gather(
            vectors, 1, source.unsqueeze(-1).expand(-1, -1, self.bits)
        ) * copying.unsqueeze(-1)
        targets[..., self.bits] = (k == span).float()
        mask = ((k >= 0) & (k <= span)).float()
        return Batch(inputs, targets, mask, total, lengths)
