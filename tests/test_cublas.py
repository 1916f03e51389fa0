"""hugectr_core.cublas: the cuBLAS argument mappings, checked on the CPU against a column-major
emulation of cublasGemmEx / cublasGemmStridedBatchedEx (hugectr_core.testing.cublas_emulation). The
calls themselves run in the plugins' GPU tests (dense weight gradients, Interaction GEMMs)."""
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
