"""hugectr-layers-example: a third-party layer package for hugectr-core (the Swish activation).

Importing this package touches no GPU and does not import CuPy; the CUDA kernels compile on first
use on a CuPy array.

Example:
    >>> from hugectr_core.testing import make_layer
    >>> make_layer("Swish", ["x"], ["y"]).infer_shapes([(8, 3)])
    [(8, 3)]
"""
from .layer import Swish

__all__ = ["Swish"]
