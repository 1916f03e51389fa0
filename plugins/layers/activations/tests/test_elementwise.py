"""ReLU, Sigmoid, ELU: shapes, forward values, gradients, errors, JSON."""
import numpy as np
import pytest

from hugectr_core.errors import LayerError
from hugectr_core.testing import check_layer_gradients, make_layer, run_layer


def away_from_zero(shape, seed):
    """Random values with |x| >= 0.05, so finite differences never straddle a kink."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.where(np.abs(x) < 0.05, 0.5, x)


@pytest.mark.parametrize("type_name", ["ReLU", "Sigmoid", "ELU"])
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 4), (2, 1, 3, 2)])
def test_shape_preserving_any_rank(type_name, shape):
    layer = make_layer(type_name, ["x"], ["y"])
    assert layer.infer_shapes([shape]) == [shape]
    y = run_layer(layer, [np.zeros(shape)], [])["tops"][0]
    assert y.shape == shape and not np.isnan(y).any()


@pytest.mark.parametrize("type_name", ["ReLU", "Sigmoid", "ELU"])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2)])
def test_gradients(type_name, shape):
    check_layer_gradients(make_layer(type_name, ["x"], ["y"]), [away_from_zero(shape, 0)])


def test_elu_gradients_with_alpha():
    check_layer_gradients(make_layer("ELU", ["x"], ["y"], elu_alpha=0.3), [away_from_zero((5, 4), 1)])


def test_relu_values():
    x = np.array([[-2.0, -0.0, 0.0, 3.5]])
    res = run_layer(make_layer("ReLU", ["x"], ["y"]), [x], [], top_grads=[np.full((1, 4), 7.0)])
    np.testing.assert_array_equal(res["tops"][0], np.maximum(x, 0))
    np.testing.assert_array_equal(res["bottom_grads"][0], [[0.0, 0.0, 0.0, 7.0]])


def test_sigmoid_values_and_extremes():
    x = np.array([[-800.0, -3.0, 0.0, 2.0, 800.0]])
    with np.errstate(over="raise", invalid="raise"):  # the stable form never overflows
        y = run_layer(make_layer("Sigmoid", ["x"], ["y"]), [x], [])["tops"][0]
    np.testing.assert_allclose(y, [[0.0, 1 / (1 + np.exp(3.0)), 0.5, 1 / (1 + np.exp(-2.0)), 1.0]], rtol=1e-14)


def test_sigmoid_backward_uses_saved_top():
    x = np.array([[-1.0, 0.5]])
    dy = np.array([[2.0, 3.0]])
    res = run_layer(make_layer("Sigmoid", ["x"], ["y"]), [x], [], top_grads=[dy])
    y = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(res["bottom_grads"][0], dy * y * (1 - y), rtol=1e-14)


def test_elu_values():
    x = np.array([[-2.0, -0.5, 0.0, 1.5]])
    y = run_layer(make_layer("ELU", ["x"], ["y"], elu_alpha=0.7), [x], [])["tops"][0]
    np.testing.assert_allclose(y, np.where(x > 0, x, 0.7 * (np.exp(x) - 1)), rtol=1e-14)


def test_float32_stays_float32():
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    for name in ("ReLU", "Sigmoid", "ELU"):
        res = run_layer(make_layer(name, ["x"], ["y"]), [x], [], top_grads=[np.ones_like(x)])
        assert res["tops"][0].dtype == np.float32 and res["bottom_grads"][0].dtype == np.float32


def test_json_params():
    assert make_layer("ReLU", ["x"], ["y"]).json_params() == {}
    assert make_layer("Sigmoid", ["x"], ["y"]).json_params() == {}
    assert make_layer("ELU", ["x"], ["y"], elu_alpha=0.25).json_params() == {"elu_param": {"alpha": 0.25}}


@pytest.mark.parametrize("type_name", ["ReLU", "Sigmoid", "ELU", "Dropout"])
def test_wrong_number_of_bottoms_or_tops(type_name):
    with pytest.raises(LayerError, match="bottom"):
        make_layer(type_name, ["a", "b"], ["y"])
    with pytest.raises(LayerError, match="top"):
        make_layer(type_name, ["a"], ["y", "z"])


@pytest.mark.parametrize("bad", [float("nan"), "1", None])
def test_elu_alpha_must_be_a_number(bad):
    with pytest.raises(LayerError, match="elu_alpha"):
        make_layer("ELU", ["x"], ["y"], elu_alpha=bad)


@pytest.mark.gpu
@pytest.mark.parametrize("type_name", ["ReLU", "Sigmoid", "ELU"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_layer_matches_numpy(gpu_xp, type_name, dtype):
    cp = gpu_xp
    layer = make_layer(type_name, ["x"], ["y"], elu_alpha=0.8)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((33, 7, 5)) * 4).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    ref = run_layer(layer, [x], [], top_grads=[dy])
    dev = run_layer(layer, [cp.asarray(x)], [], top_grads=[cp.asarray(dy)])
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(cp.asnumpy(dev["tops"][0]), ref["tops"][0], rtol=tol, atol=tol)
    np.testing.assert_allclose(cp.asnumpy(dev["bottom_grads"][0]), ref["bottom_grads"][0], rtol=tol, atol=tol)
