"""The copy task (section 4.1 of the paper).

Input: L random ``bits``-wide binary vectors, then a delimiter on its own channel, then nothing.
Target: after the delimiter, the same L vectors. Per sample the time is ``2L + 1`` steps; the
target counts on the last L of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..errors import TaskError
from .base import Batch, Task, draw_levels


@dataclass
class CopyTask(Task):
    bits: int = 8
    min_length: int = 1
    max_length: int = 20

    name = "copy"
    level_name = "length"
    axes: ClassVar[dict[str, tuple[str, str]]] = {"length": ("min_length", "max_length")}

    def __post_init__(self):
        if self.bits < 1:
            raise TaskError(f"copy: the vector width must be >= 1 bit, got {self.bits}")
        if self.min_length < 1:
            raise TaskError(f"copy: --min_sequence must be >= 1, got {self.min_length}")
        if self.min_length > self.max_length:
            raise TaskError(
                f"copy: --min_sequence ({self.min_length}) is larger than --max_sequence "
                f"({self.max_length}): make min <= max"
            )

    @property
    def input_size(self) -> int:
        return self.bits + 1

    @property
    def output_size(self) -> int:
        return self.bits

    def memory_needed(self, level: int) -> int:
        return level

    def generalisation_levels(self) -> list[int]:
        return [10, 20, 30, 50, 80, 120]

    def evaluation_values(self, axis: str) -> list[int]:
        return list(range(1, 121))  # every length 1-120

    def make_batch(self, batch_size, generator, max_level=None, level=None) -> Batch:
        lengths = draw_levels(
            batch_size, generator, self.min_length, self.max_length, max_level, level, "copy: sequence length"
        )
        lmax = int(lengths.max())
        t = 2 * lmax + 1
        steps = torch.arange(lmax)
        vectors = torch.randint(0, 2, (batch_size, lmax, self.bits), generator=generator).float()
        vectors = vectors * (steps.unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
        inputs = torch.zeros(batch_size, t, self.bits + 1)
        targets = torch.zeros(batch_size, t, self.bits)
        mask = torch.zeros(batch_size, t)
        inputs[:, :lmax, : self.bits] = vectors
        rows = torch.arange(batch_size)
        inputs[rows, lengths, self.bits] = 1.0  # the delimiter, at step L
        # Target step L + 1 + i holds vector i, for i < L: scatter each sample's vectors.
        time_idx = (lengths.unsqueeze(1) + 1 + steps.unsqueeze(0)).clamp_max(t - 1)  # [B, lmax]
        valid = steps.unsqueeze(0) < lengths.unsqueeze(1)
        targets[rows.unsqueeze(1).expand_as(time_idx)[valid], time_idx[valid]] = vectors[valid]
        mask[rows.unsqueeze(1).expand_as(time_idx)[valid], time_idx[valid]] = 1.0
        return Batch(inputs, targets, mask, 2 * lengths + 1, lengths)
