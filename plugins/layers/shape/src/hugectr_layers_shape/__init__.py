"""HugeCTR shape layers for hugectr-core: Concat, Reshape, Slice, Select, Gather, ReduceSum,
ReduceMean, Add, Sub, ElementwiseMultiply, Scale, FusedReshapeConcat(General), Cast.

Importing this package never imports CuPy or touches a GPU; kernels compile on first GPU use.
"""
from .cast import Cast
from .concat import Concat
from .elementwise import Add, ElementwiseMultiply, ReduceMean, ReduceSum, Sub
from .fused import FusedReshapeConcat, FusedReshapeConcatGeneral
from .reshape import Reshape
from .scale import Scale
from .select import Gather, Select
from .slice import Slice

__all__ = ["Add", "Cast", "Concat", "ElementwiseMultiply", "FusedReshapeConcat", "FusedReshapeConcatGeneral",
           "Gather", "ReduceMean", "ReduceSum", "Reshape", "Scale", "Select", "Slice", "Sub"]
