"""HugeCTR loss layers (BinaryCrossEntropyLoss, CrossEntropyLoss, MultiCrossEntropyLoss) for hugectr-core.

Importing this package never imports CuPy or touches a GPU; kernels compile on first GPU use.
"""
from .bce import BinaryCrossEntropyLoss
from .ce import CrossEntropyLoss, MultiCrossEntropyLoss

__all__ = ["BinaryCrossEntropyLoss", "CrossEntropyLoss", "MultiCrossEntropyLoss"]
