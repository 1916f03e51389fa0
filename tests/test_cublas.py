"""hugectr_core.cublas: the cuBLAS argument mappings, checked on the CPU against a column-major
emulation of cublasGemmEx / cublasGemmStridedBatchedEx (hugectr_core.testing.cublas_emulation). The
calls themselves run in the plugins' GPU tests (dense weight gradients, Interaction GEMMs)."""
import sys
import types

import numpy as np
import pytest

from hugectr_core import cublas
from hugectr_core.errors import BackendError
from hugectr_core.testing.cublas_emulation import emulate_gemm, emulate_gemm_strided_batched

RNG = np.random.default_rng(21)


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("rows,inner,cols", [(4, 5, 6), (1, 7, 3), (6, 1, 2), (3, 4, 1), (33, 17, 9)])
def test_gemm_arguments_compute_row_major_product(trans_a, trans_b, rows, inner, cols):
    a = RNG.standard_normal((inner, rows) if trans_a else (rows, inner))
    b = RNG.standard_normal((cols, inner) if trans_b else (inner, cols))
    expected = (a.T if trans_a else a) @ (b.T if trans_b else b)
    args = cublas.gemm_args(a.shape, b.shape, (rows, cols), trans_a, trans_b)
    out = np.full((rows, cols), np.nan)
    emulate_gemm(args, b, a, out)  # cuBLAS's first operand is b, its second a
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_weight_grad_arguments_read_x_transposed_in_place():
    m, k, n = 6, 3, 4
    x, dy = RNG.standard_normal((m, k)), RNG.standard_normal((m, n))
    args = cublas.gemm_args(x.shape, dy.shape, (k, n), trans_a=True)
    # column-major dW^T (n x k) = dy^T (n x m, no flag) @ x (x's buffer is x^T: transposed by the flag)
    assert (args["transa"], args["transb"]) == (cublas.CUBLAS_OP_N, cublas.CUBLAS_OP_T)
    assert (args["m"], args["n"], args["k"], args["lda"], args["ldb"], args["ldc"]) == (n, k, m, n, k, n)
    dw = np.full((k, n), np.nan)
    emulate_gemm(args, dy, x, dw)
    np.testing.assert_allclose(dw, x.T @ dy, rtol=1e-12)


@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("batch,rows,inner,cols", [(3, 4, 5, 6), (2, 1, 7, 3), (2, 27, 8, 27), (1, 5, 1, 2)])
def test_batched_gemm_arguments_compute_row_major_product(trans_b, batch, rows, inner, cols):
    a = RNG.standard_normal((batch, rows, inner))
    b = RNG.standard_normal((batch, cols, inner) if trans_b else (batch, inner, cols))
    out = RNG.standard_normal((batch, rows, cols))
    expected = a @ (b.transpose(0, 2, 1) if trans_b else b) + 0.5 * out
    args = cublas.gemm_strided_batched_args(a.shape, b.shape, out.shape, trans_b)
    emulate_gemm_strided_batched(args, b, a, out, beta=0.5)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_mismatched_shapes_are_refused():
    with pytest.raises(BackendError, match="do not form"):
        cublas.gemm_args((6, 3), (5, 4), (3, 4), trans_a=True)
    with pytest.raises(BackendError, match="do not form"):
        cublas.gemm_args((6, 3), (6, 4), (4, 3), trans_a=True)
    with pytest.raises(BackendError, match="do not form"):
        cublas.gemm_strided_batched_args((2, 3, 4), (2, 5, 6), (2, 3, 6))


def test_compute_type_follows_the_dtype():
    assert cublas.compute_type(np.float64) == cublas.CUBLAS_COMPUTE_64F
    assert cublas.compute_type(np.float16) == cublas.CUBLAS_COMPUTE_32F
    assert cublas.compute_type(np.float32, allow_tf32=False) == cublas.CUBLAS_COMPUTE_32F
    # without CuPy (or with CuPy at its default) float32 sums are exact fp32
    assert cublas.compute_type(np.float32) in (cublas.CUBLAS_COMPUTE_32F, cublas.CUBLAS_COMPUTE_32F_FAST_TF32)


@pytest.mark.parametrize("beta", [0.0, 2.0])
def test_empty_products_need_no_gemm_and_keep_beta_c(beta):
    """k == 0: out = beta·out written here (cuBLAS may leave C untouched); empty outputs or batches: nothing."""
    out = np.full((2, 3), 1.5)
    assert cublas._nothing_to_multiply(out, cublas.gemm_args((2, 0), (0, 3), (2, 3)), beta)
    np.testing.assert_array_equal(out, np.full((2, 3), 1.5 * beta))
    assert cublas._nothing_to_multiply(np.empty((0, 3)), cublas.gemm_args((0, 4), (4, 3), (0, 3)), beta)
    assert cublas._nothing_to_multiply(np.empty((0, 2, 3)), {"batch": 0, "k": 4}, beta)
    assert not cublas._nothing_to_multiply(out, cublas.gemm_args((2, 4), (4, 3), (2, 3)), beta)


class _DeviceArray:
    """A NumPy array dressed as a CuPy one (``.data.ptr``): enough for the argument path of ``gemm``."""

    def __init__(self, array):
        self.array = array
        self.dtype, self.shape, self.flags, self.size = array.dtype, array.shape, array.flags, array.size
        self.data = type("Memory", (), {"ptr": array.ctypes.data})()


class _FakeLibcublas:
    def __init__(self, status):
        self.status, self.calls = status, []

    def __getattr__(self, name):
        def call(*args):
            self.calls.append((name, args))
            return self.status
        return call


@pytest.mark.parametrize("batched", [False, True])
def test_while_recording_gemms_go_to_libcublas_itself_with_the_full_argument_list(monkeypatch, batched):
    """CuPy refuses its cuBLAS wrappers while a CUDA graph records: the C functions take the same arguments."""
    lib = _FakeLibcublas(status=0)
    monkeypatch.setattr(cublas, "_recording", lambda: True)
    monkeypatch.setattr(cublas, "handle", lambda: 7)
    monkeypatch.setattr(cublas, "_c_api", lambda: lib)
    monkeypatch.setattr(cublas, "compute_type", lambda dtype, allow_tf32=True: cublas.CUBLAS_COMPUTE_32F)
    shape_a, shape_b, shape_out = ((2, 3, 4), (2, 4, 5), (2, 3, 5)) if batched else ((3, 4), (4, 5), (3, 5))
    a, b, out = (_DeviceArray(np.ones(s, np.float32)) for s in (shape_a, shape_b, shape_out))
    (cublas.gemm_strided_batched if batched else cublas.gemm)(a, b, out)
    name, args = lib.calls[0]
    assert name == ("cublasGemmStridedBatchedEx" if batched else "cublasGemmEx")
    assert len(args) == len(cublas._C_SIGNATURES[name]) and args[0] == 7
    lib.status = 13  # CUBLAS_STATUS_EXECUTION_FAILED
    with pytest.raises(BackendError, match=f"{name} failed with cuBLAS status 13 while recording"):
        (cublas.gemm_strided_batched if batched else cublas.gemm)(a, b, out)


@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True)])
def test_matmul_on_numpy_applies_the_transposes(trans_a, trans_b):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 3) if trans_a else (3, 4))
    b = rng.standard_normal((5, 4) if trans_b else (4, 5))
    out = np.empty((3, 5))
    cublas.matmul(np, a, b, out, trans_a=trans_a, trans_b=trans_b)
    np.testing.assert_allclose(out, (a.T if trans_a else a) @ (b.T if trans_b else b))


class _FakeStream:
    def __init__(self, ptr):
        self.ptr = ptr


def _fake_cupy(stream_ptr, device_id=0, handle=41):
    """Just the corner of CuPy that ``bind_handle`` touches: the current device, stream and cuBLAS handle."""
    cuda = types.SimpleNamespace(
        Device=lambda: types.SimpleNamespace(id=device_id),
        get_current_stream=lambda: _FakeStream(stream_ptr),
        device=types.SimpleNamespace(get_cublas_handle=lambda: handle))
    return types.SimpleNamespace(cuda=cuda)


def test_prepare_recording_binds_the_handle_to_the_recording_stream(monkeypatch):
    """CuPy's ``get_cublas_handle`` binds no stream; a handle left on the compute stream would run the
    recording's GEMMs there at once, outside the graph. So the recorder's preparation sets the stream."""
    bound, loaded = [], []
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(stream_ptr=0xCAFE))
    monkeypatch.setattr(cublas, "_cublas", lambda: types.SimpleNamespace(setStream=lambda h, s: bound.append((h, s))))
    monkeypatch.setattr(cublas, "_c_api", lambda: loaded.append(True))
    monkeypatch.setattr(cublas, "_BOUND_HANDLES", {})
    assert cublas.prepare_recording() == 41
    assert bound == [(41, 0xCAFE)] and loaded == [True]  # libcublas is loaded before the capture, not in it
    monkeypatch.setattr(cublas, "_recording", lambda: True)
    assert cublas.handle() == 41  # while recording: the handle bound before, with no CuPy call
    assert bound == [(41, 0xCAFE)]



_MAPS = """7f00-7f01 r-xp 00000000 08:01 11 /usr/lib/libcublas.so.13.1.0.3
7f02-7f03 r--p 00010000 08:01 11 /usr/lib/libcublas.so.13.1.0.3
7f04-7f05 r-xp 00000000 08:01 12 /site/nvidia/cublas/lib/libcublas.so.12
7f06-7f07 r-xp 00000000 08:01 13 /usr/lib/libcublasLt.so.13.1.0.3
""".splitlines(keepends=True)


def test_libcublas_path_is_the_copy_of_cupys_major_version():
    assert cublas.libcublas_path(_MAPS, version=130100) == "/usr/lib/libcublas.so.13.1.0.3"
    assert cublas.libcublas_path(_MAPS, version=120205) == "/site/nvidia/cublas/lib/libcublas.so.12"
    with pytest.raises(BackendError, match="found 0 copies of libcublas 11 in this process"):
        cublas.libcublas_path(_MAPS, version=11401)  # CUDA 11 numbering: major * 1000 + ...
    twice = _MAPS + ["7f08-7f09 r-xp 00000000 08:01 14 /opt/other/libcublas.so.13\n"]
    with pytest.raises(BackendError, match="found 2 copies of libcublas 13"):
        cublas.libcublas_path(twice, version=130100)
