"""BinaryCrossEntropyLoss on NumPy: values, padding rows, gradients, regulariser, errors."""
import importlib.resources

import numpy as np
import pytest

from hugectr_core.contracts import StepContext
from hugectr_core.enums import Regularizer_t
from hugectr_core.errors import LayerError
from hugectr_core.testing import check_layer_gradients, make_layer, run_layer
from hugectr_layers_losses import reference

RNG = np.random.default_rng(5)


def bce_layer(**args):
    return make_layer("BinaryCrossEntropyLoss", ["logit", "label"], ["loss"], **args)


def naive_bce(x, y):
    """The textbook form, fine for moderate logits."""
    p = 1 / (1 + np.exp(-x))
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_forward_is_mean_bce():
    x, y = RNG.standard_normal((8, 1)) * 3, RNG.integers(0, 2, (8, 1)).astype(float)
    loss = run_layer(bce_layer(), [x, y], [])["tops"][0]
    assert loss.shape == (1, 1)
    np.testing.assert_allclose(loss[0, 0], naive_bce(x, y).mean(), rtol=1e-12)


def test_stable_for_huge_logits():
    x = np.array([[800.0], [-800.0], [30.0], [-30.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    rows = np.empty_like(x)
    reference.bce_fwd(x, y, rows, 4)
    np.testing.assert_allclose(rows[:, 0], [800.0, 800.0, np.log1p(np.exp(-30.0)), np.log1p(np.exp(-30.0))])
    np.testing.assert_allclose(reference.sigmoid(x)[:, 0], [1.0, 0.0, 1 / (1 + np.exp(-30.0)), np.exp(-30) / (1 + np.exp(-30))])


def test_gradients_and_weight():
    layer = bce_layer()
    layer.weight = 0.7
    x, y = RNG.standard_normal((6, 1)), RNG.integers(0, 2, (6, 1)).astype(float)
    res = check_layer_gradients(layer, [x, y])
    p = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(res["bottom_grads"][0], (p - y) / 6 * 0.7)
    assert res["bottom_grads"][1] is None  # labels get no gradient
    np.testing.assert_allclose(res["tops"][0][0, 0], naive_bce(x, y).mean() * 0.7)


def test_padding_rows_are_ignored():
    layer = bce_layer()
    x, y = RNG.standard_normal((6, 1)), RNG.integers(0, 2, (6, 1)).astype(float)
    x[4:], y[4:] = 1e3, 0.0  # garbage in the padding rows would dominate if counted
    ctx = StepContext(xp=np, training=True, batch_size=6, current_batchsize=4, device_count=2, scaler=8.0)
    top, ws = np.full((1, 1), np.nan), {"row_loss": np.full((6, 1), np.nan)}
    layer.forward(ctx, [x, y], [top], [], ws)
    np.testing.assert_allclose(top[0, 0], naive_bce(x[:4], y[:4]).mean())
    grad = np.full((6, 1), np.nan)
    layer.backward(ctx, [x, y], [top], [], [grad, None], [], [], ws)
    p = 1 / (1 + np.exp(-x[:4]))
    np.testing.assert_allclose(grad[:4], (p - y[:4]) * 8.0 / (4 * 2))
    assert np.all(grad[4:] == 0)


def test_predict_is_sigmoid():
    x = RNG.standard_normal((5, 1))
    np.testing.assert_allclose(bce_layer().predict(np, x), 1 / (1 + np.exp(-x)))


def test_regularizer_is_exposed_not_applied():
    plain = bce_layer()
    assert plain.regularizer() is None and plain.json_params() == {}
    l2 = bce_layer(use_regularizer=True, regularizer_type=Regularizer_t.L2, **{"lambda": 1e-4})
    assert l2.regularizer() == ("L2", 1e-4)
    assert l2.json_params() == {"regularizer": "L2", "lambda": 1e-4}
    x, y = RNG.standard_normal((4, 1)), np.ones((4, 1))
    np.testing.assert_allclose(run_layer(l2, [x, y], [])["tops"][0], run_layer(plain, [x, y], [])["tops"][0])
    assert bce_layer(use_regularizer=True).regularizer() == ("L1", 0.0)


def test_errors():
    with pytest.raises(LayerError, match="same shape"):
        bce_layer().infer_shapes([(4, 1), (5, 1)])
    with pytest.raises(LayerError, match=r"\(B, 1\)"):
        bce_layer().infer_shapes([(4, 2), (4, 2)])
    with pytest.raises(LayerError, match="needs 2 bottom"):
        make_layer("BinaryCrossEntropyLoss", ["logit"], ["loss"])
    with pytest.raises(LayerError, match="lambda"):
        bce_layer(use_regularizer=True, **{"lambda": -1.0})


def test_kernels_cu_is_package_data():
    cu = importlib.resources.files("hugectr_layers_losses").joinpath("kernels.cu")
    assert cu.is_file()
    assert "__global__ void bce_fwd(" in cu.read_text() and "__global__ void bce_bwd(" in cu.read_text()
