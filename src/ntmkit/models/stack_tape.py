"""Two recurrent networks with a structured memory, the best models of Delétang et al. (ICLR 2023):

- the **Stack-RNN** (Joulin & Mikolov 2015): an RNN that reads the top of a differentiable stack and
  mixes three actions on it, push, pop and no-op, with the weights of a softmax;
- the **Tape-RNN** (Delétang et al. 2023): an RNN that reads the cell under a head on a tape and mixes
  five actions: write and stay, write and move left, write and move right, jump left and jump right
  (by the input's length, so the head can go back to where the input began).

The memory updates are the pure functions below; the models compose them with a tanh RNN
controller (or an LSTM) and have the interface of the other models (``forward(x, state=None,
lengths=None, return_trace=False) -> (y, state)``). The stack holds a cell per time step of the
sequence and one more, the circular tape twice that, so their size follows the input, as the NTM's
memory does when it is enlarged for long sequences.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from ..errors import ConfigError
from .config import ModelConfig, check_positive_ints
from .sequence import check_sequence_input

STACK_ACTIONS = ("push", "pop", "no-op")
TAPE_ACTIONS = ("write-stay", "write-left", "write-right", "jump-left", "jump-right")


def stack_update(stack: torch.Tensor, actions: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """One step of the differentiable stack (Joulin & Mikolov 2015, eq. 3-5).

    stack ``[B, D, C]`` (cell 0 is the top); actions ``[B, 3]`` the weights of push, pop and no-op
    (summing to 1); value ``[B, C]`` the cell pushed. Returns the new stack ``[B, D, C]``:
    ``s'[0] = a_push v + a_pop s[1] + a_noop s[0]`` and
    ``s'[i] = a_push s[i-1] + a_pop s[i+1] + a_noop s[i]``; the cell below the bottom is zero."""
    pushed = torch.cat([value.unsqueeze(1), stack[:, :-1]], dim=1)
    popped = torch.cat([stack[:, 1:], torch.zeros_like(stack[:, :1])], dim=1)
    a = actions.unsqueeze(-1).unsqueeze(-1)  # [B, 3, 1, 1]
    return a[:, 0] * pushed + a[:, 1] * popped + a[:, 2] * stack


def roll_tape(tape: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """The tape ``[B, D, C]`` (cell 0 under the head) after the head moves ``shift`` ``[B]`` cells to
    the right (negative: to the left) on the circular tape: ``new[i] = tape[(i + shift) mod D]``."""
    d = tape.shape[1]
    index = (torch.arange(d, device=tape.device).unsqueeze(0) + shift.unsqueeze(1)) % d  # [B, D]
    return tape.gather(1, index.unsqueeze(-1).expand(-1, -1, tape.shape[2]))


def tape_update(tape: torch.Tensor, actions: torch.Tensor, value: torch.Tensor, jump: torch.Tensor) -> torch.Tensor:
    """One step of the Tape-RNN's tape (Delétang et al. 2023).

    tape ``[B, D, C]`` (cell 0 under the head); actions ``[B, 5]`` the weights of write-stay,
    write-left, write-right, jump-left and jump-right; value ``[B, C]`` the cell written; jump ``[B]``
    the jump's length (the input's length). A write puts ``value`` under the head, then the head
    stays or moves one cell; a jump moves the head ``jump`` cells and writes nothing. Returns the
    mixture of the five tapes, ``[B, D, C]``."""
    b = tape.shape[0]
    written = torch.cat([value.unsqueeze(1), tape[:, 1:]], dim=1)
    one = torch.ones(b, dtype=torch.long, device=tape.device)
    moved = (
        written,
        roll_tape(written, -one),
        roll_tape(written, one),
        roll_tape(tape, -jump),
        roll_tape(tape, jump),
    )
    return sum(actions[:, k].view(b, 1, 1) * t for k, t in enumerate(moved))  # type: ignore[return-value]


@dataclass
class StructuredRNNConfig(ModelConfig):
    """Settings of a Stack-RNN or Tape-RNN. A checkpoint stores this."""

    input_size: int
    output_size: int
    hidden_size: int = 256
    cell_size: int = 8  # the width of a stack or tape cell
    controller: str = "rnn"  # "rnn" (tanh, as in the paper) or "lstm"
    # Tape-RNN: the input channel whose first 1 ends the input (its step is the jump's length);
    # -1: the last channel (the token tasks' answer channel); None: jump by the sequence's length.
    jump_channel: int | None = -1

    settings_name = "Stack-RNN / Tape-RNN settings"

    def __post_init__(self):
        check_positive_ints(self, ("input_size", "output_size", "hidden_size", "cell_size"))
        if self.controller not in ("rnn", "lstm"):
            raise ConfigError(f"controller must be 'rnn' or 'lstm', got {self.controller!r}")


class StructuredState(NamedTuple):
    """What one time step carries to the next: the memory ``[B, D, C]`` (a stack or a tape) and the
    controller's state (``h`` for the RNN, ``(h, c)`` for the LSTM)."""

    memory: torch.Tensor
    controller: tuple[torch.Tensor, ...]


class _StructuredRNN(nn.Module, ABC):
    """The shared loop: the controller reads the input and memory cell 0, then updates the memory
    (each model's update: :meth:`_memory_step`)."""

    actions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: StructuredRNNConfig):
        super().__init__()
        self.config = config
        c = config
        width = c.input_size + c.cell_size
        self.core: nn.Module = (
            nn.RNNCell(width, c.hidden_size) if c.controller == "rnn" else nn.LSTMCell(width, c.hidden_size)
        )
        self.action = nn.Linear(c.hidden_size, len(self.actions))
        self.value = nn.Linear(c.hidden_size, c.cell_size)
        self.output = nn.Linear(c.hidden_size, c.output_size)

    @classmethod
    def from_config(cls, config: StructuredRNNConfig):
        return cls(config)

    def initial_state(self, batch: int, cells: int, like: torch.Tensor) -> StructuredState:
        memory = like.new_zeros(batch, cells, self.config.cell_size)
        h = like.new_zeros(batch, self.config.hidden_size)
        return StructuredState(memory, (h,) if self.config.controller == "rnn" else (h, h.clone()))

    def cells(self, steps: int) -> int:
        """Cells of memory for a sequence of ``steps`` time steps."""
        return steps + 1

    @abstractmethod
    def _memory_step(self, memory, actions, value, context) -> torch.Tensor:
        """The memory after one step: :func:`stack_update` or :func:`tape_update`."""

    def _context(self, x: torch.Tensor) -> torch.Tensor | None:
        return None

    def forward(self, x: torch.Tensor, state=None, lengths: torch.Tensor | None = None, return_trace: bool = False):
        """x ``[B, T, input_size]`` -> logits ``[B, T, output_size]`` and the state after the last
        step (with ``lengths``, each sample's state at its own length; outputs past it are zero).
        ``return_trace`` adds ``{"actions": [B, T, A], "read": [B, T, C]}`` (the actions' weights and
        the cell read at each step)."""
        check_sequence_input(x, self.config.input_size, lengths)
        x = x.to(self.output.weight.dtype)
        b, t, _ = x.shape
        if state is None:
            state = self.initial_state(b, self.cells(t), x)
        memory, ctrl = state
        context = self._context(x)
        ys, trace, reads = [], [], []
        for step in range(t):
            read = memory[:, 0]
            inp = torch.cat([x[:, step], read], dim=-1)
            new_ctrl = (self.core(inp, ctrl[0]),) if len(ctrl) == 1 else self.core(inp, ctrl)
            h = new_ctrl[0]
            actions = torch.softmax(self.action(h), dim=-1)
            new_memory = self._memory_step(memory, actions, torch.tanh(self.value(h)), context)
            y = self.output(h)
            if lengths is not None:
                active = (step < lengths.to(x.device)).view(b, 1)
                new_memory = torch.where(active.unsqueeze(-1), new_memory, memory)
                new_ctrl = tuple(torch.where(active, n, o) for n, o in zip(new_ctrl, ctrl))
                y = y * active
            memory, ctrl = new_memory, tuple(new_ctrl)
            ys.append(y)
            trace.append(actions)
            reads.append(read)
        y = torch.stack(ys, dim=1) if ys else x.new_zeros(b, 0, self.config.output_size)
        out_state = StructuredState(memory, ctrl)
        if return_trace:
            actions_trace = torch.stack(trace, dim=1) if trace else x.new_zeros(b, 0, len(self.actions))
            read_trace = torch.stack(reads, dim=1) if reads else x.new_zeros(b, 0, self.config.cell_size)
            return y, out_state, {"actions": actions_trace, "read": read_trace}
        return y, out_state


class StackRNN(_StructuredRNN):
    """The Stack-RNN (Joulin & Mikolov 2015): see :func:`stack_update`."""

    actions = STACK_ACTIONS

    def _memory_step(self, memory, actions, value, context):
        return stack_update(memory, actions, value)


class TapeRNN(_StructuredRNN):
    """The Tape-RNN (Delétang et al. 2023): see :func:`tape_update`. Its jumps are as long as the
    input: the step at which ``jump_channel`` first holds a 1 (the answer channel of the token
    tasks), or the whole sequence where it never does."""

    actions = TAPE_ACTIONS

    def cells(self, steps: int) -> int:
        return 2 * steps + 1  # the head can go ``steps`` cells either way without wrapping round

    def _context(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        channel = self.config.jump_channel
        if channel is None:
            return torch.full((b,), t, dtype=torch.long, device=x.device)
        marked = x[:, :, channel] > 0.5  # [B, T]
        first = torch.where(marked.any(1), marked.float().argmax(1), torch.full((b,), t, device=x.device))
        return first.long()

    def _memory_step(self, memory, actions, value, context):
        return tape_update(memory, actions, value, context)
