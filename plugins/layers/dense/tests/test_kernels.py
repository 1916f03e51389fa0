"""reference.py semantics, GPU twins of every kernel, and kernels.cu as package data."""
import importlib.resources
import subprocess
import sys

import numpy as np
import pytest

from hugectr_layers_dense import reference

DTYPES = [np.float32, np.float64]


def test_kernels_cu_is_package_data():
    cu = importlib.resources.files("hugectr_layers_dense").joinpath("kernels.cu")
    assert cu.is_file()
    text = cu.read_text()
    for name in ("bias_act_fwd", "relu_bwd", "bias_grad"):
        assert f"void {name}(" in text


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
def test_twin_bias_act_fwd(gpu_xp, dtype, relu, with_bias):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_dense import kernels

    rng = np.random.default_rng(0)
    y = rng.standard_normal((1000, 37)).astype(dtype)
    b = rng.standard_normal((1, 37)).astype(dtype) if with_bias else None
    assert_twins(reference.bias_act_fwd, kernels.bias_act_fwd, y, b, relu, rtol=0, atol=0)


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
    # summation order differs from NumPy's pairwise sum: the error grows with the number of rows
    atol = 1e-6 * shape[0] + 1e-5 if dtype == np.float32 else 1e-11 * shape[0]
    rtol = 1e-4 if dtype == np.float32 else 1e-11
    assert_twins(reference.bias_grad, kernels.bias_grad, dy, np.zeros((1, shape[1]), dtype), rtol=rtol, atol=atol)
