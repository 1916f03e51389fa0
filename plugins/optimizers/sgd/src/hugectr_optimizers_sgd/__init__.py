"""HugeCTR's SGD-family optimizers for hugectr-core: SGD, MomentumSGD, Nesterov (formats.md 3.5)."""
from .optimizers import SGD, MomentumSGD, Nesterov

__all__ = ["SGD", "MomentumSGD", "Nesterov"]
