"""The models, one file each, with their equations beside them.

- :mod:`.ntm` the Neural Turing Machine; its equations in :mod:`.ntm_addressing`, heads in :mod:`.ntm_heads`
- :mod:`.dnc` the Differentiable Neural Computer; its equations in :mod:`.dnc_addressing`
- :mod:`.lstm` the LSTM baseline
- :mod:`.stack_tape` the Stack-RNN and the Tape-RNN; :mod:`.transformer` a causal Transformer encoder
- :mod:`.controller` the controllers both memory models use; :mod:`.sequence` their shared loop
"""

from .dnc import DNC, DNCCell, DNCConfig, DNCState
from .lstm import LSTMBaseline, LSTMConfig
from .ntm import NTM, NTMCell, NTMConfig
from .ntm_heads import NTMState
from .sequence import MemoryCell, MemoryModel
from .stack_tape import StackRNN, StructuredRNNConfig, TapeRNN
from .transformer import Transformer, TransformerConfig

__all__ = [
    "DNC",
    "NTM",
    "DNCCell",
    "DNCConfig",
    "DNCState",
    "LSTMBaseline",
    "LSTMConfig",
    "MemoryCell",
    "MemoryModel",
    "NTMCell",
    "NTMConfig",
    "NTMState",
    "StackRNN",
    "StructuredRNNConfig",
    "TapeRNN",
    "Transformer",
    "TransformerConfig",
]
