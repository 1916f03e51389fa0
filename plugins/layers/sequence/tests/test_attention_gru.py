"""MultiHeadAttention and GRU: hand-written NumPy forwards, numerical gradients, errors, JSON, fp16."""
import numpy as np
import pytest

from hugectr_core.errors import LayerError
from hugectr_core.testing import check_layer_gradients, init_params, make_layer, run_layer


def attention_numpy(q, k, v, heads, mask=None):
    """One head at a time, exactly as the docstring writes it."""
    b, sf, hid = q.shape
    d = hid // heads
    out = np.zeros_like(q)
    for a in range(heads):
        cols = slice(a * d, (a + 1) * d)
        scores = q[:, :, cols] @ k[:, :, cols].transpose(0, 2, 1) / np.sqrt(d)
        if mask is not None:
            scores = scores - (1 - (mask[:, 0] if mask.shape[1] == 1 else mask[:, a])) * 10000.0
        p = np.exp(scores - scores.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        out[:, :, cols] = p @ v[:, :, cols]
    return out


def mha(heads=2, with_mask=False):
    bottoms = ["q", "k", "v", "mask"] if with_mask else ["q", "k", "v"]
    return make_layer("MultiHeadAttention", bottoms, ["o"], num_attention_heads=heads)


def qkv(b=2, sf=3, st=4, hid=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((b, sf, hid)), rng.standard_normal((b, st, hid)), rng.standard_normal((b, st, hid))


def causal_mask(b, sf, st):
    return np.broadcast_to(np.tril(np.ones((sf, st))), (b, 1, sf, st)).copy()


@pytest.mark.parametrize("heads", [1, 2, 3])
def test_mha_forward_matches_numpy(heads):
    q, k, v = qkv()
    res = run_layer(mha(heads), [q, k, v], [])
    np.testing.assert_allclose(res["tops"][0], attention_numpy(q, k, v, heads), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res["ws"]["probs"].sum(axis=-1), 1.0, rtol=1e-12)


def test_mha_masked_forward_matches_numpy():
    q, k, v = qkv(sf=4, st=4)
    mask = causal_mask(2, 4, 4)
    res = run_layer(mha(2, True), [q, k, v, mask], [])
    np.testing.assert_allclose(res["tops"][0], attention_numpy(q, k, v, 2, mask), rtol=1e-12, atol=1e-12)
    assert np.all(res["ws"]["probs"][:, :, 0, 1:] < 1e-30)  # the first query sees only the first key


@pytest.mark.parametrize("heads, with_mask", [(1, False), (2, False), (2, True)])
def test_mha_gradients(heads, with_mask):
    q, k, v = qkv(b=2, sf=3, st=4, hid=4, seed=1)
    bottoms = [q, k, v] + ([causal_mask(2, 3, 4)] if with_mask else [])
    res = check_layer_gradients(mha(heads, with_mask), bottoms)
    if with_mask:
        assert res["bottom_grads"][3] is None


def test_mha_fp16_forward_close_to_fp64():
    q, k, v = qkv(b=2, sf=5, st=7, hid=16, seed=2)
    mask = causal_mask(2, 5, 7)
    y16 = run_layer(mha(4, True), [a.astype(np.float16) for a in (q, k, v, mask)], [])["tops"][0]
    assert y16.dtype == np.float16
    np.testing.assert_allclose(y16.astype(np.float64), attention_numpy(q, k, v, 4, mask), rtol=2e-2, atol=2e-2)


def test_mha_errors_and_json():
    with pytest.raises(LayerError, match="not divisible"):
        mha(4).infer_shapes([(2, 3, 6), (2, 4, 6), (2, 4, 6)])
    with pytest.raises(LayerError, match="expected Q"):
        mha(2).infer_shapes([(2, 3, 6), (2, 4, 6), (2, 5, 6)])
    with pytest.raises(LayerError, match="mask shape"):
        mha(2, True).infer_shapes([(2, 3, 6), (2, 4, 6), (2, 4, 6), (2, 1, 4, 3)])
    with pytest.raises(LayerError, match="at least 3"):
        make_layer("MultiHeadAttention", ["q", "k"], ["o"])
    with pytest.raises(LayerError, match="num_attention_heads"):
        mha(0)
    assert mha(4).json_params() == {"num_attention_heads": 4, "transpose_b": False}


# -- GRU -------------------------------------------------------------------------------------
def gru(n=3, b=2, t=3, e=2, **args):
    return make_layer("GRU", ["x"], ["h"], num_output=n, batchsize=b, SeqLength=t, vector_size=e, **args)


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def gru_numpy(x_bte, wx, wh, bx, bh):
    b, t_steps, _ = x_bte.shape
    n = wh.shape[0]
    h, out = np.zeros((b, n)), np.zeros((b, t_steps, n))
    for t in range(t_steps):
        gx, gh = x_bte[:, t] @ wx + bx, h @ wh + bh
        r = sigmoid(gx[:, :n] + gh[:, :n])
        z = sigmoid(gx[:, n:2 * n] + gh[:, n:2 * n])
        cand = np.tanh(gx[:, 2 * n:] + r * gh[:, 2 * n:])
        h = (1 - z) * cand + z * h
        out[:, t] = h
    return out.reshape(b, -1)


@pytest.mark.parametrize("input_shape", [(1, 2 * 3 * 2), (2, 3 * 2)])
def test_gru_forward_matches_numpy(input_shape):
    layer = gru()
    x = np.random.default_rng(3).standard_normal(input_shape)
    assert layer.infer_shapes([input_shape]) == [(2, 9)]
    params = init_params(layer, [input_shape], seed=4)
    y = run_layer(layer, [x], params)["tops"][0]
    np.testing.assert_allclose(y, gru_numpy(x.reshape(2, 3, 2), *params), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("input_shape", [(1, 2 * 3 * 2), (2, 3 * 2)])
def test_gru_gradients(input_shape):
    layer = gru()
    x = np.random.default_rng(5).standard_normal(input_shape)
    params = [p * 2 for p in init_params(layer, [input_shape], seed=6)]  # larger weights: gates away from 0.5
    check_layer_gradients(layer, [x], params)


def test_gru_params_and_flags():
    layer = gru(n=4, e=5)
    assert [(s.name, s.shape) for s in layer.param_specs([(2, 15)])] == [
        ("Wx", (5, 12)), ("Wh", (4, 12)), ("bx", (1, 12)), ("bh", (1, 12))]
    assert layer.supports_fp16 is False
    zero = gru(weight_init_type="Zero", bias_init_type="Zero")
    assert all(np.all(p == 0) for p in init_params(zero, [(2, 6)]))


def test_gru_eval_batch_from_input():
    assert gru(b=2).infer_shapes([(5, 6)]) == [(5, 9)]  # the eval graph may use another batch


def test_gru_errors_and_json():
    with pytest.raises(LayerError, match="SeqLength"):
        gru().infer_shapes([(2, 7)])
    with pytest.raises(LayerError, match="expected"):
        gru().infer_shapes([(2, 3, 2)])
    with pytest.raises(LayerError, match="num_output"):
        gru(n=0)
    assert gru().json_params() == {"gru_param": {"num_output": 3, "batchsize": 2, "SeqLength": 3, "vector_size": 2}}
    assert gru(weight_init_type="XavierUniform").json_params()["gru_param"]["weight_init"] == "XavierUniform"
