"""The machine: NTMConfig, NTMCell (one step), NTM (a sequence, shaped like ``nn.LSTM``) and
the LSTM baseline. Small parts first, the whole machine last."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from .controller import CONTROLLERS, make_controller
from .errors import ConfigError
from .memory import HeadOutput, Heads, NTMState

MEMORY_INITS = ("constant", "random")
INIT_WEIGHTINGS = ("random", "focused")


@dataclass
class NTMConfig:
    """Every hyperparameter of the machine, with its default. A checkpoint stores this."""

    input_size: int
    output_size: int
    controller: str = "feedforward"
    controller_size: int = 100
    controller_layers: int = 3
    memory_locations: int = 128
    memory_vector_size: int = 20
    read_heads: int = 1
    write_heads: int = 1
    shift_range: int = 1
    memory_init: str = "constant"  # "constant" (every cell = memory_init_value) or "random"
    memory_init_value: float = 1e-6
    # The initial state ("bias vectors") is learned by default: on the copy task it converges in
    # about a fifth of the updates that a fixed random start needs (see the benchmarks page).
    learn_r_bias: bool = True  # learn the initial read vectors
    learn_w_bias: bool = True  # learn the initial head weightings (kept distributions by a softmax)
    learn_m_bias: bool = True  # learn the initial memory (starting from memory_init)
    # The heads' initial weightings: "focused" (logit init_focus on the first row, 0 elsewhere),
    # which starts every head on row 0 in any memory size, or "random" (random logits). Measured
    # on copy: focused starts learn in all 5 seeds and generalise further (benchmarks page).
    init_weighting: str = "focused"
    init_focus: float = 5.0
    # Initial bias of every head's interpolation gate (eq. 7): negative values start the heads
    # favouring location-based moves over content lookups (sigmoid(-2) = 0.12).
    gate_bias: float = -2.0

    def __post_init__(self):
        for name in (
            "input_size",
            "output_size",
            "controller_size",
            "controller_layers",
            "memory_locations",
            "memory_vector_size",
            "read_heads",
            "write_heads",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.shift_range, bool) or not isinstance(self.shift_range, int) or self.shift_range < 0:
            raise ConfigError(f"shift_range must be an integer >= 0, got {self.shift_range!r}")
        if 2 * self.shift_range + 1 > self.memory_locations:
            raise ConfigError(
                f"the shift window ({2 * self.shift_range + 1}) is wider than the memory "
                f"({self.memory_locations} locations): use a smaller shift range"
            )
        if self.controller not in CONTROLLERS:
            raise ConfigError(f"controller must be one of {', '.join(CONTROLLERS)}, got {self.controller!r}")
        if self.memory_init not in MEMORY_INITS:
            raise ConfigError(f"memory_init must be one of {', '.join(MEMORY_INITS)}, got {self.memory_init!r}")
        if self.init_weighting not in INIT_WEIGHTINGS:
            raise ConfigError(
                f"init_weighting must be one of {', '.join(INIT_WEIGHTINGS)}, got {self.init_weighting!r}"
            )
        for name in ("init_focus", "gate_bias"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> NTMConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown model settings {sorted(unknown)}")
        return cls(**d)


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


class NTMCell(nn.Module):
    """One time step of the Neural Turing Machine, for people who loop themselves.

    ``forward(x, state)`` takes ``x: [B, input_size]`` and returns
    ``(logits [B, output_size], NTMState)``. ``state=None`` starts from the initial state.
    """

    # The initial state: parameters when learned, buffers otherwise (see _init_tensor).
    init_memory: torch.Tensor  # [N, M]
    init_read_logits: torch.Tensor  # [R, N]
    init_write_logits: torch.Tensor  # [W, N]
    init_reads: torch.Tensor  # [R, M]

    def __init__(self, config: NTMConfig):
        super().__init__()
        self.config = c = config
        read_size = c.read_heads * c.memory_vector_size
        self.controller = make_controller(
            c.controller, c.input_size + read_size, c.controller_size, c.controller_layers
        )
        self.heads = Heads(
            c.controller_size, c.read_heads, c.write_heads, c.memory_vector_size, c.shift_range, c.gate_bias
        )
        self.output = nn.Linear(c.controller_size + read_size, c.output_size)

        # Initial state ("bias vectors"). Weightings are stored as logits and pass through a
        # softmax, so a learned initial weighting stays a distribution. Random, non-uniform
        # starting weightings break the symmetry of a constant memory.
        n, m = c.memory_locations, c.memory_vector_size
        if c.memory_init == "constant":
            memory = torch.full((n, m), c.memory_init_value)
        else:
            memory = torch.empty(n, m).uniform_(-1.0, 1.0) / math.sqrt(m)
        self._init_tensor("init_memory", memory, c.learn_m_bias)
        self._init_tensor("init_read_logits", self._initial_logits(c.read_heads), c.learn_w_bias)
        self._init_tensor("init_write_logits", self._initial_logits(c.write_heads), c.learn_w_bias)
        self._init_tensor("init_reads", torch.randn(c.read_heads, m) * 0.01, c.learn_r_bias)

    def _initial_logits(self, heads: int) -> torch.Tensor:
        """``[heads, N]`` logits of the initial weightings (see ``NTMConfig.init_weighting``)."""
        c = self.config
        if c.init_weighting == "random":
            return torch.randn(heads, c.memory_locations)
        logits = torch.zeros(heads, c.memory_locations)
        logits[:, 0] = c.init_focus
        return logits

    def _init_tensor(self, name: str, value: torch.Tensor, learned: bool) -> None:
        if learned:
            self.register_parameter(name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    @torch.no_grad()
    def resize_memory(self, locations: int) -> None:
        """Give the machine ``locations`` memory rows instead of N, for longer sequences at test time.

        Addressing does not depend on N, so a machine trained with 128 rows can run with more. The
        old rows keep their initial contents and initial weightings; new rows start as the
        constant memory (or, for a learned or random memory, as the mean of the old rows) and
        get zero initial weighting.
        """
        c = self.config
        n = c.memory_locations
        if locations < n:
            raise ValueError(f"memory can only grow: the model has {n} locations, {locations} asked for")
        if locations == n:
            return
        extra = locations - n
        if c.memory_init == "constant" and not c.learn_m_bias:
            new_rows = torch.full((extra, c.memory_vector_size), c.memory_init_value)
        else:
            new_rows = self.init_memory.mean(0, keepdim=True).expand(extra, -1)
        for name, value in (
            ("init_memory", torch.cat([self.init_memory, new_rows.to(self.init_memory)])),
            ("init_read_logits", self._pad_logits(self.init_read_logits, extra)),
            ("init_write_logits", self._pad_logits(self.init_write_logits, extra)),
        ):
            learned = isinstance(getattr(self, name), nn.Parameter)
            delattr(self, name)
            self._init_tensor(name, value, learned)
        self.config = dataclasses.replace(c, memory_locations=locations)

    @staticmethod
    def _pad_logits(logits: torch.Tensor, extra: int) -> torch.Tensor:
        # exp(-60) relative to the smallest old weight: the softmax over the old rows is unchanged
        pad = logits.min(dim=-1, keepdim=True).values - 60.0
        return torch.cat([logits, pad.expand(-1, extra)], dim=-1)

    def initial_state(self, batch: int, locations: int | None = None) -> NTMState:
        """The state every sequence starts from, expanded to ``batch`` samples.

        ``locations`` (``n <= N``) starts from a smaller memory: the first ``n`` rows of the
        initial memory, and the initial weightings renormalised over those rows. Addressing does
        not depend on the number of rows, so the same machine runs in either; training over
        several sizes (``TrainConfig.memory_sizes``) teaches it to use only the rows it needs.
        """
        dev, dt = self.output.weight.device, self.output.weight.dtype
        n = self.config.memory_locations
        if locations is None:
            locations = n
        if isinstance(locations, bool) or not isinstance(locations, int) or not 1 <= locations <= n:
            raise ValueError(
                f"locations must be an integer in [1, {n}] (the model's memory), got {locations!r}: "
                f"use resize_memory() to run with a larger memory"
            )
        if 2 * self.config.shift_range + 1 > locations:
            raise ValueError(
                f"locations={locations} is narrower than the shift window "
                f"({2 * self.config.shift_range + 1}): use at least that many rows"
            )
        # Contiguous copies, so every step sees tensors of the same layout (one compiled graph).
        return NTMState(
            memory=self.init_memory[:locations].expand(batch, -1, -1).contiguous(),
            read_weights=torch.softmax(self.init_read_logits[:, :locations], dim=-1).expand(batch, -1, -1).contiguous(),
            write_weights=torch.softmax(self.init_write_logits[:, :locations], dim=-1)
            .expand(batch, -1, -1)
            .contiguous(),
            read_vectors=self.init_reads.expand(batch, -1, -1).contiguous(),
            controller=self.controller.initial_state(batch, dev, dt),
        )

    def step(self, x: torch.Tensor, state: NTMState) -> tuple[torch.Tensor, NTMState, HeadOutput]:
        """The one implementation of a time step; returns what the heads did as well."""
        b = x.shape[0]
        h, ctrl = self.controller(torch.cat([x, state.read_vectors.reshape(b, -1)], dim=-1), state.controller)
        memory, read_w, write_w, reads, heads = self.heads(h, state.memory, state.read_weights, state.write_weights)
        y = self.output(torch.cat([h, reads.reshape(b, -1)], dim=-1))
        return y, NTMState(memory, read_w, write_w, reads, ctrl), heads

    def forward(self, x: torch.Tensor, state: NTMState | None = None) -> tuple[torch.Tensor, NTMState]:
        if x.dim() != 2 or x.shape[-1] != self.config.input_size:
            raise ValueError(f"NTMCell input must have shape [batch, {self.config.input_size}], got {list(x.shape)}")
        if state is None:
            state = self.initial_state(x.shape[0])
        y, state, _ = self.step(x, state)
        return y, state


def _select_state(active: torch.Tensor, new, old):
    """Per sample, keep ``new`` where ``active`` ([B] bool) and ``old`` elsewhere.

    Works on nested tuples of batch-first tensors (the NTMState and the controller's state)."""
    if isinstance(new, torch.Tensor):
        return torch.where(active.view([-1] + [1] * (new.dim() - 1)), new, old)
    items = [_select_state(active, n, o) for n, o in zip(new, old)]
    return type(new)(*items) if hasattr(new, "_fields") else tuple(items)


class NTM(nn.Module):
    """A Neural Turing Machine over whole sequences, used like ``torch.nn.LSTM(batch_first=True)``.

    Example::

        ntm = NTM(9, 8)                       # copy task: 8 bits + delimiter in, 8 bits out
        logits, state = ntm(x)                # x: [batch, time, 9] -> logits: [batch, time, 8]

    ``forward(x, state=None, lengths=None, return_trace=False, memory_locations=None)``:
        x: ``[B, T, input_size]`` float. state: an :class:`NTMState` to continue from, or None
        for the initial state (with ``memory_locations`` rows if given, see
        :meth:`NTMCell.initial_state`). lengths: optional ``[B]`` integer tensor; steps at or past a
        sample's length leave its state unchanged and output zeros, so the returned state is
        each sample's state at its own end. return_trace: also return a dict of per-step
        tensors, each ``[B, T, ...]``: ``read_weights``, ``write_weights``, ``erase``, ``add``,
        ``read_vectors`` and ``memory``.
    """

    def __init__(self, input_size: int, output_size: int, **kwargs):
        super().__init__()
        self.config = NTMConfig(input_size, output_size, **kwargs)
        self.cell = NTMCell(self.config)
        self._compiled_step = None
        self._vary_memory = False

    def compile_step(self, enabled: bool = True, vary_memory: bool = False) -> NTM:
        """Run the training step through ``torch.compile`` (the fast path; see :mod:`ntmkit.engine`).

        The compiled step is used when gradients are being recorded; inference stays eager, where
        large batches already run efficiently. ``vary_memory``: one graph for every memory size
        (for training with ``memory_locations`` drawn per batch). Returns ``self``.
        """
        from .engine import compile_step

        self._compiled_step = compile_step(self.cell, vary_memory) if enabled else None
        self._vary_memory = enabled and vary_memory
        return self

    @classmethod
    def from_config(cls, config: NTMConfig) -> NTM:
        d = config.to_dict()
        return cls(d.pop("input_size"), d.pop("output_size"), **d)

    def initial_state(self, batch: int, locations: int | None = None) -> NTMState:
        """See :meth:`NTMCell.initial_state`."""
        return self.cell.initial_state(batch, locations)

    def resize_memory(self, locations: int) -> NTM:
        """Run with ``locations`` memory rows (see :meth:`NTMCell.resize_memory`). Returns ``self``."""
        self.cell.resize_memory(locations)
        self.config = self.cell.config
        return self

    def forward(
        self,
        x: torch.Tensor,
        state: NTMState | None = None,
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
            from .engine import mark_memory_dynamic

            mark_memory_dynamic(state)  # one graph for every memory size (once per sequence)
        if lengths is not None:
            lengths = lengths.to(x.device)
        outputs = []
        trace: dict[str, list[torch.Tensor]] = {
            k: [] for k in ("read_weights", "write_weights", "erase", "add", "read_vectors", "memory")
        }
        for i in range(t):
            y, new_state, heads = step(xs[i], state)
            if lengths is not None:
                active = lengths > i
                y = y * active.unsqueeze(-1).to(y.dtype)
                new_state = _select_state(active, new_state, state)
            state = new_state
            outputs.append(y)
            if return_trace:
                for k in ("read_weights", "write_weights", "read_vectors", "memory"):
                    trace[k].append(getattr(state, k))
                trace["erase"].append(heads.erase)
                trace["add"].append(heads.add)
        logits = torch.stack(outputs, dim=1) if outputs else x.new_zeros(b, 0, self.config.output_size)
        if return_trace:
            return logits, state, {k: torch.stack(v, dim=1) for k, v in trace.items() if v}
        return logits, state


@dataclass
class LSTMConfig:
    """The LSTM baseline's settings. A checkpoint stores this."""

    input_size: int
    output_size: int
    hidden_size: int = 256
    num_layers: int = 3

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LSTMConfig:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown LSTM baseline settings {sorted(unknown)}")
        return cls(**d)


class LSTMBaseline(nn.Module):
    """A stacked LSTM with no memory, with the same interface as :class:`NTM`."""

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 256, num_layers: int = 3):
        super().__init__()
        self.config = LSTMConfig(input_size, output_size, hidden_size, num_layers)
        self.input_size, self.output_size = input_size, output_size
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor, state=None, lengths: torch.Tensor | None = None, return_trace: bool = False):
        """As :meth:`NTM.forward`: with ``lengths``, outputs past a sample's length are zero and the
        returned ``(h, c)`` is each sample's state at its own length (the initial state for length 0)."""
        check_sequence_input(x, self.input_size, lengths)
        if lengths is None:
            h, state = self.lstm(x, state)
            y = self.output(h)
            return (y, state, {}) if return_trace else (y, state)
        b, t, _ = x.shape
        lengths = lengths.to(x.device)
        if state is None:
            zeros = x.new_zeros(self.lstm.num_layers, b, self.lstm.hidden_size)
            state = (zeros, zeros)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False
        )
        h, (hn, cn) = self.lstm(packed, state)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=t)
        y = self.output(h) * (torch.arange(t, device=x.device) < lengths.unsqueeze(1)).unsqueeze(-1)
        empty = (lengths == 0).view(1, -1, 1)  # no step taken: the state stays the initial one
        new_state = (torch.where(empty, state[0], hn), torch.where(empty, state[1], cn))
        return (y, new_state, {}) if return_trace else (y, new_state)

    @classmethod
    def from_config(cls, config: LSTMConfig) -> LSTMBaseline:
        return cls(**config.to_dict())
