"""Softmax (plain and masked) and SequenceMask: values, gradients, errors, JSON, fp16."""
import numpy as np
import pytest

from hugectr_core.errors import BackendError, LayerError
from hugectr_core.testing import check_layer_gradients, make_layer, run_layer


def softmax_numpy(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax(n_bottoms=1, **args):
    return make_layer("Softmax", ["x", "mask"][:n_bottoms], ["y"], **args)


def random_mask(shape, seed):
    mask = (np.random.default_rng(seed).random(shape) > 0.4).astype(np.float64)
    mask[..., 0] = 1.0  # every row keeps one position
    return mask


@pytest.mark.parametrize("shape", [(7,), (4, 6), (2, 3, 5), (2, 2, 3, 4)])
def test_softmax_forward_any_rank(shape):
    x = np.random.default_rng(0).standard_normal(shape) * 3
    y = run_layer(softmax(factor=7.0), [x], [])["tops"][0]  # factor is ignored without a mask
    np.testing.assert_allclose(y, softmax_numpy(x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-12)


def test_softmax_known_values():
    y = run_layer(softmax(), [np.array([[0.0, np.log(3.0)]])], [])["tops"][0]
    np.testing.assert_allclose(y, [[0.25, 0.75]], rtol=1e-12)


@pytest.mark.parametrize("mask_shape", [(2, 1, 3, 5), (2, 4, 3, 5)])
def test_masked_softmax_forward(mask_shape):
    rng = np.random.default_rng(1)
    x, mask = rng.standard_normal((2, 4, 3, 5)), random_mask(mask_shape, 2)
    y = run_layer(softmax(2, factor=0.5), [x, mask], [])["tops"][0]
    np.testing.assert_allclose(y, softmax_numpy(x * 0.5 - (1 - mask) * 10000.0), rtol=1e-12, atol=1e-15)
    assert np.all(y[np.broadcast_to(mask, x.shape) == 0] < 1e-30)  # exp(-10000) underflows


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4)])
def test_softmax_gradients(shape):
    check_layer_gradients(softmax(), [np.random.default_rng(3).standard_normal(shape)])


@pytest.mark.parametrize("mask_shape", [(2, 1, 2, 4), (2, 3, 2, 4)])
def test_masked_softmax_gradients(mask_shape):
    rng = np.random.default_rng(4)
    res = check_layer_gradients(softmax(2, factor=0.7), [rng.standard_normal((2, 3, 2, 4)), random_mask(mask_shape, 5)])
    assert res["bottom_grads"][1] is None  # the mask gets no gradient


def test_softmax_fp16_forward_close_to_fp64():
    x = np.random.default_rng(6).standard_normal((16, 33)) * 2
    y = run_layer(softmax(), [x.astype(np.float16)], [])["tops"][0]
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float64), softmax_numpy(x), rtol=1e-2, atol=1e-3)


def test_masked_softmax_refuses_fp16_with_clear_error():
    x, mask = np.zeros((1, 1, 2, 2), np.float16), np.ones((1, 1, 2, 2), np.float16)
    with pytest.raises(BackendError, match="fp32 only"):
        run_layer(softmax(2), [x, mask], [])


def test_softmax_bad_inputs():
    with pytest.raises(LayerError, match="mask shape"):
        softmax(2).infer_shapes([(2, 4, 3, 5), (2, 2, 3, 5)])
    with pytest.raises(LayerError, match="mask shape"):
        softmax(2).infer_shapes([(2, 3, 5), (2, 1, 5)])
    with pytest.raises(LayerError, match="1 bottom"):
        make_layer("Softmax", ["a", "b", "c"], ["y"])
    with pytest.raises(LayerError, match="factor"):
        softmax(factor="big")


def test_softmax_json():
    assert softmax(2, factor=0.125).json_params() == {"factor": 0.125}
    assert softmax().json_params() == {"factor": 1.0}


# -- SequenceMask ------------------------------------------------------------------------------
def seq_mask(lf=4, lt=5):
    return make_layer("SequenceMask", ["lf", "lt"], ["mask"], max_sequence_len_from=lf, max_sequence_len_to=lt)


def test_sequence_mask_values():
    len_from, len_to = np.array([[2.0], [4.0], [0.0]]), np.array([[5.0], [1.0], [3.0]])
    layer = seq_mask()
    assert layer.infer_shapes([(3, 1), (3, 1)]) == [(3, 1, 4, 5)]
    res = run_layer(layer, [len_from, len_to], [], top_grads=[np.ones((3, 1, 4, 5))])
    expected = np.zeros((3, 1, 4, 5))
    for b in range(3):
        for i in range(4):
            for j in range(5):
                expected[b, 0, i, j] = float(i < len_from[b, 0] and j < len_to[b, 0])
    np.testing.assert_array_equal(res["tops"][0], expected)
    assert res["bottom_grads"] == [None, None]


def test_sequence_mask_fractional_lengths_and_fp16():
    res = run_layer(seq_mask(3, 3), [np.array([[1.5]], np.float16), np.array([[2.0]], np.float16)], [])
    assert res["tops"][0].dtype == np.float16
    np.testing.assert_array_equal(res["tops"][0][0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_sequence_mask_errors_and_json():
    with pytest.raises(LayerError, match=r"\(B, 1\)"):
        seq_mask().infer_shapes([(3, 2), (3, 2)])
    with pytest.raises(LayerError, match=r"\(B, 1\)"):
        seq_mask().infer_shapes([(3, 1), (4, 1)])
    with pytest.raises(LayerError, match="max_sequence_len_to"):
        seq_mask(lt=0)
    assert seq_mask(6, 7).json_params() == {"max_sequence_len_from": 6, "max_sequence_len_to": 7}
    assert not seq_mask().bottom_needs_grad(0) and not seq_mask().bottom_needs_grad(1)
