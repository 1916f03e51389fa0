"""PReLU_Dice: forward against hand-written NumPy, numerical gradients through the batch statistics,
errors, JSON, GPU twins; and float16 forwards of the MP-allowed activations."""
import numpy as np
import pytest

from hugectr_core.errors import LayerError
from hugectr_core.testing import assert_twins, check_layer_gradients, make_layer, run_layer
from hugectr_layers_activations import reference

RNG = np.random.default_rng(31)


def dice(alpha=0.25, eps=1e-8):
    return make_layer("PReLU_Dice", ["x"], ["y"], elu_alpha=alpha, eps=eps)


def dice_numpy(x, alpha, eps):
    rows = x.reshape(-1, x.shape[-1])
    mean, var = rows.mean(axis=0), rows.var(axis=0)  # biased, over the batch (all leading axes)
    p = 1 / (1 + np.exp(-(rows - mean) / np.sqrt(var + eps)))
    return (p * rows + (1 - p) * alpha * rows).reshape(x.shape)


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 6)])
def test_forward_matches_numpy(shape):
    x = RNG.standard_normal(shape) * 2 + 0.5
    out = run_layer(dice(0.3, 1e-5), [x], [])["tops"][0]
    np.testing.assert_allclose(out, dice_numpy(x, 0.3, 1e-5), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,alpha", [((6, 4), 0.25), ((3, 2, 5), 0.0), ((5, 3), -0.5)])
def test_gradients_through_batch_statistics(shape, alpha):
    check_layer_gradients(dice(alpha, 1e-3), [RNG.standard_normal(shape)], rtol=1e-5, atol=1e-7)


def test_errors_and_json():
    assert dice(0.25, 1e-8).json_params() == {"prelu_dice_param": {"alpha": 0.25, "eps": 1e-8}}
    assert dice().supports_fp16 is False
    assert dice().workspace_specs([(8, 5)])[0].shape == (4, 5)
    with pytest.raises(LayerError, match="eps"):
        dice(eps=-1.0)
    with pytest.raises(LayerError, match="elu_alpha"):
        dice(alpha=float("nan"))
    with pytest.raises(LayerError, match="2-D"):
        dice().infer_shapes([(8,)])


@pytest.mark.parametrize("type_name,args", [("ReLU", {}), ("Sigmoid", {}), ("ELU", {"elu_alpha": 0.7})])
def test_float16_activations_close_to_float64(type_name, args):
    layer = make_layer(type_name, ["x"], ["y"], **args)
    assert layer.supports_fp16
    x, dy = RNG.standard_normal((16, 9)) * 2, RNG.standard_normal((16, 9))
    ref = run_layer(layer, [x], [], top_grads=[dy])
    half = run_layer(layer, [x.astype(np.float16)], [], top_grads=[dy.astype(np.float16)])
    for r, h in zip(ref["tops"] + ref["bottom_grads"], half["tops"] + half["bottom_grads"]):
        assert h.dtype == np.float16
        np.testing.assert_allclose(h.astype(np.float64), r, rtol=1e-2, atol=1e-2)


DTYPES = [np.float32, np.float64, np.float16]
TOL = {np.float32: {"rtol": 1e-4, "atol": 1e-5}, np.float64: {"rtol": 1e-11, "atol": 1e-12},
       np.float16: {"rtol": 1e-2, "atol": 1e-2}}  # the kernels sum rows in another order


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,feats", [(257, 7), (3, 300)])
def test_dice_kernel_twins(gpu_xp, dtype, rows, feats):
    from hugectr_layers_activations import kernels

    x = RNG.standard_normal((rows, feats)).astype(dtype)
    dy = RNG.standard_normal((rows, feats)).astype(dtype)
    tol = TOL[dtype]

    def stats(mod):
        def run(a):
            mean, inv = np.empty(feats, dtype), np.empty(feats, dtype)
            if mod is kernels:
                mean, inv = gpu_xp.asarray(mean), gpu_xp.asarray(inv)
            return mod.dice_stats(a, mean, inv, 1e-5)
        return run

    assert_twins(stats(reference), stats(kernels), x, **tol)
    mean, inv = reference.dice_stats(x, np.empty(feats, dtype), np.empty(feats, dtype), 1e-5)
    assert_twins(reference.dice_fwd, kernels.dice_fwd, x, mean, inv, 0.2, np.empty_like(x), **tol)
    assert_twins(reference.dice_bwd_stats, kernels.dice_bwd_stats, x, dy, mean, inv, 0.2,
                 np.empty(feats, dtype), np.empty(feats, dtype), **tol)
    hmean, hz = reference.dice_bwd_stats(x, dy, mean, inv, 0.2, np.empty(feats, dtype), np.empty(feats, dtype))
    assert_twins(reference.dice_bwd, kernels.dice_bwd, x, dy, mean, inv, hmean, hz, 0.2, np.empty_like(x), **tol)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(64, 5), (16, 3, 8)])
def test_dice_layer_gpu_matches_numpy(gpu_xp, shape):
    x, dy = RNG.standard_normal(shape), RNG.standard_normal(shape)
    layer = dice(0.1, 1e-6)
    host = run_layer(layer, [x], [], top_grads=[dy])
    dev = run_layer(layer, [gpu_xp.asarray(x)], [], top_grads=[gpu_xp.asarray(dy)])
    for h, d in zip(host["tops"] + host["bottom_grads"], dev["tops"] + dev["bottom_grads"]):
        np.testing.assert_allclose(gpu_xp.asnumpy(d), h, rtol=1e-10, atol=1e-11)
