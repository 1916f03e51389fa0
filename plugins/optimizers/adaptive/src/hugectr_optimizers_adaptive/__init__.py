"""HugeCTR's adaptive optimizers for hugectr-core: Adam, AdaGrad, Ftrl (formats.md 3.5) and row-wise AdaGrad."""
from .optimizers import AdaGrad, Adam, Ftrl, RowWiseAdaGrad

__all__ = ["AdaGrad", "Adam", "Ftrl", "RowWiseAdaGrad"]
