"""Value checks readers share (``check_type=Check_t.Sum`` extends to label and dense values)."""
from __future__ import annotations

import numpy as np

from .errors import DataError


def check_finite(label: np.ndarray, dense: np.ndarray, where: str, first_row: int = 0) -> None:
    """DataError naming the first record whose label or dense value is NaN or +-Inf.

    Example:
        >>> check_finite(np.zeros((2, 1)), np.ones((2, 3)), "Raw: 'x.bin'")
    """
    for what, values in (("label", label), ("dense", dense)):
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{where} record {first_row + row}: {what}[{col}] is {float(values[row, col])} "
                            f"({int(bad.sum())} non-finite {what} value(s) here); fix the data, or set "
                            f"check_type=Check_t.Non to train on it unchecked")
