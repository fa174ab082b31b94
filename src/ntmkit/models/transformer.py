"""A Transformer encoder with causal self-attention, the attention model of Delétang et al. (ICLR
2023)'s comparison, with two position schemes as pure functions: sin/cos encodings added to the
inputs (Vaswani et al. 2017) and rotary embeddings of the queries and keys (Su et al. 2021, RoPE,
a relative scheme: a query-key score depends only on the two positions' difference).

Causal: step t attends to steps <= t, so padding after a sample's end changes nothing before it,
and the model reads a sequence like the recurrent models do. It has no memory between calls: the
state it returns is None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .config import ModelConfig, check_positive_ints
from .sequence import check_sequence_input

POSITIONS = ("sincos", "rope")


def sincos_encoding(steps: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The sin/cos position encodings ``[steps, width]``: ``PE[t, 2i] = sin(t / 10000^(2i/width))``,
    ``PE[t, 2i+1] = cos(t / 10000^(2i/width))`` (``width`` even)."""
    t = torch.arange(steps, device=device, dtype=torch.float64).unsqueeze(1)
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, width, 2, device=device, dtype=torch.float64) / width)
    pe = torch.zeros(steps, width, device=device, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(t * freq)
    pe[:, 1::2] = torch.cos(t * freq)
    return pe.to(dtype)


def rotate(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotary embedding: ``x [..., T, width]`` (``width`` even) with each pair of features
    ``(x[2i], x[2i+1])`` rotated by the angle ``t * 10000^(-2i/width)`` of its step ``t``
    (``positions [T]``). ``<rotate(q, s), rotate(k, t)>`` then depends on ``s - t`` only."""
    width = x.shape[-1]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, width, 2, device=x.device, dtype=torch.float64) / width)
    angle = (positions.to(torch.float64).unsqueeze(1) * freq).to(x.dtype)  # [T, width / 2]
    cos, sin = torch.cos(angle), torch.sin(angle)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
    return out.flatten(-2)


@dataclass
class TransformerConfig(ModelConfig):
    """Settings of the Transformer encoder. A checkpoint stores this."""

    input_size: int
    output_size: int
    d_model: int = 64
    num_layers: int = 5
    num_heads: int = 8
    ff_size: int = 256
    position: str = "sincos"  # "sincos" or "rope"

    settings_name = "Transformer settings"

    def __post_init__(self):
        check_positive_ints(self, ("input_size", "output_size", "d_model", "num_layers", "num_heads", "ff_size"))
        if self.position not in POSITIONS:
            raise ConfigError(f"position must be one of {', '.join(POSITIONS)}, got {self.position!r}")
        if self.d_model % self.num_heads or (self.d_model // self.num_heads) % 2:
            raise ConfigError(
                f"d_model ({self.d_model}) must split into num_heads ({self.num_heads}) heads of an even width"
            )


class Block(nn.Module):
    """Pre-norm block: causal multi-head self-attention, then a feed-forward layer, each residual."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.c = c
        self.norm1, self.norm2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.ff = nn.Sequential(nn.Linear(c.d_model, c.ff_size), nn.GELU(), nn.Linear(c.ff_size, c.d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        heads = self.c.num_heads
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        if self.c.position == "rope":
            positions = torch.arange(t, device=x.device)
            q, k = rotate(q, positions), rotate(k, positions)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.ff(self.norm2(x))


class Transformer(nn.Module):
    """``forward(x, state=None, lengths=None, return_trace=False)``: x ``[B, T, input_size]`` ->
    logits ``[B, T, output_size]`` and None (no state); with ``lengths`` outputs past a sample's
    length are zero."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = c = config
        self.embed = nn.Linear(c.input_size, c.d_model)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.num_layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.output = nn.Linear(c.d_model, c.output_size)

    @classmethod
    def from_config(cls, config: TransformerConfig) -> Transformer:
        return cls(config)

    def forward(self, x: torch.Tensor, state=None, lengths: torch.Tensor | None = None, return_trace: bool = False):
        check_sequence_input(x, self.config.input_size, lengths)
        if state is not None:
            raise ValueError("the Transformer keeps no state between calls: give the whole sequence, state=None")
        x = x.to(self.output.weight.dtype)
        t = x.shape[1]
        h = self.embed(x)
        if self.config.position == "sincos":
            h = h + sincos_encoding(t, self.config.d_model, x.device, h.dtype)
        for block in self.blocks:
            h = block(h)
        y = self.output(self.norm(h))
        if lengths is not None:
            y = y * (torch.arange(t, device=x.device) < lengths.to(x.device).unsqueeze(1)).unsqueeze(-1)
        return (y, None, {}) if return_trace else (y, None)
