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
                "dropout_fwd", "dropout_bwd")
KERNELS = KernelModule("hugectr_layers_activations",
                       [f"{name}<{t}>" for name in KERNEL_NAMES for t in ("float", "double")])


def _check(*arrays):
    dtype, size = arrays[0].dtype, arrays[0].size
    if dtype not in (np.float32, np.float64):
        raise BackendError(f"hugectr_layers_activations kernels support float32 and float64, got {dtype}; "
                           "run this layer in fp32 (mixed precision is not implemented here yet)")
    for a in arrays:
        if a.dtype != dtype or a.size != size:
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
    _run("elu_fwd", dtype, x.size, (x, dtype.type(alpha), out))
    return out


def elu_bwd(dy, x, alpha, out):
    dtype = _check(dy, x, out)
    _run("elu_bwd", dtype, dy.size, (dy, x, dtype.type(alpha), out))
    return out


def dropout_fwd(x, rand, rate, mask, out):
    dtype = _check(x, rand, mask, out)
    _run("dropout_fwd", dtype, x.size, (x, rand, dtype.type(rate), mask, out))
    return mask, out


def dropout_bwd(dy, mask, out):
    _run("dropout_bwd", _check(dy, mask, out), dy.size, (dy, mask, out))
    return out
