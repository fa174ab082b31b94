"""Where a priority-sort machine's cost goes, and where it writes each item.

    python benchmarks/priority_sort_analysis.py [--checkpoint PATH] [--sequences 2000] [--seed 99]
        [--out benchmarks/results/analysis/priority_sort.json]

Not a timing. On fresh sequences of the training range (the shipped model unless ``--checkpoint``):

- the cross-entropy bits of each output rank (1 = the highest priority), and the cost grouped by how
  close a call the rank was: the priority gap between the item that belongs there and its nearer
  neighbour in the sorted order;
- for each write head, how closely the row it writes an item to follows the item's priority, over
  the items that are output (the 16 of highest priority): the Spearman rank correlation of the peak
  row with the priority over one sequence's items (averaged over sequences), the rows per unit of
  priority of a least-squares line through (priority, peak row), the scatter of the peak rows about
  that line; and over all items the mean peak weight and the Spearman correlation of the peak row
  with the item's place in the input (a head that writes in input order). Rows are read on the
  circle (shifts wrap around the memory), cut where they are in the best order;
- for each read head, at each output step, whether its peak row is the row a write head wrote the
  item that belongs at that rank to (per write head: the share of output steps where it is, and
  where it is within one row of it), and the Spearman correlation of its peak row with the rank (a
  head that reads the rows in turn).

So a machine that sorts by where it writes (rows set by priority, read in turn) and one that sorts by
where it reads (rows in input order, each looked up in rank order) tell themselves apart.
"""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

GAP_EDGES = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 2.0)


def neighbour_gaps(priorities: torch.Tensor, outputs: int) -> torch.Tensor:
    """The gap between each output rank's priority and its nearer neighbour's in sorted order.

    priorities: [batch, items]; returns [batch, outputs], rank 0 the highest priority (its only
    neighbour is rank 1).
    """
    ordered = priorities.sort(dim=1, descending=True).values
    below = ordered[:, :-1] - ordered[:, 1:]  # [batch, items - 1]: rank r to rank r + 1
    above = torch.cat([torch.full_like(below[:, :1], math.inf), below[:, :-1]], dim=1)  # rank r - 1 to r
    return torch.minimum(above, below)[:, :outputs]


def cost_by_gap(bits: torch.Tensor, gaps: torch.Tensor, edges=GAP_EDGES) -> list[dict]:
    """Per-rank cost grouped by neighbour gap.

    bits, gaps: [batch, outputs]; returns one row per interval [edges[i], edges[i + 1]): the share of
    ranks in it, their mean bits, and their share of the total cost.
    """
    rows = []
    for lo, hi in itertools.pairwise(edges):
        inside = (gaps >= lo) & (gaps < hi)
        rows.append(
            {
                "gap_from": lo,
                "gap_to": hi,
                "share_of_ranks": float(inside.float().mean()),
                "bits_per_rank": float(bits[inside].mean()) if inside.any() else None,
                "share_of_cost": float(bits[inside].sum() / bits.sum()),
            }
        )
    return rows


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of each row of a with the same row of b: [batch, n] x2 -> [batch]."""
    ra, rb = (x.argsort(dim=1).argsort(dim=1).float() for x in (a, b))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)


def unwrap(rows: torch.Tensor, by: torch.Tensor, locations: int) -> torch.Tensor:
    """Peak rows read on the circle of memory rows from the cut that orders them best along ``by``.

    Shifts wrap around the memory, so a head may place items in order through row 0 (..., 2, 1, 0,
    N - 1, N - 2, ...). rows, by: [batch, n]; returns (rows - k) mod N for the one k (over all
    sequences) with the largest mean absolute Spearman correlation with ``by``.
    """
    cuts = [(rows - k) % locations for k in range(locations)]
    return max(cuts, key=lambda r: abs(float(spearman(r, by).mean())))


def row_map(weights: torch.Tensor, priorities: torch.Tensor, outputs: int) -> dict:
    """How one write head's peak row follows the priority of the item it writes.

    weights: [batch, items, N], the head's weighting at each item's step; priorities: [batch, items].
    The priority figures cover the ``outputs`` items of highest priority (the ones the machine must
    output; where it puts the others does not matter), with rows read on the circle (see ``unwrap``).
    """
    peaks = weights.argmax(-1).float()
    order = torch.arange(peaks.shape[1]).float().expand_as(peaks)
    kept = priorities.argsort(dim=1, descending=True)[:, :outputs]
    wanted = priorities.gather(1, kept)
    rows = unwrap(peaks.gather(1, kept), wanted, weights.shape[-1])
    x, y = wanted.flatten(), rows.flatten()
    slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
    residual = y - (y.mean() + slope * (x - x.mean()))
    return {
        "spearman": float(spearman(rows, wanted).mean()),
        "rows_per_unit_priority": slope,
        "scatter_rows": float(residual.std()),
        "peak_weight": float(weights.max(-1).values.mean()),
        "order_spearman": float(spearman(unwrap(peaks, order, weights.shape[-1]), order).mean()),
    }


def read_lookup(read_weights: torch.Tensor, write_weights: torch.Tensor, priorities: torch.Tensor) -> dict:
    """Whether one read head, at each output step, reads the row where the item of that rank was written.

    read_weights: [batch, outputs, N], the head's weighting at each output step (rank order);
    write_weights: [batch, items, write heads, N] at the input steps; priorities: [batch, items].
    """
    outputs = read_weights.shape[1]
    wanted = priorities.argsort(dim=1, descending=True)[:, :outputs]  # [batch, outputs]: the item of each rank
    written = write_weights.argmax(-1)  # [batch, items, write heads]
    rows = read_weights.argmax(-1)  # [batch, outputs]
    target = written.gather(1, wanted[..., None].expand(-1, -1, written.shape[2]))  # [batch, outputs, heads]
    ranks = torch.arange(outputs).float().expand_as(rows)
    locations = read_weights.shape[-1]
    apart = (target - rows[..., None]) % locations
    apart = torch.minimum(apart, locations - apart)  # rows apart on the circle
    return {
        "hits_by_write_head": [float(v) for v in (target == rows[..., None]).float().mean((0, 1))],
        "near_hits_by_write_head": [float(v) for v in (apart <= 1).float().mean((0, 1))],
        "rank_spearman": float(spearman(unwrap(rows.float(), ranks, locations), ranks).mean()),
        "peak_weight": float(read_weights.max(-1).values.mean()),
    }


def analyse(model, task, sequences: int, seed: int, chunk: int = 500) -> dict:
    """The figures above for ``model`` on ``sequences`` fresh sequences of ``task`` at its most items."""
    generator = torch.Generator().manual_seed(seed)
    bits, gaps, heads, reads = [], [], [], []
    for start in range(0, sequences, chunk):
        b = task.make_batch(min(chunk, sequences - start), generator, level=task.max_items)
        with torch.no_grad():
            logits, _, trace = model(b.inputs, return_trace=True)
        per_step = F.binary_cross_entropy_with_logits(logits, b.targets, reduction="none").sum(-1) / math.log(2)
        answer = b.mask > 0  # [batch, time]: the output steps, in rank order
        bits.append(per_step[answer].view(len(b.inputs), task.outputs))
        priorities = b.inputs[:, : task.max_items, task.bits]
        gaps.append(neighbour_gaps(priorities, task.outputs))
        heads.append((trace["write_weights"][:, : task.max_items], priorities))
        outputs = answer.nonzero()[:, 1].view(len(b.inputs), task.outputs)  # [batch, outputs]: the steps
        read = trace["read_weights"]  # [batch, time, read heads, N]
        reads.append(read.gather(1, outputs[..., None, None].expand(-1, -1, *read.shape[2:])))
    all_bits, all_gaps = torch.cat(bits), torch.cat(gaps)
    weights = torch.cat([w for w, _ in heads])  # [batch, items, heads, N]
    priorities = torch.cat([p for _, p in heads])
    read_weights = torch.cat(reads)  # [batch, outputs, read heads, N]
    return {
        "cost": float(all_bits.sum(1).mean()),
        "bits_per_rank": [float(v) for v in all_bits.mean(0)],
        "by_gap": cost_by_gap(all_bits, all_gaps),
        "write_heads": [row_map(weights[:, :, h], priorities, task.outputs) for h in range(weights.shape[2])],
        "read_heads": [read_lookup(read_weights[:, :, h], weights, priorities) for h in range(read_weights.shape[2])],
    }


def main() -> None:
    from analysis_cli import run_analysis

    result, out = run_analysis("priority_sort", __doc__, analyse)
    print(f"cost {result['cost']:.2f} cross-entropy bits per sequence; by neighbour gap:")
    for r in result["by_gap"]:
        share = f"{r['share_of_ranks']:.1%} of ranks, {r['share_of_cost']:.1%} of cost"
        print(f"  gap {r['gap_from']:g}-{r['gap_to']:g}: {share}")
    for h, r in enumerate(result["write_heads"]):
        print(
            f"  write head {h}: Spearman {r['spearman']:+.3f} with priority, {r['order_spearman']:+.3f} with input "
            f"order; {r['rows_per_unit_priority']:.1f} rows per unit"
        )
    for h, r in enumerate(result["read_heads"]):
        hits = ", ".join(f"{v:.1%} ({n:.1%})" for v, n in zip(r["hits_by_write_head"], r["near_hits_by_write_head"]))
        print(f"  read head {h}: on the wanted item's row, per write head (within one row): {hits}")
        print(f"    Spearman {r['rank_spearman']:+.3f} of the peak row with the rank")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
