"""hugectr2onnx: export hugectr-core models to ONNX (HugeCTR's converter API).

Example:
    >>> from hugectr2onnx import converter
    >>> converter.convert("wdl.onnx", "wdl.json", "wdl_dense_2000.model", convert_embedding=True,
    ...                   sparse_models=["wdl0_sparse_2000.model", "wdl1_sparse_2000.model"])  # doctest: +SKIP
"""
from . import converter
from .converter import build_model, convert, csr_to_fixed_hotness

__all__ = ["converter", "convert", "build_model", "csr_to_fixed_hotness"]
