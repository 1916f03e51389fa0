"""HugeCTR shape layers (Concat, Reshape, Slice, ReduceSum, Add) for hugectr-core.

Importing this package never imports CuPy or touches a GPU; kernels compile on first GPU use.
"""
from .concat import Concat
from .elementwise import Add, ReduceSum
from .reshape import Reshape
from .slice import Slice

__all__ = ["Add", "Concat", "ReduceSum", "Reshape", "Slice"]
