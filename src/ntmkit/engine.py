"""The fast path: a memory model's time step compiled into a few fused kernels.

An NTM step is hundreds of tiny operations, so eager PyTorch spends its time dispatching, not
computing. ``torch.compile`` fuses the step (forward and backward) into a handful of C++ loops.
The step, not the whole sequence, is compiled: one graph serves every sequence length, so the
curriculum never triggers a recompile. A new batch size compiles once more. With ``unroll`` K > 1
a second graph runs K steps at once (:func:`compile_steps`): each call into a compiled graph has a
fixed cost (guards, the autograd node, one gradient accumulation per parameter) that K steps share.
"""

from __future__ import annotations

import torch

# Every model instance and every training batch size adds one compiled version of the step;
# PyTorch's default limit (8) would silently fall back to eager in a process that builds many
# models (a sweep, a benchmark, a test session).
RECOMPILE_LIMIT = 64


def compile_step(cell, vary_memory: bool = False):
    """``cell.step`` compiled for the current device; same signature and results.

    With ``vary_memory`` the number of memory rows is a symbolic size in the compiled graph, so
    training over several memory sizes compiles once (about 25 s) instead of once per size (about
    12 s each); a fixed size keeps the fully specialised graph, about 10% faster per step.
    """
    _raise_recompile_limit()
    if not vary_memory:
        return torch.compile(cell.step, dynamic=False)
    # The caller marks the memory dimension of each sequence's initial state (mark_memory_dynamic);
    # the later steps' states are the graph's own outputs and match its symbolic size.
    return torch.compile(cell.step, dynamic=None)


def _raise_recompile_limit() -> None:
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(config, name) and getattr(config, name) < RECOMPILE_LIMIT:
            setattr(config, name, RECOMPILE_LIMIT)


def run_steps(step, xs: torch.Tensor, state):
    """``xs.shape[0]`` time steps of ``step`` (a cell's ``step``) from ``state``: the body of the
    unrolled graph. Returns ``(logits [K, B, output_size], state)``."""
    ys = []
    for i in range(xs.shape[0]):
        y, state, _ = step(xs[i], state)
        ys.append(y)
    return torch.stack(ys), state


def compile_steps(cell, steps: int, vary_memory: bool = False):
    """``run_steps`` over ``steps`` time steps of ``cell.step``, compiled as one graph (forward and
    backward). Called as ``f(xs [steps, B, input_size], state) -> (logits [steps, B, output], state)``;
    sequences whose length is not a multiple of ``steps`` finish with the one-step graph."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"an unrolled graph runs at least 2 time steps, got {steps!r}")
    _raise_recompile_limit()

    def unrolled(xs: torch.Tensor, state):
        return run_steps(cell.step, xs, state)

    return torch.compile(unrolled, dynamic=None if vary_memory else False)


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Let the C allocator keep freed blocks in the process instead of handing them back to the
    system (glibc's ``mallopt``; elsewhere nothing happens and False is returned).

    A DNC training step allocates a fresh ``[B, N, N]`` link matrix, and its gradient, at every time
    step (2 MB each at batch 32, N = 128). By default glibc returns such blocks to the system when
    they are freed and the next step faults them in again: measured on copy, batch 32, length 20,
    about 2,900 page faults per training batch, and the compiled step 5-10% slower than with the
    blocks kept. The process keeps up to ``limit`` bytes of freed memory for reuse; blocks over
    32 MiB (glibc's ceiling for this setting) are still mapped and unmapped one by one.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, min(limit, 32 << 20)) and mallopt(m_trim_threshold, limit))


def mark_memory_dynamic(dims: list[tuple[torch.Tensor, int]]) -> None:
    """Mark the memory-rows dimensions of a state (``cell.memory_dims(state)``: each tensor and the
    dimension that has one entry per row) as symbolic for torch.compile."""
    for tensor, dim in dims:
        torch._dynamo.mark_dynamic(tensor, dim)


def compiler_available() -> bool:
    """Whether torch.compile can build kernels here (it needs a C++ compiler on CPU)."""
    import shutil

    return any(shutil.which(c) for c in ("g++", "c++", "clang++", "cl"))
