"""BatchNorm and LayerNorm: shapes, parameters, forward values, running stats, gradients, errors, JSON, fp16."""
import numpy as np
import pytest

from hugectr_core.enums import Initializer_t
from hugectr_core.errors import LayerError
from hugectr_core.testing import check_layer_gradients, init_params, make_layer, run_layer

from hugectr_layers_normalization import reference


def bn(**args):
    return make_layer("BatchNorm", ["x"], ["y"], **args)


def ln(**args):
    return make_layer("LayerNorm", ["x"], ["y"], **args)


def bn_numpy(x, gamma, beta, eps):
    mean, var = x.mean(axis=0), x.var(axis=0)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def ln_numpy(x, gamma, beta, eps):
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


# -- BatchNorm -------------------------------------------------------------------------------
def test_bn_specs_and_default_init():
    layer = bn()
    assert layer.infer_shapes([(8, 3)]) == [(8, 3)]
    specs = layer.param_specs([(8, 3)])
    assert [(s.name, s.shape, s.trainable) for s in specs] == [
        ("gamma", (3,), True), ("beta", (3,), True), ("running_mean", (3,), False), ("running_var", (3,), False)]
    gamma, beta, rmean, rvar = init_params(layer, [(8, 3)])
    np.testing.assert_array_equal(gamma, np.ones(3))
    np.testing.assert_array_equal(beta, np.zeros(3))
    np.testing.assert_array_equal(rmean, np.zeros(3))
    np.testing.assert_array_equal(rvar, np.ones(3))
    assert {w.name: w.dtype for w in layer.workspace_specs([(8, 3)])} == {"mean": np.float64, "inv_std": np.float64}


def test_bn_other_initializers():
    gamma, beta, *_ = init_params(bn(gamma_init_type=Initializer_t.Zero, beta_init_type=Initializer_t.Uniform),
                                  [(8, 50)])
    np.testing.assert_array_equal(gamma, np.zeros(50))
    assert np.all(np.abs(beta) <= 1.0 / 100) and np.any(beta != 0)  # U(+-1/(fan_in+fan_out))


def test_bn_training_forward_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 5)) * 3 + 1
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    params = [gamma, beta, np.zeros(5), np.ones(5)]
    res = run_layer(bn(eps=1e-3), [x], params)
    np.testing.assert_allclose(res["tops"][0], bn_numpy(x, gamma, beta, 1e-3), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res["ws"]["mean"], x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(res["ws"]["inv_std"], 1 / np.sqrt(x.var(axis=0) + 1e-3), rtol=1e-12)


@pytest.mark.parametrize("factor", [1.0, 0.25])
def test_bn_running_stats_update(factor):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 4)) * 2 + 3
    rmean, rvar = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    params = [np.ones(4), np.zeros(4), rmean.copy(), rvar.copy()]
    run_layer(bn(factor=factor), [x], params)
    np.testing.assert_allclose(params[2], rmean * (1 - factor) + x.mean(axis=0) * factor, rtol=1e-10)
    np.testing.assert_allclose(params[3], rvar * (1 - factor) + x.var(axis=0, ddof=1) * factor, rtol=1e-10)  # unbiased, as cuDNN


def test_bn_eval_uses_running_stats_and_leaves_them():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    rmean, rvar = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    params = [gamma, beta, rmean.copy(), rvar.copy()]
    y = run_layer(bn(eps=1e-5), [x], params, training=False)["tops"][0]
    np.testing.assert_allclose(y, gamma * (x - rmean) / np.sqrt(rvar + 1e-5) + beta, rtol=1e-12)
    np.testing.assert_array_equal(params[2], rmean)
    np.testing.assert_array_equal(params[3], rvar)


def test_bn_gradients():
    rng = np.random.default_rng(3)
    layer = bn(eps=1e-2)
    x = rng.standard_normal((7, 4))
    params = [rng.standard_normal(4), rng.standard_normal(4), np.zeros(4), np.ones(4)]
    check_layer_gradients(layer, [x], params, rtol=1e-5, atol=1e-7)


def test_bn_layer_numpy_path_equals_reference():
    rng = np.random.default_rng(4)
    x, dy = rng.standard_normal((9, 3)), rng.standard_normal((9, 3))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    res = run_layer(bn(), [x], [gamma, beta, np.zeros(3), np.ones(3)], top_grads=[dy])
    mean, inv_std = reference.bn_stats(x, 1e-5, np.empty(3), np.empty(3))
    np.testing.assert_array_equal(res["tops"][0], reference.bn_apply(x, mean, inv_std, gamma, beta, np.empty_like(x)))
    dx, dg, db = reference.bn_bwd(dy, x, mean, inv_std, gamma, np.empty_like(x), np.empty(3), np.empty(3))
    np.testing.assert_array_equal(res["bottom_grads"][0], dx)
    np.testing.assert_array_equal(res["param_grads"][0], dg)
    np.testing.assert_array_equal(res["param_grads"][1], db)


def test_bn_reference_bwd_without_dx():
    rng = np.random.default_rng(5)
    x, dy = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    mean, inv_std = reference.bn_stats(x, 1e-5, np.empty(2), np.empty(2))
    dx, dg, db = reference.bn_bwd(dy, x, mean, inv_std, np.ones(2), None, np.empty(2), np.empty(2))
    assert dx is None
    np.testing.assert_allclose(db, dy.sum(axis=0))
    np.testing.assert_allclose(dg, (dy * (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)).sum(axis=0))


def test_bn_fp16_forward_close_to_fp64():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((64, 8))
    gamma, beta = rng.standard_normal(8), rng.standard_normal(8)
    y64 = bn_numpy(x, gamma, beta, 1e-5)
    params16 = [gamma.astype(np.float16), beta.astype(np.float16), np.zeros(8, np.float32), np.ones(8, np.float32)]
    res = run_layer(bn(), [x.astype(np.float16)], params16)
    assert res["tops"][0].dtype == np.float16
    np.testing.assert_allclose(res["tops"][0].astype(np.float64), y64, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(params16[2], x.astype(np.float16).astype(np.float64).mean(0), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("args, match", [
    ({"eps": 0.0}, "eps"), ({"factor": 1.5}, "factor"), ({"gamma_init_type": "Bogus"}, "gamma_init_type")])
def test_bn_bad_args(args, match):
    with pytest.raises(LayerError, match=match):
        bn(**args)


def test_bn_rejects_non_2d_input():
    with pytest.raises(LayerError, match="must be 2D"):
        bn().infer_shapes([(4, 3, 2)])


def test_bn_json_params():
    assert bn(factor=0.9, eps=1e-3).json_params() == {"bn_param": {"factor": 0.9, "eps": 1e-3}}
    assert bn(gamma_init_type=Initializer_t.XavierUniform, beta_init_type=Initializer_t.Zero).json_params() == {
        "bn_param": {"factor": 1.0, "eps": 1e-5, "gamma_init": "XavierUniform", "beta_init": "Zero"}}


# -- LayerNorm -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 5), (2, 2, 3, 4)])
def test_ln_forward_matches_numpy(shape):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    res = run_layer(ln(eps=1e-4), [x], [gamma, beta])
    np.testing.assert_allclose(res["tops"][0], ln_numpy(x, gamma, beta, 1e-4), rtol=1e-12, atol=1e-12)
    assert res["ws"]["mean"].shape == (int(np.prod(shape[:-1])),)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4), (2, 2, 2, 3)])
def test_ln_gradients(shape):
    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape)
    params = [rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])]
    check_layer_gradients(ln(eps=1e-2), [x], params, rtol=1e-5, atol=1e-7)


def test_ln_specs_and_init():
    layer = ln()
    specs = layer.param_specs([(4, 3, 16)])
    assert [(s.name, s.shape, s.trainable) for s in specs] == [("gamma", (16,), True), ("beta", (16,), True)]
    gamma, beta = init_params(layer, [(4, 3, 16)])
    np.testing.assert_array_equal(gamma, np.ones(16))
    np.testing.assert_array_equal(beta, np.zeros(16))
    assert [w.shape for w in layer.workspace_specs([(4, 3, 16)])] == [(12,), (12,)]


def test_ln_layer_numpy_path_equals_reference():
    rng = np.random.default_rng(9)
    x, dy = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    res = run_layer(ln(), [x], [gamma, beta], top_grads=[dy])
    mean, inv_std, y = reference.ln_fwd(x.reshape(-1, 5), gamma, beta, 1e-5, np.empty(12), np.empty(12), np.empty((12, 5)))
    np.testing.assert_array_equal(res["tops"][0].reshape(-1, 5), y)
    dx = reference.ln_bwd_data(dy.reshape(-1, 5), x.reshape(-1, 5), mean, inv_std, gamma, np.empty((12, 5)))
    np.testing.assert_array_equal(res["bottom_grads"][0].reshape(-1, 5), dx)
    dg, db = reference.ln_bwd_params(dy.reshape(-1, 5), x.reshape(-1, 5), mean, inv_std, np.empty(5), np.empty(5))
    np.testing.assert_array_equal(res["param_grads"][0], dg)
    np.testing.assert_array_equal(res["param_grads"][1], db)


def test_ln_fp16_forward_close_to_fp64():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 6, 32))
    gamma, beta = rng.standard_normal(32), rng.standard_normal(32)
    res = run_layer(ln(), [x.astype(np.float16)], [gamma.astype(np.float16), beta.astype(np.float16)])
    assert res["tops"][0].dtype == np.float16
    np.testing.assert_allclose(res["tops"][0].astype(np.float64), ln_numpy(x, gamma, beta, 1e-5), rtol=1e-2, atol=2e-2)


def test_ln_rejects_bad_rank_and_eps():
    with pytest.raises(LayerError, match="2D, 3D or 4D"):
        ln().infer_shapes([(2, 2, 2, 2, 2)])
    with pytest.raises(LayerError, match="eps"):
        ln(eps=-1.0)
    with pytest.raises(LayerError, match="1 bottom"):
        make_layer("LayerNorm", ["a", "b"], ["y"])


def test_ln_json_params():
    assert ln(eps=1e-6).json_params() == {"ln_param": {"eps": 1e-6}}
    assert ln(gamma_init_type=Initializer_t.XavierNorm).json_params() == {"ln_param": {"eps": 1e-5, "gamma_init": "XavierNorm"}}
