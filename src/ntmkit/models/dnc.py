"""The Differentiable Neural Computer: DNCConfig, DNCCell (one step) and DNC (a sequence, shaped
like ``nn.LSTM``), with the same interface as the NTM. Its equations are the pure functions of
:mod:`ntmkit.models.dnc_addressing`; small parts first, the whole machine last.

Graves et al. (2016), Nature 538, Methods. Where the NTM walks a ring with shifts, the DNC
allocates free rows by usage, links each write to the one before it (the temporal link matrix) so
a read head can replay writes forwards or backwards, and frees what its read heads are done with.
Csordás & Schmidhuber's (2019) three changes are options, off by default: ``masked_lookup``,
``deallocation`` and ``link_sharpness``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from . import dnc_addressing as A
from .config import ModelConfig, check_positive_ints
from .controller import CONTROLLERS, make_controller
from .dnc_link import link_directional
from .ntm import POSITIVE
from .sequence import MemoryCell, MemoryModel


@dataclass
class DNCConfig(ModelConfig):
    """Every hyperparameter of the DNC, with its default. A checkpoint stores this."""

    input_size: int
    output_size: int
    controller: str = "lstm"
    controller_size: int = 100
    controller_layers: int = 0  # 0: derived from the controller, 1 LSTM layer or 3 feed-forward layers
    memory_locations: int = 128  # N
    memory_vector_size: int = 20  # W, the paper's word size
    read_heads: int = 1  # R
    write_heads: int = 1  # the DNC has one write head
    masked_lookup: bool = False  # Csordás & Schmidhuber: content look-up through a learned mask
    deallocation: bool = False  # ... erase the rows the free gates release
    link_sharpness: bool = False  # ... sharpen the forward and backward weightings
    clip_interface: float = 20.0  # the interface vector is clipped to +-this before its activations

    settings_name = "DNC settings"

    def __post_init__(self):
        if self.controller_layers == 0 and not isinstance(self.controller_layers, bool):
            self.controller_layers = 3 if self.controller == "feedforward" else 1
        check_positive_ints(self, POSITIVE[:-1])  # write_heads: exactly 1, below
        if self.write_heads != 1:
            raise ConfigError(f"the DNC has one write head, got write_heads={self.write_heads!r}: use 1")
        if self.controller not in CONTROLLERS:
            raise ConfigError(f"controller must be one of {', '.join(CONTROLLERS)}, got {self.controller!r}")
        if not self.clip_interface > 0:
            raise ConfigError(f"clip_interface must be > 0, got {self.clip_interface!r}")

    def state_floats(self) -> int:
        """Floats of state per sample and time step that grow with the memory (kept for backward)."""
        return self.memory_locations * (self.memory_vector_size + self.memory_locations)


class DNCState(NamedTuple):
    """What one time step carries to the next.

    memory ``[B, N, W]``; usage ``[B, N]``; link ``[B, N, N]``; precedence ``[B, N]``;
    read_weights ``[B, R, N]``; write_weights ``[B, 1, N]``; read_vectors ``[B, R, W]``;
    controller: the controller's own tuple of tensors.
    """

    memory: torch.Tensor
    usage: torch.Tensor
    link: torch.Tensor
    precedence: torch.Tensor
    read_weights: torch.Tensor
    write_weights: torch.Tensor
    read_vectors: torch.Tensor
    controller: tuple


class DNCStep(NamedTuple):
    """What one step did beyond its state (for traces and pictures).

    allocation ``[B, N]``; read_modes ``[B, R, 3]`` (backward, content, forward); erase ``[B, W]``;
    add ``[B, W]`` (the write vector); free_gates ``[B, R]``; allocation_gate, write_gate ``[B]``.
    """

    allocation: torch.Tensor
    read_modes: torch.Tensor
    erase: torch.Tensor
    add: torch.Tensor
    free_gates: torch.Tensor
    allocation_gate: torch.Tensor
    write_gate: torch.Tensor


def oneplus(x: torch.Tensor) -> torch.Tensor:
    """The paper's oneplus(x) = 1 + log(1 + e^x), for strengths >= 1."""
    return 1.0 + F.softplus(x)


def interface_sizes(c: DNCConfig) -> dict[str, int]:
    """The parts of the interface vector ξ, in order, and their widths."""
    r, w = c.read_heads, c.memory_vector_size
    sizes = {
        "read_keys": r * w,
        "read_strengths": r,
        "write_key": w,
        "write_strength": 1,
        "erase": w,
        "write_vector": w,
        "free_gates": r,
        "allocation_gate": 1,
        "write_gate": 1,
        "read_modes": 3 * r,
    }
    if c.masked_lookup:
        sizes.update(read_masks=r * w, write_mask=w)
    if c.link_sharpness:
        sizes.update(forward_sharpness=r, backward_sharpness=r)
    return sizes


class DNCCell(MemoryCell):
    """One time step of the DNC, for people who loop themselves.

    ``forward(x, state)`` takes ``x: [B, input_size]`` and returns ``(logits [B, output_size],
    DNCState)``; ``state=None`` starts from the initial state (everything zero, as in the paper).
    """

    trace_keys = (
        "read_weights",
        "write_weights",
        "usage",
        "allocation",
        "read_modes",
        "erase",
        "add",
        "read_vectors",
        "memory",
        "link",
    )
    # The link update and the directional weightings through ntmkit.models.dnc_link (False: the
    # reference functions of dnc_addressing, differentiated automatically; the same values).
    fused_link: bool = True

    def __init__(self, config: DNCConfig):
        super().__init__()
        self.config = c = config
        read_size = c.read_heads * c.memory_vector_size
        self.controller = make_controller(
            c.controller, c.input_size + read_size, c.controller_size, c.controller_layers
        )
        self.sizes = interface_sizes(c)
        self.interface = nn.Linear(c.controller_size, sum(self.sizes.values()))
        self.output = nn.Linear(c.controller_size + read_size, c.output_size)

    @property
    def has_fused_ops(self) -> bool:
        return True

    def use_reference_equations(self, on: bool = True) -> None:
        self.fused_link = not on

    def initial_state(self, batch: int, locations: int | None = None) -> DNCState:
        """Zero memory, usage, links, precedence, weightings and read vectors, with ``locations``
        (<= N) rows; the DNC has no per-row initial state, so any size is the same machine."""
        n, w, r = self.config.memory_locations, self.config.memory_vector_size, self.config.read_heads
        if locations is None:
            locations = n
        if isinstance(locations, bool) or not isinstance(locations, int) or not 1 <= locations <= n:
            raise ValueError(
                f"locations must be an integer in [1, {n}] (the model's memory), got {locations!r}: "
                f"use resize_memory() to run with a larger memory"
            )
        dev, dt = self.output.weight.device, self.output.weight.dtype

        def zeros(*shape: int) -> torch.Tensor:
            return torch.zeros(batch, *shape, device=dev, dtype=dt)

        return DNCState(
            memory=zeros(locations, w),
            usage=zeros(locations),
            link=zeros(locations, locations),
            precedence=zeros(locations),
            read_weights=zeros(r, locations),
            write_weights=zeros(1, locations),
            read_vectors=zeros(r, w),
            controller=self.controller.initial_state(batch, dev, dt),
        )

    def resize_memory(self, locations: int) -> None:
        """Run with ``locations`` memory rows (more than N) from now on; nothing is learned per row."""
        n = self.config.memory_locations
        if locations < n:
            raise ValueError(f"memory can only grow: the model has {n} locations, {locations} asked for")
        self.config = dataclasses.replace(self.config, memory_locations=locations)

    def _interface(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """The interface vector ξ split into its parts, each through its activation."""
        b, c = h.shape[0], self.config
        r, w = c.read_heads, c.memory_vector_size
        raw = self.interface(h).clamp(-c.clip_interface, c.clip_interface)
        p = dict(zip(self.sizes, raw.split(list(self.sizes.values()), dim=-1)))
        out = {
            "read_keys": p["read_keys"].view(b, r, w),
            "read_strengths": oneplus(p["read_strengths"]),
            "write_key": p["write_key"].view(b, 1, w),
            "write_strength": oneplus(p["write_strength"]),
            "erase": torch.sigmoid(p["erase"]),
            "write_vector": p["write_vector"],
            "free_gates": torch.sigmoid(p["free_gates"]),
            "allocation_gate": torch.sigmoid(p["allocation_gate"]).squeeze(-1),
            "write_gate": torch.sigmoid(p["write_gate"]).squeeze(-1),
            "read_modes": torch.softmax(p["read_modes"].view(b, r, 3), dim=-1),
        }
        if c.masked_lookup:
            out["read_masks"] = torch.sigmoid(p["read_masks"]).view(b, r, w)
            out["write_mask"] = torch.sigmoid(p["write_mask"]).view(b, 1, w)
        if c.link_sharpness:
            out["forward_sharpness"] = oneplus(p["forward_sharpness"])
            out["backward_sharpness"] = oneplus(p["backward_sharpness"])
        return out

    def step(self, x: torch.Tensor, state: DNCState) -> tuple[torch.Tensor, DNCState, DNCStep]:
        """One time step, in the order of the paper's Methods section."""
        c = self.config
        h, ctrl = self.controller(torch.cat([x, state.read_vectors.flatten(1)], dim=-1), state.controller)
        xi = self._interface(h)

        # Dynamic memory allocation: free what the read heads are done with, then allocate.
        psi = A.retention(xi["free_gates"], state.read_weights)
        usage = A.usage(state.usage, state.write_weights[:, 0], psi)
        alloc = A.allocation(usage)
        write_content = A.content_weights(state.memory, xi["write_key"], xi["write_strength"], xi.get("write_mask"))
        write_w = A.write_weighting(alloc, write_content[:, 0], xi["allocation_gate"], xi["write_gate"])
        memory = A.write(state.memory, write_w, xi["erase"], xi["write_vector"], psi if c.deallocation else None)

        # Temporal memory linkage, then the read heads.
        if self.fused_link:  # the same equations as one operator with a hand-derived backward
            link, forward, backward = link_directional(state.link, write_w, state.precedence, state.read_weights)
        else:
            link = A.link(state.link, write_w, state.precedence)
            forward, backward = A.directional(link, state.read_weights)
        precedence = A.precedence(state.precedence, write_w)
        if c.link_sharpness:
            forward = A.sharpen_links(forward, xi["forward_sharpness"])
            backward = A.sharpen_links(backward, xi["backward_sharpness"])
        read_content = A.content_weights(memory, xi["read_keys"], xi["read_strengths"], xi.get("read_masks"))
        read_w = A.read_weighting(backward, read_content, forward, xi["read_modes"])
        reads = A.read(memory, read_w)

        y = self.output(torch.cat([h, reads.flatten(1)], dim=-1))
        new = DNCState(memory, usage, link, precedence, read_w, write_w.unsqueeze(1), reads, ctrl)
        did = DNCStep(
            alloc,
            xi["read_modes"],
            xi["erase"],
            xi["write_vector"],
            xi["free_gates"],
            xi["allocation_gate"],
            xi["write_gate"],
        )
        return y, new, did

    def trace(self, state: DNCState, extras: DNCStep) -> dict[str, torch.Tensor]:
        return {
            "read_weights": state.read_weights,
            "write_weights": state.write_weights,
            "usage": state.usage,
            "allocation": extras.allocation,
            "read_modes": extras.read_modes,
            "erase": extras.erase.unsqueeze(1),
            "add": extras.add.unsqueeze(1),
            "read_vectors": state.read_vectors,
            "memory": state.memory,
            "link": state.link,
        }

    def memory_dims(self, state: DNCState) -> list[tuple[torch.Tensor, int]]:
        return [
            (state.memory, 1),
            (state.usage, 1),
            (state.link, 1),
            (state.link, 2),
            (state.precedence, 1),
            (state.read_weights, 2),
            (state.write_weights, 2),
        ]


class DNC(MemoryModel):
    """A Differentiable Neural Computer over whole sequences, used like ``torch.nn.LSTM(batch_first=True)``.

    Example::

        dnc = DNC(9, 8)                       # copy task: 8 bits + delimiter in, 8 bits out
        logits, state = dnc(x)                # x: [batch, time, 9] -> logits: [batch, time, 8]

    ``forward`` is :meth:`ntmkit.models.sequence.MemoryModel.forward`; a trace holds
    ``read_weights``, ``write_weights``, ``usage``, ``allocation``, ``read_modes``, ``erase``,
    ``add``, ``read_vectors``, ``memory`` and ``link`` per step.
    """

    def __init__(self, input_size: int, output_size: int, **kwargs):
        super().__init__()
        self.cell = DNCCell(DNCConfig(input_size, output_size, **kwargs))

    @classmethod
    def from_config(cls, config: DNCConfig) -> DNC:
        d = config.to_dict()
        return cls(d.pop("input_size"), d.pop("output_size"), **d)
