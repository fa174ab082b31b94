"""The model registry: each kind of model by name, with its config class and model class.

Training, testing, evaluation and the pretrained loader look a model up here (``MODELS[name]``)
instead of branching on its name; adding a model is one entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .errors import ConfigError
from .models import (
    DNC,
    NTM,
    DNCConfig,
    LSTMBaseline,
    LSTMConfig,
    NTMConfig,
    StackRNN,
    StructuredRNNConfig,
    TapeRNN,
    Transformer,
    TransformerConfig,
)


@dataclass(frozen=True)
class ModelKind:
    """How to configure and build one kind of model.

    ``config_class`` has ``input_size`` and ``output_size`` first and ``to_dict``/``from_dict``;
    ``model_class`` has ``from_config``. ``flags``: the command line's model flags this model
    takes; ``flag_fields`` maps those to config fields where they are named differently.
    ``has_memory``: the model is a :class:`ntmkit.models.MemoryModel` (a memory that can be cut
    per batch or grown at test time, a compiled time step, a trace to draw).
    """

    name: str
    label: str
    config_class: Any
    model_class: Any
    has_memory: bool
    flags: tuple[str, ...]
    flag_fields: dict[str, str]

    def config(self, input_size: int, output_size: int, options: dict) -> dict:
        """The config dict (as a checkpoint stores it) of this model for a task's sizes."""
        return self.config_class(input_size, output_size, **options).to_dict()

    def normalise(self, stored: dict) -> dict:
        """A stored config with settings added since it was written at their defaults."""
        return self.config_class.from_dict(stored).to_dict()

    def build(self, config: dict) -> torch.nn.Module:
        return self.model_class.from_config(self.config_class.from_dict(config))


_CONTROLLER = ("controller", "controller_size", "controller_layers")


def _structured(name: str, label: str, model_class) -> ModelKind:
    """A recurrent network with a stack or a tape: its controller's size and its cell's width."""
    return ModelKind(
        name,
        label,
        StructuredRNNConfig,
        model_class,
        has_memory=False,
        flags=("controller", "controller_size", "memory_vector_size"),
        flag_fields={"controller_size": "hidden_size", "memory_vector_size": "cell_size"},
    )


_MEMORY = ("memory_locations", "memory_vector_size", "read_heads", "write_heads")
MODELS: dict[str, ModelKind] = {
    "ntm": ModelKind(
        "ntm",
        "NTM",
        NTMConfig,
        NTM,
        has_memory=True,
        flags=(
            *_CONTROLLER,
            *_MEMORY,
            "maximum_shifts",
            "memory_init",
            "init_weighting",
            "gate_bias",
            "shift_bias",
            "read_before_write",
            "head_vectors",
            "learn_r_bias",
            "learn_w_bias",
            "learn_m_bias",
        ),
        flag_fields={"maximum_shifts": "shift_range"},
    ),
    "dnc": ModelKind(
        "dnc",
        "DNC",
        DNCConfig,
        DNC,
        has_memory=True,
        flags=(*_CONTROLLER, *_MEMORY, "masked_lookup", "deallocation", "link_sharpness"),
        flag_fields={},
    ),
    "lstm": ModelKind(
        "lstm",
        "LSTM baseline",
        LSTMConfig,
        LSTMBaseline,
        has_memory=False,
        flags=("controller_size", "controller_layers"),
        flag_fields={"controller_size": "hidden_size", "controller_layers": "num_layers"},
    ),
    # The models Delétang et al. (2023) found best at length generalisation, beside ours.
    "stack_rnn": _structured("stack_rnn", "Stack-RNN", StackRNN),
    "tape_rnn": _structured("tape_rnn", "Tape-RNN", TapeRNN),
    "transformer": ModelKind(
        "transformer",
        "Transformer",
        TransformerConfig,
        Transformer,
        has_memory=False,
        flags=("controller_size", "controller_layers", "attention_heads", "position"),
        flag_fields={"controller_size": "d_model", "controller_layers": "num_layers", "attention_heads": "num_heads"},
    ),
}


def model_kind(name: str) -> ModelKind:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, config: dict) -> torch.nn.Module:
    """Rebuild a model from its name and config dict (as stored in a checkpoint)."""
    return model_kind(name).build(config)
