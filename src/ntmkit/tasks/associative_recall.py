"""The associative recall task (section 4.3 of the paper).

An item is ``item_length`` random ``bits``-wide vectors. Target: the item that followed the
queried one (one of the first n - 1 items), in the ``item_length`` steps after the input ends.
The paper says each item is "bounded on the left and right by delimiter symbols" and draws a
query delimiter; two layouts read that:

- ``"open"`` (the default): each of n items after an item delimiter (its own channel); then a
  query delimiter (another channel), the query item, and the query delimiter again.
  ``(item_length + 1)(n + 1) + 1 + item_length`` steps per sample.
- ``"closed"``: every item, the last one and the query too, between two item delimiters; a query
  delimiter before the query. The step that ends the query is then the same input as the step
  that ends each stored item, so a feed-forward controller can compute the query's look-up key
  with the weights that wrote the items' keys. One step more per sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeVar

import torch

from ..errors import TaskError
from .base import Batch, Task, check_range, draw_levels

LAYOUTS = ("open", "closed")
Count = TypeVar("Count", int, torch.Tensor)


@dataclass
class AssociativeRecallTask(Task):
    bits: int = 6
    item_length: int = 3
    min_items: int = 2
    max_items: int = 6
    layout: str = "open"

    name = "associative_recall"
    level_name = "items"
    axes: ClassVar[dict[str, tuple[str, str]]] = {"items": ("min_items", "max_items")}
    # The feed-forward NTM trains with the paper's sizes for it (4 read heads, one layer of 256 units)
    # but one write head, one sequence per update, from the neutral start (gate bias 0, random weightings), with
    # SGD with momentum 0.9 at lr 1e-2: the update the attempts below measured as "RMSProp". Before
    # commit 0e44aea Graves' RMSProp saw the gradient of the mean per-bit loss, whose variance
    # (1e-14-1e-8) sat far below its eps (1e-4, inside the root), so its step was lr * g / sqrt(1e-4):
    # SGD with momentum at 100 x lr (to 0.03% for 99% of the weights). Measured, benchmarks/results/associative_recall/:
    # at the same sizes and batch 1, Adam at lr 1e-4 sat on the 2-item plateau (~6.4 wrong bits per
    # sequence) to 35,000-50,000 sequences on 2 of 3 seeds and past 100,000 on the third (11, 12), and
    # that update left it at 10,000-20,000 on 3 of 3 (14; the closed layout alone changed nothing, 12-13)
    # and reached 0.115-0.167 wrong bits per sequence; Graves' RMSProp on the cost per sequence left it
    # at ~5,000 but stayed at ~0.5 to 72,000 (19, one seed); from the focused start with gate bias -2
    # the first left it only at ~22,000 and stood at ~3.4 at 45,000 (06); at batch 32 with 3 layers of
    # 100 units and one head pair no start learned 3 of 3 in 640,000 (07, 08). The LSTM controller keeps
    # the defaults (it learned 3 of 3 at 62,400-78,400 sequences in the equal-budget sweep; 2 of 3 from
    # the neutral start, 10). One write head, not the paper's 4: at the same 380,000 sequences (SGD at
    # batch 1 to 60,000, then a batch-32 polish; 3 seeds each, 4,000 fresh sequences per value), 4 write
    # heads reached 0.107 / 1.22 / 4.97 wrong bits per sequence at 12 items (22) and 1 reached 0.506 /
    # 0.109 / 0.445 (23), 0.031-0.088 against 0.010-0.174 at 6; the failing 4-head seeds write on
    # their own items' rows with their other write heads once there are more than 6 (the recall analysis
    # on the results page); after a batch-128 polish to 980,000, 0.060 / 0.208 / 0.612 at 12 (24)
    # against 0.057 / 1.26 / 3.34 (21). The heads start as a tape (shift bias 3) and the reads come
    # before each step's write: at the same 980,064 sequences, 0.055 / 0.049 / 0.053 at 12 items and
    # 0.138 / 0.083 / 0.069 at 15 (33), against 0.884 / 4.97 / 1.51 at 12 with the tape start alone
    # (30, which formed a tape of one row per step on 2 seeds of 3 and wrote every item on the same
    # rows on the third) and attempt 24's figures above; with the reads first all 3 seeds left the 2-item plateau
    # by 20,000 sequences with a tape of one row per step. A third polish (batch 256 on 6 items, to
    # 1,280,096) brought all 3 under 0.01 at 2-6 items, to 0.021 / 0.036 / 0.024 at 12 and 0.064 /
    # 0.052 / 0.037 at 15 (34).
    recommended_for: ClassVar[dict[str, dict[str, object]]] = {
        "ntm/feedforward": {
            "gate_bias": 0.0,
            "init_weighting": "random",
            "read_heads": 4,
            "write_heads": 1,
            "controller_size": 256,
            "controller_layers": 1,
            "shift_bias": 3.0,
            "read_before_write": True,
            "optimizer": "sgd",
            "learning_rate": 1e-2,
            "momentum": 0.9,
            "batches": 1,
        }
    }

    def __post_init__(self):
        if self.bits < 1 or self.item_length < 1:
            raise TaskError(
                f"associative_recall: bits and item_length must be >= 1, got {self.bits} and {self.item_length}"
            )
        check_range("associative_recall", self.min_items, self.max_items, "--min_items", "--max_items", least=2)
        if self.layout not in LAYOUTS:
            raise TaskError(f"associative_recall: layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")

    @property
    def input_size(self) -> int:
        return self.bits + 2  # data, item delimiter, query delimiter

    @property
    def output_size(self) -> int:
        return self.bits

    def steps(self, items: Count) -> Count:
        """Time steps of a sample with ``items`` items (an int, or elementwise on a tensor)."""
        k = self.item_length
        return (k + 1) * (items + 1) + 1 + k + int(self._closed)

    def memory_needed(self, level: int) -> int:
        return self.steps(level)

    def generalisation_levels(self) -> list[int]:
        return [2, 4, 6, 8, 10, 12, 15, 20]

    @property
    def _closed(self) -> bool:
        return self.layout == "closed"

    def make_batch(self, batch_size, generator, max_level=None, level=None) -> Batch:
        k, d = self.item_length, self.bits
        items = draw_levels(
            batch_size,
            generator,
            self.min_items,
            self.max_items,
            max_level,
            level,
            "associative_recall: number of items",
        )
        nmax = int(items.max())
        total = self.steps(items)
        t = int(total.max())
        vectors = torch.randint(0, 2, (batch_size, nmax, k, d), generator=generator).float()
        # The queried item is one of the first n - 1 (it must have a successor).
        query = (torch.rand(batch_size, generator=generator) * (items - 1)).long()
        flat = vectors.reshape(batch_size, nmax * k, d)  # every item's vectors in a row

        def vectors_at(index: torch.Tensor) -> torch.Tensor:  # [B, T] row indices -> [B, T, d]
            return flat.gather(1, index.clamp(0, nmax * k - 1).unsqueeze(-1).expand(-1, -1, d))

        steps = torch.arange(t).expand(batch_size, t)
        n, q = items.unsqueeze(1), query.unsqueeze(1)
        block, offset = steps // (k + 1), steps % (k + 1)  # item j fills steps j(k+1) .. j(k+1)+k
        in_items = block < n
        is_data = in_items & (offset > 0)
        c = int(self._closed)
        closing = (steps == n * (k + 1)) & bool(c)  # "closed": the delimiter after the last item
        rel = steps - n * (k + 1) - c  # 0: query delimiter, 1..k: the query, k+1: its end
        is_query = (rel >= 1) & (rel <= k)
        out = rel - (k + 2)  # 0..k-1: the answer
        is_answer = (out >= 0) & (out < k)
        zero = torch.zeros(())
        inputs = torch.zeros(batch_size, t, d + 2)
        inputs[..., :d] = torch.where(is_data.unsqueeze(-1), vectors_at(block * k + offset - 1), zero)
        inputs[..., :d] += torch.where(is_query.unsqueeze(-1), vectors_at(q * k + rel - 1), zero)
        query_end = rel == k + 1
        item_delimiter = (in_items & (offset == 0)) | closing | (query_end & bool(c))
        inputs[..., d] = item_delimiter.float()
        inputs[..., d + 1] = ((rel == 0) | (query_end & (not c))).float()
        targets = torch.where(is_answer.unsqueeze(-1), vectors_at((q + 1) * k + out), zero)
        mask = is_answer.float()
        return Batch(inputs, targets, mask, total, items)
