"""ntmkit: Neural Turing Machines (Graves, Wayne & Danihelka 2014) in PyTorch."""

from .addressing import (address, content_weights, cosine_similarity, interpolate, read, sharpen, shift,
                         write)
from .memory import NTMState
from .model import NTM, ConfigError, LSTMBaseline, NTMCell, NTMConfig

__version__ = "0.1.0"

__all__ = ["NTM", "NTMCell", "NTMConfig", "NTMState", "LSTMBaseline", "ConfigError", "address",
           "content_weights", "cosine_similarity", "interpolate", "read", "sharpen", "shift", "write"]
