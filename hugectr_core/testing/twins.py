"""Compare a CUDA kernel with its NumPy twin on the same inputs."""
from __future__ import annotations

import numpy as np


def to_xp(xp, *arrays):
    return [xp.asarray(a) if a is not None else None for a in arrays]


def assert_twins(reference_fn, gpu_fn, *host_args, rtol=1e-5, atol=1e-6):
    """Run ``reference_fn`` on NumPy arrays and ``gpu_fn`` on CuPy copies; compare every output.

    Both functions return an array or a tuple of arrays. Kernels using atomics must be compared
    with tolerances (never exact equality): pass rtol/atol accordingly.
    """
    import cupy

    ref = reference_fn(*[np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in host_args])
    dev = gpu_fn(*[cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in host_args])
    ref = ref if isinstance(ref, tuple) else (ref,)
    dev = dev if isinstance(dev, tuple) else (dev,)
    assert len(ref) == len(dev), "twins return different numbers of outputs"
    for i, (r, d) in enumerate(zip(ref, dev)):
        np.testing.assert_allclose(cupy.asnumpy(d), r, rtol=rtol, atol=atol, err_msg=f"output {i}")


def column_sum_tolerance(dtype, rows: int) -> tuple[float, float]:
    """(rtol, atol) for column sums of ``rows`` terms taken in another order than NumPy's pairwise sum:
    the error grows with the rows. float16 sums accumulate in float32 on both sides, so they differ by
    float32 order effects plus one final fp16 rounding (half an ulp: rtol 1e-3)."""
    if np.dtype(dtype) == np.float16:
        return 2e-3, 1e-6 * rows + 1e-3
    if np.dtype(dtype) == np.float32:
        return 1e-4, 1e-6 * rows + 1e-5
    return 1e-11, 1e-11 * rows
