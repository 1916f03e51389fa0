"""CrossEntropyLoss, MultiCrossEntropyLoss (values, masking, gradients, errors, JSON) and
BinaryCrossEntropyLoss with float16 logits/labels (float32 row losses and top); GPU twins."""
import numpy as np
import pytest

from hugectr_core.contracts import StepContext
from hugectr_core.enums import Regularizer_t
from hugectr_core.errors import LayerError
from hugectr_core.testing import assert_twins, check_layer_gradients, make_layer, run_layer
from hugectr_layers_losses import reference

RNG = np.random.default_rng(41)


def loss_of(type_name, **args):
    return make_layer(type_name, ["logits", "label"], ["loss"], **args)


def softmax_ce(x, t):
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    return -(t * np.log(p)).sum(axis=1)


def naive_bce(x, y):
    p = 1 / (1 + np.exp(-x))
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def run_loss(layer, x, y, current=None, scaler=1.0, dtype=np.float64):
    """forward + backward with the engine's dtypes: float32 top, row-loss workspaces as declared."""
    batch = x.shape[0]
    ctx = StepContext(xp=np, training=True, batch_size=batch, current_batchsize=current or batch, scaler=scaler)
    ws = {w.name: np.full(w.shape, np.nan, w.dtype or dtype) for w in layer.workspace_specs([x.shape, y.shape])}
    top = np.full((1, 1), np.nan, np.float32)
    layer.forward(ctx, [x, y], [top], [], ws)
    grad = np.full(x.shape, np.nan, x.dtype)
    layer.backward(ctx, [x, y], [top], [], [grad, None], [], [], ws)
    return top, grad


# -- CrossEntropyLoss --------------------------------------------------------------------------
def test_ce_class_label_and_probability_label_agree():
    x = RNG.standard_normal((6, 2)) * 2
    cls = RNG.integers(0, 2, (6, 1)).astype(float)
    onehot = np.concatenate([1 - cls, cls], axis=1)
    layer = loss_of("CrossEntropyLoss")
    a = run_layer(layer, [x, cls], [])["tops"][0]
    b = run_layer(layer, [x, onehot], [])["tops"][0]
    np.testing.assert_allclose(a[0, 0], softmax_ce(x, onehot).mean(), rtol=1e-12)
    np.testing.assert_allclose(b, a, rtol=1e-12)


@pytest.mark.parametrize("label_cols", [1, 2])
def test_ce_gradients_and_weight(label_cols):
    layer = loss_of("CrossEntropyLoss")
    layer.weight = 0.6
    x = RNG.standard_normal((5, 2))
    y = RNG.integers(0, 2, (5, 1)).astype(float) if label_cols == 1 else RNG.dirichlet([1, 1], 5)
    res = check_layer_gradients(layer, [x, y])
    t = y if label_cols == 2 else np.concatenate([1 - y, y], axis=1)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(res["bottom_grads"][0], (p - t) / 5 * 0.6, rtol=1e-10)


def test_ce_padding_scale_and_predict():
    layer = loss_of("CrossEntropyLoss")
    x, y = RNG.standard_normal((6, 2)), RNG.integers(0, 2, (6, 1)).astype(float)
    x[4:] = 1e3
    top, grad = run_loss(layer, x, y, current=4, scaler=8.0)
    t = np.concatenate([1 - y, y], axis=1)
    np.testing.assert_allclose(top[0, 0], softmax_ce(x[:4], t[:4]).mean(), rtol=1e-6)
    p = np.exp(x[:4]) / np.exp(x[:4]).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grad[:4], (p - t[:4]) * 8.0 / 4)
    assert np.all(grad[4:] == 0)
    pred = layer.predict(np, x[:4])
    assert pred.shape == (4, 1)
    np.testing.assert_allclose(pred[:, 0], p[:, 1])


def test_ce_errors_and_json():
    layer = loss_of("CrossEntropyLoss")
    with pytest.raises(LayerError, match=r"\(B, 2\)"):
        layer.infer_shapes([(4, 3), (4, 3)])
    with pytest.raises(LayerError, match="label must be"):
        layer.infer_shapes([(4, 2), (4, 3)])
    assert layer.infer_shapes([(4, 2), (4, 1)]) == [(1, 1)] and layer.supports_fp16 is False
    l2 = loss_of("CrossEntropyLoss", use_regularizer=True, regularizer_type=Regularizer_t.L2, **{"lambda": 0.1})
    assert l2.regularizer() == ("L2", 0.1) and l2.json_params() == {"regularizer": "L2", "lambda": 0.1}
    assert layer.regularizer() is None and layer.json_params() == {}


# -- MultiCrossEntropyLoss ---------------------------------------------------------------------
def test_mce_weighted_masked_mean():
    w = [1.0, 0.5, 2.0]
    layer = loss_of("MultiCrossEntropyLoss", target_weight_vec=w)
    x = RNG.standard_normal((4, 3))
    y = RNG.integers(0, 2, (4, 3)).astype(float)
    y[1, 2] = y[3, 0] = -1.0  # masked
    top = run_layer(layer, [x, y], [])["tops"][0]
    live = y >= -0.5
    expected = (np.where(live, naive_bce(x, np.where(live, y, 0)) * np.array(w), 0)).sum() / (4 * 3)
    np.testing.assert_allclose(top[0, 0], expected, rtol=1e-12)
    res = check_layer_gradients(layer, [x, y])
    g = res["bottom_grads"][0]
    assert g[1, 2] == 0 and g[3, 0] == 0
    p = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(g[live], ((p - y) * np.array(w) / 12)[live], rtol=1e-10)
    np.testing.assert_allclose(layer.predict(np, x), p)


def test_mce_default_weights_are_one_and_padding():
    layer = loss_of("MultiCrossEntropyLoss")
    x, y = RNG.standard_normal((5, 2)), RNG.integers(0, 2, (5, 2)).astype(float)
    x[3:] = 500.0
    top, grad = run_loss(layer, x, y, current=3, scaler=4.0)
    np.testing.assert_allclose(top[0, 0], naive_bce(x[:3], y[:3]).mean(), rtol=1e-6)
    np.testing.assert_allclose(grad[:3], (1 / (1 + np.exp(-x[:3])) - y[:3]) * 4.0 / (3 * 2))
    assert np.all(grad[3:] == 0)


def test_mce_errors_and_json():
    with pytest.raises(LayerError, match="target_weight_vec has 2 entries"):
        loss_of("MultiCrossEntropyLoss", target_weight_vec=[1.0, 2.0]).infer_shapes([(4, 3), (4, 3)])
    with pytest.raises(LayerError, match="same shape"):
        loss_of("MultiCrossEntropyLoss").infer_shapes([(4, 3), (4, 2)])
    with pytest.raises(LayerError, match="list of numbers"):
        loss_of("MultiCrossEntropyLoss", target_weight_vec=["a"])
    layer = loss_of("MultiCrossEntropyLoss", target_weight_vec=[1, 2], use_regularizer=True, **{"lambda": 0.5})
    assert layer.json_params() == {"target_weight": [1.0, 2.0], "regularizer": "L1", "lambda": 0.5}
    assert layer.regularizer() == ("L1", 0.5) and layer.supports_fp16 is False


# -- BinaryCrossEntropyLoss under mixed precision ---------------------------------------------
def test_bce_float16_keeps_float32_losses():
    layer = loss_of("BinaryCrossEntropyLoss")
    specs = {w.name: w.dtype for w in layer.workspace_specs([(8, 1), (8, 1)])}
    assert specs["row_loss_fp32"] == np.float32 and layer.top_dtypes(np.float16) == [np.float32]
    x = RNG.standard_normal((64, 1)) * 4
    y = RNG.integers(0, 2, (64, 1)).astype(float)
    top, grad = run_loss(layer, x.astype(np.float16), y.astype(np.float16), current=50, scaler=1024.0,
                         dtype=np.float16)
    assert top.dtype == np.float32 and grad.dtype == np.float16
    xh = x.astype(np.float16).astype(np.float64)
    np.testing.assert_allclose(top[0, 0], naive_bce(xh[:50], y[:50]).mean(), rtol=1e-5)
    np.testing.assert_allclose(grad[:50].astype(np.float64), (1 / (1 + np.exp(-xh[:50])) - y[:50]) * 1024 / 50,
                               rtol=2e-3, atol=2e-3)
    assert np.all(grad[50:] == 0)


# -- GPU ---------------------------------------------------------------------------------------
def _ret(fn, out_index):
    def run(*args):
        fn(*args)
        return args[out_index]
    return run


TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13},
       np.float16: {"rtol": 2e-3, "atol": 2e-3}}  # fp16: one rounding of a float32 result


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("label_cols", [1, 2])
def test_ce_and_mce_twins(gpu_xp, dtype, label_cols):
    acc = np.float64 if dtype == np.float64 else np.float32
    x = (RNG.standard_normal((300, 2)) * 3).astype(dtype)
    y = (RNG.integers(0, 2, (300, 1)) if label_cols == 1 else RNG.dirichlet([1, 1], 300)).astype(dtype)
    tol = TOL[dtype]
    assert_twins(_ret(reference.ce_fwd, 2), _ret(_k().ce_fwd, 2), x, y, np.zeros((300, 1), acc), 250, **tol)
    assert_twins(_ret(reference.ce_bwd, 2), _ret(_k().ce_bwd, 2), x, y, np.zeros_like(x), 250, 0.5, **tol)
    xm = (RNG.standard_normal((100, 5)) * 3).astype(dtype)
    ym = RNG.integers(-1, 2, (100, 5)).astype(dtype)
    w = np.array([1, 0.5, 2, 0, 1], dtype)
    assert_twins(_ret(reference.mce_fwd, 3), _ret(_k().mce_fwd, 3), xm, ym, w, np.zeros((100, 5), acc), 90, **tol)
    assert_twins(_ret(reference.mce_bwd, 3), _ret(_k().mce_bwd, 3), xm, ym, w, np.zeros_like(xm), 90, 0.25, **tol)


@pytest.mark.gpu
def test_bce_float16_twins(gpu_xp):
    x = (RNG.standard_normal((1000, 1)) * 8).astype(np.float16)
    y = RNG.integers(0, 2, (1000, 1)).astype(np.float16)
    assert_twins(_ret(reference.bce_fwd, 2), _ret(_k().bce_fwd, 2), x, y, np.zeros((1000, 1), np.float32), 900,
                 **TOL[np.float32])
    assert_twins(_ret(reference.bce_bwd, 2), _ret(_k().bce_bwd, 2), x, y, np.zeros_like(x), 900, 0.5,
                 **TOL[np.float16])


@pytest.mark.gpu
@pytest.mark.parametrize("type_name,shapes", [("CrossEntropyLoss", [(64, 2), (64, 1)]),
                                              ("MultiCrossEntropyLoss", [(64, 3), (64, 3)]),
                                              ("BinaryCrossEntropyLoss", [(64, 1), (64, 1)])])
def test_layers_gpu_match_numpy(gpu_xp, type_name, shapes):
    layer = loss_of(type_name)
    x = RNG.standard_normal(shapes[0])
    y = RNG.integers(0, 2, shapes[1]).astype(float)
    results = []
    for xp in (np, gpu_xp):
        ctx = StepContext(xp=xp, training=True, batch_size=64, current_batchsize=50, scaler=2.0)
        ws = {w.name: xp.zeros(w.shape, w.dtype or np.float64) for w in layer.workspace_specs(shapes)}
        top, grad = xp.zeros((1, 1), np.float32), xp.zeros(shapes[0])
        bottoms = [xp.asarray(x), xp.asarray(y)]
        layer.forward(ctx, bottoms, [top], [], ws)
        layer.backward(ctx, bottoms, [top], [], [grad, None], [], [], ws)
        results.append([top, grad, layer.predict(xp, bottoms[0])])
    for h, d in zip(*results):
        np.testing.assert_allclose(gpu_xp.asnumpy(d), h, rtol=1e-6, atol=1e-7)


def _k():
    from hugectr_layers_losses import kernels

    return kernels


def test_kernels_cu_has_every_twin():
    import importlib.resources

    text = importlib.resources.files("hugectr_layers_losses").joinpath("kernels.cu").read_text()
    for name in ("bce_fwd", "bce_bwd", "ce_fwd", "ce_bwd", "mce_fwd", "mce_bwd"):
        assert f"__global__ void {name}(" in text and hasattr(reference, name)
    assert "acc_t<T>" in text and "HCTR_GRID_STRIDE_LOOP" in text
