"""InnerProduct: shapes, parameters, initialisers, forward values, gradients, errors, JSON."""
import numpy as np
import pytest

from hugectr_core.enums import Initializer_t
from hugectr_core.errors import LayerError
from hugectr_core.testing import check_layer_gradients, init_params, make_layer, run_layer


def fc(**args):
    return make_layer("InnerProduct", ["x"], ["y"], **{"num_output": 4, **args})


def test_shapes_2d_and_3d():
    layer = fc()
    assert layer.infer_shapes([(8, 3)]) == [(8, 4)]
    assert layer.infer_shapes([(8, 5, 3)]) == [(8, 5, 4)]


def test_param_specs_order_and_shapes():
    specs = fc(num_output=7).param_specs([(8, 3)])
    assert [s.name for s in specs] == ["weight", "bias"]
    assert [s.shape for s in specs] == [(3, 7), (1, 7)]


def test_forward_matches_numpy_formula_2d():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((6, 3)), rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    y = run_layer(fc(), [x], [w, b])["tops"][0]
    np.testing.assert_allclose(y, x @ w + b, rtol=1e-12)


def test_forward_matches_numpy_formula_3d():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 5, 3)), rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    y = run_layer(fc(), [x], [w, b])["tops"][0]
    assert y.shape == (2, 5, 4)
    np.testing.assert_allclose(y, np.einsum("bsk,kn->bsn", x, w) + b[0], rtol=1e-12)


def test_backward_matches_numpy_formula():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((6, 3)), rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    dy = rng.standard_normal((6, 4))
    res = run_layer(fc(), [x], [w, b], top_grads=[dy])
    np.testing.assert_allclose(res["bottom_grads"][0], dy @ w.T, rtol=1e-12)
    np.testing.assert_allclose(res["param_grads"][0], x.T @ dy, rtol=1e-12)
    np.testing.assert_allclose(res["param_grads"][1], dy.sum(axis=0, keepdims=True), rtol=1e-12)


def test_gradients_2d():
    x = np.random.default_rng(3).standard_normal((5, 3))
    check_layer_gradients(fc(), [x])


def test_gradients_3d():
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    check_layer_gradients(fc(num_output=3), [x])


def test_float32_forward():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 3)).astype(np.float32)
    w, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((1, 4)).astype(np.float32)
    y = run_layer(fc(), [x], [w, b])["tops"][0]
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x @ w + b, rtol=1e-5)


@pytest.mark.parametrize("bad", [0, -3, 2.5, None, True])
def test_num_output_must_be_positive_int(bad):
    with pytest.raises(LayerError, match="num_output"):
        fc(num_output=bad)


def test_wrong_number_of_bottoms():
    with pytest.raises(LayerError, match="bottom"):
        make_layer("InnerProduct", ["a", "b"], ["y"], num_output=2)


def test_rank_4_input_is_rejected():
    with pytest.raises(LayerError, match="2D"):
        fc().infer_shapes([(2, 3, 4, 5)])


def test_param_shape_mismatch_is_rejected():
    x = np.zeros((2, 3))
    with pytest.raises(LayerError, match="expected"):
        run_layer(fc(), [x], [np.zeros((5, 4)), np.zeros((1, 4))])


def test_default_initialiser_statistics():
    k, n = 300, 500
    w, b = init_params(fc(num_output=n), [(4, k)], seed=0)
    np.testing.assert_allclose(w.std(), np.sqrt(2.0 / (k + n)) / 0.87962566, rtol=0.02)
    assert abs(w.mean()) < 0.01
    np.testing.assert_allclose(b.std(), np.sqrt(1.0 / n), rtol=0.1)


def test_uniform_and_zero_initialisers():
    k, n = 200, 300
    w, b = init_params(fc(num_output=n, weight_init_type=Initializer_t.XavierUniform,
                          bias_init_type=Initializer_t.Zero), [(4, k)], seed=0)
    limit = np.sqrt(6.0 / (k + n))
    assert np.abs(w).max() <= limit
    np.testing.assert_allclose(w.std(), limit / np.sqrt(3), rtol=0.02)
    assert not b.any()


def test_json_params():
    assert fc(num_output=8).json_params() == {"fc_param": {"num_output": 8}}
    assert fc(num_output=8, weight_init_type=Initializer_t.XavierUniform).json_params() == {
        "fc_param": {"num_output": 8, "weight_init": "XavierUniform"}}
    assert fc(num_output=2, bias_init_type=Initializer_t.Zero).json_params()["fc_param"]["bias_init"] == "Zero"


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(64, 33), (4, 9, 33)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_matches_numpy(gpu_xp, shape, dtype):
    cp, layer = gpu_xp, fc(num_output=70)
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape).astype(dtype)
    params = init_params(layer, [shape], dtype=dtype)
    dy = rng.standard_normal(layer.infer_shapes([shape])[0]).astype(dtype)
    ref = run_layer(layer, [x], params, top_grads=[dy])
    dev = run_layer(layer, [cp.asarray(x)], [cp.asarray(p) for p in params], top_grads=[cp.asarray(dy)])
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for key in ("tops", "bottom_grads", "param_grads"):
        for r, d in zip(ref[key], dev[key]):
            np.testing.assert_allclose(cp.asnumpy(d), r, rtol=tol, atol=tol, err_msg=key)
