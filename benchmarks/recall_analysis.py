"""Where an associative recall machine goes wrong as the items grow: which queries it misses.

    python benchmarks/recall_analysis.py [--checkpoint PATH] [--sequences 2000] [--seed 99]
        [--items 6,12,15] [--out benchmarks/results/analysis/associative_recall.json]

Not a timing. On fresh sequences with a fixed number of items (the shipped model unless
``--checkpoint``), the wrong output bits per sequence split three ways:

- by the queried item's place among the items (0: the first);
- by whether another stored item has the same vector as the query at the same place within the
  item (its first, second or last vector): a machine that finds the query by one of its vectors
  alone cannot tell those two items apart;
- all of it against the number of items.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

ITEMS = (6, 12, 15)


def stored_items(inputs: torch.Tensor, items: int, k: int, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The items and the query of recall sequences with ``items`` items each, read off their inputs.

    inputs: [batch, T, bits + 2] (the open or closed layout); returns the items [batch, items, k, bits]
    and the query [batch, k, bits].
    """
    steps = torch.arange(items) * (k + 1)
    data = inputs[..., :bits]
    stored = torch.stack([data[:, s + 1 : s + 1 + k] for s in steps.tolist()], dim=1)
    start = items * (k + 1) + int(bool(inputs[0, items * (k + 1), bits]))  # closed layout: one delimiter more
    return stored, data[:, start + 1 : start + 1 + k]


def query_place(stored: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Which of the first n - 1 items the query is (the first match). stored: [B, n, k, d]; query: [B, k, d];
    returns [B] integers."""
    same = (stored[:, :-1] == query.unsqueeze(1)).flatten(2).all(2)  # [B, n - 1]
    return same.float().argmax(1)


def shared_vectors(stored: torch.Tensor, place: torch.Tensor) -> torch.Tensor:
    """For each position within the item, whether another stored item has the query's vector there.

    stored: [B, n, k, d]; place: [B]; returns [B, k] booleans.
    """
    b = torch.arange(stored.shape[0])
    query = stored[b, place]  # [B, k, d]
    same = (stored == query.unsqueeze(1)).all(3)  # [B, n, k]
    same[b, place] = False  # not the query itself
    return same.any(1)


def split(wrong: torch.Tensor, groups: torch.Tensor, labels: list) -> list[dict]:
    """Wrong bits per sequence of each group. wrong: [B]; groups: [B] integers indexing ``labels``."""
    rows = []
    for i, label in enumerate(labels):
        inside = groups == i
        rows.append(
            {
                "group": label,
                "share": float(inside.float().mean()),
                "wrong_bits_per_sequence": float(wrong[inside].mean()) if inside.any() else None,
            }
        )
    return rows


def analyse_items(model, task, items: int, sequences: int, generator: torch.Generator) -> dict:
    """The figures for one number of items."""
    b = task.make_batch(sequences, generator, level=items)
    with torch.no_grad():
        logits, _ = model(b.inputs)
    wrong = (((logits > 0).float() != b.targets).float() * b.mask.unsqueeze(-1)).sum((1, 2))
    stored, query = stored_items(b.inputs, items, task.item_length, task.bits)
    place = query_place(stored, query)
    shared = shared_vectors(stored, place)
    k = task.item_length
    return {
        "items": items,
        "wrong_bits_per_sequence": float(wrong.mean()),
        "perfect": float((wrong == 0).float().mean()),
        "by_place": split(wrong, place, list(range(items - 1))),
        "by_shared_vector": [
            {"position": p, **{r["group"]: r for r in split(wrong, shared[:, p].long(), ["unique", "shared"])}}
            for p in range(k)
        ],
        "unique_at_every_position": {r["group"]: r for r in split(wrong, shared.any(1).long(), ["yes", "no"])},
    }


def analyse(model, task, sequences: int, seed: int, items: tuple[int, ...] = ITEMS) -> dict:
    """The figures above for ``model`` on ``sequences`` fresh sequences of each number of ``items``."""
    generator = torch.Generator().manual_seed(seed)
    return {"by_items": [analyse_items(model, task, n, sequences, generator) for n in items]}


def main() -> None:
    from analysis_cli import run_analysis

    items = ITEMS
    if "--items" in sys.argv:
        i = sys.argv.index("--items")
        items = tuple(int(v) for v in sys.argv[i + 1].split(","))
        del sys.argv[i : i + 2]

    def run(model, task, sequences, seed):
        return analyse(model, task, sequences, seed, items)

    result, out = run_analysis("associative_recall", __doc__, run)
    for r in result["by_items"]:
        print(
            f"{r['items']} items: {r['wrong_bits_per_sequence']:.3f} wrong bits per sequence, "
            f"{r['perfect']:.1%} perfect"
        )
        print("  by the query's place: " + ", ".join(f"{x['wrong_bits_per_sequence'] or 0:.2f}" for x in r["by_place"]))
        for s in r["by_shared_vector"]:
            print(
                f"  vector {s['position']}: unique {s['unique']['wrong_bits_per_sequence'] or 0:.3f} "
                f"({s['unique']['share']:.0%}), shared {s['shared']['wrong_bits_per_sequence'] or 0:.3f} "
                f"({s['shared']['share']:.0%})"
            )
        u = r["unique_at_every_position"]
        print(
            f"  unique at every position: {u['yes']['wrong_bits_per_sequence'] or 0:.3f} ({u['yes']['share']:.0%}); "
            f"not: {u['no']['wrong_bits_per_sequence'] or 0:.3f}"
        )
    print(f"saved {out}")


if __name__ == "__main__":
    main()
