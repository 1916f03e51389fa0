"""HugeCTR's adaptive optimizers for hugectr-core: Adam and AdaGrad (formats.md 3.5)."""
from .optimizers import AdaGrad, Adam, Ftrl

__all__ = ["AdaGrad", "Adam", "Ftrl"]
