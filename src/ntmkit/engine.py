"""The fast path: the NTM's time step compiled into a few fused kernels.

An NTM step is hundreds of tiny operations, so eager PyTorch spends its time dispatching, not
computing. ``torch.compile`` fuses the step (forward and backward) into a handful of C++ loops.
The step, not the whole sequence, is compiled: one graph serves every sequence length, so the
curriculum never triggers a recompile. A new batch size compiles once more.
"""

from __future__ import annotations

import torch


# Every model instance and every training batch size adds one compiled version of the step;
# PyTorch's default limit (8) would silently fall back to eager in a process that builds many
# models (a sweep, a benchmark, a test session).
RECOMPILE_LIMIT = 64


def compile_step(cell: torch.nn.Module):
    """``cell.step`` compiled for the current device; same signature and results."""
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(config, name) and getattr(config, name) < RECOMPILE_LIMIT:
            setattr(config, name, RECOMPILE_LIMIT)
    return torch.compile(cell.step, dynamic=False)


def compiler_available() -> bool:
    """Whether torch.compile can build kernels here (it needs a C++ compiler on CPU)."""
    import shutil
    return any(shutil.which(c) for c in ("g++", "c++", "clang++", "cl"))
