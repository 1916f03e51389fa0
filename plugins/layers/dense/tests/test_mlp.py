"""MLP: configuration, parameters, workspaces, forward values, gradients, errors, JSON."""
import numpy as np
import pytest

from hugectr_core.enums import Activation_t, Initializer_t
from hugectr_core.errors import LayerError
from hugectr_core.testing import check_layer_gradients, init_params, make_layer, run_layer


def mlp(**args):
    return make_layer("MLP", ["x"], ["y"], **{"num_outputs": [6, 5, 4], **args})


def relu(a):
    return np.maximum(a, 0)


def test_shapes_and_param_specs_default():
    layer = mlp()
    assert layer.infer_shapes([(8, 3)]) == [(8, 4)]
    specs = layer.param_specs([(8, 3)])
    assert [s.name for s in specs] == ["weight0", "bias0", "weight1", "bias1", "weight2", "bias2"]
    assert [s.shape for s in specs] == [(3, 6), (1, 6), (6, 5), (1, 5), (5, 4), (1, 4)]


def test_param_specs_follow_biases_list():
    specs = mlp(biases=[True, False, True]).param_specs([(8, 3)])
    assert [s.shape for s in specs] == [(3, 6), (1, 6), (6, 5), (5, 4), (1, 4)]
    assert [s.shape for s in mlp(use_bias=False).param_specs([(8, 3)])] == [(3, 6), (6, 5), (5, 4)]


def test_workspace_specs_depend_on_batch():
    # every stage ReLU + bias: fused backward, partial sums for the widest stage (one row block at M=8)
    names_shapes = {w.name: w.shape for w in mlp().workspace_specs([(8, 3)])}
    assert names_shapes == {"out0": (8, 6), "out1": (8, 5), "grad0": (8, 6), "grad1": (8, 5), "grad2": (8, 4),
                            "bias_partials": (6,)}
    no_last_relu = mlp(activations=["Relu", "Relu", "None"]).workspace_specs([(16, 3)])
    assert {w.name: w.shape for w in no_last_relu} == {"out0": (16, 6), "out1": (16, 5),
                                                      "grad0": (16, 6), "grad1": (16, 5), "ones": (16,),
                                                      "bias_partials": (6,)}
    no_bias = mlp(use_bias=False).workspace_specs([(16, 3)])
    assert not {"ones", "bias_partials"} & {w.name for w in no_bias}


def test_forward_default_is_relu_everywhere():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 3))
    layer = mlp()
    w0, b0, w1, b1, w2, b2 = init_params(layer, [x.shape])
    y = run_layer(layer, [x], [w0, b0, w1, b1, w2, b2])["tops"][0]
    np.testing.assert_allclose(y, relu(relu(relu(x @ w0 + b0) @ w1 + b1) @ w2 + b2), rtol=1e-12)


def test_forward_mixed_activations_and_biases():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 3))
    layer = mlp(activations=["Relu", "None", "Relu"], biases=[False, True, True])
    w0, w1, b1, w2, b2 = init_params(layer, [x.shape])
    y = run_layer(layer, [x], [w0, w1, b1, w2, b2])["tops"][0]
    np.testing.assert_allclose(y, relu((relu(x @ w0) @ w1 + b1) @ w2 + b2), rtol=1e-12)


def test_act_type_non_means_linear():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3))
    layer = mlp(num_outputs=[5, 2], act_type=Activation_t.Non, use_bias=False)
    w0, w1 = init_params(layer, [x.shape])
    np.testing.assert_allclose(run_layer(layer, [x], [w0, w1])["tops"][0], x @ w0 @ w1, rtol=1e-12)


def test_gradients_default():
    check_layer_gradients(mlp(), [np.random.default_rng(3).standard_normal((5, 3))])


def test_gradients_mixed_activations_and_biases():
    layer = mlp(num_outputs=[6, 5, 4, 2], activations=["Relu", "None", "Relu", "None"],
                biases=[True, False, False, True])
    check_layer_gradients(layer, [np.random.default_rng(4).standard_normal((5, 3))])


def test_gradients_single_stage_with_relu_and_3d_input():
    layer = mlp(num_outputs=[3])
    check_layer_gradients(layer, [np.random.default_rng(5).standard_normal((2, 3, 4))])


def test_backward_does_not_modify_top_grad():
    rng = np.random.default_rng(6)
    x, layer = rng.standard_normal((5, 3)), mlp()
    dy = rng.standard_normal((5, 4))
    before = dy.copy()
    run_layer(layer, [x], init_params(layer, [x.shape]), top_grads=[dy])
    np.testing.assert_array_equal(dy, before)


def test_missing_num_outputs():
    with pytest.raises(LayerError, match="num_outputs is required"):
        make_layer("MLP", ["x"], ["y"])


@pytest.mark.parametrize("bad", [[4, 0], [3, -1], [2.5]])
def test_bad_num_outputs(bad):
    with pytest.raises(LayerError, match="num_outputs"):
        mlp(num_outputs=bad)


def test_second_bottom_is_rejected_clearly():
    with pytest.raises(LayerError, match="2nd bottom"):
        make_layer("MLP", ["x", "interaction_grad"], ["y"], num_outputs=[4])


def test_list_length_mismatch():
    with pytest.raises(LayerError, match="activations has 2 entries"):
        mlp(activations=["Relu", "None"])
    with pytest.raises(LayerError, match="biases has 1 entries"):
        mlp(biases=[True])


def test_unknown_activation():
    with pytest.raises(LayerError, match="'Relu' or 'None'"):
        mlp(activations=["Relu", "Tanh", "None"])


def test_param_shape_mismatch():
    layer, x = mlp(num_outputs=[2]), np.zeros((3, 4))
    with pytest.raises(LayerError, match="stage 0"):
        run_layer(layer, [x], [np.zeros((5, 2)), np.zeros((1, 2))])


def test_1d_input_is_rejected():
    with pytest.raises(LayerError, match="at least 2D"):
        mlp().infer_shapes([(8,)])


def test_initialiser_statistics():
    layer = mlp(num_outputs=[400, 300], weight_init_type=Initializer_t.XavierNorm, bias_init_type=Initializer_t.Uniform)
    w0, b0, w1, b1 = init_params(layer, [(2, 200)], seed=1)
    np.testing.assert_allclose(w0.std(), np.sqrt(2.0 / 600) / 0.87962566, rtol=0.02)
    np.testing.assert_allclose(w1.std(), np.sqrt(2.0 / 700) / 0.87962566, rtol=0.02)
    assert np.abs(b1).max() <= 1.0 / 300 and b1.std() > 0


def test_json_params():
    assert mlp().json_params() == {"mlp_param": {"num_output": 4, "num_outputs": [6, 5, 4],
                                                 "use_bias": True, "activation": "Relu"}}
    mixed = mlp(activations=["Relu", "Non", "None"], biases=[True, False, True],
                weight_init_type=Initializer_t.XavierUniform).json_params()["mlp_param"]
    assert mixed["activations"] == ["Relu", "None", "None"]
    assert mixed["biases"] == [True, False, True]
    assert mixed["weight_init"] == "XavierUniform" and "bias_init" not in mixed
    assert mlp(act_type=Activation_t.Non).json_params()["mlp_param"]["activation"] == "None"


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_matches_numpy(gpu_xp, dtype):
    cp = gpu_xp
    layer = mlp(num_outputs=[64, 33, 1], activations=["Relu", "None", "Relu"], biases=[True, False, True])
    rng = np.random.default_rng(7)
    x = rng.standard_normal((130, 40)).astype(dtype)
    params = init_params(layer, [x.shape], dtype=dtype)
    dy = rng.standard_normal((130, 1)).astype(dtype)
    ref = run_layer(layer, [x], params, top_grads=[dy])
    dev = run_layer(layer, [cp.asarray(x)], [cp.asarray(p) for p in params], top_grads=[cp.asarray(dy)])
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for key in ("tops", "bottom_grads", "param_grads"):
        for r, d in zip(ref[key], dev[key]):
            np.testing.assert_allclose(cp.asnumpy(d), r, rtol=tol, atol=tol, err_msg=key)
