"""Select, Gather, ReduceMean, Sub, ElementwiseMultiply, Scale, FusedReshapeConcat(General), Cast on
NumPy: forward values against hand-written NumPy, float64 numerical gradients, errors, JSON keys,
float16 forwards, and the NumPy layers against reference.py."""
import numpy as np
import pytest

from hugectr_core.contracts import StepContext
from hugectr_core.errors import LayerError
from hugectr_core.testing import check_layer_gradients, make_layer, run_layer
from hugectr_layers_shape import reference

RNG = np.random.default_rng(17)


def rand(*shape):
    return RNG.standard_normal(shape)


def layer_of(type_name, n_in=1, n_out=1, **args):
    return make_layer(type_name, [f"x{i}" for i in range(n_in)], [f"y{i}" for i in range(n_out)], **args)


# -- Select / Gather --------------------------------------------------------------------------
@pytest.mark.parametrize("shape,dim,index", [
    ((4, 5), 1, [3, 0, 3]), ((4, 5), 0, [1, 1, 2]), ((3, 4, 2), 1, [2, 0]), ((3, 4, 2), 2, [1, 1, 0, 1]),
])
def test_select_forward_and_gradients(shape, dim, index):
    x = rand(*shape)
    layer = layer_of("Select", dim=dim, index=index)
    res = run_layer(layer, [x], [], top_grads=[np.ones(layer.infer_shapes([shape])[0])])
    np.testing.assert_array_equal(res["tops"][0], np.take(x, index, axis=dim))
    counts = np.bincount(index, minlength=shape[dim]).astype(float)  # repeated indices add up
    expected = np.broadcast_to(counts.reshape([-1 if a == dim else 1 for a in range(len(shape))]), shape)
    np.testing.assert_array_equal(res["bottom_grads"][0], expected)
    check_layer_gradients(layer, [x])


def test_select_errors_and_json():
    with pytest.raises(LayerError, match="out of range"):
        layer_of("Select", dim=1, index=[0, 5]).infer_shapes([(4, 5)])
    with pytest.raises(LayerError, match="dim=2 does not exist"):
        layer_of("Select", dim=2, index=[0]).infer_shapes([(4, 5)])
    with pytest.raises(LayerError, match="empty"):
        layer_of("Select", dim=1, index=[])
    with pytest.raises(LayerError, match="negative"):
        layer_of("Select", dim=1, index=[-1])
    assert layer_of("Select", dim=1, index=[0]).json_params() == {}
    assert layer_of("Select", dim=1, index=[0]).supports_fp16


def test_gather_rows():
    x = rand(6, 3)
    layer = layer_of("Gather", indices=[4, 0, 4])
    assert layer.infer_shapes([(6, 3)]) == [(3, 3)]
    np.testing.assert_array_equal(run_layer(layer, [x], [])["tops"][0], x[[4, 0, 4]])
    check_layer_gradients(layer, [x])
    assert layer.json_params() == {"indices": [4, 0, 4]} and layer.supports_fp16 is False
    with pytest.raises(LayerError, match="out of range"):
        layer.infer_shapes([(4, 3)])


# -- ReduceMean / Sub / ElementwiseMultiply ----------------------------------------------------
@pytest.mark.parametrize("shape,axis", [((4, 5), 1), ((3, 4, 2), 1), ((3, 4, 2), 2), ((3, 4, 2), 0)])
def test_reduce_mean(shape, axis):
    x = rand(*shape)
    layer = layer_of("ReduceMean", axis=axis)
    np.testing.assert_allclose(run_layer(layer, [x], [])["tops"][0], x.mean(axis=axis, keepdims=True), rtol=1e-14)
    check_layer_gradients(layer, [x])
    assert layer.json_params() == {"axis": axis} and layer.supports_fp16 is False
    with pytest.raises(LayerError, match="axis=5"):
        layer_of("ReduceMean", axis=5).infer_shapes([shape])


def test_sub():
    x, y = rand(4, 3), rand(4, 3)
    layer = layer_of("Sub", 2)
    np.testing.assert_array_equal(run_layer(layer, [x, y], [])["tops"][0], x - y)
    check_layer_gradients(layer, [x, y])
    assert layer.supports_fp16 is False and layer.json_params() == {}
    with pytest.raises(LayerError, match="needs 2 bottom"):
        layer_of("Sub", 3)
    with pytest.raises(LayerError, match="same shape"):
        layer.infer_shapes([(4, 3), (4, 2)])


@pytest.mark.parametrize("n", [2, 3, 4])
def test_elementwise_multiply(n):
    xs = [rand(5, 3) for _ in range(n)]
    xs[0][0, 0] = 0.0  # zeros must not break the gradient (no division)
    layer = layer_of("ElementwiseMultiply", n)
    np.testing.assert_allclose(run_layer(layer, xs, [])["tops"][0], np.prod(xs, axis=0), rtol=1e-14)
    check_layer_gradients(layer, xs)
    with pytest.raises(LayerError, match="same shape"):
        layer.infer_shapes([(5, 3)] * (n - 1) + [(5, 4)])


# -- Scale -------------------------------------------------------------------------------------
def test_scale_axis0_repeats_elements_and_sums_gradients():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    layer = layer_of("Scale", axis=0, factor=3)
    g = np.arange(12.0).reshape(2, 6)
    res = run_layer(layer, [x], [], top_grads=[g])
    np.testing.assert_array_equal(res["tops"][0], [[1, 1, 1, 2, 2, 2], [3, 3, 3, 4, 4, 4]])
    np.testing.assert_array_equal(res["bottom_grads"][0], [[0 + 1 + 2, 3 + 4 + 5], [6 + 7 + 8, 9 + 10 + 11]])
    check_layer_gradients(layer, [rand(3, 4)])


def test_scale_axis1_repeats_rows():
    x = rand(3, 4)
    layer = layer_of("Scale", axis=1, factor=2)
    out = run_layer(layer, [x], [])["tops"][0]
    np.testing.assert_array_equal(out, np.repeat(x, 2, axis=0))
    check_layer_gradients(layer, [x])
    assert layer.json_params() == {"scale_param": {"axis": 1, "factor": 2}} and layer.supports_fp16 is False


@pytest.mark.parametrize("args,match", [({"axis": 0, "factor": 0}, "factor=0"), ({"axis": 2, "factor": 2}, "axis=2"),
                                        ({"axis": 0, "factor": 1.5}, "integer")])
def test_scale_errors(args, match):
    with pytest.raises(LayerError, match=match):
        layer_of("Scale", **args)


def test_scale_needs_2d():
    with pytest.raises(LayerError, match="2-D"):
        layer_of("Scale", axis=0, factor=2).infer_shapes([(2, 3, 4)])


# -- FusedReshapeConcat(General) ---------------------------------------------------------------
def test_fused_reshape_concat():
    a, b = rand(3, 4, 2), rand(3, 4, 5)
    layer = layer_of("FusedReshapeConcat", 2, 2)
    hist, tgt = run_layer(layer, [a, b], [])["tops"]
    cat = np.concatenate([a, b], axis=2)
    np.testing.assert_array_equal(hist, cat[:, :3, :].reshape(9, 7))
    np.testing.assert_array_equal(tgt, cat[:, 3, :])
    check_layer_gradients(layer, [a, b])
    assert layer.supports_fp16 is False
    with pytest.raises(LayerError, match="S >= 2"):
        layer.infer_shapes([(3, 1, 2), (3, 1, 5)])
    with pytest.raises(LayerError, match=r"agree on \(B, S\)"):
        layer.infer_shapes([(3, 4, 2), (3, 5, 5)])


def test_fused_reshape_concat_general():
    a, b, c = rand(3, 4, 2), rand(3, 4, 1), rand(3, 4, 3)
    layer = layer_of("FusedReshapeConcatGeneral", 3)
    out = run_layer(layer, [a, b, c], [])["tops"][0]
    np.testing.assert_array_equal(out, np.concatenate([a, b, c], axis=2).reshape(12, 6))
    check_layer_gradients(layer, [a, b, c])
    with pytest.raises(LayerError, match="3-D"):
        layer.infer_shapes([(3, 4), (3, 4, 1), (3, 4, 3)])


# -- Cast --------------------------------------------------------------------------------------
def test_cast_dtypes_and_values():
    layer = layer_of("Cast")
    assert layer.top_dtypes(np.float32) == [np.float16] and layer.top_dtypes(np.float16) == [np.float32]
    x = rand(4, 3).astype(np.float32)
    top = np.empty((4, 3), np.float16)
    ctx = StepContext(xp=np, training=True, batch_size=4, current_batchsize=4)
    layer.forward(ctx, [x], [top], [], {})
    np.testing.assert_array_equal(top, x.astype(np.float16))
    dy = rand(4, 3).astype(np.float16)
    dx = np.empty((4, 3), np.float32)
    layer.backward(ctx, [x], [top], [dy], [dx], [], [], {})
    np.testing.assert_array_equal(dx, dy.astype(np.float32))
    check_layer_gradients(layer, [rand(3, 2)])
    assert layer.json_params() == {}


# -- float16 and reference twins -------------------------------------------------------------
FP16_CASES = [
    ("Select", {"dim": 1, "index": [2, 0, 2]}, [(8, 4, 3)], 1),
    ("ElementwiseMultiply", {}, [(8, 5)] * 3, 1),
    ("Concat", {"axis": 2}, [(8, 2, 4), (8, 2, 3)], 1),
    ("Slice", {"ranges": [(0, 3), (2, 5)]}, [(8, 5)], 2),
    ("ReduceSum", {"axis": 1}, [(8, 3, 4)], 1),
    ("Add", {}, [(8, 5)] * 2, 1),
]


@pytest.mark.parametrize("type_name,args,shapes,n_tops", FP16_CASES)
def test_float16_forward_and_backward_close_to_float64(type_name, args, shapes, n_tops):
    layer = layer_of(type_name, len(shapes), n_tops, **args)
    assert layer.supports_fp16
    bottoms = [rand(*s) for s in shapes]
    grads = [rand(*s) for s in layer.infer_shapes(shapes)]
    ref = run_layer(layer, bottoms, [], top_grads=grads)
    half = run_layer(layer, [b.astype(np.float16) for b in bottoms], [], top_grads=[g.astype(np.float16) for g in grads])
    for r, h in zip(ref["tops"] + ref["bottom_grads"], half["tops"] + half["bottom_grads"]):
        assert h.dtype == np.float16
        np.testing.assert_allclose(h.astype(np.float64), r, rtol=1e-2, atol=2e-2 * max(1.0, np.abs(r).max()))


def test_reference_new_twins_match_loops():
    x = rand(2, 4, 3)
    out = np.empty((2, 3, 3))
    reference.select_fwd(x, [3, 1, 3], out)
    g = np.empty_like(x)
    reference.select_bwd(out, [3, 1, 3], g)
    for o in range(2):
        for i in range(3):
            assert out[o, 0, i] == x[o, 3, i] and out[o, 1, i] == x[o, 1, i]
            assert g[o, 3, i] == 2 * x[o, 3, i] and g[o, 0, i] == 0 and g[o, 1, i] == x[o, 1, i]
    small = rand(3, 2)
    big = np.empty((3, 4, 2))
    reference.scale_fwd(small, big)
    back = np.empty((3, 2))
    reference.scale_bwd(big, back)
    np.testing.assert_allclose(back, 4 * small)
    half_grad = np.empty((2, 4, 3), np.float16)
    reference.select_bwd(out.astype(np.float16), [3, 1, 3], half_grad)
    np.testing.assert_allclose(half_grad, g, rtol=1e-2, atol=1e-2)
