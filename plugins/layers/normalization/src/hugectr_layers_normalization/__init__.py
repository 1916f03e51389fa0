"""HugeCTR normalization layers for hugectr-core: ``BatchNorm`` and ``LayerNorm`` (formats.md 1.9.1).

Importing this package never imports CuPy; the CUDA kernels compile on first use on a GPU.
"""
from .layers import BatchNorm, LayerNorm

__all__ = ["BatchNorm", "LayerNorm"]
