"""float16 (mixed precision): NumPy fp16 vs float64, and GPU fp16 vs NumPy fp16 for both layers.

Tolerances: float16 keeps 11 significant bits (unit roundoff 4.9e-4). Inputs, weights and every
stored activation are rounded once each, and GEMM sums of K products add about sqrt(K) roundoffs of
the partial sums, so with O(1) inputs and K <= 64 the errors stay below 1e-2 relative to the
tensor's magnitude. We compare with ``atol = 1e-2 * max|reference|`` and ``rtol = 1e-2``.

ReLU is continuous, so forward outputs always meet that bound. Its derivative is not: a
pre-activation within a float16 roundoff of 0 can land on the other side of 0, which zeroes (or
keeps) one entry of dy, which moves a row of dx and a column of dW by O(1). Rows are
independent in these layers, so the tests drop the batch rows whose ReLU masks differ between the
two runs, rerun both on the rest and then hold every element to the bound.
"""
import numpy as np
import pytest

from hugectr_core.testing import init_params, make_layer, run_layer

CASES = {
    "InnerProduct": dict(num_output=24),
    "MLP": dict(num_outputs=[48, 33, 1], activations=["Relu", "None", "Relu"], biases=[True, False, True]),
    "MLP_wide_last": dict(num_outputs=[40, 64]),
    "MLP_linear": dict(num_outputs=[48, 40, 8], activations=["None"] * 3),
}


def layer_for(case):
    kind = "MLP" if case.startswith("MLP") else case
    return make_layer(kind, ["x"], ["y"], **CASES[case])


def scaled_close(got, want, what):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert np.isfinite(got).all(), f"{what}: non-finite values"
    scale = max(float(np.abs(want).max()), 1e-3)
    np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2 * scale, err_msg=what)


def inputs(layer, shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    params = init_params(layer, [shape], seed=seed)
    dy = rng.standard_normal(layer.infer_shapes([shape])[0])
    # round once to fp16 so that both runs see exactly the same values
    return [a.astype(np.float16).astype(np.float64) for a in [x, dy, *params]]


def run(layer, x, dy, params, dtype, xp=np):
    return run_layer(layer, [xp.asarray(x.astype(dtype))], [xp.asarray(p.astype(dtype)) for p in params],
                     top_grads=[xp.asarray(dy.astype(dtype))])


def host(a):
    return a.get() if hasattr(a, "get") else a


def relu_masks_by_row(res):
    """Per batch row, the signs of every stage output (MLP hidden outputs and the top)."""
    outs = [res["ws"][k] for k in sorted(res["ws"]) if k.startswith("out")] + [res["tops"][0]]
    return np.concatenate([host(o).reshape(len(host(res["tops"][0])), -1) > 0 for o in outs], axis=1)


def run_pair(layer, x, dy, params, run_a, run_b):
    """Run both precisions; rerun without the rows whose ReLU masks differ (see the module docstring)."""
    a, b = run_a(x, dy, params), run_b(x, dy, params)
    if layer.type_name != "MLP":  # no ReLU inside
        return a, b
    keep = (relu_masks_by_row(a) == relu_masks_by_row(b)).all(axis=1)
    assert keep.mean() > 0.9, "too many ReLU mask flips for a float16 rounding effect"
    if not keep.all():
        a, b = run_a(x[keep], dy[keep], params), run_b(x[keep], dy[keep], params)
        assert (relu_masks_by_row(a) == relu_masks_by_row(b)).all()
    return a, b


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("shape", [(64, 40), (4, 16, 40)])
def test_numpy_float16_matches_float64(case, shape):
    layer = layer_for(case)
    if case != "InnerProduct" and len(shape) == 3:
        shape = (64, 40)
    x, dy, *params = inputs(layer, shape, seed=1)
    half, exact = run_pair(layer, x, dy, params, lambda *a: run(layer, *a, np.float16),
                           lambda *a: run(layer, *a, np.float64))
    assert half["tops"][0].dtype == np.float16
    assert all(g.dtype == np.float16 for g in half["param_grads"])
    for key in ("tops", "bottom_grads", "param_grads"):
        for i, (h, e) in enumerate(zip(half[key], exact[key])):
            scaled_close(h, e, f"{case} {key}[{i}]")


def test_float16_bias_grad_accumulates_in_float32():
    # 4096 rows of 1.0: a float16 running sum would stop at 2048; float32 accumulation reaches 4096 exactly
    from hugectr_layers_dense import reference

    out = np.zeros((1, 3), np.float16)
    reference.bias_grad(np.ones((4096, 3), np.float16), out)
    np.testing.assert_array_equal(out, [[4096, 4096, 4096]])


@pytest.mark.gpu
@pytest.mark.parametrize("case", sorted(CASES))
def test_gpu_float16_matches_numpy_float16(gpu_xp, case):
    cp, layer = gpu_xp, layer_for(case)
    shape = (130, 40)
    x, dy, *params = inputs(layer, shape, seed=2)
    ref, dev = run_pair(layer, x, dy, params, lambda *a: run(layer, *a, np.float16),
                        lambda *a: run(layer, *a, np.float16, xp=cp))
    for key in ("tops", "bottom_grads", "param_grads"):
        for i, (r, d) in enumerate(zip(ref[key], dev[key])):
            assert d.dtype == cp.float16
            scaled_close(cp.asnumpy(d), r, f"{case} {key}[{i}]")
