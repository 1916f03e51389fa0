"""CuPy launchers of ``kernels.cu``, with the names and signatures of their NumPy twins in ``reference.py``.

Importing this module does not import CuPy; the kernels compile on first use. Inputs must be
C-contiguous (the engine's buffers are); statistics buffers are float64.

Example:
    >>> import cupy  # doctest: +SKIP
    >>> x = cupy.ones((4, 3), dtype=cupy.float32)  # doctest: +SKIP
    >>> bn_stats(x, 1e-5, cupy.empty(3), cupy.empty(3))  # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule

KERNEL_NAMES = ("bn_stats", "bn_apply", "bn_bwd", "ln_fwd", "ln_bwd_data", "ln_bwd_params")
DTYPES = ("float", "double", "__half")
KERNELS = KernelModule("hugectr_layers_normalization", [f"{n}<{t}>" for n in KERNEL_NAMES for t in DTYPES])


def _check(x, *same_dtype, stats=()):
    for a in (x, *same_dtype):
        if a.dtype != x.dtype:
            raise BackendError(f"hugectr_layers_normalization kernels: dtype {a.dtype} differs from the input's {x.dtype}")
    for a in stats:
        if a.dtype != np.float64:
            raise BackendError(f"hugectr_layers_normalization kernels: statistics must be float64, got {a.dtype}")
    for a in (x, *same_dtype, *stats):
        if not a.flags.c_contiguous:
            raise BackendError("hugectr_layers_normalization kernels need C-contiguous arrays (the engine's buffers are)")
    return x.dtype


def bn_stats(x_bc, eps, mean_c, inv_std_c):
    dtype = _check(x_bc, stats=(mean_c, inv_std_c))
    b, c = x_bc.shape
    KERNELS.launch("bn_stats", dtype, c, (x_bc, np.int64(b), np.int64(c), np.float64(eps), mean_c, inv_std_c))
    return mean_c, inv_std_c


def bn_apply(x_bc, mean_c, inv_std_c, gamma_c, beta_c, y_bc):
    dtype = _check(x_bc, gamma_c, beta_c, y_bc, stats=(mean_c, inv_std_c))
    b, c = x_bc.shape
    KERNELS.launch("bn_apply", dtype, c, (x_bc, mean_c, inv_std_c, gamma_c, beta_c, np.int64(b), np.int64(c), y_bc))
    return y_bc


def bn_bwd(dy_bc, x_bc, mean_c, inv_std_c, gamma_c, dx_bc, dgamma_c, dbeta_c):
    write_dx = dx_bc is not None
    dx = dx_bc if write_dx else dy_bc  # never written when write_dx is 0
    dtype = _check(x_bc, dy_bc, gamma_c, dx, dgamma_c, dbeta_c, stats=(mean_c, inv_std_c))
    b, c = x_bc.shape
    KERNELS.launch("bn_bwd", dtype, c, (dy_bc, x_bc, mean_c, inv_std_c, gamma_c, np.int64(b), np.int64(c),
                                        np.int32(write_dx), dx, dgamma_c, dbeta_c))
    return dx_bc, dgamma_c, dbeta_c


def ln_fwd(x_rd, gamma_d, beta_d, eps, mean_r, inv_std_r, y_rd):
    dtype = _check(x_rd, gamma_d, beta_d, y_rd, stats=(mean_r, inv_std_r))
    r, d = x_rd.shape
    KERNELS.launch("ln_fwd", dtype, r, (x_rd, gamma_d, beta_d, np.float64(eps), np.int64(r), np.int64(d),
                                        mean_r, inv_std_r, y_rd))
    return mean_r, inv_std_r, y_rd


def ln_bwd_data(dy_rd, x_rd, mean_r, inv_std_r, gamma_d, dx_rd):
    dtype = _check(x_rd, dy_rd, gamma_d, dx_rd, stats=(mean_r, inv_std_r))
    r, d = x_rd.shape
    KERNELS.launch("ln_bwd_data", dtype, r, (dy_rd, x_rd, mean_r, inv_std_r, gamma_d, np.int64(r), np.int64(d), dx_rd))
    return dx_rd


def ln_bwd_params(dy_rd, x_rd, mean_r, inv_std_r, dgamma_d, dbeta_d):
    dtype = _check(x_rd, dy_rd, dgamma_d, dbeta_d, stats=(mean_r, inv_std_r))
    r, d = x_rd.shape
    KERNELS.launch("ln_bwd_params", dtype, d, (dy_rd, x_rd, mean_r, inv_std_r, np.int64(r), np.int64(d),
                                               dgamma_d, dbeta_d))
    return dgamma_d, dbeta_d
