"""hugectr-layers-activations: HugeCTR's ReLU, Sigmoid, ELU, PReLU_Dice and Dropout layers for hugectr-core.

Importing this package touches no GPU and does not import CuPy.

Example:
    >>> from hugectr_core.testing import make_layer
    >>> make_layer("ReLU", ["x"], ["y"]).infer_shapes([(8, 3, 2)])
    [(8, 3, 2)]
"""
from .dropout import Dropout
from .layers import ELU, PReLU_Dice, ReLU, Sigmoid

__all__ = ["ELU", "Dropout", "PReLU_Dice", "ReLU", "Sigmoid"]
