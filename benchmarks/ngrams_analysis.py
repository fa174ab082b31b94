"""Where an N-grams machine spends bits above the optimal estimator.

    python benchmarks/ngrams_analysis.py [--checkpoint PATH] [--sequences 2000] [--seed 99]
        [--out benchmarks/results/analysis/ngrams.json]

Not a timing. On fresh sequences of the training range (the shipped model unless ``--checkpoint``),
the excess (the model's cross-entropy bits minus the optimal estimator's, per predicted bit) summed
per sequence and split two ways:

- by where in the sequence the bit is (windows of time steps);
- by how many times the bit's context (its N - 1 previous bits) came before it in the sequence: the
  number of observations the optimal estimator's count for that context rests on.
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

WINDOWS = (0, 10, 25, 50, 100, 150, 200)
SEEN_CAP = 12  # contexts seen this often or more share one row


def times_seen(ctx: torch.Tensor, contexts: int) -> torch.Tensor:
    """How many earlier steps of the same row had the same context.

    ctx: [batch, T] integers in [0, contexts); returns [batch, T] integers.
    """
    onehot = F.one_hot(ctx, contexts)  # [batch, T, contexts]
    before = onehot.cumsum(1) - onehot  # occurrences strictly before each step
    return before.gather(2, ctx.unsqueeze(2)).squeeze(2)


def excess_by_window(excess: torch.Tensor, edges=WINDOWS) -> list[dict]:
    """Excess bits per sequence in each window [edges[i], edges[i + 1]) of time steps.

    excess: [batch, T]; a window past T is left out.
    """
    rows = []
    for lo, hi in itertools.pairwise(edges):
        if lo >= excess.shape[1]:
            break
        part = excess[:, lo:hi]
        rows.append(
            {
                "steps_from": lo,
                "steps_to": min(hi, excess.shape[1]),
                "excess_per_sequence": float(part.sum(1).mean()),
                "excess_per_step": float(part.mean()),
            }
        )
    return rows


def excess_by_times_seen(excess: torch.Tensor, seen: torch.Tensor, cap: int = SEEN_CAP) -> list[dict]:
    """Excess bits grouped by how often the step's context came before (``cap`` and more together).

    excess, seen: [batch, T]; one row per count 0 .. cap: the share of steps, the excess per sequence
    they carry and the excess per step.
    """
    rows = []
    clipped = seen.clamp_max(cap)
    for k in range(cap + 1):
        inside = clipped == k
        rows.append(
            {
                "seen": k,
                "or_more": k == cap,
                "share_of_steps": float(inside.float().mean()),
                "excess_per_sequence": float(excess[inside].sum() / excess.shape[0]),
                "excess_per_step": float(excess[inside].mean()) if inside.any() else None,
            }
        )
    return rows


def analyse(model, task, sequences: int, seed: int, chunk: int = 500) -> dict:
    """The figures above for ``model`` on ``sequences`` fresh sequences of ``task``."""
    from ntmkit.tasks.ngrams import contexts, optimal_predictions

    generator = torch.Generator().manual_seed(seed)
    order = task.n - 1
    excess, seen = [], []
    for start in range(0, sequences, chunk):
        b = task.make_batch(min(chunk, sequences - start), generator)
        with torch.no_grad():
            logits, _ = model(b.inputs)
        bits = torch.cat([b.inputs[:, :1, 0], b.targets[..., 0]], dim=1)  # bits 0 .. T
        optimal = optimal_predictions(bits, order)[:, 1:]  # predictions of bits 1 .. T
        y = bits[:, 1:].double()
        optimal_bits = -(y * torch.log2(optimal) + (1 - y) * torch.log2(1 - optimal))
        model_bits = F.binary_cross_entropy_with_logits(logits[..., 0].double(), y, reduction="none") / math.log(2)
        excess.append((model_bits - optimal_bits) * b.mask.double())
        seen.append(times_seen(contexts(bits, order)[:, 1:], 1 << order))
    all_excess, all_seen = torch.cat(excess), torch.cat(seen)
    return {
        "excess_per_sequence": float(all_excess.sum(1).mean()),
        "by_window": excess_by_window(all_excess),
        "by_times_seen": excess_by_times_seen(all_excess, all_seen),
    }


def main() -> None:
    from analysis_cli import run_analysis

    result, out = run_analysis("ngrams", __doc__, analyse)
    print(f"{result['excess_per_sequence']:.3f} bits per sequence above the optimal estimator; by time step:")
    for r in result["by_window"]:
        print(f"  steps {r['steps_from']}-{r['steps_to']}: {r['excess_per_sequence']:.3f}")
    print("by times the context came before:")
    for r in result["by_times_seen"]:
        more = "+" if r["or_more"] else ""
        print(f"  {r['seen']}{more}: {r['share_of_steps']:.1%} of steps, {r['excess_per_sequence']:.3f}")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
