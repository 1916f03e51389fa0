"""FmOrder2, WeightMultiply, MatrixMultiply on NumPy: values, numerical gradients, initialisers,
errors, JSON keys, float16 forwards; and fp16 for the existing Interaction/MultiCross."""
import importlib.resources
import math

import numpy as np
import pytest

from hugectr_core.enums import Initializer_t
from hugectr_core.errors import LayerError
from hugectr_core.testing import check_layer_gradients, init_params, make_layer, run_layer
from hugectr_layers_interactions import reference

RNG = np.random.default_rng(23)


def layer_of(type_name, n_in=1, **args):
    return make_layer(type_name, [f"x{i}" for i in range(n_in)], ["y"], **args)


# -- FmOrder2 ----------------------------------------------------------------------------------
def fm_by_loops(x, d):
    batch, slots = x.shape[0], x.shape[1] // d
    out = np.zeros((batch, d))
    for b in range(batch):
        for k in range(d):
            for s in range(slots):
                for t in range(s + 1, slots):  # Σ_{s<t} v_s v_t == 0.5((Σv)² − Σv²)
                    out[b, k] += x[b, s * d + k] * x[b, t * d + k]
    return out


@pytest.mark.parametrize("batch,slots,d", [(3, 4, 5), (2, 1, 3), (4, 7, 2)])
def test_fm_order2_values_and_gradients(batch, slots, d):
    x = RNG.standard_normal((batch, slots * d))
    layer = layer_of("FmOrder2", out_dim=d)
    np.testing.assert_allclose(run_layer(layer, [x], [])["tops"][0], fm_by_loops(x, d), rtol=1e-12, atol=1e-12)
    check_layer_gradients(layer, [x])


def test_fm_order2_errors_and_json():
    with pytest.raises(LayerError, match="not divisible"):
        layer_of("FmOrder2", out_dim=4).infer_shapes([(8, 10)])
    with pytest.raises(LayerError, match="out_dim=0"):
        layer_of("FmOrder2", out_dim=0)
    with pytest.raises(LayerError, match="2-D"):
        layer_of("FmOrder2", out_dim=2).infer_shapes([(8, 2, 2)])
    assert layer_of("FmOrder2", out_dim=4).json_params() == {"out_dim": 4}


# -- WeightMultiply ----------------------------------------------------------------------------
def test_weight_multiply_values_and_gradients():
    layer = layer_of("WeightMultiply", weight_dims=[3, 4])
    x = RNG.standard_normal((5, 3))
    w = RNG.standard_normal((3, 4))
    out = run_layer(layer, [x], [w])["tops"][0]
    for b in range(5):
        for s in range(3):
            for d in range(4):
                assert out[b, s * 4 + d] == pytest.approx(x[b, s] * w[s, d])
    check_layer_gradients(layer, [x], [w])


def test_weight_multiply_default_init_is_xavier_uniform():
    layer = layer_of("WeightMultiply", weight_dims=[20, 30])
    (w,) = init_params(layer, [(4, 20)], seed=3)
    limit = math.sqrt(6.0 / (20 + 20 * 30))
    assert w.shape == (20, 30) and np.abs(w).max() <= limit and np.abs(w).max() > 0.9 * limit
    uni = layer_of("WeightMultiply", weight_dims=[20, 30], weight_init_type=Initializer_t.Uniform)
    assert np.abs(init_params(uni, [(4, 20)])[0]).max() <= 1.0 / (20 + 600)
    assert uni.json_params() == {"weight_dims": [20, 30], "weight_init": "Uniform"}
    assert layer.json_params() == {"weight_dims": [20, 30]}


def test_weight_multiply_errors():
    with pytest.raises(LayerError, match=r"\[S, D\]"):
        layer_of("WeightMultiply", weight_dims=[3])
    with pytest.raises(LayerError, match=r"\(B, 3\)"):
        layer_of("WeightMultiply", weight_dims=[3, 2]).infer_shapes([(8, 4)])


# -- MatrixMultiply ----------------------------------------------------------------------------
@pytest.mark.parametrize("a_shape,b_shape", [
    ((3, 4), (4, 2)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 2, 4), (2, 3, 4, 3)), ((3, 4), (4, 2, 3)),
])
def test_matrix_multiply(a_shape, b_shape):
    a, b = RNG.standard_normal(a_shape), RNG.standard_normal(b_shape)
    layer = layer_of("MatrixMultiply", 2)
    out = run_layer(layer, [a, b], [])["tops"][0]
    expected = np.einsum("bm,mgh->bgh", a, b) if len(a_shape) == 2 and len(b_shape) == 3 else np.matmul(a, b)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    check_layer_gradients(layer, [a, b])
    assert layer.supports_fp16 is False and layer.json_params() == {}


@pytest.mark.parametrize("shapes,match", [
    ([(3, 4), (5, 2)], "inner dimensions"), ([(2, 3, 4), (3, 4, 5)], "batch dimensions"),
    ([(3, 4), (5, 2, 3)], "equal m"), ([(3, 4, 2), (2, 4)], "unsupported ranks"),
])
def test_matrix_multiply_shape_errors(shapes, match):
    with pytest.raises(LayerError, match=match):
        layer_of("MatrixMultiply", 2).infer_shapes(shapes)


# -- float16 -----------------------------------------------------------------------------------
FP16_CASES = [
    ("FmOrder2", {"out_dim": 4}, [(16, 12)]),
    ("WeightMultiply", {"weight_dims": [5, 3]}, [(16, 5)]),
    ("Interaction", {}, [(16, 4), (16, 3, 4)]),
    ("MultiCross", {"num_layers": 2}, [(16, 6)]),
    ("MultiCross", {"num_layers": 2, "projection_dim": 3}, [(16, 6)]),
]


@pytest.mark.parametrize("type_name,args,shapes", FP16_CASES)
def test_float16_close_to_float64(type_name, args, shapes):
    layer = layer_of(type_name, len(shapes), **args)
    assert layer.supports_fp16
    bottoms = [RNG.standard_normal(s) * 0.5 for s in shapes]
    params = init_params(layer, shapes)
    grads = [RNG.standard_normal(s) for s in layer.infer_shapes(shapes)]
    ref = run_layer(layer, bottoms, params, top_grads=grads)
    half = run_layer(layer, [b.astype(np.float16) for b in bottoms], [p.astype(np.float16) for p in params],
                     top_grads=[g.astype(np.float16) for g in grads])
    for key in ("tops", "bottom_grads", "param_grads"):
        for r, h in zip(ref[key], half[key]):
            assert h.dtype == np.float16
            np.testing.assert_allclose(h.astype(np.float64), r, rtol=2e-2, atol=2e-2 * max(1.0, np.abs(r).max()),
                                       err_msg=f"{type_name} {key}")


def test_kernels_cu_has_every_twin():
    text = importlib.resources.files("hugectr_layers_interactions").joinpath("kernels.cu").read_text()
    for name in ("fm_order2_fwd", "fm_order2_bwd", "weight_multiply_fwd", "weight_multiply_bwd_x",
                 "weight_multiply_bwd_w", "interaction_gather", "interaction_bwd",
                 "multicross_fwd_layer"):
        assert f"__global__ void {name}(" in text and hasattr(reference, name)
    assert "acc_t<T>" in text and "HCTR_GRID_STRIDE_LOOP" in text
