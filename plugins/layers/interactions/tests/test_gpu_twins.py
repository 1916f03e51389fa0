"""CUDA kernels against their NumPy twins, and the layers on CuPy against NumPy (need a GPU)."""
import numpy as np
import pytest

from hugectr_core.testing import assert_twins, init_params, make_layer, run_layer
from hugectr_layers_interactions import kernels, reference

pytestmark = pytest.mark.gpu
DTYPES = [np.float32, np.float64, np.float16]


def tol(dtype):
    """fp16: both twins compute in float32 and round once to fp16 (order of sums differs)."""
    return {np.float32: {"rtol": 1e-4, "atol": 1e-4}, np.float64: {"rtol": 1e-11, "atol": 1e-11},
            np.float16: {"rtol": 1e-2, "atol": 2e-2}}[np.dtype(dtype).type]


def returning(fn, n_out):
    """Wrap an in-place kernel so it returns its last ``n_out`` arguments (its outputs)."""
    def run(*args):
        fn(*args)
        return tuple(args[-n_out:])
    return run


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,num_f,d", [(37, 26, 16), (5, 1, 3), (3, 40, 130)])
def test_interaction_twins(dtype, batch, num_f, d):
    rng = np.random.default_rng(0)
    mlp = rng.standard_normal((batch, d)).astype(dtype)
    emb = rng.standard_normal((batch, num_f, d)).astype(dtype)
    width = d + num_f * (num_f + 1) // 2 + 1
    out = np.full((batch, width), np.nan, dtype)
    assert_twins(returning(reference.interaction_fwd, 1), returning(kernels.interaction_fwd, 1), mlp, emb, out,
                 **tol(dtype))
    grad_out = rng.standard_normal((batch, width)).astype(dtype)
    assert_twins(returning(reference.interaction_bwd, 2), returning(kernels.interaction_bwd, 2),
                 mlp, emb, grad_out, np.full_like(mlp, np.nan), np.full_like(emb, np.nan), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,n", [(70, 13), (3, 1000)])
def test_multicross_v1_twins(dtype, batch, n):
    rng = np.random.default_rng(1)
    x0, xl, g = (rng.standard_normal((batch, n)).astype(dtype) for _ in range(3))
    w, b = rng.standard_normal((1, n)).astype(dtype), rng.standard_normal((1, n)).astype(dtype)
    dot = rng.standard_normal((batch, 1)).astype(dtype)
    assert_twins(returning(reference.multicross_fwd_layer, 2), returning(kernels.multicross_fwd_layer, 2),
                 x0, xl, w, b, np.full_like(x0, np.nan), np.full_like(dot, np.nan), **tol(dtype))
    grad_x0 = rng.standard_normal((batch, n)).astype(dtype)  # accumulated into
    assert_twins(returning(reference.multicross_bwd_layer, 3), returning(kernels.multicross_bwd_layer, 3),
                 x0, w, dot, g, grad_x0, np.full_like(x0, np.nan), np.full_like(dot, np.nan), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_multicross_v2_elementwise_twins(dtype):
    rng = np.random.default_rng(2)
    batch, n = 33, 17
    x0, xl, h, g, grad_x0 = (rng.standard_normal((batch, n)).astype(dtype) for _ in range(5))
    b = rng.standard_normal((1, n)).astype(dtype)
    assert_twins(returning(reference.multicross_v2_fwd_elem, 1), returning(kernels.multicross_v2_fwd_elem, 1),
                 x0, xl, b, h, np.full_like(x0, np.nan), **tol(dtype))
    assert_twins(returning(reference.multicross_v2_bwd_elem, 2), returning(kernels.multicross_v2_bwd_elem, 2),
                 x0, b, h, g, grad_x0, np.full_like(x0, np.nan), **tol(dtype))


LAYER_CASES = [
    ("Interaction", {}, [(16, 8), (16, 5, 8)]),
    ("MultiCross", {"num_layers": 3}, [(16, 20)]),
    ("MultiCross", {"num_layers": 2, "projection_dim": 4}, [(16, 20)]),
    ("FmOrder2", {"out_dim": 4}, [(16, 20)]),
    ("WeightMultiply", {"weight_dims": [5, 3]}, [(16, 5)]),
    ("MatrixMultiply", {}, [(16, 3, 4), (16, 4, 2)]),
    ("MatrixMultiply", {}, [(16, 4), (4, 2, 3)]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("type_name,args,shapes", LAYER_CASES)
def test_layer_gpu_matches_numpy(gpu_xp, dtype, type_name, args, shapes):
    rng = np.random.default_rng(4)
    layer = make_layer(type_name, [f"x{i}" for i in range(len(shapes))], ["y"], **args)
    bottoms = [rng.standard_normal(s).astype(dtype) for s in shapes]
    params = [p.astype(dtype) + dtype(0.1) for p in init_params(layer, shapes)]
    top_grads = [rng.standard_normal(s).astype(dtype) for s in layer.infer_shapes(shapes)]
    host = run_layer(layer, bottoms, params, top_grads=top_grads)
    dev = run_layer(layer, [gpu_xp.asarray(b) for b in bottoms], [gpu_xp.asarray(p) for p in params],
                    top_grads=[gpu_xp.asarray(g) for g in top_grads])
    for key in ("tops", "bottom_grads", "param_grads"):
        for h, d in zip(host[key], dev[key]):
            scale = max(1.0, float(np.abs(h.astype(np.float64)).max())) if dtype == np.float16 else 1.0
            t = tol(dtype)
            np.testing.assert_allclose(gpu_xp.asnumpy(d).astype(np.float64), h.astype(np.float64), err_msg=key,
                                       rtol=t["rtol"], atol=t["atol"] * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,slots,d", [(37, 5, 8), (3, 1, 130)])
def test_fm_order2_twins(dtype, batch, slots, d):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((batch, slots, d)).astype(dtype)
    g = rng.standard_normal((batch, d)).astype(dtype)
    assert_twins(returning(reference.fm_order2_fwd, 1), returning(kernels.fm_order2_fwd, 1),
                 x, np.full((batch, d), np.nan, dtype), **tol(dtype))
    assert_twins(returning(reference.fm_order2_bwd, 1), returning(kernels.fm_order2_bwd, 1),
                 x, g, np.full_like(x, np.nan), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,slots,d", [(64, 7, 3), (5, 1, 40)])
def test_weight_multiply_twins(dtype, batch, slots, d):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((batch, slots)).astype(dtype)
    w = rng.standard_normal((slots, d)).astype(dtype)
    g = rng.standard_normal((batch, slots * d)).astype(dtype)
    t = dict(tol(dtype))
    if dtype == np.float16:
        t["atol"] = 0.1  # grad_W sums the batch: magnitudes up to ~sqrt(batch)·4
    assert_twins(returning(reference.weight_multiply_fwd, 1), returning(kernels.weight_multiply_fwd, 1),
                 x, w, np.full((batch, slots * d), np.nan, dtype), **t)
    assert_twins(returning(reference.weight_multiply_bwd_x, 1), returning(kernels.weight_multiply_bwd_x, 1),
                 w, g, np.full_like(x, np.nan), **t)
    assert_twins(returning(reference.weight_multiply_bwd_w, 1), returning(kernels.weight_multiply_bwd_w, 1),
                 x, g, np.full_like(w, np.nan), **t)
