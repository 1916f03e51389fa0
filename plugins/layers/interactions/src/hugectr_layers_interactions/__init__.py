"""HugeCTR interaction layers (Interaction, MultiCross, FmOrder2, WeightMultiply, MatrixMultiply).

Importing this package never imports CuPy or touches a GPU; kernels compile on first GPU use.
"""
from .fm_order2 import FmOrder2
from .interaction import Interaction
from .matrix_multiply import MatrixMultiply
from .multicross import MultiCross
from .weight_multiply import WeightMultiply

__all__ = ["FmOrder2", "Interaction", "MatrixMultiply", "MultiCross", "WeightMultiply"]
