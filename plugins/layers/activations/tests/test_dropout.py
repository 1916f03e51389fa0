"""Dropout: mask statistics and scaling, train vs eval, gradients, errors, workspace, JSON."""
import numpy as np
import pytest

from hugectr_core.errors import LayerError
from hugectr_core.testing import check_layer_gradients, make_layer, run_layer


def dropout(rate=0.3):
    return make_layer("Dropout", ["x"], ["y"], dropout_rate=rate)


def test_workspace_is_a_mask_of_the_bottom_shape():
    specs = dropout().workspace_specs([(8, 3, 2)])
    assert [(w.name, w.shape, w.dtype) for w in specs] == [("mask", (8, 3, 2), np.float32)]  # fp32 also under MP
    assert dropout().infer_shapes([(8, 3, 2)]) == [(8, 3, 2)]


def test_training_forward_is_inverted_dropout():
    rate = 0.3
    x = np.random.default_rng(0).standard_normal((200, 50))
    res = run_layer(dropout(rate), [x], [], seed=11)
    mask, y = res["ws"]["mask"], res["tops"][0]
    scale = np.float32(1) / (np.float32(1) - np.float32(rate))  # the mask is float32
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, scale}
    np.testing.assert_allclose(y, x * mask, rtol=1e-15)
    assert abs((mask == 0).mean() - rate) < 0.02  # 10 000 draws
    # the mask is exactly what the NumPy formula gives from the same generator draws
    uniforms = np.random.default_rng(11).random(x.shape, dtype=np.float32)
    np.testing.assert_array_equal(mask, np.where(uniforms >= np.float32(rate), scale, np.float32(0)))


def test_expected_value_is_preserved():
    x = np.ones((400, 250))
    y = run_layer(dropout(0.5), [x], [], seed=3)["tops"][0]
    assert abs(y.mean() - 1.0) < 0.02


def test_backward_uses_the_same_mask():
    rng = np.random.default_rng(1)
    x, dy = rng.standard_normal((30, 7)), rng.standard_normal((30, 7))
    res = run_layer(dropout(0.4), [x], [], top_grads=[dy], seed=5)
    np.testing.assert_array_equal(res["bottom_grads"][0], dy * res["ws"]["mask"])


def test_eval_is_identity():
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    res = run_layer(dropout(0.9), [x], [], top_grads=[dy], training=False)
    np.testing.assert_array_equal(res["tops"][0], x)
    np.testing.assert_array_equal(res["bottom_grads"][0], dy)


def test_rate_zero_keeps_everything():
    x = np.random.default_rng(4).standard_normal((5, 5))
    np.testing.assert_array_equal(run_layer(dropout(0.0), [x], [])["tops"][0], x)


@pytest.mark.parametrize("shape", [(6, 4), (2, 3, 4)])
def test_gradients(shape):
    # check_layer_gradients reseeds ctx.rng identically on every run, so the mask is fixed
    check_layer_gradients(dropout(0.5), [np.random.default_rng(6).standard_normal(shape)], seed=7)


def test_float16_forward_and_backward():
    x = np.random.default_rng(3).standard_normal((20, 10))
    dy = np.random.default_rng(4).standard_normal((20, 10))
    res = run_layer(dropout(0.25), [x.astype(np.float16)], [], top_grads=[dy.astype(np.float16)], seed=2)
    mask = res["ws"]["mask"]
    assert mask.dtype == np.float32 and res["tops"][0].dtype == np.float16
    np.testing.assert_allclose(res["tops"][0], (x * mask).astype(np.float16), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(res["bottom_grads"][0], (dy * mask).astype(np.float16), rtol=1e-3, atol=1e-3)


def test_float32_mask_and_output():
    x = np.ones((10, 10), dtype=np.float32)
    res = run_layer(dropout(0.25), [x], [], seed=0)
    assert res["tops"][0].dtype == np.float32
    assert set(np.unique(res["tops"][0])) <= {np.float32(0), np.float32(1) / np.float32(0.75)}


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, float("nan"), "0.5", None])
def test_rate_must_be_in_unit_interval(bad):
    with pytest.raises(LayerError, match="dropout_rate"):
        dropout(bad)


def test_json_params():
    assert dropout(0.3).json_params() == {"rate": 0.3}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_gpu_layer_properties(gpu_xp, dtype):
    """CuPy draws other uniforms than NumPy, so compare by the mask the GPU itself stored."""
    cp, rate = gpu_xp, 0.3
    rng = np.random.default_rng(8)
    x = rng.standard_normal((128, 3, 50)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    dev = run_layer(dropout(rate), [cp.asarray(x)], [], top_grads=[cp.asarray(dy)], seed=9)
    mask = cp.asnumpy(dev["ws"]["mask"])
    scale = np.float32(1) / (np.float32(1) - np.float32(rate))
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, scale}
    assert abs((mask == 0).mean() - rate) < 0.02
    # fp16: half an ulp of relative error, and subnormal results (|v| < 6e-5) are absolute-spaced
    rtol, atol = (1e-3, 1e-7) if dtype == np.float16 else (1e-6, 0)
    np.testing.assert_allclose(cp.asnumpy(dev["tops"][0]), x * mask, rtol=rtol, atol=atol)
    np.testing.assert_allclose(cp.asnumpy(dev["bottom_grads"][0]), dy * mask, rtol=rtol, atol=atol)
    ev = run_layer(dropout(rate), [cp.asarray(x)], [], training=False)
    np.testing.assert_array_equal(cp.asnumpy(ev["tops"][0]), x)
