"""Controllers: the network that reads the input and the read vectors and drives the heads.

Both controllers share one interface so the NTM never asks which one it has::

    state = controller.initial_state(batch, device, dtype)
    h, state = controller(x, state)      # x: [B, input], h: [B, controller_size]

The state is a tuple of tensors (empty for the feed-forward controller).
"""

from __future__ import annotations

import itertools
from abc import ABCMeta, abstractmethod

import torch
from torch import nn


class Controller(nn.Module, metaclass=ABCMeta):
    """The interface both controllers share."""

    hidden_size: int

    @abstractmethod
    def initial_state(self, batch: int, device=None, dtype=None) -> tuple:
        """The state a sequence starts from, for ``batch`` samples."""


class FeedForwardController(Controller):
    """A stack of tanh layers, the controller of the starting project (3 x 100 by default)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        sizes = [input_size] + [hidden_size] * num_layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.hidden_size = hidden_size

    def initial_state(self, batch: int, device=None, dtype=None) -> tuple:
        return ()

    def forward(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        """x: ``[B, input]`` -> ``[B, hidden]``; the state passes through unchanged."""
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return x, state


class LSTMController(Controller):
    """A stack of LSTM cells, run one step at a time. State: ``(h, c)``, each ``[B, layers, hidden]``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        sizes = [input_size] + [hidden_size] * num_layers
        self.cells = nn.ModuleList(nn.LSTMCell(a, hidden_size) for a in sizes[:-1])
        self.hidden_size = hidden_size
        self.num_layers = num_layers

    def initial_state(self, batch: int, device=None, dtype=None) -> tuple:
        zeros = torch.zeros(batch, self.num_layers, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def forward(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        """x: ``[B, input]`` -> ``[B, hidden]``, state ``(h, c)`` -> ``(h', c')``."""
        h_prev, c_prev = state
        hs, cs = [], []
        for i, cell in enumerate(self.cells):
            h, c = cell(x, (h_prev[:, i], c_prev[:, i]))
            hs.append(h)
            cs.append(c)
            x = h
        return x, (torch.stack(hs, dim=1), torch.stack(cs, dim=1))


CONTROLLERS: dict[str, type[Controller]] = {"feedforward": FeedForwardController, "lstm": LSTMController}


def make_controller(kind: str, input_size: int, hidden_size: int, num_layers: int) -> Controller:
    if kind not in CONTROLLERS:
        raise ValueError(f"unknown controller {kind!r}: choose one of {', '.join(CONTROLLERS)}")
    return CONTROLLERS[kind](input_size, hidden_size, num_layers)
