"""HugeCTR interaction layers (Interaction, MultiCross) for hugectr-core.

Importing this package never imports CuPy or touches a GPU; kernels compile on first GPU use.
"""
from .interaction import Interaction
from .multicross import MultiCross

__all__ = ["Interaction", "MultiCross"]
