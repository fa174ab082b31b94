"""Pictures of what the machine does. Every figure is saved to a PNG file and its path returned;
time runs left to right in every time panel."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from .errors import ConfigError
from .tasks import Batch, Task


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _panel(ax, data, title, ylabel, cmap="viridis", vmin=None, vmax=None):
    """Draw ``data`` [rows, time] with time along x."""
    im = ax.imshow(data, aspect="auto", interpolation="nearest", cmap=cmap, vmin=vmin, vmax=vmax, origin="upper")
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    return im


def _forward(model, inputs: torch.Tensor, trace: bool = False):
    """The model's logits (and trace) for ``inputs``, run on the model's device, returned on the CPU."""
    device = next(model.parameters()).device
    out = model(inputs.to(device), return_trace=True) if trace else model(inputs.to(device))
    logits = out[0].cpu()
    if not trace:
        return logits
    return logits, {k: v.cpu() for k, v in out[2].items()}


@torch.no_grad()
def test_figure(model, task: Task, batch: Batch, path, title: str = "") -> Path:
    """Input, target, output and wrong bits, one column of panels per sequence (up to 4)."""
    model.eval()
    logits = _forward(model, batch.inputs)
    probs = torch.sigmoid(logits)
    n = batch.inputs.shape[0]
    fig, axes = plt.subplots(4, n, figsize=(3.2 * n + 1, 7.5), squeeze=False)
    fig.subplots_adjust(hspace=0.55)
    for j in range(n):
        t = int(batch.lengths[j])
        mask = batch.mask[j, :t].bool()
        wrong = ((probs[j, :t] > 0.5).float() != batch.targets[j, :t]) & mask.unsqueeze(-1)
        _panel(
            axes[0, j],
            batch.inputs[j, :t].T.numpy(),
            f"input ({task.level_name} {int(batch.levels[j])})",
            "channel",
            "Greys",
            0,
            1,
        )
        _panel(axes[1, j], batch.targets[j, :t].T.numpy(), "target", "bit", "Greys", 0, 1)
        _panel(axes[2, j], probs[j, :t].T.numpy() * mask.numpy(), "output", "bit", "Greys", 0, 1)
        _panel(axes[3, j], wrong.T.float().numpy(), f"wrong bits: {int(wrong.sum())}", "bit", "Reds", 0, 1)
        axes[3, j].set_xlabel("time", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _used_rows(weights: np.ndarray, margin: int = 2) -> np.ndarray:
    """Locations that a weighting [N, T] focuses on, as one run in circular order.

    Memory is a ring (shifts wrap round), so a head that starts at location 0 and moves
    backwards uses 0, N-1, N-2, ...: the run is taken round the largest unused gap.
    """
    n = weights.shape[0]
    used = weights.max(axis=1) > 0.3
    if used.all() or not used.any():
        return np.arange(n)
    # The longest circular run of unused locations; the picture starts just after it.
    best_len, best_end, run = 0, 0, 0
    for i in range(2 * n):
        run = run + 1 if not used[i % n] else 0
        if run > best_len:
            best_len, best_end = min(run, n), i % n
    start = (best_end + 1 - margin) % n
    count = min(n, n - best_len + 2 * margin)
    return (start + np.arange(count)) % n


def stack_heads(weights: np.ndarray, rows: np.ndarray, gap: int = 1) -> np.ndarray:
    """Every head's weighting over ``rows``, one block of rows per head, top to bottom, with ``gap``
    rows of NaN (drawn blank) between blocks: ``weights`` ``[T, H, N]`` -> ``[H * (len(rows) + gap) - gap, T]``."""
    t, heads, _ = weights.shape
    blank = np.full((gap, t), np.nan)
    blocks = [part for h in range(heads) for part in ((blank,) if h else ()) + (weights[:, h, rows].T,)]
    return np.concatenate(blocks, axis=0)


def _head_ticks(ax, heads: int, rows: np.ndarray, gap: int) -> None:
    """Location ticks on a single head's panel; on a stacked one (:func:`stack_heads`), one tick per head."""
    if heads == 1:
        _row_ticks(ax, rows)
        return
    size = len(rows) + gap
    ax.set_yticks([h * size + (len(rows) - 1) / 2 for h in range(heads)])
    ax.set_yticklabels([f"head {h + 1}" for h in range(heads)], fontsize=7)


def _row_ticks(ax, rows: np.ndarray) -> None:
    ticks = list(range(0, len(rows), max(1, len(rows) // 6)))
    ax.set_yticks(ticks)
    ax.set_yticklabels([str(int(rows[i])) for i in ticks], fontsize=7)


@torch.no_grad()
def visualize(model, task: Task, batch: Batch, path) -> Path:
    """A memory model's internals over time for one sequence: input and output, the add vectors,
    the write and read weightings, the read vectors and the erase vectors; for a DNC also the
    usage, the allocation weighting and the read modes; on the right the memory (and the DNC's
    temporal link matrix) at the end. Rows are the locations the heads use."""
    model.eval()
    logits, trace = _forward(model, batch.inputs[:1], trace=True)
    if not trace:
        raise ConfigError(
            "this model has no memory to draw (an LSTM baseline or a Transformer): visualize an NTM, DNC, Stack-RNN "
            "or Tape-RNN checkpoint"
        )
    if "actions" in trace:
        return _actions_figure(model, task, batch, logits, trace, path)
    t = int(batch.lengths[0])
    ww = trace["write_weights"][0, :t].numpy()  # [T, H, N]: every write head
    rw = trace["read_weights"][0, :t].numpy()
    rows = _used_rows(np.maximum(ww.max(axis=1), rw.max(axis=1)).T)  # the locations any head uses
    where = f"location ({rows[0]}-{rows[-1]})"
    heads = {"write": ww.shape[1], "read": rw.shape[1]}
    gap = max(1, len(rows) // 20)  # blank rows between heads

    def weightings(kind: str) -> tuple:
        """The panel of every ``kind`` ("write", "read") head's weighting."""
        n, data = heads[kind], stack_heads(ww if kind == "write" else rw, rows, gap)
        if n == 1:
            return (f"{kind} weightings", data, where, "magma", (0, 1), kind)
        return (f"{kind} weightings, heads 1-{n} ({where} each)", data, "", "magma", (0, 1), kind)

    # (title, [rows, T] data, y label, colour map, range, the y axis: "rows" (memory locations), "write" or
    # "read" (every such head's weighting, stacked), None (no locations))
    panels = [
        ("input", batch.inputs[0, :t].T.numpy(), "channel", "Greys", (0, 1), None),
        ("output", torch.sigmoid(logits[0, :t]).T.numpy() * batch.mask[0, :t].numpy(), "bit", "Greys", (0, 1), None),
        ("adds (write head 1)", trace["add"][0, :t, 0].T.numpy(), "memory column", "RdBu_r", (-1, 1), None),
        weightings("write"),
    ]
    if "allocation" in trace:
        panels.append(
            ("allocation weighting", trace["allocation"][0, :t].T.numpy()[rows], where, "magma", (0, 1), "rows")
        )
        panels.append(("usage", trace["usage"][0, :t].T.numpy()[rows], where, "viridis", (0, 1), "rows"))
    panels.append(weightings("read"))
    if "read_modes" in trace:
        modes = trace["read_modes"][0, :t].permute(1, 2, 0).reshape(-1, t).numpy()  # [R * 3, T]
        panels.append(("read modes (backward, content, forward per read head)", modes, "mode", "Greys", (0, 1), None))
    panels += [
        ("reads (read head 1)", trace["read_vectors"][0, :t, 0].T.numpy(), "memory column", "RdBu_r", (-1, 1), None),
        ("erase (write head 1)", trace["erase"][0, :t, 0].T.numpy(), "memory column", "Greys", (0, 1), None),
    ]
    fig = plt.figure(figsize=(12, 1.7 * len(panels)))
    gs = fig.add_gridspec(len(panels), 2, width_ratios=[4, 1], hspace=0.6, wspace=0.15, top=0.96)
    for i, (title, data, ylabel, cmap, (lo, hi), by_row) in enumerate(panels):
        ax = fig.add_subplot(gs[i, 0])
        _panel(ax, data, title, ylabel, cmap, lo, hi)
        if by_row == "rows":
            _row_ticks(ax, rows)
        elif by_row is not None:
            _head_ticks(ax, heads[by_row], rows, gap)
    ax.set_xlabel("time")
    memory = trace["memory"][0, t - 1][torch.as_tensor(rows)].numpy()  # [rows, M]
    ends = [("memory at the end", memory, "column", "RdBu_r", float(np.abs(memory).max()) or 1.0)]
    if "link" in trace:
        link = trace["link"][0, t - 1][torch.as_tensor(rows)][:, torch.as_tensor(rows)].numpy()
        ends.append(("link matrix at the end (row written after column)", link, "location", "magma", 1.0))
    for k, (title, data, xlabel, cmap, lim) in enumerate(ends):
        ax = fig.add_subplot(gs[3 + 3 * k : 5 + 3 * k, 1])
        ax.imshow(data, aspect="auto", interpolation="nearest", cmap=cmap, vmin=-lim if cmap == "RdBu_r" else 0,
                  vmax=lim)  # fmt: skip
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("location", fontsize=8)
        _row_ticks(ax, rows)
    fig.suptitle(f"{task.name}: {task.level_name} {int(batch.levels[0])}", fontsize=11)
    return _save(fig, path)


def _actions_figure(model, task: Task, batch: Batch, logits, trace: dict, path) -> Path:
    """A Stack-RNN's or Tape-RNN's step by step: input, output, the weights of its actions, and the
    cell it reads (the top of the stack, the cell under the tape's head)."""
    t = int(batch.lengths[0])
    names = type(model).actions
    panels = [
        ("input", batch.inputs[0, :t].T.numpy(), "channel", "Greys", (0, 1)),
        ("output", torch.softmax(logits[0, :t], -1).T.numpy() * batch.mask[0, :t].numpy(), "class", "Greys", (0, 1)),
        ("actions", trace["actions"][0, :t].T.numpy(), "", "magma", (0, 1)),
        ("cell read", trace["read"][0, :t].T.numpy(), "cell column", "RdBu_r", (-1, 1)),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.8 * len(panels)), squeeze=False)
    for ax, (title, data, ylabel, cmap, (lo, hi)) in zip(axes[:, 0], panels):
        _panel(ax, data, title, ylabel, cmap, lo, hi)
    axes[2, 0].set_yticks(range(len(names)), names, fontsize=7)
    axes[-1, 0].set_xlabel("time")
    fig.suptitle(f"{type(model).__name__} on {task.name}: {task.level_name} {int(batch.levels[0])}", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def generalisation_plot(
    rows: list[dict],
    axis: str,
    train_range: tuple[int, int],
    path,
    title: str = "",
    cost_name: str = "bit errors per sequence",
) -> Path:
    """Cost against ``axis`` (one point per row), with the training range shaded."""
    x = [r[axis] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    lo, hi = train_range
    ax.axvspan(lo - 0.5, hi + 0.5, color="tab:green", alpha=0.15, label=f"training range ({lo}-{hi})")
    ax.plot(x, [r["cost"] for r in rows], "o-", ms=3, color="tab:blue", label=cost_name)
    if cost_name != "bit errors per sequence":
        ax.plot(x, [r["bit_errors"] for r in rows], "s--", ms=2, color="tab:gray", label="bit errors per sequence")
    if max(x) > 10 * max(min(x), 1):
        ax.set_xscale("log")
    _cost_scale(ax, np.array([r["cost"] for r in rows] + [r["bit_errors"] for r in rows]))
    ax.set_xlabel(axis)
    ax.set_ylabel(cost_name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def learning_curve(
    x, median, q1, q3, path, xlabel: str = "sequences", ylabel: str = "cost", title: str = "", label: str = "median"
) -> Path:
    """A median learning curve with its quartile band."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.fill_between(x, q1, q3, alpha=0.25, color="tab:blue", label="quartiles")
    ax.plot(x, median, color="tab:blue", label=label)
    _cost_scale(ax, np.concatenate([np.asarray(q1), np.asarray(q3)]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _cost_scale(ax, values: np.ndarray) -> None:
    """Log scale for costs that span decades (0 shown via a linear band near 0), linear otherwise."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    top, low = float(values.max()), float(values.min())
    if low >= 0 and top > 0 and (low == 0 or top / max(low, 1e-12) > 20):
        positive = values[values > 0]
        ax.set_yscale("symlog", linthresh=max(float(positive.min()) if positive.size else 0.01, 1e-3))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    if low >= 0:
        ax.set_ylim(bottom=0)


@torch.no_grad()
def weightings_figure(model, batch: Batch):
    """A small figure of one sequence's write and read weightings over time (every head), for
    TensorBoard; returns the matplotlib figure, or None for a model without memory."""
    was_training = model.training
    model.eval()
    try:
        _, trace = _forward(model, batch.inputs[:1], trace=True)
    finally:
        model.train(was_training)
    if not trace:
        return None
    t = int(batch.lengths[0])
    ww = trace["write_weights"][0, :t].permute(1, 2, 0).numpy()  # [heads, N, T]
    rw = trace["read_weights"][0, :t].permute(1, 2, 0).numpy()
    rows = _used_rows(np.maximum(ww.max(0), rw.max(0)))
    panels = [(f"write head {i + 1}", w) for i, w in enumerate(ww)] + [
        (f"read head {i + 1}", w) for i, w in enumerate(rw)
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 1.6 * len(panels) + 0.4), squeeze=False)
    for ax, (title, w) in zip(axes[:, 0], panels):
        _panel(ax, w[rows], title, "location", "magma", 0, 1)
    axes[-1, 0].set_xlabel("time")
    fig.tight_layout()
    return fig


def compare_curves(curves: dict, path, xlabel: str = "sequences", ylabel: str = "cost", title: str = "") -> Path:
    """Several median learning curves with quartile bands: ``{label: (x, median, q1, q3)}``."""
    return compare_panels([(xlabel, curves)], path, ylabel=ylabel, title=title)


def compare_panels(panels: list[tuple[str, dict]], path, ylabel: str = "cost", title: str = "") -> Path:
    """Side-by-side panels of median learning curves with quartile bands, one panel per x axis:
    ``[(xlabel, {label: (x, median, q1, q3)}), ...]`` (e.g. sequences seen and wall seconds)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 3.6), squeeze=False)
    colors = ("tab:blue", "tab:orange", "tab:gray", "tab:green", "tab:red", "tab:purple")
    for ax, (xlabel, curves) in zip(axes[0], panels):
        values = []
        for (label, (x, med, q1, q3)), color in zip(curves.items(), colors):
            ax.fill_between(x, q1, q3, alpha=0.2, color=color)
            ax.plot(x, med, color=color, label=label)
            values += [np.asarray(q1), np.asarray(q3)]
        _cost_scale(ax, np.concatenate(values))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
