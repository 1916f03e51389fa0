"""reference.py semantics, GPU twins of every kernel, and kernels.cu as package data."""
import importlib.resources
import subprocess
import sys

import numpy as np
import pytest

from hugectr_core.testing import column_sum_tolerance
from hugectr_layers_dense import reference

DTYPES = [np.float32, np.float64, np.float16]
# float16 twins: inputs are exact in fp16 and both sides compute in float32, so they differ by at most
# one rounding of the result (and summation order for bias_grad): rtol 1e-3 covers a half ulp.
HALF_RTOL = 1e-3


def test_kernels_cu_is_package_data():
    cu = importlib.resources.files("hugectr_layers_dense").joinpath("kernels.cu")
    assert cu.is_file()
    text = cu.read_text()
    for name in ("bias_act_fwd", "relu_bwd", "bias_grad"):
        assert f"void {name}(" in text
    assert "HCTR_GRID_STRIDE_LOOP" in text and "#define" not in text  # the core prelude's macros only


def test_kernels_are_instantiated_for_float_double_and_half():
    from hugectr_layers_dense.kernels import KERNELS

    for name in ("bias_act_fwd", "relu_bwd", "bias_grad"):
        for t in ("float", "double", "__half"):
            assert f"{name}<{t}>" in KERNELS.name_expressions


def test_reference_float16_rounds_once_from_float32():
    y = np.array([[1000.0, -3.0]], np.float16)
    b = np.array([[0.3, 1.0]], np.float16)
    out = reference.bias_act_fwd(y.copy(), b, True)
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, (y.astype(np.float32) + b.astype(np.float32)).clip(0).astype(np.float16))


def test_reference_bias_grad_ignores_ones_vector():
    dy = np.random.default_rng(3).standard_normal((10, 40))
    a, b = np.zeros((1, 40)), np.zeros((1, 40))
    reference.bias_grad(dy, a)
    reference.bias_grad(dy, b, np.ones(10))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[0], dy.sum(axis=0), rtol=1e-12)


def test_import_does_not_import_cupy():
    code = "import sys, hugectr_layers_dense, hugectr_layers_dense.kernels; print('cupy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_reference_bias_act_fwd():
    y = np.array([[-2.0, 0.5, 1.0], [3.0, -1.0, 0.0]])
    b = np.array([[1.0, -1.0, 0.5]])
    np.testing.assert_array_equal(reference.bias_act_fwd(y.copy(), b, False), y + b)
    np.testing.assert_array_equal(reference.bias_act_fwd(y.copy(), b, True), np.maximum(y + b, 0))
    np.testing.assert_array_equal(reference.bias_act_fwd(y.copy(), None, True), np.maximum(y, 0))


def test_reference_relu_bwd_and_bias_grad():
    dy = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[0.0, 5.0], [1.0, 0.0]])
    np.testing.assert_array_equal(reference.relu_bwd(dy, y, np.empty_like(dy)), [[0.0, 2.0], [3.0, 0.0]])
    out = np.empty((1, 2))
    np.testing.assert_array_equal(reference.bias_grad(dy, out), [[4.0, 6.0]])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("shape", [(1000, 37), (1000, 64), (300, 1024), (64, 24), (3, 8)])  # 37: scalar kernel
def test_twin_bias_act_fwd(gpu_xp, dtype, relu, with_bias, shape):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_dense import kernels

    rng = np.random.default_rng(0)
    y = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal((1, shape[1])).astype(dtype) if with_bias else None
    rtol = HALF_RTOL if dtype == np.float16 else 0
    assert_twins(reference.bias_act_fwd, kernels.bias_act_fwd, y, b, relu, rtol=rtol, atol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_relu_bwd(gpu_xp, dtype):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_dense import kernels

    rng = np.random.default_rng(1)
    dy = rng.standard_normal((513, 65)).astype(dtype)
    y = np.maximum(rng.standard_normal((513, 65)), 0).astype(dtype)
    assert_twins(reference.relu_bwd, kernels.relu_bwd, dy, y, np.zeros_like(dy), rtol=0, atol=0)
    # in place (out aliases dy), as MLP uses it
    assert_twins(lambda d, yy: reference.relu_bwd(d, yy, d), lambda d, yy: kernels.relu_bwd(d, yy, d),
                 dy, y, rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (65536, 1), (1000, 3), (999, 5), (1000, 33), (7, 2049), (300, 96)])
def test_twin_bias_grad(gpu_xp, dtype, shape):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_dense import kernels

    dy = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    rtol, atol = column_sum_tolerance(dtype, shape[0])
    assert_twins(reference.bias_grad, kernels.bias_grad, dy, np.zeros((1, shape[1]), dtype), rtol=rtol, atol=atol)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1000, 3), (999, 31), (1000, 32), (7, 2049), (4096, 1024)])
def test_twin_bias_grad_with_ones_vector(gpu_xp, dtype, shape):
    """With the ones workspace: GEMM ``ones @ dy`` from 32 columns on, the kernel below."""
    from hugectr_core.testing import assert_twins
    from hugectr_layers_dense import kernels

    dy = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    ones = np.ones(shape[0], dtype)
    rtol, atol = column_sum_tolerance(dtype, shape[0])
    assert_twins(reference.bias_grad, kernels.bias_grad, dy, np.zeros((1, shape[1]), dtype), ones,
                 rtol=rtol, atol=atol)
