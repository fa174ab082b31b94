"""Where an associative recall machine goes wrong as the items grow: which queries it misses.

    python benchmarks/recall_analysis.py [--checkpoint PATH] [--sequences 2000] [--seed 99]
        [--items 6,12,15] [--out benchmarks/results/analysis/associative_recall.json]

Not a timing. On fresh sequences with a fixed number of items (the shipped model unless
``--checkpoint``), the wrong output bits per sequence split three ways:

- by the queried item's place among the items (0: the first);
- by whether another stored item has the same vector as the query at the same place within the
  item (its first, second or last vector): a machine that finds the query by one of its vectors
  alone cannot tell those two items apart;
- all of it against the number of items;

where the reading head looks while the answer comes out (the answer's rows on the tape, other
items' rows, rows no head wrote), the perfect sequences against the wrong ones;

and, on one sequence, where each write head writes while the items come in: a feed-forward machine
keeps its items on a "tape" (one head writing a row per step) and other heads write elsewhere; the
items whose tape rows another head also writes are listed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

ITEMS = (6, 12, 15)
SHARP = 0.1  # a write counts as landing on a row when its largest weight is at least this


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


def write_paths(write_weights: torch.Tensor, items: int, k: int) -> list[dict]:
    """Where each write head writes while the items come in, on one sequence.

    write_weights: [T, heads, N] of one sequence with ``items`` items (item j at steps j(k+1)+1 ..
    j(k+1)+k). Per head: the row of its largest weight at the first and last input step, the rows it
    moves per step (the path of its largest weight, unwrapped around the memory's ring), its mean
    largest weight, and, for every head but the "tape" (the head that most often moves one row per
    step, weighted by its largest weight: it writes each input in a row of its own), the items whose
    rows on the tape it also writes with a largest weight of at least ``SHARP``.
    """
    steps, n = items * (k + 1), write_weights.shape[-1]
    peak, rows = write_weights[:steps].max(-1)  # [steps, heads]
    moves = (rows[1:] - rows[:-1] + n // 2) % n - n // 2  # one ring step: the shortest way round
    heads = [
        {
            "head": h,
            "first_row": int(rows[0, h]),
            "last_row": int(rows[-1, h]),
            "rows_per_step": float(moves[:, h].sum()) / (steps - 1),
            "mean_peak": float(peak[:, h].mean()),
        }
        for h in range(rows.shape[1])
    ]
    # the tape: the head that most often moves one row at a step, weighted by how sharply it writes
    tape = int(((moves.abs() == 1).float() * peak[1:]).mean(0).argmax())
    item_rows = {j: set(rows[j * (k + 1) + 1 : (j + 1) * (k + 1), tape].tolist()) for j in range(items)}
    for h, head in enumerate(heads):
        head["tape"] = h == tape
        written = set(rows[peak[:, h] >= SHARP, h].tolist())
        head["writes_on_items"] = None if h == tape else [j for j, r in item_rows.items() if r & written]
    return heads


def tape_rows(write_weights: torch.Tensor, tape: int, items: int, k: int) -> torch.Tensor:
    """The rows the tape head writes each item on. write_weights: [B, T, heads, N]; returns [B, items, N]
    booleans: the rows of the tape head's largest weight at the item's k steps and at the delimiter
    after it (what a row holds may lag its input by a step, and a machine may pack items two rows
    apart, writing over the previous item's last rows, so an item's rows are taken wide)."""
    steps = torch.tensor([j * (k + 1) + 1 + v for j in range(items) for v in range(k + 1)])
    rows = write_weights[:, steps, tape].argmax(-1).reshape(-1, items, k + 1)  # [B, items, k + 1]
    hot = torch.nn.functional.one_hot(rows, write_weights.shape[-1]).bool()  # [B, items, k + 1, N]
    return hot.any(2)


def answer_reads(
    read_weights: torch.Tensor,
    write_weights: torch.Tensor,
    mask: torch.Tensor,
    place: torch.Tensor,
    wrong: torch.Tensor,
    tape: int,
    items: int,
    k: int,
) -> dict:
    """Where the reading head looks while the answer comes out, for the perfect and the wrong sequences.

    read_weights: [B, T, R, N]; write_weights: [B, T, heads, N]; mask: [B, T] (1 at the answer's k
    steps); place: [B] the query's item; wrong: [B] wrong bits; tape: the tape head (see
    :func:`write_paths`); every sequence has ``items`` items of ``k`` vectors. The reading head is
    the read head that puts the most weight on written rows at the answer's steps (a machine may
    also keep a head counting steps on rows it never writes). Its weighting at each answer step
    splits into the rows the tape wrote the answer (the item after the query) on
    (:func:`tape_rows`), the rows it wrote the other items on, rows no write head wrote with a
    weight of at least ``SHARP`` before the answer (the learned initial memory: "unwritten"), and
    the rest (written rows off the items: delimiters, the query); each part is
    averaged over the answer's steps, then over the sequences of each group.
    """
    b = read_weights.shape[0]
    answer_steps = mask[0].nonzero().flatten()
    written = (write_weights[:, : int(answer_steps[0])] >= SHARP).any(2).any(1)  # [B, N]
    reads = read_weights[:, answer_steps]  # [B, k, R, N]
    reader = int((reads * written[:, None, None]).sum(-1).mean((0, 1)).argmax())
    on_items = tape_rows(write_weights, tape, items, k)  # [B, items, N]
    answer = on_items[torch.arange(b), place + 1]
    other = on_items.any(1) & ~answer
    unwritten = ~written & ~answer & ~other
    rest = ~(answer | other | unwritten)
    w = reads[:, :, reader]  # [B, k, N]
    parts = {
        name: (w * rows.unsqueeze(1)).sum(-1).mean(1)
        for name, rows in (("answer", answer), ("other_items", other), ("unwritten", unwritten), ("rest", rest))
    }
    groups = {"perfect": wrong == 0, "wrong": wrong > 0}
    return {
        "reading_head": reader,
        **{
            group: {
                "share": float(inside.float().mean()),
                **{p: float(v[inside].mean()) if inside.any() else None for p, v in parts.items()},
            }
            for group, inside in groups.items()
        },
    }


def analyse_items(model, task, items: int, sequences: int, generator: torch.Generator) -> dict:
    """The figures for one number of items."""
    b = task.make_batch(sequences, generator, level=items)
    with torch.no_grad():
        logits, _, trace = model(b.inputs, return_trace=True)
    wrong = (((logits > 0).float() != b.targets).float() * b.mask.unsqueeze(-1)).sum((1, 2))
    stored, query = stored_items(b.inputs, items, task.item_length, task.bits)
    place = query_place(stored, query)
    shared = shared_vectors(stored, place)
    k = task.item_length
    paths = write_paths(trace["write_weights"][0], items, k) if "write_weights" in trace else None
    tape = next(w["head"] for w in paths if w["tape"]) if paths else 0
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
        "write_paths": paths,
        "answer_reads": (
            answer_reads(trace["read_weights"], trace["write_weights"], b.mask, place, wrong, tape, items, k)
            if paths
            else None
        ),
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
        for w in r["write_paths"] or []:
            on = "the tape" if w["tape"] else f"writes on the tape's items {w['writes_on_items']}"
            print(
                f"  write head {w['head']}: rows {w['first_row']} -> {w['last_row']}, {w['rows_per_step']:+.2f} "
                f"rows per step, peak {w['mean_peak']:.2f}; {on}"
            )
        for group in ("perfect", "wrong"):
            a = (r["answer_reads"] or {}).get(group) or {}
            if a.get("answer") is not None:
                print(
                    f"  {group} ({a['share']:.1%}): read head {r['answer_reads']['reading_head']} puts "
                    f"{a['answer']:.2f} on the answer's rows, {a['other_items']:.2f} on other items', "
                    f"{a['unwritten']:.2f} on unwritten rows, {a['rest']:.2f} elsewhere"
                )
        u = r["unique_at_every_position"]
        print(
            f"  unique at every position: {u['yes']['wrong_bits_per_sequence'] or 0:.3f} ({u['yes']['share']:.0%}); "
            f"not: {u['no']['wrong_bits_per_sequence'] or 0:.3f}"
        )
    print(f"saved {out}")


if __name__ == "__main__":
    main()
