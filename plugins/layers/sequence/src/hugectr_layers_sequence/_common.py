"""Backend dispatch and the mask-broadcast rule shared by Softmax and MultiHeadAttention."""
from __future__ import annotations

import numpy as np

from . import reference

MASK_PENALTY = 10000.0  # HugeCTR's masked softmax subtracts (1 - mask) * 10000


def ops_for(xp):
    """The kernel set for an array module: ``reference`` on NumPy, the CUDA launchers on CuPy."""
    if xp is np:
        return reference
    from . import kernels  # noqa: PLC0415 - only on a GPU backend

    return kernels


def mask_heads(x_shape, mask_shape) -> int:
    """How many rows groups of axis 1 share one mask row: x.shape[1] for a (B,1,Sf,St) mask, else 1."""
    if tuple(mask_shape) == tuple(x_shape):
        return 1
    return int(x_shape[1])


def mask_error(x_shape, mask_shape) -> str | None:
    """Why a mask cannot go with ``x`` (None when it can): same shape, or (B,1,Sf,St) for a 4D x."""
    x_shape, mask_shape = tuple(x_shape), tuple(mask_shape)
    if mask_shape == x_shape:
        return None
    if len(x_shape) == 4 and mask_shape == (x_shape[0], 1, x_shape[2], x_shape[3]):
        return None
    return (f"mask shape {mask_shape} must equal the input's {x_shape} or be (B, 1, Sf, St) for a 4D "
            "(B, heads, Sf, St) input")
