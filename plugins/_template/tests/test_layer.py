"""Tests of the example layer: registration, values, gradients, float16, GPU twins, package data.

They use the helpers hugectr-core ships to plugin authors (``hugectr_core.testing``):
``make_layer`` builds a layer the way ``Model.compile`` does, ``run_layer`` runs it on fresh
buffers, ``check_layer_gradients`` compares backward with central differences, ``assert_twins``
compares a CUDA kernel with its NumPy twin. Tests marked ``gpu`` skip where CuPy has no GPU.
"""
import importlib.resources
import subprocess
import sys

import numpy as np
import pytest

import hugectr
from hugectr_core.plugins import registry
from hugectr_core.testing import assert_twins, check_layer_gradients, make_layer, run_layer

PACKAGE = "hugectr_layers_example"  # the import name: rename it with the package
LAYER = "Swish"                     # the entry-point name (HugeCTR type name)


def swish_formula(x):
    return x / (1 + np.exp(-x))


def swish_grad_formula(x):
    s = 1 / (1 + np.exp(-x))
    return s * (1 + x * (1 - s))


def layer():
    return make_layer(LAYER, ["x"], ["y"])


def test_registered_through_the_entry_point():
    assert LAYER in registry("layers").names()
    assert registry("layers").load(LAYER).__module__ == f"{PACKAGE}.layer"
    assert getattr(hugectr.Layer_t, LAYER) is not None


def test_kernels_cu_is_package_data():
    cu = importlib.resources.files(PACKAGE).joinpath("kernels.cu")
    assert cu.is_file()
    text = cu.read_text()
    assert "void swish_fwd(" in text and "void swish_bwd(" in text
    assert "HCTR_GRID_STRIDE_LOOP" in text


def test_import_touches_no_gpu():
    code = f"import sys, {PACKAGE}, {PACKAGE}.kernels; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_shape_is_kept():
    assert layer().infer_shapes([(8, 3)]) == [(8, 3)]
    assert layer().infer_shapes([(4, 5, 6)]) == [(4, 5, 6)]


def test_forward_and_backward_match_the_formula():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 7)) * 4
    dy = rng.standard_normal((16, 7))
    res = run_layer(layer(), [x], [], top_grads=[dy])
    np.testing.assert_allclose(res["tops"][0], swish_formula(x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res["bottom_grads"][0], dy * swish_grad_formula(x), rtol=1e-12, atol=1e-15)


def test_no_overflow_for_large_inputs():
    x = np.array([[-1000.0, -50.0, 50.0, 1000.0]])
    with np.errstate(over="raise"):
        y = run_layer(layer(), [x], [])["tops"][0]
    np.testing.assert_allclose(y, [[0.0, -50 * np.exp(-50), 50.0, 1000.0]], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4)])
def test_numerical_gradients(shape):
    check_layer_gradients(layer(), [np.random.default_rng(1).standard_normal(shape)])


def test_numpy_path_is_the_reference():
    from hugectr_layers_example import reference

    x = np.random.default_rng(2).standard_normal((9, 4)).astype(np.float32)
    dy = np.ones_like(x)
    res = run_layer(layer(), [x], [], top_grads=[dy])
    np.testing.assert_array_equal(res["tops"][0], reference.swish_fwd(x, np.empty_like(x)))
    np.testing.assert_array_equal(res["bottom_grads"][0], reference.swish_bwd(dy, x, np.empty_like(x)))


def test_float16_close_to_float64():
    """float16 keeps 11 significant bits: each value is rounded once from a float32 computation,
    so with inputs exactly representable in fp16 the error is within rtol 1e-3 plus atol 1e-3."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((32, 8)) * 3).astype(np.float16)
    dy = rng.standard_normal((32, 8)).astype(np.float16)
    half = run_layer(layer(), [x], [], top_grads=[dy])
    exact = run_layer(layer(), [x.astype(np.float64)], [], top_grads=[dy.astype(np.float64)])
    assert half["tops"][0].dtype == np.float16
    for key in ("tops", "bottom_grads"):
        np.testing.assert_allclose(half[key][0].astype(np.float64), exact[key][0], rtol=1e-3, atol=1e-3, err_msg=key)


# -- GPU twins: every kernel against its NumPy twin ---------------------------------------------
TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5, np.float16: 2e-3}  # fp32: expf vs exp; fp16: 1 ulp of the store


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_twin_swish_fwd(gpu_xp, dtype):
    from hugectr_layers_example import kernels, reference

    x = (np.random.default_rng(4).standard_normal((1000, 33)) * 5).astype(dtype)
    tol = TOLERANCE[dtype]
    assert_twins(reference.swish_fwd, kernels.swish_fwd, x, np.zeros_like(x), rtol=tol, atol=tol)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_twin_swish_bwd(gpu_xp, dtype):
    from hugectr_layers_example import kernels, reference

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((513, 65)) * 5).astype(dtype)
    dy = rng.standard_normal((513, 65)).astype(dtype)
    tol = TOLERANCE[dtype]
    assert_twins(reference.swish_bwd, kernels.swish_bwd, dy, x, np.zeros_like(x), rtol=tol, atol=tol)
    # in place: dx aliases dy
    assert_twins(lambda d, v: reference.swish_bwd(d, v, d), lambda d, v: kernels.swish_bwd(d, v, d),
                 dy, x, rtol=tol, atol=tol)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_layer_on_gpu_matches_numpy(gpu_xp, dtype):
    cp = gpu_xp
    rng = np.random.default_rng(6)
    x = rng.standard_normal((64, 10)).astype(dtype)
    dy = rng.standard_normal((64, 10)).astype(dtype)
    ref = run_layer(layer(), [x], [], top_grads=[dy])
    dev = run_layer(layer(), [cp.asarray(x)], [], top_grads=[cp.asarray(dy)])
    tol = TOLERANCE[dtype]
    for key in ("tops", "bottom_grads"):
        np.testing.assert_allclose(cp.asnumpy(dev[key][0]), ref[key][0], rtol=tol, atol=tol, err_msg=key)
