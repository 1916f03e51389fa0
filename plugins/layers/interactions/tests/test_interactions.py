"""Interaction and MultiCross on NumPy: layouts, numerical gradients, initialisers, errors."""
import importlib.resources

import numpy as np
import pytest

from hugectr_core.errors import LayerError
from hugectr_core.testing import check_layer_gradients, init_params, make_layer, run_layer

RNG = np.random.default_rng(11)


# -- Interaction ------------------------------------------------------------------------------
def interaction_by_loops(mlp, emb):
    """The documented layout, written out element by element."""
    batch, d = mlp.shape
    num_f = emb.shape[1]
    out = np.empty((batch, d + num_f * (num_f + 1) // 2 + 1))
    for b in range(batch):
        vectors = [mlp[b]] + [emb[b, f] for f in range(num_f)]
        col = 0
        for e in range(d):
            out[b, col] = mlp[b, e]
            col += 1
        for row in range(1, num_f + 1):
            for c in range(row):
                out[b, col] = sum(vectors[row][e] * vectors[c][e] for e in range(d))
                col += 1
        out[b, col] = 0.0
        assert col == out.shape[1] - 1
    return out


@pytest.mark.parametrize("batch,num_f,d", [(3, 4, 5), (2, 1, 3), (4, 26, 2)])
def test_interaction_layout_matches_loops(batch, num_f, d):
    layer = make_layer("Interaction", ["mlp", "emb"], ["y"])
    mlp, emb = RNG.standard_normal((batch, d)), RNG.standard_normal((batch, num_f, d))
    out = run_layer(layer, [mlp, emb], [])["tops"][0]
    assert out.shape == (batch, d + num_f * (num_f + 1) // 2 + 1)
    np.testing.assert_allclose(out, interaction_by_loops(mlp, emb), rtol=1e-12, atol=1e-12)
    assert np.all(out[:, -1] == 0)


def test_interaction_gradients():
    layer = make_layer("Interaction", ["mlp", "emb"], ["y"])
    check_layer_gradients(layer, [RNG.standard_normal((3, 4)), RNG.standard_normal((3, 5, 4))])


def test_interaction_skips_input_without_gradient():
    layer = make_layer("Interaction", ["mlp", "emb"], ["y"])
    mlp, emb = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 5, 4))
    top_grad = RNG.standard_normal(layer.infer_shapes([mlp.shape, emb.shape])[0])
    full = run_layer(layer, [mlp, emb], [], top_grads=[top_grad])["bottom_grads"]
    grad_emb = np.zeros_like(emb)
    ctx = type("Ctx", (), {"xp": np})()
    layer.backward(ctx, [mlp, emb], [], [top_grad], [None, grad_emb], [], [], {})
    np.testing.assert_allclose(grad_emb, full[1])


@pytest.mark.parametrize("shapes,match", [
    ([(3, 4), (3, 5, 6)], "mlp width 4 must equal the embedding vector size 6"),
    ([(3, 4), (2, 5, 4)], "batch sizes differ"),
    ([(3, 4), (3, 20)], r"emb \(B, F, d\)"),
])
def test_interaction_rejects_bad_shapes(shapes, match):
    with pytest.raises(LayerError, match=match):
        make_layer("Interaction", ["mlp", "emb"], ["y"]).infer_shapes(shapes)


def test_interaction_arity_errors():
    with pytest.raises(LayerError, match="fp16"):
        make_layer("Interaction", ["mlp", "emb"], ["y", "y_grad"])
    with pytest.raises(LayerError, match="needs 2 bottom"):
        make_layer("Interaction", ["mlp"], ["y"])
    assert make_layer("Interaction", ["mlp", "emb"], ["y"]).json_params() == {}


# -- MultiCross -------------------------------------------------------------------------------
def multicross_by_hand(x0, params, num_layers, projection_dim):
    x = x0.copy()
    for l in range(num_layers):
        if projection_dim:
            u, v, b = params[3 * l: 3 * l + 3]
            x = x0 * ((x @ u) @ v + b) + x
        else:
            w, b = params[2 * l: 2 * l + 2]
            x = x0 * (x @ w.T) + b + x
    return x


MC_CASES = [{"num_layers": 1}, {"num_layers": 3}, {"num_layers": 1, "projection_dim": 2},
            {"num_layers": 3, "projection_dim": 4}]


@pytest.mark.parametrize("args", MC_CASES)
def test_multicross_forward_and_gradients(args):
    layer = make_layer("MultiCross", ["x"], ["y"], **args)
    x = RNG.standard_normal((5, 7))
    params = [p + RNG.standard_normal(p.shape) * 0.1 for p in init_params(layer, [x.shape])]  # non-zero biases
    out = run_layer(layer, [x], params)["tops"][0]
    np.testing.assert_allclose(out, multicross_by_hand(x, params, args["num_layers"], args.get("projection_dim", 0)),
                               rtol=1e-12, atol=1e-12)
    check_layer_gradients(layer, [x], params)


def test_multicross_param_order_and_initialisers():
    n, k = 400, 100
    v1 = make_layer("MultiCross", ["x"], ["y"], num_layers=2)
    assert [(s.name, s.shape) for s in v1.param_specs([(8, n)])] == \
        [("w0", (1, n)), ("b0", (1, n)), ("w1", (1, n)), ("b1", (1, n))]
    w, b = init_params(v1, [(8, n)], seed=3)[:2]
    assert abs(w.std() - np.sqrt(1 / n)) < 0.15 * np.sqrt(1 / n) and np.all(b == 0)
    v2 = make_layer("MultiCross", ["x"], ["y"], num_layers=1, projection_dim=k)
    assert [(s.name, s.shape) for s in v2.param_specs([(8, n)])] == [("U0", (n, k)), ("V0", (k, n)), ("b0", (1, n))]
    u, v, b = init_params(v2, [(8, n)], seed=3)
    std = np.sqrt(2 / (n + k))
    assert abs(u.std() - std) < 0.05 * std and abs(v.std() - std) < 0.05 * std and np.all(b == 0)
    assert np.abs(u).max() > 2 * std  # untruncated normal


def test_multicross_workspaces_keep_intermediates():
    layer = make_layer("MultiCross", ["x"], ["y"], num_layers=3)
    x = RNG.standard_normal((4, 6))
    params = init_params(layer, [x.shape])
    ws = run_layer(layer, [x], params)["ws"]
    x1 = multicross_by_hand(x, params, 1, 0)
    np.testing.assert_allclose(ws["xl"][0], x1)
    np.testing.assert_allclose(ws["dot"][1], x1 @ params[2].T)


def test_multicross_json_and_errors():
    layer = make_layer("MultiCross", ["x"], ["y"], num_layers=2, projection_dim=8)
    assert layer.json_params() == {"mc_param": {"num_layers": 2, "projection_dim": 8}}
    with pytest.raises(LayerError, match="num_layers >= 1"):
        make_layer("MultiCross", ["x"], ["y"], num_layers=0)
    with pytest.raises(LayerError, match="2-D"):
        make_layer("MultiCross", ["x"], ["y"], num_layers=1).infer_shapes([(4, 3, 2)])
    with pytest.raises(LayerError, match="needs 1 bottom"):
        make_layer("MultiCross", ["x", "z"], ["y"], num_layers=1)


def test_kernels_cu_is_package_data():
    cu = importlib.resources.files("hugectr_layers_interactions").joinpath("kernels.cu")
    assert cu.is_file()
    text = cu.read_text()
    for name in ("interaction_gather", "interaction_bwd", "multicross_fwd_layer",
                 "multicross_bwd_layer", "multicross_v2_fwd_elem", "multicross_v2_bwd_elem"):
        assert f"__global__ void {name}(" in text
