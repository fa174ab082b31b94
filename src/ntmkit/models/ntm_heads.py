"""The memory state and the heads that address it.

One linear layer turns the controller's output into every head's parameters at once; the
parameters go through bounded activations and then through the pure functions of
:mod:`ntmkit.models.ntm_addressing`. Read and write heads are two tensor dimensions, never loops.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import ntm_addressing as addressing


class NTMState(NamedTuple):
    """What one time step carries to the next.

    memory: ``[B, N, M]``; read_weights: ``[B, R, N]``; write_weights: ``[B, W, N]``;
    read_vectors: ``[B, R, M]``; controller: the controller's own tuple of tensors.
    """

    memory: torch.Tensor
    read_weights: torch.Tensor
    write_weights: torch.Tensor
    read_vectors: torch.Tensor
    controller: tuple


class HeadOutput(NamedTuple):
    """Head activity in one step, beyond what the state holds (for traces and pictures).

    erase: ``[B, W, M]``; add: ``[B, W, M]``.
    """

    erase: torch.Tensor
    add: torch.Tensor


def head_param_sizes(memory_vector_size: int, shift_range: int, write: bool) -> list[int]:
    """Sizes of one head's parameters, in order: key, beta, gate, shift, gamma (+ erase, add)."""
    m, s = memory_vector_size, 2 * shift_range + 1
    return [m, 1, 1, s, 1] + ([m, m] if write else [])


HEAD_VECTORS = ("tanh", "linear")


def head_activations(raw: torch.Tensor, memory_vector_size: int, shift_range: int, write: bool, vectors: str = "tanh"):
    """Turn raw projections into head parameters with the ranges the paper requires.

    Args:
        raw: ``[B, H, P]`` with P = sum(head_param_sizes(...)).
        vectors: ``"tanh"`` bounds the key and add vectors to (-1, 1); ``"linear"`` leaves them
            unbounded (the paper gives them no range; cosine similarity ignores a key's scale).

    Returns:
        key ``[B, H, M]`` in (-1, 1) (any real with ``"linear"``); beta ``[B, H]`` >= 0;
        gate ``[B, H]`` in (0, 1); shift ``[B, H, S]`` a distribution; gamma ``[B, H]`` >= 1;
        and for write heads erase ``[B, H, M]`` in (0, 1) and add ``[B, H, M]`` in (-1, 1)
        (any real with ``"linear"``).
    """
    parts = torch.split(raw, head_param_sizes(memory_vector_size, shift_range, write), dim=-1)
    bound = torch.tanh if vectors == "tanh" else _identity
    key = bound(parts[0])
    beta = F.softplus(parts[1]).squeeze(-1)
    gate = torch.sigmoid(parts[2]).squeeze(-1)
    shift = torch.softmax(parts[3], dim=-1)
    gamma = 1.0 + F.softplus(parts[4]).squeeze(-1)
    if not write:
        return key, beta, gate, shift, gamma
    return key, beta, gate, shift, gamma, torch.sigmoid(parts[5]), bound(parts[6])


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class Heads(nn.Module):
    """All read and write heads of one NTM, driven from one projection of the controller output."""

    def __init__(
        self,
        controller_size: int,
        read_heads: int,
        write_heads: int,
        memory_vector_size: int,
        shift_range: int,
        gate_bias: float = 0.0,
        vectors: str = "tanh",
        shift_bias: float = 0.0,
        read_before_write: bool = False,
    ):
        super().__init__()
        self.read_before_write = read_before_write
        if vectors not in HEAD_VECTORS:
            raise ValueError(f"vectors must be one of {', '.join(HEAD_VECTORS)}, got {vectors!r}")
        self.vectors = vectors
        self.read_heads, self.write_heads = read_heads, write_heads
        self.memory_vector_size, self.shift_range = memory_vector_size, shift_range
        self.read_size = sum(head_param_sizes(memory_vector_size, shift_range, write=False))
        self.write_size = sum(head_param_sizes(memory_vector_size, shift_range, write=True))
        self.projection = nn.Linear(controller_size, read_heads * self.read_size + write_heads * self.write_size)
        if gate_bias:
            with torch.no_grad():
                self.projection.bias[self.gate_columns()] = gate_bias
        if shift_bias:  # shift logits biased 0 everywhere but shift_bias on +1
            shifts = self.gate_columns()[:, None] + 1 + torch.arange(2 * shift_range + 1)
            with torch.no_grad():
                self.projection.bias[shifts] = 0.0
                self.projection.bias[shifts[:, -shift_range]] = shift_bias

    def gate_columns(self) -> torch.Tensor:
        """Columns of the projection that hold each head's interpolation gate (eq. 7)."""
        gate = self.memory_vector_size + 1  # after the key (M) and beta (1)
        write = [h * self.write_size + gate for h in range(self.write_heads)]
        start = self.write_heads * self.write_size
        read = [start + h * self.read_size + gate for h in range(self.read_heads)]
        return torch.tensor(write + read)

    def forward(self, h: torch.Tensor, memory: torch.Tensor, read_w: torch.Tensor, write_w: torch.Tensor):
        """One step of the heads: write (eq. 3-4) then read (eq. 2) the written memory.

        With ``read_before_write`` the read heads address and read the memory as it was before this
        step's write (``M_{t-1}``), and the write follows.

        Args:
            h: ``[B, controller_size]``; memory: ``[B, N, M]``; read_w: ``[B, R, N]``;
            write_w: ``[B, W, N]`` (the previous step's weightings).

        Returns:
            memory ``[B, N, M]``, read_w ``[B, R, N]``, write_w ``[B, W, N]``,
            reads ``[B, R, M]``, and a :class:`HeadOutput`.
        """
        b = h.shape[0]
        m, r = self.memory_vector_size, self.shift_range
        raw = self.projection(h)
        raw_w, raw_r = raw.split([self.write_heads * self.write_size, self.read_heads * self.read_size], dim=-1)

        if self.read_before_write:
            read_w, reads = self._read(raw_r, memory, read_w)
        key, beta, gate, shift, gamma, erase, add = head_activations(
            raw_w.view(b, self.write_heads, self.write_size), m, r, write=True, vectors=self.vectors
        )
        write_w = addressing.address(memory, write_w, key, beta, gate, shift, gamma)
        memory = addressing.write(memory, write_w, erase, add)
        if not self.read_before_write:
            read_w, reads = self._read(raw_r, memory, read_w)
        return memory, read_w, write_w, reads, HeadOutput(erase, add)

    def _read(self, raw_r: torch.Tensor, memory: torch.Tensor, read_w: torch.Tensor):
        """The read heads' weightings ``[B, R, N]`` (eq. 5-9) and read vectors ``[B, R, M]`` (eq. 2)."""
        key, beta, gate, shift, gamma = head_activations(
            raw_r.view(raw_r.shape[0], self.read_heads, self.read_size),
            self.memory_vector_size,
            self.shift_range,
            write=False,
            vectors=self.vectors,
        )
        read_w = addressing.address(memory, read_w, key, beta, gate, shift, gamma)
        return read_w, addressing.read(memory, read_w)
