"""hugectr-reader-norm: HugeCTR's Norm reader (file list of headered, checksum-framed files, formats.md 2.3).

Example:
    >>> from hugectr_reader_norm import NormLayout, encode_file, parse_file
    >>> import numpy as np
    >>> lay = NormLayout(1, 0, (3,), "<u4", checksum=False)
    >>> parse_file(encode_file(lay, [[1.0]], np.zeros((1, 0)), [[2]], np.array([4, 5])), "x", lay).keys.tolist()
    [4, 5]
"""
from .format import NormLayout, Samples, encode_file, encode_header, encode_record, frame, parse_file
from .reader import Norm, read_file_list

__all__ = ["Norm", "NormLayout", "Samples", "encode_file", "encode_header", "encode_record", "frame", "parse_file",
           "read_file_list"]
