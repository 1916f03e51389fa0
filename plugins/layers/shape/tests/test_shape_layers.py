"""Shape layers on NumPy: numerical gradients, forward values, errors, JSON keys."""
import numpy as np
import pytest

from hugectr_core.errors import LayerError
from hugectr_core.testing import check_layer_gradients, make_layer, run_layer

RNG = np.random.default_rng(7)


def rand(*shape):
    return RNG.standard_normal(shape)


def copies_only(layer):
    """The same layer with the engine's view shortcut off, so forward/backward themselves run."""
    layer.aliases_bottom = False
    return layer


# -- Concat -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes,axis", [
    ([(4, 3), (4, 5)], 1),
    ([(4, 3), (4, 1), (4, 2)], 1),
    ([(3, 2, 4), (3, 5, 4)], 1),
    ([(3, 2, 4), (3, 2, 1), (3, 2, 3)], 2),
])
def test_concat_forward_and_gradients(shapes, axis):
    bottoms = [rand(*s) for s in shapes]
    layer = make_layer("Concat", [f"x{i}" for i in range(len(shapes))], ["y"], axis=axis)
    out = run_layer(layer, bottoms, [])["tops"][0]
    np.testing.assert_array_equal(out, np.concatenate(bottoms, axis=axis))
    check_layer_gradients(layer, bottoms)


@pytest.mark.parametrize("shapes,axis", [
    ([(4, 3), (5, 3)], 1),          # batch differs
    ([(3, 2, 4), (3, 2, 5)], 1),    # last dim differs for axis 1
    ([(3, 2, 4), (3, 3, 4)], 2),    # middle dim differs for axis 2
    ([(4, 3), (4, 3, 1)], 1),       # ranks differ
    ([(4, 3), (4, 3)], 2),          # axis 2 on 2-D
])
def test_concat_rejects_mismatched_inputs(shapes, axis):
    layer = make_layer("Concat", ["a", "b"], ["y"], axis=axis)
    with pytest.raises(LayerError, match="Concat"):
        layer.infer_shapes(shapes)


def test_concat_needs_two_bottoms_and_valid_axis():
    with pytest.raises(LayerError, match="at least 2"):
        make_layer("Concat", ["a"], ["y"])
    with pytest.raises(LayerError, match="axis=3"):
        make_layer("Concat", ["a", "b"], ["y"], axis=3)
    assert make_layer("Concat", ["a", "b"], ["y"], axis=2).json_params() == {"axis": 2}


# -- Reshape ----------------------------------------------------------------------------------
@pytest.mark.parametrize("args,in_shape,out_shape", [
    ({"leading_dim": 6}, (4, 3, 2), (4, 6)),
    ({"leading_dim": 2}, (4, 3, 2), (12, 2)),
    ({"leading_dim": 2, "time_step": 3}, (4, 6), (4, 3, 2)),
    ({"shape": [-1, 4]}, (6, 2, 2), (6, 4)),
    ({"shape": [2, -1, 3]}, (4, 6), (2, 4, 3)),
])
def test_reshape_view_modes(args, in_shape, out_shape):
    layer = make_layer("Reshape", ["x"], ["y"], **args)
    assert layer.aliases_bottom is True
    assert layer.infer_shapes([in_shape]) == [out_shape]
    x = rand(*in_shape)
    out = run_layer(copies_only(layer), [x], [])["tops"][0]
    np.testing.assert_array_equal(out, x.reshape(out_shape))
    check_layer_gradients(layer, [x])


def test_reshape_selected_gathers_and_scatters():
    layer = make_layer("Reshape", ["x"], ["y"], selected=True, selected_slots=[3, 0, 3])
    assert layer.aliases_bottom is False
    x = rand(2, 4, 3)
    out = run_layer(layer, [x], [])["tops"][0]
    expected = np.concatenate([x[:, 3, :], x[:, 0, :], x[:, 3, :]], axis=1)
    np.testing.assert_array_equal(out, expected)
    res = check_layer_gradients(layer, [x])
    grad = res["bottom_grads"][0]
    assert np.all(grad[:, [1, 2], :] == 0)  # unselected slots get no gradient


def test_reshape_json_params():
    assert make_layer("Reshape", ["x"], ["y"], leading_dim=4).json_params() == {"leading_dim": 4, "time_step": 0}
    assert make_layer("Reshape", ["x"], ["y"], selected=True, selected_slots=[1, 2]).json_params() == \
        {"selected": [1, 2]}


@pytest.mark.parametrize("args,in_shape,match", [
    ({"leading_dim": 5}, (4, 3), "does not divide"),
    ({"leading_dim": 2, "time_step": 4}, (4, 3), "does not divide"),
    ({"shape": [-1, 5]}, (4, 3), "cannot reshape"),
    ({"shape": [2, 3]}, (4, 3), "holds 6 elements"),
    ({"selected": True, "selected_slots": [0, 4]}, (2, 4, 3), "outside"),
    ({"selected": True, "selected_slots": [0]}, (2, 12), "3-D"),
])
def test_reshape_rejects_bad_shapes(args, in_shape, match):
    layer = make_layer("Reshape", ["x"], ["y"], **args)
    with pytest.raises(LayerError, match=match):
        layer.infer_shapes([in_shape])


@pytest.mark.parametrize("args,match", [
    ({}, "give leading_dim"),
    ({"selected": True}, "selected_slots"),
    ({"shape": [-1, -1]}, "at most one -1"),
])
def test_reshape_rejects_bad_args(args, match):
    with pytest.raises(LayerError, match=match):
        make_layer("Reshape", ["x"], ["y"], **args)


# -- Slice ------------------------------------------------------------------------------------
@pytest.mark.parametrize("in_shape", [(4, 6), (3, 2, 6)])
def test_slice_overlapping_ranges(in_shape):
    ranges = [(0, 3), (2, 5), (2, 6)]
    layer = make_layer("Slice", ["x"], ["a", "b", "c"], ranges=ranges)
    x = rand(*in_shape)
    tops = run_layer(layer, [x], [])["tops"]
    for top, (a, b) in zip(tops, ranges):
        np.testing.assert_array_equal(top, x[..., a:b])
    res = check_layer_gradients(layer, [x])
    # overlapping columns get the sum: column 2 is in all three ranges
    weight_rng = np.random.default_rng(1)  # check_layer_gradients' top weights: seed + 1, drawn in order
    weights = [weight_rng.standard_normal(t.shape) for t in tops]
    np.testing.assert_allclose(res["bottom_grads"][0][..., 2],
                               weights[0][..., 2] + weights[1][..., 0] + weights[2][..., 0])


def test_slice_uncovered_columns_get_zero_gradient():
    layer = make_layer("Slice", ["x"], ["a"], ranges=[(1, 3)])
    x = rand(4, 5)
    res = run_layer(layer, [x], [], top_grads=[np.ones((4, 2))])
    np.testing.assert_array_equal(res["bottom_grads"][0], np.array([[0, 1, 1, 0, 0]] * 4, dtype=float))


@pytest.mark.parametrize("ranges,tops,match", [
    ([(0, 3), (1, 2)], ["a", "b"], "non-decreasing"),
    ([(2, 4), (1, 5)], ["a", "b"], "non-decreasing"),
    ([(3, 3)], ["a"], "start < end"),
    ([(0, 3)], ["a", "b"], "1 ranges but 2 tops"),
    ([], ["a"], "empty"),
])
def test_slice_rejects_bad_ranges(ranges, tops, match):
    with pytest.raises(LayerError, match=match):
        make_layer("Slice", ["x"], tops, ranges=ranges)


def test_slice_rejects_out_of_bounds():
    layer = make_layer("Slice", ["x"], ["a", "b"], ranges=[(0, 3), (2, 7)])
    with pytest.raises(LayerError, match="exceeds the last dimension 6"):
        layer.infer_shapes([(4, 6)])


def test_slice_wrong_bottom_count():
    with pytest.raises(LayerError, match="needs 1 bottom"):
        make_layer("Slice", ["x", "z"], ["a"], ranges=[(0, 1)])


# -- ReduceSum, Add ---------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [1, 2])
def test_reduce_sum(axis):
    layer = make_layer("ReduceSum", ["x"], ["y"], axis=axis)
    x = rand(3, 4, 5)
    out = run_layer(layer, [x], [])["tops"][0]
    np.testing.assert_allclose(out, x.sum(axis=axis, keepdims=True))
    check_layer_gradients(layer, [x])
    assert layer.json_params() == {"axis": axis}


def test_reduce_sum_rejects_missing_axis():
    with pytest.raises(LayerError, match="axis=2 does not exist"):
        make_layer("ReduceSum", ["x"], ["y"], axis=2).infer_shapes([(3, 4)])


def test_add_three_inputs():
    layer = make_layer("Add", ["a", "b", "c"], ["y"])
    xs = [rand(4, 5) for _ in range(3)]
    out = run_layer(layer, xs, [])["tops"][0]
    np.testing.assert_allclose(out, xs[0] + xs[1] + xs[2])
    check_layer_gradients(layer, xs)


def test_add_rejects_shape_mismatch_and_one_input():
    with pytest.raises(LayerError, match="same shape"):
        make_layer("Add", ["a", "b"], ["y"]).infer_shapes([(4, 5), (4, 6)])
    with pytest.raises(LayerError, match="at least 2"):
        make_layer("Add", ["a"], ["y"])
