"""hugectr-layers-dense: HugeCTR's InnerProduct and MLP layers for hugectr-core.

Importing this package touches no GPU and does not import CuPy.

Example:
    >>> from hugectr_core.testing import make_layer
    >>> make_layer("InnerProduct", ["x"], ["y"], num_output=4).infer_shapes([(8, 3)])
    [(8, 4)]
"""
from .inner_product import InnerProduct
from .mlp import MLP

__all__ = ["MLP", "InnerProduct"]
