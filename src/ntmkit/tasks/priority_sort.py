"""The priority sort task (section 4.5 of the paper).

Input: ``items`` random ``bits``-wide vectors, each with a priority drawn uniformly from [-1, 1]
on its own channel; then a delimiter on a third channel. Target: the ``outputs`` vectors of
highest priority, highest first, in the ``outputs`` steps after the delimiter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..errors import TaskError
from .base import Batch, Task, check_range, draw_levels


@dataclass
class PrioritySortTask(Task):
    bits: int = 8
    min_items: int = 20
    max_items: int = 20
    outputs: int = 16

    name = "priority_sort"
    level_name = "items"
    axes: ClassVar[dict[str, tuple[str, str]]] = {"items": ("min_items", "max_items")}
    # The paper's unit: its NTM reached about 18-20 cross-entropy bits per sequence.
    cost_name = "cross-entropy bits per sequence"
    cost_score = "bits"
    learned_below = 18.0

    def __post_init__(self):
        if self.bits < 1:
            raise TaskError(f"priority_sort: the vector width must be >= 1 bit, got {self.bits}")
        check_range("priority_sort", self.min_items, self.max_items, "--min_items", "--max_items")
        if not 1 <= self.outputs <= self.min_items:
            raise TaskError(
                f"priority_sort: --sort_outputs must be in 1-{self.min_items} (it cannot exceed "
                f"--min_items), got {self.outputs}"
            )

    @property
    def input_size(self) -> int:
        return self.bits + 2  # data, priority, delimiter

    @property
    def output_size(self) -> int:
        return self.bits

    def memory_needed(self, level: int) -> int:
        return level

    def generalisation_levels(self) -> list[int]:
        return sorted(
            {self.outputs, self.max_items, 2 * self.max_items // 3 + self.outputs // 3, 30, 40}
            - {n for n in (30, 40) if n < self.max_items}
        )

    def make_batch(self, batch_size, generator, max_level=None, level=None) -> Batch:
        items = draw_levels(
            batch_size, generator, self.min_items, self.max_items, max_level, level, "priority_sort: number of items"
        )
        if int(items.min()) < self.outputs:
            raise TaskError(
                f"priority_sort: {int(items.min())} items cannot give {self.outputs} outputs: "
                f"use at least {self.outputs} items"
            )
        nmax, k, d = int(items.max()), self.outputs, self.bits
        total = items + 1 + k
        t = int(total.max())
        vectors = torch.randint(0, 2, (batch_size, nmax, d), generator=generator).float()
        priority = torch.rand(batch_size, nmax, generator=generator) * 2 - 1
        n = items.unsqueeze(1)
        # The k highest priorities of each sample's own n items (padding ranks last).
        ranked = priority.masked_fill(torch.arange(nmax).unsqueeze(0) >= n, float("-inf"))
        order = torch.argsort(ranked, dim=1, descending=True)[:, :k]  # [B, k]
        steps = torch.arange(t).expand(batch_size, t)
        is_item = steps < n
        index = steps.clamp(max=nmax - 1)
        zero = torch.zeros(())
        inputs = torch.zeros(batch_size, t, d + 2)
        shown = vectors.gather(1, index.unsqueeze(-1).expand(-1, -1, d))  # [B, T, d]: the item at each step
        inputs[..., :d] = torch.where(is_item.unsqueeze(-1), shown, zero)
        inputs[..., d] = torch.where(is_item, priority.gather(1, index), zero)
        inputs[..., d + 1] = (steps == n).float()
        rel = steps - (n + 1)  # 0..k-1: the outputs
        is_output = (rel >= 0) & (rel < k)
        chosen = order.gather(1, rel.clamp(0, k - 1))  # [B, T]: the item each output step shows
        targets = torch.where(is_output.unsqueeze(-1), vectors.gather(1, chosen.unsqueeze(-1).expand(-1, -1, d)), zero)
        mask = is_output.float()
        return Batch(inputs, targets, mask, total, items)
