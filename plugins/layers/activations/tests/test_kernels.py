"""reference.py against the layers' NumPy formulas, GPU twins of every kernel, package data."""
import importlib.resources
import subprocess
import sys

import numpy as np
import pytest

from hugectr_layers_activations import reference

DTYPES = [np.float32, np.float64, np.float16]
KERNEL_NAMES = ["relu_fwd", "relu_bwd", "sigmoid_fwd", "sigmoid_bwd", "elu_fwd", "elu_bwd", "dropout_fwd", "dropout_bwd",
                "dice_stats", "dice_fwd", "dice_bwd_stats", "dice_bwd"]


def test_kernels_cu_is_package_data():
    cu = importlib.resources.files("hugectr_layers_activations").joinpath("kernels.cu")
    assert cu.is_file()
    text = cu.read_text()
    for name in KERNEL_NAMES:
        assert f"void {name}(" in text
        assert hasattr(reference, name)


def test_import_does_not_import_cupy():
    code = "import sys, hugectr_layers_activations, hugectr_layers_activations.kernels; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_reference_formulas():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    dy = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    out = np.empty_like(x)
    np.testing.assert_array_equal(reference.relu_fwd(x, out.copy()), np.maximum(x, 0))
    np.testing.assert_allclose(reference.sigmoid_fwd(x, out.copy()), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(reference.elu_fwd(x, 1.5, out.copy()), np.where(x > 0, x, 1.5 * np.expm1(x)))
    np.testing.assert_allclose(reference.elu_bwd(dy, x, 1.5, out.copy()), np.where(x > 0, dy, dy * 1.5 * np.exp(x)))
    rand = np.array([0.1, 0.5, 0.2, 0.9, 0.25], np.float32)
    mask, y = reference.dropout_fwd(x, rand, 0.25, np.empty(5, np.float32), out.copy())
    np.testing.assert_array_equal(mask, np.array([0.0, 4 / 3, 0.0, 4 / 3, 4 / 3], np.float32))
    np.testing.assert_array_equal(y, x * mask)
    np.testing.assert_array_equal(reference.dropout_bwd(dy, mask, out.copy()), dy * mask)


def _random(shape, dtype, seed, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def _tol(dtype):
    """fp16: both twins compute in float32 and round once; one fp16 ulp apart at most."""
    return {np.float32: {"rtol": 1e-6, "atol": 1e-7}, np.float64: {"rtol": 1e-14, "atol": 1e-15},
            np.float16: {"rtol": 2e-3, "atol": 2e-3}}[np.dtype(dtype).type]


SHAPES = [(1,), (1000, 37), (3, 5, 129)]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["relu_fwd", "sigmoid_fwd"])
def test_twin_unary_fwd(gpu_xp, dtype, shape, name):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_activations import kernels

    x = _random(shape, dtype, 0)
    assert_twins(getattr(reference, name), getattr(kernels, name), x, np.zeros_like(x), **_tol(dtype))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["relu_bwd", "sigmoid_bwd"])
def test_twin_bwd_from_top(gpu_xp, dtype, shape, name):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_activations import kernels

    dy = _random(shape, dtype, 1)
    y = reference.sigmoid_fwd(_random(shape, dtype, 2), np.zeros(shape, dtype))
    if name == "relu_bwd":
        y = y - dtype(0.5)  # half of the entries are masked
    assert_twins(getattr(reference, name), getattr(kernels, name), dy, y, np.zeros_like(dy), **_tol(dtype))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_twin_elu(gpu_xp, dtype, shape):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_activations import kernels

    x, dy = _random(shape, dtype, 3), _random(shape, dtype, 4)
    assert_twins(reference.elu_fwd, kernels.elu_fwd, x, 0.7, np.zeros_like(x), **_tol(dtype))
    assert_twins(reference.elu_bwd, kernels.elu_bwd, dy, x, 0.7, np.zeros_like(x), **_tol(dtype))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.9])
def test_twin_dropout(gpu_xp, dtype, shape, rate):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_activations import kernels

    x, dy = _random(shape, dtype, 5), _random(shape, dtype, 6)
    rand = np.random.default_rng(7).random(shape, dtype=np.float32)
    mask0 = np.zeros(shape, np.float32)
    exact = {"rtol": 0, "atol": 0} if dtype != np.float16 else _tol(dtype)
    assert_twins(reference.dropout_fwd, kernels.dropout_fwd, x, rand, rate, mask0, np.zeros_like(x), **exact)
    mask = reference.dropout_fwd(x, rand, rate, mask0.copy(), np.zeros_like(x))[0]
    assert_twins(reference.dropout_bwd, kernels.dropout_bwd, dy, mask, np.zeros_like(dy), **exact)
