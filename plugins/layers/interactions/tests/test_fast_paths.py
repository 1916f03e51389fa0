"""The batched-GEMM Interaction and warp-per-row MultiCross paths (issue 7).

CPU tests check the NumPy building blocks and the cuBLAS argument mapping (emulated in column-major
NumPy); GPU tests (marked ``gpu``) compare every new kernel and the composed CuPy path with its twin.
"""
import numpy as np
import pytest

from hugectr_core.errors import BackendError
from hugectr_core.testing import assert_twins, init_params, make_layer, run_layer
from hugectr_layers_interactions import kernels, reference

RNG = np.random.default_rng(21)


# -- cuBLAS argument mapping, emulated on the CPU ----------------------------------------------------
def cublas_gemm_strided_batched(args, first, second, out, beta=0.0):
    """What cublasGemmStridedBatchedEx computes, on flat column-major buffers (slow, exact)."""
    first, second, flat_out = first.reshape(-1), second.reshape(-1), out.reshape(-1)
    m, n, k = args["m"], args["n"], args["k"]

    def operand(buf, base, ld, trans, rows, cols):  # op(X) as a (rows, cols) matrix
        mat = np.empty((rows, cols))
        for r in range(rows):
            for c in range(cols):
                mat[r, c] = buf[base + (c + r * ld if trans else r + c * ld)]
        return mat

    for i in range(args["batch"]):
        a = operand(first, i * args["stride_a"], args["lda"], args["transa"] == 1, m, k)
        b = operand(second, i * args["stride_b"], args["ldb"], args["transb"] == 1, k, n)
        c = a @ b
        for r in range(m):
            for col in range(n):
                pos = i * args["stride_c"] + r + col * args["ldc"]
                # cuBLAS reads C only when beta != 0 (C may hold garbage, e.g. NaN, otherwise)
                flat_out[pos] = c[r, col] + (beta * flat_out[pos] if beta else 0.0)


@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("batch,rows,inner,cols", [(3, 4, 5, 6), (2, 1, 7, 3), (2, 27, 8, 27), (1, 5, 1, 2)])
def test_gemm_arguments_compute_row_major_product(trans_b, batch, rows, inner, cols):
    a = RNG.standard_normal((batch, rows, inner))
    b = RNG.standard_normal((batch, cols, inner) if trans_b else (batch, inner, cols))
    out = RNG.standard_normal((batch, rows, cols))
    expected = a @ (b.transpose(0, 2, 1) if trans_b else b) + 0.5 * out
    args = kernels.gemm_strided_batched_args(a.shape, b.shape, out.shape, trans_b)
    assert (args["first"], args["second"]) == ("b", "a")
    cublas_gemm_strided_batched(args, b, a, out, beta=0.5)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_gemm_arguments_reject_mismatched_shapes():
    with pytest.raises(BackendError, match="do not form"):
        kernels.gemm_strided_batched_args((2, 3, 4), (2, 5, 6), (2, 3, 6))


def test_cupy_composition_on_numpy_stand_ins(monkeypatch):
    """kernels.interaction_fwd/bwd (workspace split of Z, beta=1 for the mlp pass-through) with every
    kernel replaced by its twin and cuBLAS by the column-major emulation above."""
    import sys
    import types

    def emulated_gemm(a, b, out, trans_b=False, beta=0.0):
        args = kernels.gemm_strided_batched_args(a.shape, b.shape, out.shape, trans_b)
        cublas_gemm_strided_batched(args, b, a, out, beta)

    fake_cupy = types.SimpleNamespace(empty=np.empty, ascontiguousarray=np.ascontiguousarray)
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    for name in ("interaction_stack", "interaction_gather", "interaction_bwd_prepare"):
        monkeypatch.setattr(kernels, name, getattr(reference, name))
    monkeypatch.setattr(kernels, "batched_gemm", emulated_gemm)
    batch, num_f, d = 2, 3, 4
    vectors, width = num_f + 1, d + num_f * (num_f + 1) // 2 + 1
    mlp, emb = RNG.standard_normal((batch, d)), RNG.standard_normal((batch, num_f, d))
    g = RNG.standard_normal((batch, width))
    expected = [np.empty((batch, width)), np.empty_like(mlp), np.empty_like(emb)]
    reference.interaction_fwd(mlp, emb, expected[0])
    reference.interaction_bwd(mlp, emb, g, expected[1], expected[2])
    t, z = np.full((batch, vectors, d), np.nan), np.full((batch, vectors, vectors), np.nan)
    got = [np.full_like(e, np.nan) for e in expected]
    kernels.interaction_fwd(mlp, emb, got[0], t, z)
    kernels.interaction_bwd(mlp, emb, g, got[1], got[2], t, z)
    for e, o in zip(expected, got):
        np.testing.assert_allclose(o, e, rtol=1e-12, atol=1e-12)
    got_fresh = [np.full_like(e, np.nan) for e in expected[1:]]
    kernels.interaction_bwd(mlp, emb, g, *got_fresh)  # no workspaces: T rebuilt, scratch allocated
    np.testing.assert_allclose(got_fresh[0], expected[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_fresh[1], expected[2], rtol=1e-12, atol=1e-12)


# -- NumPy building blocks ------------------------------------------------------------------------------
def test_reference_batched_gemm_and_beta():
    a, b = RNG.standard_normal((4, 2, 3)), RNG.standard_normal((4, 5, 3))
    out = RNG.standard_normal((4, 2, 5))
    expected = a @ b.transpose(0, 2, 1) + out
    reference.batched_gemm(a, b, out, trans_b=True, beta=1.0)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_bwd_prepare_is_symmetric_with_zero_diagonal():
    batch, num_f, d = 3, 4, 2
    vectors = num_f + 1
    width = d + num_f * vectors // 2 + 1
    g = RNG.standard_normal((batch, width))
    dz_mlp, dz_emb = np.full((batch, 1, vectors), np.nan), np.full((batch, num_f, vectors), np.nan)
    grad_mlp = np.full((batch, d), np.nan)
    reference.interaction_bwd_prepare(g, dz_mlp, dz_emb, grad_mlp)
    dz = np.concatenate([dz_mlp, dz_emb], axis=1)
    np.testing.assert_array_equal(dz, dz.transpose(0, 2, 1))
    assert np.all(np.diagonal(dz, axis1=1, axis2=2) == 0)
    np.testing.assert_array_equal(dz[:, 2, 1], g[:, d + 2])  # pair (2, 1) is the third pair column
    np.testing.assert_array_equal(grad_mlp, g[:, :d])


def test_interaction_layer_declares_its_workspace():
    layer = make_layer("Interaction", ["mlp", "emb"], ["y"])
    specs = {s.name: s.shape for s in layer.workspace_specs([(8, 16), (8, 26, 16)])}
    assert specs == {"t": (8, 27, 16), "z": (8, 27, 27)}
    # dZ's mlp row and embedding rows together fill Z exactly (kernels.interaction_bwd splits it)
    assert 8 * 27 + 8 * 26 * 27 == int(np.prod(specs["z"]))


def test_multicross_v1_bias_gradient_is_column_sum():
    layer = make_layer("MultiCross", ["x"], ["y"], num_layers=2)
    x, g = RNG.standard_normal((9, 5)), RNG.standard_normal((9, 5))
    res = run_layer(layer, [x], init_params(layer, [x.shape]), top_grads=[g])
    np.testing.assert_allclose(res["param_grads"][3], g.sum(axis=0, keepdims=True), rtol=1e-12)
    assert np.all(res["ws"]["ones"] == 1)


# -- GPU twins ------------------------------------------------------------------------------------------------
def tol(dtype):
    return {np.float32: {"rtol": 1e-4, "atol": 1e-4}, np.float64: {"rtol": 1e-11, "atol": 1e-11},
            np.float16: {"rtol": 1e-2, "atol": 3e-2}}[np.dtype(dtype).type]


def returning(fn, n_out):
    def run(*args):
        fn(*args)
        return tuple(args[-n_out:])
    return run


DTYPES = [np.float32, np.float16, np.float64]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("shape", [(5, 27, 128, 27), (7, 1, 27, 128), (3, 26, 27, 128), (4, 3, 1, 5)])
def test_batched_gemm_twin(dtype, trans_b, shape):
    batch, rows, inner, cols = shape
    a = RNG.standard_normal((batch, rows, inner)).astype(dtype)
    b = RNG.standard_normal((batch, cols, inner) if trans_b else (batch, inner, cols)).astype(dtype)
    out = RNG.standard_normal((batch, rows, cols)).astype(dtype)
    t = dict(tol(dtype))
    t["atol"] *= np.sqrt(inner)
    for beta in (0.0, 1.0):
        assert_twins(lambda x, y, o: (reference.batched_gemm(x, y, o, trans_b, beta), o)[1],
                     lambda x, y, o: (kernels.batched_gemm(x, y, o, trans_b, beta), o)[1], a, b, out, **t)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,num_f,d", [(37, 26, 128), (5, 1, 3), (3, 40, 130), (2, 26, 16)])
def test_interaction_block_twins(dtype, batch, num_f, d):
    vectors = num_f + 1
    width = d + num_f * vectors // 2 + 1
    mlp = RNG.standard_normal((batch, d)).astype(dtype)
    emb = RNG.standard_normal((batch, num_f, d)).astype(dtype)
    z = RNG.standard_normal((batch, vectors, vectors)).astype(dtype)
    g = RNG.standard_normal((batch, width)).astype(dtype)
    exact = {"rtol": 0, "atol": 0}  # copies only
    assert_twins(returning(reference.interaction_stack, 1), returning(kernels.interaction_stack, 1),
                 mlp, emb, np.full((batch, vectors, d), np.nan, dtype), **exact)
    assert_twins(returning(reference.interaction_gather, 1), returning(kernels.interaction_gather, 1),
                 mlp, z, np.full((batch, width), np.nan, dtype), **exact)
    assert_twins(returning(reference.interaction_bwd_prepare, 3), returning(kernels.interaction_bwd_prepare, 3),
                 g, np.full((batch, 1, vectors), np.nan, dtype), np.full((batch, num_f, vectors), np.nan, dtype),
                 np.full((batch, d), np.nan, dtype), **exact)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,num_f,d", [(64, 26, 128), (33, 3, 8)])
def test_interaction_fast_path_with_workspaces(dtype, batch, num_f, d):
    """The composed CuPy path, run on the layer's workspaces (backward reuses forward's T)."""
    import cupy

    vectors = num_f + 1
    width = d + num_f * vectors // 2 + 1
    mlp = (RNG.standard_normal((batch, d)) * 0.3).astype(dtype)
    emb = (RNG.standard_normal((batch, num_f, d)) * 0.3).astype(dtype)
    g = RNG.standard_normal((batch, width)).astype(dtype)
    out, gm, ge = np.empty((batch, width), dtype), np.empty_like(mlp), np.empty_like(emb)
    reference.interaction_fwd(mlp, emb, out)
    reference.interaction_bwd(mlp, emb, g, gm, ge)
    d_mlp, d_emb, d_g = cupy.asarray(mlp), cupy.asarray(emb), cupy.asarray(g)
    t = cupy.full((batch, vectors, d), np.nan, dtype)
    z = cupy.full((batch, vectors, vectors), np.nan, dtype)
    d_out = cupy.full((batch, width), np.nan, dtype)
    d_gm, d_ge = cupy.full(mlp.shape, np.nan, dtype), cupy.full(emb.shape, np.nan, dtype)
    kernels.interaction_fwd(d_mlp, d_emb, d_out, t, z)
    kernels.interaction_bwd(d_mlp, d_emb, d_g, d_gm, d_ge, t, z)
    tt = dict(tol(dtype))
    tt["atol"] *= np.sqrt(d)
    for name, host, dev in (("out", out, d_out), ("grad_mlp", gm, d_gm), ("grad_emb", ge, d_ge)):
        np.testing.assert_allclose(cupy.asnumpy(dev).astype(np.float64), host.astype(np.float64), err_msg=name, **tt)


@pytest.mark.gpu
def test_interaction_step_allocates_nothing():
    """With workspaces given, forward + backward take no memory from CuPy's pool."""
    import cupy

    batch, num_f, d = 256, 26, 128
    vectors, width = num_f + 1, d + num_f * (num_f + 1) // 2 + 1
    arrays = [cupy.asarray(RNG.standard_normal(s).astype(np.float32)) for s in
              [(batch, d), (batch, num_f, d), (batch, width), (batch, width), (batch, d), (batch, num_f, d),
               (batch, vectors, d), (batch, vectors, vectors)]]
    mlp, emb, out, g, gm, ge, t, z = arrays

    def step():
        kernels.interaction_fwd(mlp, emb, out, t, z)
        kernels.interaction_bwd(mlp, emb, g, gm, ge, t, z)

    step()  # compiles the kernels
    cupy.cuda.Device().synchronize()
    pool, calls = cupy.get_default_memory_pool(), []

    def counting(size):
        calls.append(size)
        return pool.malloc(size)

    cupy.cuda.set_allocator(counting)
    try:
        step()
    finally:
        cupy.cuda.set_allocator(pool.malloc)
    assert calls == []


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,n", [(70, 13), (3, 1000), (1001, 479), (9, 32)])
def test_multicross_warp_kernels_twins(dtype, batch, n):
    x0, xl, g = (RNG.standard_normal((batch, n)).astype(dtype) for _ in range(3))
    w, b = RNG.standard_normal((1, n)).astype(dtype), RNG.standard_normal((1, n)).astype(dtype)
    dot = RNG.standard_normal((batch, 1)).astype(dtype)
    t = dict(tol(dtype))
    t["atol"] *= np.sqrt(n) / 4
    assert_twins(returning(reference.multicross_fwd_layer, 2), returning(kernels.multicross_fwd_layer, 2),
                 x0, xl, w, b, np.full_like(x0, np.nan), np.full_like(dot, np.nan), **t)
    grad_x0 = RNG.standard_normal((batch, n)).astype(dtype)
    assert_twins(returning(reference.multicross_bwd_layer, 3), returning(kernels.multicross_bwd_layer, 3),
                 x0, w, dot, g, grad_x0, np.full_like(x0, np.nan), np.full_like(dot, np.nan), **t)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("type_name,args,shapes", [
    ("Interaction", {}, [(128, 128), (128, 26, 128)]),
    ("MultiCross", {"num_layers": 3}, [(256, 479)]),
])
def test_dlrm_sized_layers_gpu_match_numpy(gpu_xp, dtype, type_name, args, shapes):
    layer = make_layer(type_name, [f"x{i}" for i in range(len(shapes))], ["y"], **args)
    bottoms = [(RNG.standard_normal(s) * 0.3).astype(dtype) for s in shapes]
    params = [p.astype(dtype) for p in init_params(layer, shapes)]
    top_grads = [RNG.standard_normal(s).astype(dtype) for s in layer.infer_shapes(shapes)]
    host = run_layer(layer, bottoms, params, top_grads=top_grads)
    dev = run_layer(layer, [gpu_xp.asarray(b) for b in bottoms], [gpu_xp.asarray(p) for p in params],
                    top_grads=[gpu_xp.asarray(g) for g in top_grads])
    for key in ("tops", "bottom_grads", "param_grads"):
        for h, d in zip(host[key], dev[key]):
            h64 = h.astype(np.float64)
            scale = max(1.0, float(np.abs(h64).max()))
            np.testing.assert_allclose(gpu_xp.asnumpy(d).astype(np.float64), h64, err_msg=key,
                                       rtol=tol(dtype)["rtol"], atol=tol(dtype)["atol"] * scale)
