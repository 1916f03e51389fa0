"""CuPy launchers of ``kernels.cu``, with the signatures of their NumPy twins in ``reference.py``.

Importing this module does not import CuPy; the kernels compile on first use.

Example:
    >>> import cupy  # doctest: +SKIP
    >>> x = cupy.linspace(-1, 1, 5, dtype=cupy.float32)  # doctest: +SKIP
    >>> relu_fwd(x, cupy.empty_like(x))  # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule

KERNEL_NAMES = ("relu_fwd", "relu_bwd", "sigmoid_fwd", "sigmoid_bwd", "elu_fwd", "elu_bwd",
                "dropout_fwd", "dropout_bwd", "dice_stats", "dice_fwd", "dice_bwd_stats", "dice_bwd")
KERNELS = KernelModule("hugectr_layers_activations",
                       [f"{name}<{t}>" for name in KERNEL_NAMES for t in ("float", "double", "__half")])


def _acc_scalar(dtype, value):
    """A scalar kernel argument of type acc_t<T>: float for float/__half, double for double."""
    return np.float64(value) if dtype == np.float64 else np.float32(value)


def _check(*arrays, sizes_match=True):
    dtype, size = arrays[0].dtype, arrays[0].size
    if dtype not in (np.float16, np.float32, np.float64):
        raise BackendError(f"hugectr_layers_activations kernels support float16, float32 and float64, got {dtype}")
    for a in arrays:
        if a.dtype != dtype or (sizes_match and a.size != size):
            raise BackendError(f"hugectr_layers_activations kernels: arrays differ ({dtype}, {size} elements) vs "
                               f"({a.dtype}, {a.size} elements)")
        if not a.flags.c_contiguous:
            raise BackendError("hugectr_layers_activations kernels need C-contiguous arrays (the engine's buffers are)")
    return dtype


def _run(name, dtype, n, args):
    KERNELS.launch(name, dtype, n, (*args, np.int64(n)))


def relu_fwd(x, out):
    _run("relu_fwd", _check(x, out), x.size, (x, out))
    return out


def relu_bwd(dy, y, out):
    _run("relu_bwd", _check(dy, y, out), dy.size, (dy, y, out))
    return out


def sigmoid_fwd(x, out):
    _run("sigmoid_fwd", _check(x, out), x.size, (x, out))
    return out


def sigmoid_bwd(dy, y, out):
    _run("sigmoid_bwd", _check(dy, y, out), dy.size, (dy, y, out))
    return out


def elu_fwd(x, alpha, out):
    dtype = _check(x, out)
    _run("elu_fwd", dtype, x.size, (x, _acc_scalar(dtype, alpha), out))
    return out


def elu_bwd(dy, x, alpha, out):
    dtype = _check(dy, x, out)
    _run("elu_bwd", dtype, dy.size, (dy, x, _acc_scalar(dtype, alpha), out))
    return out


def _check_mask(*arrays):
    """rand and mask are float32 whatever the data dtype (uniforms cannot be drawn in fp16)."""
    for a in arrays:
        if a.dtype != np.float32 or not a.flags.c_contiguous:
            raise BackendError(f"dropout kernels need C-contiguous float32 rand/mask buffers, got {a.dtype}")


def dropout_fwd(x, rand, rate, mask, out):
    dtype = _check(x, out)
    _check_mask(rand, mask)
    _run("dropout_fwd", dtype, x.size, (x, rand, np.float32(rate), mask, out))
    return mask, out


def dropout_bwd(dy, mask, out):
    dtype = _check(dy, out)
    _check_mask(mask)
    _run("dropout_bwd", dtype, dy.size, (dy, mask, out))
    return out


def dice_stats(x_rf, mean_f, inv_std_f, eps):
    dtype = _check(x_rf, mean_f, inv_std_f, sizes_match=False)
    rows, feats = x_rf.shape
    KERNELS.launch("dice_stats", dtype, feats,
                   (x_rf, mean_f, inv_std_f, _acc_scalar(dtype, eps), np.int64(rows), np.int64(feats)))
    return mean_f, inv_std_f


def dice_fwd(x_rf, mean_f, inv_std_f, alpha, y_rf):
    dtype = _check(x_rf, y_rf)
    rows, feats = x_rf.shape
    KERNELS.launch("dice_fwd", dtype, x_rf.size,
                   (x_rf, mean_f, inv_std_f, _acc_scalar(dtype, alpha), y_rf, np.int64(rows), np.int64(feats)))
    return y_rf


def dice_bwd_stats(x_rf, dy_rf, mean_f, inv_std_f, alpha, hmean_f, hzmean_f):
    dtype = _check(x_rf, dy_rf)
    rows, feats = x_rf.shape
    KERNELS.launch("dice_bwd_stats", dtype, feats,
                   (x_rf, dy_rf, mean_f, inv_std_f, _acc_scalar(dtype, alpha), hmean_f, hzmean_f,
                    np.int64(rows), np.int64(feats)))
    return hmean_f, hzmean_f


def dice_bwd(x_rf, dy_rf, mean_f, inv_std_f, hmean_f, hzmean_f, alpha, dx_rf):
    dtype = _check(x_rf, dy_rf, dx_rf)
    rows, feats = x_rf.shape
    KERNELS.launch("dice_bwd", dtype, x_rf.size,
                   (x_rf, dy_rf, mean_f, inv_std_f, hmean_f, hzmean_f, _acc_scalar(dtype, alpha), dx_rf,
                    np.int64(rows), np.int64(feats)))
    return dx_rf
