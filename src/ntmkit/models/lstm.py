"""The LSTM baseline: a stacked LSTM with no memory, with the memory models' interface."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelConfig
from .sequence import check_sequence_input


@dataclass
class LSTMConfig(ModelConfig):
    """The LSTM baseline's settings. A checkpoint stores this."""

    input_size: int
    output_size: int
    hidden_size: int = 256
    num_layers: int = 3

    settings_name = "LSTM baseline settings"


class LSTMBaseline(nn.Module):
    """A stacked LSTM with no memory, with the same interface as the memory models."""

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 256, num_layers: int = 3):
        super().__init__()
        self.config = LSTMConfig(input_size, output_size, hidden_size, num_layers)
        self.input_size, self.output_size = input_size, output_size
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x: torch.Tensor, state=None, lengths: torch.Tensor | None = None, return_trace: bool = False):
        """As :meth:`ntmkit.models.sequence.MemoryModel.forward`: with ``lengths``, outputs past a
        sample's length are zero and the returned ``(h, c)`` is each sample's state at its own
        length (the initial state for length 0)."""
        check_sequence_input(x, self.input_size, lengths)
        if x.shape[1] == 0:  # no time step (nn.LSTM refuses one): no output, the state unchanged
            if state is None:
                zeros = x.new_zeros(self.lstm.num_layers, x.shape[0], self.lstm.hidden_size)
                state = (zeros, zeros)
            y = x.new_zeros(x.shape[0], 0, self.output_size)
            return (y, state, {}) if return_trace else (y, state)
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
