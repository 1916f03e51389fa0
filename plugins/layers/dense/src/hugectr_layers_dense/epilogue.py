"""``y = relu?(x @ W + b)`` as one cuBLASLt GEMM with a bias (+ReLU) epilogue, through nvmath-python.

Optional: used when ``nvmath-python`` is installed (``pip install 'hugectr-core[gpu]'``), else the
layers run the GEMM and then ``bias_act_fwd`` (one more pass over y). DESIGN.md section 8: the epilogue
removes that pass (0.6 ms of a 10 ms DLRM step in TF32 on an H100).

cuBLASLt adds the bias along the rows of its column-major result, so the row-major ``y = x @ W``
is computed as ``yᵀ = Wᵀ @ xᵀ`` on transposed views (no copies), written in place into ``y``.
A stateful ``Matmul`` is planned once per (operands, shapes, dtype, compute type) and re-executed:
the engine's buffers keep their addresses from ``compile()`` on, so each layer stage plans once.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from hugectr_core import backend, cublas

MAX_PLANS = 256  # planned GEMMs kept (a model has a few per network; tests make fresh arrays)
_PLANS: OrderedDict = OrderedDict()
_LOCK = threading.Lock()  # one worker thread per GPU shares the cache (vvgpu in one process)
enabled = True  # tests switch the fused path off to compare it with the two-pass one


def _nvmath():
    try:
        import nvmath.linalg.advanced as advanced  # noqa: PLC0415 - optional dependency
    except ImportError:
        return None
    return advanced


def available() -> bool:
    return enabled and _nvmath() is not None


def _compute_type(advanced, dtype):
    """nvmath's compute type matching our cuBLAS calls (TF32 as enable_tf32_compute set it); None: no
    fused path for this dtype (float64 keeps the two-pass path)."""
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return advanced.MatmulComputeType.COMPUTE_32F
    if dtype == np.float32:
        fast = cublas.compute_type(np.float32) == cublas.CUBLAS_COMPUTE_32F_FAST_TF32
        return advanced.MatmulComputeType.COMPUTE_32F_FAST_TF32 if fast else advanced.MatmulComputeType.COMPUTE_32F
    return None


def linear(x_mk, w_kn, bias_n, relu: bool, y_mn) -> bool:
    """``y = relu?(x @ W + b)`` in one GEMM; False (nothing written) when the fused path cannot run."""
    # several GPUs driven from this process's threads: nvmath's per-process device state broke the
    # 2-GPU equality tests (H100 x2, 2026-11-27), so those runs keep the two-pass path
    advanced = _nvmath() if enabled and not backend.drives_devices_from_threads() else None
    if advanced is None or bias_n is None:
        return False
    compute = _compute_type(advanced, y_mn.dtype)
    if compute is None:
        return False
    key = (y_mn.device.id, x_mk.data.ptr, w_kn.data.ptr, bias_n.data.ptr, y_mn.data.ptr, x_mk.shape, w_kn.shape,
           y_mn.dtype.str, bool(relu), int(compute))
    with _LOCK:
        plan = _PLANS.get(key)
        if plan is not None:
            _PLANS.move_to_end(key)
    if plan is None:
        plan = _plan(advanced, x_mk, w_kn, bias_n, relu, y_mn, compute)
        with _LOCK:
            _PLANS[key] = plan
            evicted = _PLANS.popitem(last=False)[1] if len(_PLANS) > MAX_PLANS else None
        if evicted is not None:
            evicted.free()
    plan.execute()
    return True


def _plan(advanced, x_mk, w_kn, bias_n, relu, y_mn, compute):
    options = advanced.MatmulOptions(inplace=True, compute_type=compute, device_id=y_mn.device.id)
    matmul = advanced.Matmul(w_kn.T, x_mk.T, c=y_mn.T, beta=0.0, options=options)
    epilog = advanced.MatmulEpilog.RELU_BIAS if relu else advanced.MatmulEpilog.BIAS
    matmul.plan(epilog=epilog, epilog_inputs={"bias": bias_n.reshape(-1)})
    return matmul
