"""Value checks readers share (``check_type=Check_t.Sum`` extends to label and dense values)."""
from __future__ import annotations

import numpy as np

from .errors import DataError


_HOW_TO_SKIP = "fix the data, or set check_type=Check_t.Non to train on it unchecked"


def first_non_finite(values: np.ndarray):
    """``(row, column, count)`` of the first NaN/+-Inf of a 2-D array and how many there are, or None.

    Example:
        >>> first_non_finite(np.array([[1.0, np.nan], [np.inf, 2.0]]))
        (0, 1, 2)
    """
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    row, col = (int(i) for i in np.argwhere(bad)[0])
    return row, col, int(bad.sum())


def check_finite(label: np.ndarray, dense: np.ndarray, where: str, first_row: int = 0) -> None:
    """DataError naming the first record whose label or dense value is NaN or +-Inf.

    Example:
        >>> check_finite(np.zeros((2, 1)), np.ones((2, 3)), "Raw: 'x.bin'")
    """
    for what, values in (("label", label), ("dense", dense)):
        found = first_non_finite(values)
        if found is not None:
            row, col, count = found
            raise DataError(f"{where} record {first_row + row}: {what}[{col}] is {float(values[row, col])} "
                            f"({count} non-finite {what} value(s) here); {_HOW_TO_SKIP}")


def check_finite_columns(values: np.ndarray, names: list, where: str) -> None:
    """DataError naming the first row and column (by name) holding NaN or +-Inf.

    Example:
        >>> check_finite_columns(np.zeros((2, 2)), ["label", "I1"], "Parquet: 'a.parquet'")
    """
    found = first_non_finite(values)
    if found is not None:
        row, col, count = found
        raise DataError(f"{where} row {row}: column '{names[col]}' is {float(values[row, col])} "
                        f"({count} non-finite value(s) in these columns); {_HOW_TO_SKIP}")
