"""ntmkit: memory-augmented networks in PyTorch — the Neural Turing Machine (Graves, Wayne &
Danihelka 2014) and the Differentiable Neural Computer (Graves et al. 2016)."""

from .errors import CheckpointError, ConfigError, NTMError, TaskError
from .models import DNC, NTM, DNCCell, DNCConfig, DNCState, LSTMBaseline, LSTMConfig, NTMCell, NTMConfig, NTMState
from .models.ntm_addressing import (
    address,
    content_weights,
    cosine_similarity,
    interpolate,
    read,
    sharpen,
    shift,
    write,
)

__version__ = "0.1.0"

__all__ = [
    "DNC",
    "NTM",
    "CheckpointError",
    "ConfigError",
    "DNCCell",
    "DNCConfig",
    "DNCState",
    "LSTMBaseline",
    "LSTMConfig",
    "NTMCell",
    "NTMConfig",
    "NTMError",
    "NTMState",
    "TaskError",
    "address",
    "content_weights",
    "cosine_similarity",
    "interpolate",
    "read",
    "sharpen",
    "shift",
    "write",
]
