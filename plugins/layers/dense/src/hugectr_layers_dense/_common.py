"""Helpers shared by InnerProduct and MLP: backend dispatch, activation names, row views."""
from __future__ import annotations

import math

import numpy as np

from hugectr_core.enums import type_string

from . import reference

ACTIVATION_NAMES = {"Relu": "Relu", "relu": "Relu", "Non": "None", "None": "None", "none": "None"}


def ops_for(xp):
    """The kernel set for an array module: ``reference`` on NumPy, the CUDA launchers on CuPy."""
    if xp is np:
        return reference
    from . import kernels  # noqa: PLC0415 - only on a GPU backend

    return kernels


def activation_name(value) -> str | None:
    """'Relu' or 'None' for an ``Activation_t`` member or a string; None when not recognised."""
    return ACTIVATION_NAMES.get(type_string(value))


def init_name(value) -> str:
    return type_string(value)


def rows(a, width: int):
    """``a`` as a 2D (rows, width) view; the GEMMs run on the last axis of 2D and 3D tensors."""
    if not a.flags.c_contiguous:  # reshape would copy and the layer's writes would be lost
        raise ValueError(f"expected a C-contiguous tensor of shape {a.shape}; the engine's buffers are")
    return a.reshape(-1, width)


def leading_rows(shape) -> int:
    return int(math.prod(shape[:-1]))


# -- geometry of the fused ReLU + bias-gradient kernel (pure, so the layer and CPU tests can use it) --
TILE_THREADS = 256  # blockDim.x of bias_grad and relu_bias_bwd (fixed by their shared-memory tile)
TARGET_BLOCKS = 1024  # about one wave of 256-thread blocks on an H100 (132 SMs x 8 resident blocks)
MAX_PARTIAL_ROWS = 1024  # grid.y of relu_bias_bwd: far below CUDA's 65535


def tile_cols(n: int) -> int:
    """Columns per block tile: the smallest power of two >= n, capped at 32 (a warp spans 32 columns,
    so loads are coalesced; narrow outputs such as N=1 keep all 256 threads busy on rows instead)."""
    return min(32, 1 << max(0, (int(n) - 1).bit_length()))


def bias_partial_rows(m: int, n: int) -> int:
    """P, the row blocks of relu_bias_bwd: each writes one partial row of column sums (P, n).

    Enough blocks to fill the GPU (P x column tiles ~ TARGET_BLOCKS), but each block's row lanes
    still loop over at least 4 rows, and P <= MAX_PARTIAL_ROWS. Always >= 1.
    """
    cols = tile_cols(n)
    lanes = TILE_THREADS // cols
    col_tiles = -(-int(n) // cols)
    wanted = -(-TARGET_BLOCKS // col_tiles)
    return max(1, min(wanted, -(-int(m) // (4 * lanes)), MAX_PARTIAL_ROWS))


def partials_view(buffer, dtype, m: int, n: int):
    """The (P, n) partial-sum block of the ``bias_partials`` workspace, in ``dtype``'s accumulate type.

    The workspace is float64 words (so it is aligned for either type); float16/float32 stages use
    it as float32 (acc_t), float64 stages as float64.
    """
    acc_dtype = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    p = bias_partial_rows(m, n)
    flat = buffer.reshape(-1).view(acc_dtype)
    if flat.size < p * n:
        raise ValueError(f"bias_partials workspace holds {flat.size} {np.dtype(acc_dtype).name} values, "
                         f"needs {p} x {n} for {m} rows")
    return flat[:p * n].reshape(p, n)
