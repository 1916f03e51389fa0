"""The Interaction path without T = [mlp; emb] and the warp-per-row MultiCross paths (issue 7).

CPU tests check the NumPy building blocks, the cuBLAS argument mapping (emulated in column-major
NumPy) and the Interaction kernels' index arithmetic (ported line by line to Python); GPU tests
(marked ``gpu``) compare every kernel and the composed CuPy path with its twin.
"""
import numpy as np
import pytest

from hugectr_core.errors import BackendError
from hugectr_core.testing import assert_twins, init_params, make_layer, run_layer
from hugectr_core import cublas
from hugectr_core.testing.cublas_emulation import emulate_gemm_strided_batched
from hugectr_layers_interactions import kernels, reference

RNG = np.random.default_rng(21)


# -- the CUDA kernels' index arithmetic, ported line by line to Python ---------------------------------
def _grid(n_threads, block):
    return max(1, min((int(n_threads) + block - 1) // block, 65535 * 8))  # as KernelModule.launch


def emulate_interaction_gather(grid, block, shared_mem, mlp_bd, emb_bfd, z_bff, out_bo, batch, num_f, d):
    """kernels.cu interaction_gather: one warp per sample, lanes strided over d and over a pair row."""
    mlp, emb, z, out = (a.reshape(-1) for a in (mlp_bd, emb_bfd, z_bff, out_bo))
    assert shared_mem == 0 and block % 32 == 0
    width = d + num_f * (num_f + 1) // 2 + 1
    warps = grid * block // 32
    for warp in range(warps):
        for b in range(warp, batch, warps):
            m, o = b * d, b * width
            for lane in range(32):
                for e in range(lane, d, 32):
                    out[o + e] = mlp[m + e]
            for i in range(1, num_f + 1):
                emb_row = (b * num_f + (i - 1)) * d
                dot = sum(sum(mlp[m + e] * emb[emb_row + e] for e in range(lane, d, 32)) for lane in range(32))
                row, z_row = o + d + i * (i - 1) // 2, (b * num_f + (i - 1)) * num_f
                for lane in range(32):
                    for j in range(lane, i, 32):
                        out[row + j] = dot if j == 0 else z[z_row + j - 1]
            out[o + width - 1] = 0


def emulate_interaction_bwd(grid, block, shared_mem, mlp_bd, emb_bfd, grad_out_bo, grad_mlp_bd, grad_emb_bfd,
                            batch, num_f, d):
    """kernels.cu interaction_bwd: one block per sample, S (V x VP, shared memory) then 4 rows per pass."""
    mlp, emb, g, grad_mlp, grad_emb = (a.reshape(-1) for a in (mlp_bd, emb_bfd, grad_out_bo, grad_mlp_bd,
                                                               grad_emb_bfd))
    vectors = num_f + 1
    padded = (vectors + 3) & ~3
    assert shared_mem == vectors * padded * mlp.itemsize and block % 32 == 0
    # interaction_bwd_v32 computes the same sums (T from registers, S through a table of pair columns)
    width = d + num_f * vectors // 2 + 1
    for blk in range(grid):
        for b in range(blk, batch, grid):
            s = np.full(shared_mem // mlp.itemsize, np.nan)
            for k in range(vectors * padded):
                r, c = divmod(k, padded)
                value = 0.0
                if c < vectors and r != c:
                    hi, lo = max(r, c), min(r, c)
                    value = g[b * width + d + hi * (hi - 1) // 2 + lo]
                s[k] = value
            for tid in range(block):
                for e in range(tid, d, block):
                    for r0 in range(0, vectors, 4):
                        acc = [0.0] * 4
                        for j in range(vectors):
                            t = mlp[b * d + e] if j == 0 else emb[b * num_f * d + (j - 1) * d + e]
                            for q in range(4):
                                acc[q] += s[j * padded + r0 + q] * t
                        for q in range(4):
                            r = r0 + q
                            if r == 0:
                                grad_mlp[b * d + e] = g[b * width + e] + acc[q]
                            elif r < vectors:
                                grad_emb[(b * num_f + (r - 1)) * d + e] = acc[q]


def emulate_interaction_bwd_v32(grid, block, shared_mem, *args):
    """interaction_bwd_v32: the sums of interaction_bwd; its shared memory adds an int table to S."""
    num_f = int(args[-2])
    vectors, padded = num_f + 1, (num_f + 4) & ~3
    assert vectors <= kernels.REGISTER_VECTORS and shared_mem == vectors * padded * (args[0].itemsize + 4)
    emulate_interaction_bwd(grid, block, vectors * padded * args[0].itemsize, *args)


EMULATED = {"interaction_gather": emulate_interaction_gather, "interaction_bwd": emulate_interaction_bwd,
            "interaction_bwd_v32": emulate_interaction_bwd_v32}


@pytest.mark.parametrize("one_block", [False, True])
@pytest.mark.parametrize("batch,num_f,d", [(2, 3, 4), (3, 1, 5), (2, 6, 37), (1, 2, 300), (2, 4, 64)])
def test_cupy_composition_on_numpy_stand_ins(monkeypatch, one_block, batch, num_f, d):
    """kernels.interaction_fwd/bwd as on the GPU, with cuBLAS replaced by the column-major emulation
    above and KERNELS.launch by line-by-line Python ports of the CUDA kernels (``one_block`` forces a
    grid of one block: every grid-stride loop must still cover the batch). No [mlp; emb] is built."""
    import sys
    import types

    def emulated_gemm(a, b, out, trans_b=False, beta=0.0):
        args = cublas.gemm_strided_batched_args(a.shape, b.shape, out.shape, trans_b)
        emulate_gemm_strided_batched(args, b, a, out, beta)

    def emulated_launch(name, dtypes, n_threads, args, block=256, shared_mem=0):
        grid = 1 if one_block else _grid(n_threads, block)
        EMULATED[name](grid, block, shared_mem, *(int(x) if isinstance(x, np.integer) else x for x in args))

    fake_cupy = types.SimpleNamespace(empty=np.empty, ascontiguousarray=np.ascontiguousarray)
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    monkeypatch.setattr(kernels, "batched_gemm", emulated_gemm)
    monkeypatch.setattr(kernels.KERNELS, "launch", emulated_launch)
    width = d + num_f * (num_f + 1) // 2 + 1
    mlp, emb = RNG.standard_normal((batch, d)), RNG.standard_normal((batch, num_f, d))
    g = RNG.standard_normal((batch, width))
    expected = [np.empty((batch, width)), np.empty_like(mlp), np.empty_like(emb)]
    reference.interaction_fwd(mlp, emb, expected[0])
    reference.interaction_bwd(mlp, emb, g, expected[1], expected[2])
    z_ee = np.full((batch, num_f, num_f), np.nan)
    got = [np.full_like(e, np.nan) for e in expected]
    kernels.interaction_fwd(mlp, emb, got[0], z_ee)
    kernels.interaction_bwd(mlp, emb, g, got[1], got[2])
    for e, o in zip(expected, got):
        np.testing.assert_allclose(o, e, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(z_ee, emb @ emb.transpose(0, 2, 1), rtol=1e-12, atol=1e-12)
    fresh = np.full_like(expected[0], np.nan)
    kernels.interaction_fwd(mlp, emb, fresh)  # no workspace: Z_ee allocated
    np.testing.assert_allclose(fresh, expected[0], rtol=1e-12, atol=1e-12)


def test_bwd_launch_config_and_shared_memory_limit():
    name, threads, block, shared = kernels.interaction_bwd_launch_config(65536, 26, 128, np.float32)
    assert (name, threads, block, shared) == ("interaction_bwd_v32", 65536 * 128, 128, 27 * 28 * (4 + 4))
    assert kernels.interaction_bwd_launch_config(8, 40, 128, np.float32)[0] == "interaction_bwd"
    assert kernels.interaction_bwd_launch_config(5, 1, 3, np.float16)[2:] == (32, 2 * 4 * (4 + 4))
    assert kernels.interaction_bwd_launch_config(5, 26, 1000, np.float64)[2:] == (256, 27 * 28 * (8 + 4))
    assert kernels.interaction_bwd_launch_config(5, 40, 64, np.float32)[2:] == (64, 41 * 44 * 4)
    kernels.interaction_bwd_launch_config(8, 108, 16, np.float32)  # 109 vectors: 109*112*4 bytes fit
    kernels.interaction_bwd_launch_config(8, 75, 16, np.float64)  # 76*76*8 bytes fit
    with pytest.raises(BackendError, match="at most 108 embedding vectors"):
        kernels.interaction_bwd_launch_config(8, 109, 16, np.float32)
    with pytest.raises(BackendError, match="shared memory"):
        kernels.interaction_bwd_launch_config(8, 76, 16, np.float64)


# -- NumPy building blocks ------------------------------------------------------------------------------
def test_reference_batched_gemm_and_beta():
    a, b = RNG.standard_normal((4, 2, 3)), RNG.standard_normal((4, 5, 3))
    out = RNG.standard_normal((4, 2, 5))
    expected = a @ b.transpose(0, 2, 1) + out
    reference.batched_gemm(a, b, out, trans_b=True, beta=1.0)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def stacked_interaction(mlp, emb, g):
    """The textbook form with T = [mlp; emb] built: out from Z = T·Tᵀ, dT = (G + Gᵀ)·T."""
    d = mlp.shape[1]
    t = np.concatenate([mlp[:, None, :], emb], axis=1)
    rows, cols = np.tril_indices(t.shape[1], -1)
    out = np.concatenate([mlp, (t @ t.transpose(0, 2, 1))[:, rows, cols], np.zeros((len(mlp), 1))], axis=1)
    dz = np.zeros((len(mlp), t.shape[1], t.shape[1]))
    dz[:, rows, cols] = g[:, d:-1]
    dz = dz + dz.transpose(0, 2, 1)
    dt = dz @ t
    return out, dt[:, 0] + g[:, :d], dt[:, 1:]


@pytest.mark.parametrize("batch,num_f,d", [(3, 4, 2), (2, 1, 5), (4, 26, 8)])
def test_reference_without_t_equals_stacked_form(batch, num_f, d):
    mlp, emb = RNG.standard_normal((batch, d)), RNG.standard_normal((batch, num_f, d))
    g = RNG.standard_normal((batch, d + num_f * (num_f + 1) // 2 + 1))
    want = stacked_interaction(mlp, emb, g)
    out, grad_mlp, grad_emb = np.full_like(want[0], np.nan), np.full_like(mlp, np.nan), np.full_like(emb, np.nan)
    reference.interaction_fwd(mlp, emb, out)
    reference.interaction_bwd(mlp, emb, g, grad_mlp, grad_emb)
    for got, expected in zip((out, grad_mlp, grad_emb), want):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_reference_gather_reads_z_ee_and_computes_mlp_dots():
    batch, num_f, d = 2, 3, 4
    mlp, emb = RNG.standard_normal((batch, d)), RNG.standard_normal((batch, num_f, d))
    z_ee = RNG.standard_normal((batch, num_f, num_f))  # not emb·embᵀ: the gather must copy it as given
    out = np.full((batch, d + 6 + 1), np.nan)
    reference.interaction_gather(mlp, emb, z_ee, out)
    dots = np.einsum("bfd,bd->bf", emb, mlp)
    # pairs row-major: (1,0) (2,0) (2,1) (3,0) (3,1) (3,2)
    want = np.stack([dots[:, 0], dots[:, 1], z_ee[:, 1, 0], dots[:, 2], z_ee[:, 2, 0], z_ee[:, 2, 1]], axis=1)
    np.testing.assert_allclose(out[:, d:-1], want, rtol=1e-12)
    np.testing.assert_array_equal(out[:, :d], mlp)
    assert np.all(out[:, -1] == 0)


def test_interaction_layer_declares_its_workspace():
    layer = make_layer("Interaction", ["mlp", "emb"], ["y"])
    specs = {s.name: s.shape for s in layer.workspace_specs([(8, 16), (8, 26, 16)])}
    assert specs == {"z_ee": (8, 26, 26)}  # no T = [mlp; emb] (B, F+1, d) any more


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
@pytest.mark.parametrize("batch,num_f,d", [(37, 26, 128), (5, 1, 3), (3, 40, 130), (2, 26, 16), (4, 5, 300),
                                           (3, 31, 64), (3, 32, 64)])
def test_interaction_kernel_twins(dtype, batch, num_f, d):
    """interaction_gather (Z_ee columns copied bit for bit, mlp·emb dots by the warp) and the one-kernel
    backward against their NumPy twins."""
    import cupy

    width = d + num_f * (num_f + 1) // 2 + 1
    mlp = RNG.standard_normal((batch, d)).astype(dtype)
    emb = RNG.standard_normal((batch, num_f, d)).astype(dtype)
    z_ee = RNG.standard_normal((batch, num_f, num_f)).astype(dtype)
    g = RNG.standard_normal((batch, width)).astype(dtype)
    t = dict(tol(dtype))
    t["atol"] *= np.sqrt(max(d, num_f + 1))
    assert_twins(returning(reference.interaction_gather, 1), returning(kernels.interaction_gather, 1),
                 mlp, emb, z_ee, np.full((batch, width), np.nan, dtype), **t)
    out = cupy.full((batch, width), np.nan, dtype)
    kernels.interaction_gather(cupy.asarray(mlp), cupy.asarray(emb), cupy.asarray(z_ee), out)
    rows, cols = np.tril_indices(num_f + 1, -1)
    copied = cols > 0  # pairs between two embedding vectors: plain copies of Z_ee
    np.testing.assert_array_equal(cupy.asnumpy(out)[:, d:-1][:, copied], z_ee[:, rows[copied] - 1, cols[copied] - 1])
    np.testing.assert_array_equal(cupy.asnumpy(out)[:, :d], mlp)
    assert np.all(cupy.asnumpy(out)[:, -1] == 0)
    assert_twins(returning(reference.interaction_bwd, 2), returning(kernels.interaction_bwd, 2),
                 mlp, emb, g, np.full_like(mlp, np.nan), np.full_like(emb, np.nan), **t)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch,num_f,d", [(64, 26, 128), (33, 3, 8)])
def test_interaction_fast_path_with_workspaces(dtype, batch, num_f, d):
    """The composed CuPy path on the layer's only workspace, Z_ee (B, F, F)."""
    import cupy

    width = d + num_f * (num_f + 1) // 2 + 1
    mlp = (RNG.standard_normal((batch, d)) * 0.3).astype(dtype)
    emb = (RNG.standard_normal((batch, num_f, d)) * 0.3).astype(dtype)
    g = RNG.standard_normal((batch, width)).astype(dtype)
    out, gm, ge = np.empty((batch, width), dtype), np.empty_like(mlp), np.empty_like(emb)
    reference.interaction_fwd(mlp, emb, out)
    reference.interaction_bwd(mlp, emb, g, gm, ge)
    d_mlp, d_emb, d_g = cupy.asarray(mlp), cupy.asarray(emb), cupy.asarray(g)
    z_ee = cupy.full((batch, num_f, num_f), np.nan, dtype)
    d_out = cupy.full((batch, width), np.nan, dtype)
    d_gm, d_ge = cupy.full(mlp.shape, np.nan, dtype), cupy.full(emb.shape, np.nan, dtype)
    kernels.interaction_fwd(d_mlp, d_emb, d_out, z_ee)
    kernels.interaction_bwd(d_mlp, d_emb, d_g, d_gm, d_ge)
    tt = dict(tol(dtype))
    tt["atol"] *= np.sqrt(d)
    for name, host, dev in (("out", out, d_out), ("grad_mlp", gm, d_gm), ("grad_emb", ge, d_ge)):
        np.testing.assert_allclose(cupy.asnumpy(dev).astype(np.float64), host.astype(np.float64), err_msg=name, **tt)


@pytest.mark.gpu
def test_interaction_step_allocates_nothing():
    """With the Z_ee workspace given, forward + backward take no memory from CuPy's pool."""
    import cupy

    batch, num_f, d = 256, 26, 128
    width = d + num_f * (num_f + 1) // 2 + 1
    arrays = [cupy.asarray(RNG.standard_normal(s).astype(np.float32)) for s in
              [(batch, d), (batch, num_f, d), (batch, width), (batch, width), (batch, d), (batch, num_f, d),
               (batch, num_f, num_f)]]
    mlp, emb, out, g, gm, ge, z_ee = arrays

    def step():
        kernels.interaction_fwd(mlp, emb, out, z_ee)
        kernels.interaction_bwd(mlp, emb, g, gm, ge)

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
