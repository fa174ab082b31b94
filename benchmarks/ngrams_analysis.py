"""Where an N-grams machine spends bits above the optimal estimator.

    python benchmarks/ngrams_analysis.py [--checkpoint PATH] [--sequences 2000] [--seed 99]
        [--out benchmarks/results/analysis/ngrams.json]

Not a timing. On fresh sequences of the training range (the shipped model unless ``--checkpoint``),
the excess (the model's cross-entropy bits minus the optimal estimator's, per predicted bit) summed
per sequence and split two ways:

- by where in the sequence the bit is (windows of time steps);
- by how many times the bit's context (its N - 1 previous bits) came before it in the sequence: the
  number of observations the optimal estimator's count for that context rests on.

and how the heads address memory: each head's focus (the weighting's largest weight and its entropy)
in the same windows, and the table the read head keeps: at each step the row with the read head's
largest weight, and per sequence how many rows the contexts met land on.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections import Counter
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


def focus_by_window(w: torch.Tensor, edges=WINDOWS) -> list[dict]:
    """Each head's focus per window of time steps: the mean largest weight and the mean entropy.

    w: [batch, T, heads, N] weightings; one row per window with ``peak`` and ``entropy_bits``, lists
    over heads.
    """
    peak = w.max(-1).values  # [batch, T, heads]
    p = w.clamp_min(1e-12)
    entropy = -(p * p.log2()).sum(-1)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        if lo >= w.shape[1]:
            break
        rows.append(
            {
                "steps_from": lo,
                "steps_to": min(hi, w.shape[1]),
                "peak": peak[:, lo:hi].mean((0, 1)).tolist(),
                "entropy_bits": entropy[:, lo:hi].mean((0, 1)).tolist(),
            }
        )
    return rows


def lookup_table(peak_rows: torch.Tensor, ctx: torch.Tensor, excess: torch.Tensor, skip: int, order: int) -> dict:
    """How the contexts met in a sequence map onto the rows a head reads most, and where the excess falls.

    peak_rows, ctx: [batch, T] integers: the row with the head's largest weight at each step and the
    context of the bit that step predicts; excess: [batch, T] bits above the optimum. Steps before
    ``skip`` (contexts not yet complete) are left out. Per sequence each context is assigned the row it
    was read from most often; a context *shares* its row when another context of that sequence is
    assigned the same row. Returns, averaged over sequences: ``contexts`` met, ``rows`` they are
    assigned, ``contexts_per_row``; ``agreement``, the share of steps read from their context's row;
    the share of steps whose context shares its row and the excess per sequence and per step on those
    steps and on the others; and ``pairs_by_newest_difference``: over all pairs of contexts sharing a
    row, the share whose most recent differing bit is bit t - j, for j = 1 .. order (contexts that
    differ only in old bits have a large j).
    """
    contexts, rows, agree, steps = [], [], 0, 0
    inside = excess[:, skip:]
    mask = torch.zeros_like(inside, dtype=torch.bool)  # steps whose context shares its row
    newest = [0] * (order + 1)
    for i, (peaks, cs) in enumerate(zip(peak_rows[:, skip:].tolist(), ctx[:, skip:].tolist())):
        counts: dict[int, Counter[int]] = {}
        for row, c in zip(peaks, cs):
            counts.setdefault(c, Counter())[row] += 1
        assigned = {c: max(by_row, key=by_row.__getitem__) for c, by_row in counts.items()}
        per_row = Counter(assigned.values())
        shares = {c for c, r in assigned.items() if per_row[r] > 1}
        for a, b in itertools.combinations(sorted(shares), 2):
            if assigned[a] == assigned[b]:
                newest[((a ^ b) & -(a ^ b)).bit_length()] += 1  # the lowest set bit: the newest differing bit
        mask[i] = torch.tensor([c in shares for c in cs], dtype=torch.bool)
        contexts.append(len(assigned))
        rows.append(len(per_row))
        agree += sum(counts[c][r] for c, r in assigned.items())
        steps += len(peaks)
    n = len(contexts)
    pairs = sum(newest)
    return {
        "contexts": sum(contexts) / n,
        "rows": sum(rows) / n,
        "contexts_per_row": sum(c / r for c, r in zip(contexts, rows)) / n,
        "agreement": agree / steps,
        "shared_share_of_steps": float(mask.float().mean()),
        "excess_shared_per_sequence": float(inside[mask].sum() / n),
        "excess_own_per_sequence": float(inside[~mask].sum() / n),
        "excess_per_step_shared": float(inside[mask].mean()) if mask.any() else None,
        "excess_per_step_own": float(inside[~mask].mean()) if (~mask).any() else None,
        "pairs_by_newest_difference": [
            {"bit": f"t-{j}", "share_of_pairs": newest[j] / pairs if pairs else None} for j in range(1, order + 1)
        ],
    }


def analyse(model, task, sequences: int, seed: int, chunk: int = 100) -> dict:
    """The figures above for ``model`` on ``sequences`` fresh sequences of ``task``."""
    from ntmkit.tasks.ngrams import contexts, optimal_predictions

    generator = torch.Generator().manual_seed(seed)
    order = task.n - 1
    excess, seen, reads, writes, ctxs = [], [], [], [], []
    for start in range(0, sequences, chunk):
        b = task.make_batch(min(chunk, sequences - start), generator)
        with torch.no_grad():
            logits, _, trace = model(b.inputs, return_trace=True)
        bits = torch.cat([b.inputs[:, :1, 0], b.targets[..., 0]], dim=1)  # bits 0 .. T
        optimal = optimal_predictions(bits, order)[:, 1:]  # predictions of bits 1 .. T
        y = bits[:, 1:].double()
        optimal_bits = -(y * torch.log2(optimal) + (1 - y) * torch.log2(1 - optimal))
        model_bits = F.binary_cross_entropy_with_logits(logits[..., 0].double(), y, reduction="none") / math.log(2)
        excess.append((model_bits - optimal_bits) * b.mask.double())
        ctx = contexts(bits, order)[:, 1:]  # the context of the bit each step predicts
        seen.append(times_seen(ctx, 1 << order))
        reads.append(trace["read_weights"])
        writes.append(trace["write_weights"])
        ctxs.append(ctx)
    all_excess, all_seen, all_reads = torch.cat(excess), torch.cat(seen), torch.cat(reads)
    peak_rows = all_reads[:, :, 0].argmax(-1)  # read head 0's row of largest weight at each step
    return {
        "excess_per_sequence": float(all_excess.sum(1).mean()),
        "by_window": excess_by_window(all_excess),
        "by_times_seen": excess_by_times_seen(all_excess, all_seen),
        "read_focus": focus_by_window(all_reads),
        "write_focus": focus_by_window(torch.cat(writes)),
        "read_lookup": lookup_table(peak_rows, torch.cat(ctxs), all_excess, skip=order, order=order),
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
    print("heads' focus by time step (largest weight, entropy in bits; read head 0, write head 0):")
    for r, w in zip(result["read_focus"], result["write_focus"]):
        print(
            f"  steps {r['steps_from']}-{r['steps_to']}: read {r['peak'][0]:.3f} / {r['entropy_bits'][0]:.2f}, "
            f"write {w['peak'][0]:.3f} / {w['entropy_bits'][0]:.2f}"
        )
    look = result["read_lookup"]
    print(
        f"read head 0's table: {look['contexts']:.1f} contexts per sequence on {look['rows']:.1f} rows "
        f"({look['contexts_per_row']:.2f} per row); {look['agreement']:.1%} of steps read their context's row"
    )
    print(
        f"  steps whose context shares its row: {look['shared_share_of_steps']:.1%}, carrying "
        f"{look['excess_shared_per_sequence']:.3f} bits per sequence ({look['excess_per_step_shared']:.5f} per step);"
        f" the others {look['excess_own_per_sequence']:.3f} ({look['excess_per_step_own']:.5f} per step)"
    )
    print(
        "  pairs of contexts sharing a row, by their newest differing bit: "
        + ", ".join(f"{r['bit']} {r['share_of_pairs']:.1%}" for r in look["pairs_by_newest_difference"])
    )
    print(f"saved {out}")


if __name__ == "__main__":
    main()
