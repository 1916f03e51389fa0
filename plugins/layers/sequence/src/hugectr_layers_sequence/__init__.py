"""HugeCTR sequence layers for hugectr-core: Softmax, MultiHeadAttention, SequenceMask, GRU.

Importing this package never imports CuPy; the CUDA kernels compile on first use on a GPU.
"""
from .attention import MultiHeadAttention
from .gru import GRU
from .sequence_mask import SequenceMask
from .softmax import Softmax

__all__ = ["GRU", "MultiHeadAttention", "SequenceMask", "Softmax"]
