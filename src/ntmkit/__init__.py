"""ntmkit: Neural Turing Machines (Graves, Wayne & Danihelka 2014) in PyTorch."""

from .addressing import address, content_weights, cosine_similarity, interpolate, read, sharpen, shift, write
from .errors import CheckpointError, ConfigError, NTMError, TaskError
from .memory import NTMState
from .model import NTM, LSTMBaseline, NTMCell, NTMConfig

__version__ = "0.1.0"

__all__ = [
    "NTM",
    "CheckpointError",
    "ConfigError",
    "LSTMBaseline",
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
