"""Fused ReLU + bias backward (relu_bias_bwd) and dW through cuBLAS (weight_grad).

CPU: the NumPy twins, the cuBLAS argument mapping (emulated in column-major NumPy), the fused
kernel's row-block partition and two-level sum (emulated), workspace sizing, and the layers'
NumPy path. GPU (marked ``gpu``): every new launcher against its twin in float32/float64/float16,
and MLP/InnerProduct gradients on the GPU against NumPy at a DLRM-like size (M=4096, 480->1024->512).
"""
import numpy as np
import pytest

from hugectr_core import cublas
from hugectr_core.contracts.layer import StepContext
from hugectr_core.errors import BackendError, LayerError
from hugectr_core.testing import check_layer_gradients, column_sum_tolerance, init_params, make_layer, run_layer
from hugectr_layers_dense import _common, kernels, reference

DTYPES = [np.float32, np.float64, np.float16]
RNG = np.random.default_rng(11)


def relu_case(m, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal((m, n)).astype(dtype)
    y = np.maximum(rng.standard_normal((m, n)), 0).astype(dtype)  # a ReLU output: about half zeros
    return dy, y


def partials_for(m, n, dtype, p=None):
    """A (P, n) acc_t scratch; P from the layer's sizing rule unless given."""
    p = _common.bias_partial_rows(m, n) if p is None else p
    return np.full((p, n), np.nan, dtype=kernels.acc_dtype(dtype))


# -- NumPy twins ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_relu_bias_bwd_equals_relu_bwd_then_bias_grad(dtype):
    dy, y = relu_case(37, 19, dtype)
    out, db = np.empty_like(dy), np.empty((1, 19), dtype)
    got = reference.relu_bias_bwd(dy, y, out, db, partials_for(37, 19, dtype))
    assert got[0] is out and got[1] is db
    want_out = reference.relu_bwd(dy, y, np.empty_like(dy))
    want_db = reference.bias_grad(want_out, np.empty((1, 19), dtype))
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(db, want_db)
    np.testing.assert_array_equal(out, np.where(y > 0, dy, 0))


def test_reference_relu_bias_bwd_in_place_and_float16_accumulation():
    dy = np.ones((4096, 2), np.float16)
    y = np.ones((4096, 2), np.float16)
    y[:, 1] = 0
    db = np.empty(2, np.float16)
    reference.relu_bias_bwd(dy, y, dy, db, partials_for(4096, 2, np.float16))  # out aliases dy, as MLP uses it
    np.testing.assert_array_equal(db, [4096, 0])  # a float16 running sum would stop at 2048
    assert (dy[:, 0] == 1).all() and (dy[:, 1] == 0).all()


def test_reference_bias_partials_sum():
    partials = RNG.standard_normal((5, 7)).astype(np.float32)
    db = np.empty((1, 7), np.float16)
    reference.bias_partials_sum(partials, db)
    np.testing.assert_array_equal(db[0], partials.sum(axis=0).astype(np.float16))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_weight_grad(dtype):
    x, dy = RNG.standard_normal((9, 4)).astype(dtype), RNG.standard_normal((9, 3)).astype(dtype)
    dw = np.full((4, 3), np.nan, dtype)
    assert reference.weight_grad(x, dy, dw) is dw
    np.testing.assert_array_equal(dw, np.matmul(x.T, dy))


# -- the fused kernel's partition and two-level sum, emulated -----------------------------------------
def emulate_relu_bias_bwd(dy, y, p):
    """relu_bias_bwd as kernels.cu computes it: block y sums its row slice, then the P partials are summed."""
    m, n = dy.shape
    geo = kernels.relu_bias_launch_geometry(m, n, p)
    rpb = geo["rows_per_block"]
    out = np.where(y > 0, dy, 0).astype(dy.dtype)
    partials = np.zeros((p, n), kernels.acc_dtype(dy.dtype))
    owner = np.zeros(m, int)
    for block in range(geo["grid"][1]):
        row_slice = slice(block * rpb, min(m, (block + 1) * rpb))
        owner[row_slice] += 1
        partials[block] = reference.acc(out[row_slice]).sum(axis=0)
    assert (owner == 1).all(), "every row must belong to exactly one row block"
    return out, partials.sum(axis=0)


@pytest.mark.parametrize("m,n,p", [(1, 1, 1), (5, 3, 7), (1000, 33, None), (4096, 1024, None), (999, 1, None),
                                   (257, 70, 3)])
def test_emulated_two_level_sum_matches_reference(m, n, p):
    dy, y = relu_case(m, n, np.float64, seed=m)
    p = _common.bias_partial_rows(m, n) if p is None else p
    out, db = emulate_relu_bias_bwd(dy, y, p)
    want_out, want_db = reference.relu_bias_bwd(dy, y, np.empty_like(dy), np.empty(n), partials_for(m, n, dy.dtype, p))
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_allclose(db, want_db, rtol=1e-12, atol=1e-12 * m)


def test_launch_geometry():
    geo = kernels.relu_bias_launch_geometry(65536, 1024, 32)
    assert geo == {"grid": (32, 32), "block": (256,), "rows_per_block": 2048, "cols": 32}
    assert kernels.relu_bias_launch_geometry(10, 1, 4)["cols"] == 1
    assert kernels.relu_bias_launch_geometry(10, 5000000, 1)["grid"][0] == 65535  # grid-stride over tiles
    with pytest.raises(BackendError, match="at least 1 row"):
        kernels.relu_bias_launch_geometry(10, 4, 0)


@pytest.mark.parametrize("m,n", [(1, 1), (8, 6), (4096, 1024), (65536, 1024), (65536, 1), (65536, 512),
                                 (3, 100000), (10 ** 7, 16)])
def test_bias_partial_rows_bounds(m, n):
    p = _common.bias_partial_rows(m, n)
    assert 1 <= p <= _common.MAX_PARTIAL_ROWS
    lanes = _common.TILE_THREADS // _common.tile_cols(n)
    assert p == 1 or -(-m // p) >= 4 * lanes  # each row lane loops over at least 4 rows
    blocks = p * -(-n // _common.tile_cols(n))
    assert blocks <= 2 * _common.TARGET_BLOCKS or p == 1


@pytest.mark.parametrize("dtype,acc", [(np.float16, np.float32), (np.float32, np.float32), (np.float64, np.float64)])
def test_partials_view_uses_the_accumulate_type(dtype, acc):
    m, n = 4096, 1024
    buffer = np.zeros(_common.bias_partial_rows(m, n) * n, np.float64)
    view = _common.partials_view(buffer, dtype, m, n)
    assert view.dtype == acc and view.shape == (_common.bias_partial_rows(m, n), n)
    assert np.shares_memory(view, buffer)
    with pytest.raises(ValueError, match="bias_partials workspace holds"):
        _common.partials_view(buffer[:10], dtype, m, n)


# -- the layers' NumPy path --------------------------------------------------------------------------
def manual_mlp_backward(x, weights, biases, dy, relus):
    """Backprop of relu?(h @ W + b) stages written out with NumPy, float64."""
    hs, h = [x], x
    for w, b, relu in zip(weights, biases, relus):
        h = h @ w + (0 if b is None else b)
        h = np.maximum(h, 0) if relu else h
        hs.append(h)
    dws, dbs = [None] * len(weights), [None] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        if relus[i]:
            dy = np.where(hs[i + 1] > 0, dy, 0)
        dws[i] = hs[i].T @ dy
        dbs[i] = None if biases[i] is None else dy.sum(axis=0, keepdims=True)
        dy = dy @ weights[i].T
    return dy, dws, dbs


def test_mlp_numpy_backward_matches_manual_backprop():
    layer = make_layer("MLP", ["x"], ["y"], num_outputs=[16, 12, 8, 3], activations=["Relu", "Relu", "None", "Relu"],
                       biases=[True, False, True, True])
    x = RNG.standard_normal((50, 10))
    params = init_params(layer, [x.shape], seed=3)
    dy = RNG.standard_normal((50, 3))
    res = run_layer(layer, [x], params, top_grads=[dy])
    weights, biases, it = [], [], iter(params)
    for has_bias in [s.bias for s in layer.stages]:
        weights.append(next(it))
        biases.append(next(it) if has_bias else None)
    dx, dws, dbs = manual_mlp_backward(x, weights, biases, dy, [s.relu for s in layer.stages])
    np.testing.assert_allclose(res["bottom_grads"][0], dx, rtol=1e-12, atol=1e-12)
    want = [g for dw, db in zip(dws, dbs) for g in ([dw] if db is None else [dw, db])]
    for got, exp in zip(res["param_grads"], want):
        np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-12)


def test_mlp_gradients_all_fused_stages():
    layer = make_layer("MLP", ["x"], ["y"], num_outputs=[7, 5, 2])  # Relu + bias everywhere: fused path
    check_layer_gradients(layer, [RNG.standard_normal((6, 4))])


def test_mlp_too_small_partials_workspace_is_a_layer_error():
    layer = make_layer("MLP", ["x"], ["y"], num_outputs=[64])
    x = RNG.standard_normal((4096, 8))
    params = init_params(layer, [x.shape])
    planned_for_8_rows = layer.workspace_specs([(8, 8)])
    ws = {w.name: np.zeros(w.shape, w.dtype or np.float64) for w in planned_for_8_rows}
    ctx = StepContext(xp=np, training=True)
    with pytest.raises(LayerError, match="bias_partials workspace holds"):
        layer.backward(ctx, [x], [np.ones((4096, 64))], [np.ones((4096, 64))], [np.empty_like(x)], params,
                       [np.empty_like(p) for p in params], ws)


def test_kernels_cu_declares_the_new_kernels():
    import importlib.resources

    text = importlib.resources.files("hugectr_layers_dense").joinpath("kernels.cu").read_text()
    for name in ("relu_bias_bwd", "bias_partials_sum"):
        assert f"void {name}(" in text
        for t in ("float", "double", "__half"):
            assert f"{name}<{t}>" in kernels.KERNELS.name_expressions


# -- GPU twins -------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,p", [((1, 1), None), ((65536, 1), None), ((1000, 3), None), ((999, 33), None),
                                     ((4096, 1024), None), ((7, 2049), None), ((300, 96), 1), ((5, 40), 9),
                                     ((128, 24), None), ((2048, 128), 3)])
@pytest.mark.parametrize("in_place", [False, True])
def test_twin_relu_bias_bwd(gpu_xp, dtype, shape, p, in_place):
    cp = gpu_xp
    m, n = shape
    dy, y = relu_case(m, n, dtype, seed=m + n)
    ref_out, ref_db = reference.relu_bias_bwd(dy.copy(), y, np.empty_like(dy), np.zeros((1, n), dtype),
                                              partials_for(m, n, dtype, p))
    d_dy, d_y = cp.asarray(dy), cp.asarray(y)
    d_out = d_dy if in_place else cp.full_like(d_dy, np.nan)
    d_db = cp.full((1, n), np.nan, dtype)
    d_partials = cp.asarray(partials_for(m, n, dtype, p))
    out, db = kernels.relu_bias_bwd(d_dy, d_y, d_out, d_db, d_partials)
    assert out is d_out and db is d_db
    np.testing.assert_array_equal(cp.asnumpy(out), ref_out)  # a select: exact
    rtol, atol = column_sum_tolerance(dtype, m)
    np.testing.assert_allclose(cp.asnumpy(db), ref_db, rtol=rtol, atol=atol)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_bias_bwd_is_deterministic(gpu_xp, dtype):
    cp = gpu_xp
    dy, y = relu_case(65536, 256, dtype, seed=5)
    d_dy, d_y = cp.asarray(dy), cp.asarray(y)
    results = []
    for _ in range(3):
        db = cp.zeros(256, dtype)
        kernels.relu_bias_bwd(d_dy, d_y, cp.empty_like(d_dy), db, cp.asarray(partials_for(65536, 256, dtype)))
        results.append(cp.asnumpy(db))
    assert all(np.array_equal(results[0], r) for r in results[1:])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_bias_partials_sum(gpu_xp, dtype):
    from hugectr_core.testing import assert_twins

    partials = RNG.standard_normal((37, 300)).astype(kernels.acc_dtype(dtype))
    rtol = 1e-3 if dtype == np.float16 else 1e-5 if dtype == np.float32 else 1e-12
    assert_twins(reference.bias_partials_sum, kernels.bias_partials_sum, partials, np.zeros((1, 300), dtype),
                 rtol=rtol, atol=rtol)


def weight_grad_tolerance(dtype, scale):
    if dtype == np.float16:  # both accumulate in float32; one final fp16 rounding (half an ulp)
        return 2e-3, 2e-3 * scale
    if dtype == np.float32:
        return 1e-4, 1e-5 * scale
    return 1e-11, 1e-12 * scale


# NumPy's float16 matmul has no BLAS (about 8 s for 4096x480x1024): the DLRM sizes run in float32/64,
# float16 gets a medium size instead.
WEIGHT_GRAD_CASES = [(dtype, mkn) for dtype in DTYPES for mkn in [(130, 40, 33), (1, 3, 2), (7, 1, 5), (65, 17, 1)]]
WEIGHT_GRAD_CASES += [(dtype, mkn) for dtype in (np.float32, np.float64)
                      for mkn in [(4096, 480, 1024), (4096, 1024, 512)]]
WEIGHT_GRAD_CASES += [(np.float16, (1024, 256, 128))]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,mkn", WEIGHT_GRAD_CASES)
def test_twin_weight_grad(gpu_xp, dtype, mkn):
    m, k, n = mkn
    from hugectr_core.testing import assert_twins

    x, dy = RNG.standard_normal((m, k)).astype(dtype), RNG.standard_normal((m, n)).astype(dtype)
    scale = float(np.abs(x.astype(np.float64).T @ dy.astype(np.float64)).max())
    rtol, atol = weight_grad_tolerance(dtype, scale)
    assert_twins(reference.weight_grad, kernels.weight_grad, x, dy, np.full((k, n), np.nan, dtype),
                 rtol=rtol, atol=atol)


@pytest.mark.gpu
def test_weight_grad_on_views_into_a_larger_buffer(gpu_xp):
    """Engine tensors are views into arenas: pointers with an offset must be honoured."""
    cp = gpu_xp
    arena = cp.asarray(RNG.standard_normal(3 * 64 * 24).astype(np.float32))
    x, dy = arena[64 * 24:64 * 24 + 64 * 8].reshape(64, 8), arena[2 * 64 * 24:2 * 64 * 24 + 64 * 5].reshape(64, 5)
    dw = cp.full((8, 5), np.nan, np.float32)
    kernels.weight_grad(x, dy, dw)
    np.testing.assert_allclose(cp.asnumpy(dw), cp.asnumpy(x).T @ cp.asnumpy(dy), rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_weight_grad_follows_tf32_setting(gpu_xp):
    cp = gpu_xp
    from cupy._core import _routines_linalg as linalg

    x = RNG.standard_normal((2048, 256)).astype(np.float32)
    dy = RNG.standard_normal((2048, 128)).astype(np.float32)
    exact = x.astype(np.float64).T @ dy.astype(np.float64)
    before = linalg.get_compute_type(np.float32)
    try:
        linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32)
        assert cublas.compute_type(np.float32) == cublas.CUBLAS_COMPUTE_32F_FAST_TF32
        dw = kernels.weight_grad(cp.asarray(x), cp.asarray(dy), cp.empty((256, 128), np.float32))
        # TF32 keeps 10 mantissa bits of each product's inputs: errors ~1e-3 relative to the sum's scale
        np.testing.assert_allclose(cp.asnumpy(dw), exact, rtol=0, atol=1e-2 * np.abs(exact).max())
        linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_DEFAULT)
        assert cublas.compute_type(np.float32) == cublas.CUBLAS_COMPUTE_32F
    finally:
        linalg.set_compute_type(np.float32, before)


# -- layers on the GPU against NumPy, DLRM-like sizes ------------------------------------------------------
def scaled_close(got, want, dtype, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert np.isfinite(got).all(), f"{what}: non-finite values"
    scale = max(float(np.abs(want).max()), 1e-6)
    rel = {np.float16: 1e-2, np.float32: 1e-4, np.float64: 1e-10}[dtype]
    np.testing.assert_allclose(got, want, rtol=rel * 10, atol=rel * scale, err_msg=what)


def reference_dtype(dtype):
    """NumPy's float16 matmul has no BLAS (seconds per DLRM-size GEMM): float16 runs are checked
    against NumPy float32 on the same (float16-exact) values, within the float16 tolerance."""
    return np.float32 if dtype == np.float16 else dtype


def numpy_backward_from_gpu_state(layer, cp, x, params, dy, dev):
    """NumPy backward with the GPU run's forward state (tops, hidden outputs), so both sides apply
    the same ReLU masks (a pre-activation within rounding of 0 may otherwise fall on either side)."""
    dtype = x.dtype
    ref = reference_dtype(dtype)

    def host(a):
        a = cp.asnumpy(a) if not isinstance(a, np.ndarray) else a
        return a.astype(ref) if a.dtype == dtype else a  # bias_partials keeps its own dtype

    ws = {k: host(v) for k, v in dev["ws"].items()}
    bottoms, tops = [host(x)], [host(t) for t in dev["tops"]]
    bottom_grads = [np.full(x.shape, np.nan, ref)]
    param_grads = [np.full(p.shape, np.nan, ref) for p in params]
    layer.backward(StepContext(xp=np, training=True), bottoms, tops, [host(dy)], bottom_grads,
                   [host(p) for p in params], param_grads, ws)
    return {"bottom_grads": bottom_grads, "param_grads": param_grads}


DLRM_MLPS = {
    "relu_bias": dict(num_outputs=[1024, 512]),  # every stage fused
    "mixed": dict(num_outputs=[1024, 512, 1], activations=["Relu", "Relu", "None"]),  # last: bias_grad
    "no_bias": dict(num_outputs=[1024, 512], use_bias=False),  # relu_bwd only
}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(DLRM_MLPS))
def test_gpu_mlp_matches_numpy_dlrm_size(gpu_xp, dtype, case):
    cp = gpu_xp
    layer = make_layer("MLP", ["x"], ["y"], **DLRM_MLPS[case])
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4096, 480)).astype(dtype)
    params = init_params(layer, [x.shape], dtype=dtype, seed=8)
    dy = rng.standard_normal(layer.infer_shapes([x.shape])[0]).astype(dtype)
    dev = run_layer(layer, [cp.asarray(x)], [cp.asarray(p) for p in params], top_grads=[cp.asarray(dy)])
    fwd = run_layer(layer, [x.astype(np.float64)], [p.astype(np.float64) for p in params])
    scaled_close(cp.asnumpy(dev["tops"][0]), fwd["tops"][0], dtype, "top")
    ref = numpy_backward_from_gpu_state(layer, cp, x, params, dy, dev)
    for key in ("bottom_grads", "param_grads"):
        for i, (r, d) in enumerate(zip(ref[key], dev[key])):
            assert d.dtype == dtype
            scaled_close(cp.asnumpy(d), r, dtype, f"{case} {key}[{i}]")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4096, 480), (512, 8, 480)])
def test_gpu_inner_product_matches_numpy_dlrm_size(gpu_xp, dtype, shape):
    cp, layer = gpu_xp, make_layer("InnerProduct", ["x"], ["y"], num_output=1024)
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape).astype(dtype)
    params = init_params(layer, [shape], dtype=dtype, seed=9)
    dy = rng.standard_normal(layer.infer_shapes([shape])[0]).astype(dtype)
    ref_dtype = reference_dtype(dtype)
    ref = run_layer(layer, [x.astype(ref_dtype)], [p.astype(ref_dtype) for p in params],
                    top_grads=[dy.astype(ref_dtype)])
    dev = run_layer(layer, [cp.asarray(x)], [cp.asarray(p) for p in params], top_grads=[cp.asarray(dy)])
    for key in ("tops", "bottom_grads", "param_grads"):
        for i, (r, d) in enumerate(zip(ref[key], dev[key])):
            assert d.dtype == dtype
            scaled_close(cp.asnumpy(d), r, dtype, f"{key}[{i}]")
