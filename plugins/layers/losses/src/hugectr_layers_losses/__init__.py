"""HugeCTR loss layers (BinaryCrossEntropyLoss) for hugectr-core.

Importing this package never imports CuPy or touches a GPU; kernels compile on first GPU use.
"""
from .bce import BinaryCrossEntropyLoss

__all__ = ["BinaryCrossEntropyLoss"]
