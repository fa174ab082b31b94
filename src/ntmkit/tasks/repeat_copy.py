"""The repeat copy task (section 4.2 of the paper).

Input: L random ``bits``-wide vectors, then one step with a delimiter on its own channel and the
repeat count R (divided by ``repeat_scale``) on another. Target: the L vectors R times over,
then an end marker on its own output channel. Per sample the time is ``(R + 1) L + 2`` steps;
the target counts on the last ``R L + 1`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    repeat_scale: float = 10.0  # the count channel holds R / repeat_scale (fixed, so R > 10 stays meaningful)

    name = "repeat_copy"
    level_name = "length"
    axes = {"length": ("min_length", "max_length"), "repeats": ("min_repeats", "max_repeats")}

    def __post_init__(self):
        if self.bits < 1:
            raise TaskError(f"repeat_copy: the vector width must be >= 1 bit, got {self.bits}")
        check_range("repeat_copy", self.min_length, self.max_length, "--min_sequence", "--max_sequence")
        check_range("repeat_copy", self.min_repeats, self.max_repeats, "--min_repeats", "--max_repeats")
        if not self.repeat_scale > 0:
            raise TaskError(f"repeat_copy: repeat_scale must be > 0, got {self.repeat_scale}")

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
        lengths = draw_levels(batch_size, generator, self.min_length, self.max_length, max_level, level,
                              "repeat_copy: sequence length")
        repeats = torch.randint(self.min_repeats, self.max_repeats + 1, (batch_size,), generator=generator)
        total = (repeats + 1) * lengths + 2
        t, lmax = int(total.max()), int(lengths.max())
        vectors = torch.randint(0, 2, (batch_size, lmax, self.bits), generator=generator).float()
        inputs = torch.zeros(batch_size, t, self.input_size)
        targets = torch.zeros(batch_size, t, self.output_size)
        mask = torch.zeros(batch_size, t)
        for i in range(batch_size):
            n, r = int(lengths[i]), int(repeats[i])
            v = vectors[i, :n]
            inputs[i, :n, : self.bits] = v
            inputs[i, n, self.bits] = 1.0
            inputs[i, n, self.bits + 1] = r / self.repeat_scale
            targets[i, n + 1: n + 1 + r * n, : self.bits] = v.repeat(r, 1)
            targets[i, n + 1 + r * n, self.bits] = 1.0  # end marker
            mask[i, n + 1: n + 2 + r * n] = 1.0
        return Batch(inputs, targets, mask, total, lengths)
