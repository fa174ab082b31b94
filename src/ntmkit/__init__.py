"""ntmkit: Neural Turing Machines (Graves, Wayne & Danihelka 2014) in PyTorch."""

from .addressing import (address, content_weights, cosine_similarity, interpolate, read, sharpen, shift,
                         write)
from .memory import NTMState
from .errors import CheckpointError, ConfigError, NTMError, TaskError
from .model import NTM, LSTMBaseline, NTMCell, NTMConfig

__version__ = "0.1.0"

__all__ = ["NTM", "NTMCell", "NTMConfig", "NTMState", "LSTMBaseline", "ConfigError", "CheckpointError", "TaskError", "NTMError", "address",
           "content_weights", "cosine_similarity", "interpolate", "read", "sharpen", "shift", "write"]
