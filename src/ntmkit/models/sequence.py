"""What every model with a memory shares: the input checks and the loop over time.

A memory model is a cell (one time step, :class:`MemoryCell`) and :class:`MemoryModel`, which runs
the cell over a batch-first sequence like ``torch.nn.LSTM(batch_first=True)``: per-sample lengths,
a state in and out, an optional trace of what the memory did, the compiled fast path
(:mod:`ntmkit.engine`) and a memory that can be cut per call or grown for longer sequences.
The NTM and the DNC are two such cells; nothing here asks which one it runs.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any

import torch
from torch import nn


def check_sequence_input(x: torch.Tensor, input_size: int, lengths: torch.Tensor | None) -> None:
    """Reject an input the machine cannot take, with a message naming the expected shape."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"input must be a tensor of shape [batch, time, {input_size}], got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"input must have shape [batch, time, {input_size}], got rank {x.dim()} shape {list(x.shape)}")
    if x.shape[-1] != input_size:
        raise ValueError(
            f"input must have shape [batch, time, {input_size}], got {list(x.shape)} "
            f"(last dimension {x.shape[-1]} != input_size {input_size})"
        )
    if not x.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got {x.dtype}: use x.float()")
    if lengths is not None:
        if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1 or lengths.shape[0] != x.shape[0]:
            raise ValueError(f"lengths must be a 1-D tensor with one length per sample ({x.shape[0]})")
        if lengths.is_floating_point() or lengths.is_complex():
            raise TypeError(f"lengths must be an integer tensor, got {lengths.dtype}")
        if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > x.shape[1]):
            raise ValueError(
                f"lengths must lie in [0, {x.shape[1]}] (the time dimension), "
                f"got min {int(lengths.min())} max {int(lengths.max())}"
            )


def select_state(active: torch.Tensor, new, old):
    """Per sample, keep ``new`` where ``active`` ([B] bool) and ``old`` elsewhere.

    Works on nested tuples of batch-first tensors (the NTMState and the controller's state)."""
    if isinstance(new, torch.Tensor):
        return torch.where(active.view([-1] + [1] * (new.dim() - 1)), new, old)
    items = [select_state(active, n, o) for n, o in zip(new, old)]
    return type(new)(*items) if hasattr(new, "_fields") else tuple(items)


def bound_gradients(state, bound: float):
    """``state`` unchanged, with a hook on each tensor that needs a gradient: in the backward pass,
    each sample's gradient reaching it is scaled down to a norm of at most ``bound``.

    A memory model's backward pass runs through every time step's state; where the steps grow the
    gradient, the growth compounds over a long sequence (measured on N-grams: eight orders of
    magnitude in 60 steps, then float32 overflow). Bounding the gradient that reaches each step's
    state stops the compounding at its source; clipping is idempotent, so a tensor hooked twice
    is clipped once. Works on nested tuples of batch-first tensors."""
    if isinstance(state, torch.Tensor):
        if state.requires_grad:

            def clip(grad: torch.Tensor | None) -> torch.Tensor | None:
                if grad is None:  # a state tensor no later step used
                    return None
                norms = grad.reshape(grad.shape[0], -1).norm(dim=1)
                scale = (bound / norms.clamp_min(bound)).to(grad.dtype)  # 1 where the norm is within bound
                return grad * scale.view([-1] + [1] * (grad.dim() - 1))

            state.register_hook(clip)
        return state
    items = [bound_gradients(s, bound) for s in state]
    return type(state)(*items) if hasattr(state, "_fields") else tuple(items)


class MemoryCell(nn.Module, metaclass=ABCMeta):
    """One time step of a memory model. ``config`` has ``input_size``, ``output_size`` and
    ``memory_locations``; ``output`` is the final linear layer (its weight gives the device and
    dtype)."""

    config: Any
    output: nn.Linear
    # The keys of :meth:`trace`, in the order pictures show them.
    trace_keys: tuple[str, ...] = ()

    @property
    def min_locations(self) -> int:
        """The fewest memory rows the cell runs with."""
        return 1

    @property
    def has_fused_ops(self) -> bool:
        """Whether the step can run hand-written operators (each with its own backward) in place of
        some of its reference functions; see :meth:`use_reference_equations`."""
        return False

    def use_reference_equations(self, on: bool = True) -> None:
        """Run the step through its reference functions only (``on``), or through its hand-written
        operators where it has them (the default). Both give the same values; the reference is
        what ``ntm bench`` times as the eager baseline."""

    @abstractmethod
    def initial_state(self, batch: int, locations: int | None = None) -> Any:
        """The state a sequence starts from (a named tuple of batch-first tensors), with
        ``locations`` memory rows (``None``: all of them)."""

    @abstractmethod
    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, Any]:
        """One time step: ``x [B, input_size]`` -> ``(logits [B, output_size], state, extras)``;
        ``extras`` is what the step did beyond its state, for traces."""

    @abstractmethod
    def trace(self, state: Any, extras: Any) -> dict[str, torch.Tensor]:
        """What a trace records of one step, each ``[B, ...]``."""

    @abstractmethod
    def memory_dims(self, state: Any) -> list[tuple[torch.Tensor, int]]:
        """Every ``(tensor, dimension)`` of ``state`` whose size is the number of memory rows."""

    @abstractmethod
    def resize_memory(self, locations: int) -> None:
        """Run with ``locations`` (>= N) rows from now on."""

    def forward(self, x: torch.Tensor, state: tuple | None = None) -> tuple[torch.Tensor, tuple]:
        if x.dim() != 2 or x.shape[-1] != self.config.input_size:
            name = type(self).__name__
            raise ValueError(f"{name} input must have shape [batch, {self.config.input_size}], got {list(x.shape)}")
        if state is None:
            state = self.initial_state(x.shape[0])
        y, state, _ = self.step(x, state)
        return y, state


class MemoryModel(nn.Module):
    """A memory model over whole sequences, used like ``torch.nn.LSTM(batch_first=True)``.

    ``forward(x, state=None, lengths=None, return_trace=False, memory_locations=None)``:
        x: ``[B, T, input_size]`` float, of any floating dtype: it is cast to the weights' dtype
        (float32 unless the model was converted, e.g. ``model.double()`` to run in float64, so a
        float64 input to a float32 model runs in float32). state: a state to continue from, or None for the initial
        state (with ``memory_locations`` rows if given). lengths: optional ``[B]`` integer tensor;
        steps at or past a sample's length leave its state unchanged and output zeros, so the
        returned state is each sample's state at its own end. return_trace: also return a dict
        of per-step tensors, each ``[B, T, ...]`` (the cell's ``trace_keys``).
    """

    cell: MemoryCell

    def __init__(self) -> None:
        super().__init__()
        self._compiled_step = None
        self._compiled_steps = None  # the unrolled graph (compile_step's unroll > 1)
        self._unroll = 1
        self._vary_memory = False
        self._state_grad_bound: float | None = None

    @property
    def config(self):
        return self.cell.config

    def compile_step(self, enabled: bool = True, vary_memory: bool = False, unroll: int = 1):
        """Run the training step through ``torch.compile`` (the fast path; see :mod:`ntmkit.engine`).

        The compiled step is used when gradients are being recorded; inference stays eager, where
        large batches already run efficiently. ``vary_memory``: one graph for every memory size
        (for training with ``memory_locations`` drawn per batch). ``unroll``: time steps per call
        of a second, unrolled graph (1: none); it runs sequences without ``lengths`` and without a
        state-gradient bound, ``unroll`` steps at a time, and the one-step graph runs the rest.
        Returns ``self``.
        """
        from ..engine import compile_step, compile_steps

        if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
            raise ValueError(f"unroll must be an integer >= 1 (time steps per compiled call), got {unroll!r}")
        self._compiled_step = compile_step(self.cell, vary_memory) if enabled else None
        self._compiled_steps = compile_steps(self.cell, unroll, vary_memory) if enabled and unroll > 1 else None
        self._unroll = unroll if self._compiled_steps is not None else 1
        self._vary_memory = enabled and vary_memory
        return self

    def bound_state_gradients(self, bound: float | None):
        """In training, bound each sample's gradient reaching the state between time steps to a norm
        of ``bound`` (None: off; see :func:`bound_gradients`). Returns ``self``."""
        if bound is not None and not bound > 0:
            raise ValueError(f"the state-gradient bound must be > 0 (or None: off), got {bound}")
        self._state_grad_bound = bound
        return self

    def initial_state(self, batch: int, locations: int | None = None) -> tuple:
        """See the cell's ``initial_state``."""
        return self.cell.initial_state(batch, locations)

    def resize_memory(self, locations: int):
        """Run with ``locations`` memory rows (see the cell's ``resize_memory``). Returns ``self``."""
        self.cell.resize_memory(locations)
        return self

    def forward(
        self,
        x: torch.Tensor,
        state: tuple | None = None,
        lengths: torch.Tensor | None = None,
        return_trace: bool = False,
        memory_locations: int | None = None,
    ):
        if state is not None and memory_locations is not None:
            raise ValueError("give either state or memory_locations (the size of a fresh initial state), not both")
        check_sequence_input(x, self.config.input_size, lengths)
        device = self.cell.output.weight.device
        if x.device != device:
            raise ValueError(
                f"input is on {x.device} but the model is on {device}: move one of them "
                f"(x.to('{device}') or model.to('{x.device}'))"
            )
        b, t, _ = x.shape
        if state is None:
            state = self.cell.initial_state(b, memory_locations)
        # Time-major and contiguous: every step gets a [B, input] tensor of the same layout,
        # whatever the sequence length (so one compiled graph serves every length).
        xs = x.to(self.cell.output.weight.dtype).transpose(0, 1).clone(memory_format=torch.contiguous_format)
        step = (
            self._compiled_step
            if (self._compiled_step is not None and torch.is_grad_enabled() and not return_trace)
            else self.cell.step
        )
        if step is self._compiled_step and self._vary_memory:
            from ..engine import mark_memory_dynamic

            mark_memory_dynamic(self.cell.memory_dims(state))  # one graph for every memory size
        if lengths is not None:
            lengths = lengths.to(x.device)
        outputs = []
        trace: dict[str, list[torch.Tensor]] = {k: [] for k in self.cell.trace_keys}
        bound = self._state_grad_bound if torch.is_grad_enabled() else None
        start = 0
        if step is self._compiled_step and self._compiled_steps is not None and lengths is None and bound is None:
            start = t - t % self._unroll
            for i in range(0, start, self._unroll):  # whole chunks through the unrolled graph
                ys, state = self._compiled_steps(xs[i : i + self._unroll], state)
                outputs.extend(ys.unbind(0))
            if self._vary_memory and start < t:
                from ..engine import mark_memory_dynamic

                mark_memory_dynamic(self.cell.memory_dims(state))  # the one-step graph's first call
        for i in range(start, t):
            y, new_state, extras = step(xs[i], state)
            if lengths is not None:
                active = lengths > i
                y = y * active.unsqueeze(-1).to(y.dtype)
                new_state = select_state(active, new_state, state)
            state = new_state if bound is None else bound_gradients(new_state, bound)
            outputs.append(y)
            if return_trace:
                for k, v in self.cell.trace(state, extras).items():
                    trace[k].append(v)
        logits = torch.stack(outputs, dim=1) if outputs else x.new_zeros(b, 0, self.config.output_size)
        if return_trace:
            return logits, state, {k: torch.stack(v, dim=1) for k, v in trace.items() if v}
        return logits, state
