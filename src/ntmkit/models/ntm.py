"""The Neural Turing Machine: NTMConfig, NTMCell (one step) and NTM (a sequence, shaped like
``nn.LSTM``). Small parts first, the whole machine last. Its equations are in
:mod:`ntmkit.models.ntm_addressing`, its heads in :mod:`ntmkit.models.ntm_heads`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError
from .config import ModelConfig, check_positive_ints
from .controller import CONTROLLERS, make_controller
from .ntm_heads import HEAD_VECTORS, HeadOutput, Heads, NTMState
from .sequence import MemoryCell, MemoryModel

MEMORY_INITS = ("constant", "random")
# The sizes a memory model's config checks are positive integers (the DNC's write_heads must be 1).
POSITIVE = (
    "input_size",
    "output_size",
    "controller_size",
    "controller_layers",
    "memory_locations",
    "memory_vector_size",
    "read_heads",
    "write_heads",
)
INIT_WEIGHTINGS = ("random", "focused")


@dataclass
class NTMConfig(ModelConfig):
    """Every hyperparameter of the machine, with its default. A checkpoint stores this."""

    input_size: int
    output_size: int
    controller: str = "feedforward"
    controller_size: int = 100
    controller_layers: int = 0  # 0: derived from the controller, 3 feed-forward layers or 1 LSTM layer
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
    # Initial bias of every head's logit for a shift of one row forward (eq. 8's +1 entry), the
    # other shift logits' biases set to 0: positive values start the heads as a tape that moves
    # one row per step (softmax([0, 0, 3]) puts 0.91 on +1); 0 leaves the default random biases.
    shift_bias: float = 0.0
    # When the read heads read: False (the paper's order, eq. 2-4) reads the memory after this
    # step's write, so a read can see the current input's own row; True reads it before the write
    # (the previous step's memory), as some public implementations do.
    read_before_write: bool = False
    # The heads' key and add vectors: "tanh" bounds them to (-1, 1), the advice of the field's
    # implementations; "linear" leaves them unbounded, as the paper states no range for them.
    # Measured on feed-forward recall at batch 1: with "linear" one seed of two blew up and
    # went back to chance (results page, recall attempt 16).
    head_vectors: str = "tanh"

    def __post_init__(self):
        if self.controller_layers == 0 and not isinstance(self.controller_layers, bool):
            self.controller_layers = 3 if self.controller == "feedforward" else 1
        check_positive_ints(self, POSITIVE)
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
        if self.head_vectors not in HEAD_VECTORS:
            raise ConfigError(f"head_vectors must be one of {', '.join(HEAD_VECTORS)}, got {self.head_vectors!r}")
        if self.init_weighting not in INIT_WEIGHTINGS:
            raise ConfigError(
                f"init_weighting must be one of {', '.join(INIT_WEIGHTINGS)}, got {self.init_weighting!r}"
            )
        for name in ("init_focus", "gate_bias", "shift_bias"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")

    def state_floats(self) -> int:
        """Floats of state per sample and time step that grow with the memory (kept for backward)."""
        return self.memory_locations * self.memory_vector_size


class NTMCell(MemoryCell):
    """One time step of the Neural Turing Machine, for people who loop themselves.

    ``forward(x, state)`` takes ``x: [B, input_size]`` and returns
    ``(logits [B, output_size], NTMState)``. ``state=None`` starts from the initial state.
    """

    trace_keys = ("read_weights", "write_weights", "erase", "add", "read_vectors", "memory")
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
            c.controller_size,
            c.read_heads,
            c.write_heads,
            c.memory_vector_size,
            c.shift_range,
            c.gate_bias,
            c.head_vectors,
            c.shift_bias,
            c.read_before_write,
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
        h, ctrl = self.controller(torch.cat([x, state.read_vectors.flatten(1)], dim=-1), state.controller)
        memory, read_w, write_w, reads, heads = self.heads(h, state.memory, state.read_weights, state.write_weights)
        y = self.output(torch.cat([h, reads.flatten(1)], dim=-1))
        return y, NTMState(memory, read_w, write_w, reads, ctrl), heads

    def trace(self, state: NTMState, extras: HeadOutput) -> dict[str, torch.Tensor]:
        return {
            "read_weights": state.read_weights,
            "write_weights": state.write_weights,
            "erase": extras.erase,
            "add": extras.add,
            "read_vectors": state.read_vectors,
            "memory": state.memory,
        }

    @property
    def min_locations(self) -> int:
        return 2 * self.config.shift_range + 1  # the shift window

    def memory_dims(self, state: NTMState) -> list[tuple[torch.Tensor, int]]:
        return [(state.memory, 1), (state.read_weights, 2), (state.write_weights, 2)]


class NTM(MemoryModel):
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
        self.cell = NTMCell(NTMConfig(input_size, output_size, **kwargs))

    @classmethod
    def from_config(cls, config: NTMConfig) -> NTM:
        d = config.to_dict()
        return cls(d.pop("input_size"), d.pop("output_size"), **d)
