"""CUDA kernels against their NumPy twins, and layers on CuPy against NumPy (need a GPU)."""
import numpy as np
import pytest

from hugectr_core.testing import assert_twins, make_layer, run_layer
from hugectr_layers_shape import kernels, reference

pytestmark = pytest.mark.gpu
DTYPES = [np.float32, np.float64, np.float16]
# float16 sums run in float32 (acc_t) on both sides; the tolerance covers one fp16 rounding
HALF_TOL = {"rtol": 2e-3, "atol": 2e-3}


def _returning(fn):
    """Wrap an in-place kernel as a function returning its output (for assert_twins)."""
    def run(src, dst, offset):
        fn(src, dst, offset)
        return dst
    return run


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,narrow_is_src,init", [
    ("concat_fwd", True, 0.0), ("concat_bwd", False, 0.0),
    ("slice_fwd", False, 0.0), ("slice_bwd", True, 1.5),
])
def test_kernel_twins(dtype, name, narrow_is_src, init):
    rng = np.random.default_rng(3)
    rows, n, k, offset = 1000, 37, 11, 9
    narrow = rng.standard_normal((rows, k)).astype(dtype)
    wide = rng.standard_normal((rows, n)).astype(dtype)
    src, dst = (narrow, np.full((rows, n), init, dtype)) if narrow_is_src else (wide, np.full((rows, k), init, dtype))
    tol = HALF_TOL if dtype == np.float16 else {"rtol": 0, "atol": 0}
    assert_twins(_returning(getattr(reference, name)), _returning(getattr(kernels, name)), src, dst, offset, **tol)


CASES = [
    ("Concat", {"axis": 1}, [(64, 3), (64, 5)], 1),
    ("Concat", {"axis": 1}, [(16, 2, 4), (16, 5, 4)], 1),
    ("Concat", {"axis": 2}, [(16, 2, 4), (16, 2, 3), (16, 2, 1)], 1),
    ("Slice", {"ranges": [(0, 3), (2, 5), (4, 9)]}, [(64, 9)], 3),
    ("Slice", {"ranges": [(1, 4), (1, 6)]}, [(8, 3, 6)], 2),
    ("Reshape", {"selected": True, "selected_slots": [2, 0, 2]}, [(16, 3, 4)], 1),
    ("Reshape", {"leading_dim": 4, "time_step": 2}, [(16, 8)], 1),
    ("ReduceSum", {"axis": 2}, [(16, 3, 4)], 1),
    ("Add", {}, [(16, 5)] * 3, 1),
    ("Select", {"dim": 1, "index": [3, 0, 3, 1]}, [(16, 4, 5)], 1),
    ("Select", {"dim": 0, "index": [5, 5, 2]}, [(16, 7)], 1),
    ("Gather", {"indices": [1, 0, 1]}, [(16, 7)], 1),
    ("ReduceMean", {"axis": 1}, [(16, 3, 4)], 1),
    ("Sub", {}, [(16, 5)] * 2, 1),
    ("ElementwiseMultiply", {}, [(16, 5)] * 3, 1),
    ("Scale", {"axis": 0, "factor": 3}, [(16, 5)], 1),
    ("Scale", {"axis": 1, "factor": 4}, [(16, 5)], 1),
    ("FusedReshapeConcat", {}, [(16, 4, 3), (16, 4, 2)], 2),
    ("FusedReshapeConcatGeneral", {}, [(16, 4, 3), (16, 4, 2)], 1),
    ("Cast", {}, [(16, 5)], 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("type_name,args,shapes,n_tops", CASES)
def test_layer_gpu_matches_numpy(gpu_xp, dtype, type_name, args, shapes, n_tops):
    rng = np.random.default_rng(5)
    layer = make_layer(type_name, [f"x{i}" for i in range(len(shapes))], [f"y{i}" for i in range(n_tops)], **args)
    layer.aliases_bottom = False  # exercise the layer's own copies
    bottoms = [rng.standard_normal(s).astype(dtype) for s in shapes]
    top_grads = [rng.standard_normal(s).astype(dtype) for s in layer.infer_shapes(shapes)]
    host = run_layer(layer, bottoms, [], top_grads=top_grads)
    dev = run_layer(layer, [gpu_xp.asarray(b) for b in bottoms], [], top_grads=[gpu_xp.asarray(g) for g in top_grads])
    tol = {np.float32: 1e-6, np.float64: 1e-12, np.float16: 1e-2}[dtype]  # fp16: NumPy sums in fp16, CuPy in fp32
    for h, d in zip(host["tops"] + host["bottom_grads"], dev["tops"] + dev["bottom_grads"]):
        np.testing.assert_allclose(gpu_xp.asnumpy(d), h, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_select_and_scale_kernel_twins(dtype):
    rng = np.random.default_rng(8)
    tol = HALF_TOL if dtype == np.float16 else {"rtol": 1e-6, "atol": 1e-6}
    x = rng.standard_normal((30, 9, 7)).astype(dtype)
    index = [8, 0, 8, 3, 8]
    g = rng.standard_normal((30, 5, 7)).astype(dtype)
    assert_twins(lambda a, o: (reference.select_fwd(a, index, o), o)[1],
                 lambda a, o: (kernels.select_fwd(a, index, o), o)[1], x, np.full((30, 5, 7), np.nan, dtype), **tol)
    assert_twins(lambda a, o: (reference.select_bwd(a, index, o), o)[1],
                 lambda a, o: (kernels.select_bwd(a, index, o), o)[1], g, np.full_like(x, np.nan), **tol)
    small = rng.standard_normal((40, 6)).astype(dtype)
    big = rng.standard_normal((40, 3, 6)).astype(dtype)
    assert_twins(_pair(reference.scale_fwd), _pair(kernels.scale_fwd), small, np.full_like(big, np.nan), **tol)
    assert_twins(_pair(reference.scale_bwd), _pair(kernels.scale_bwd), big, np.full_like(small, np.nan), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_reshape_concat_kernel_twins(dtype):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((20, 5, 3)).astype(dtype)
    hist, tgt = np.zeros((80, 8), dtype), np.zeros((20, 8), dtype)

    def fwd(fn):
        def run(a, h, t):
            fn(a, h, t, 2)
            return h, t
        return run

    def bwd(fn):
        def run(h, t, g):
            fn(h, t, g, 2)
            return g
        return run

    assert_twins(fwd(reference.fused_reshape_concat_fwd), fwd(kernels.fused_reshape_concat_fwd), x, hist, tgt,
                 rtol=0, atol=0)
    gh, gt = rng.standard_normal((80, 8)).astype(dtype), rng.standard_normal((20, 8)).astype(dtype)
    assert_twins(bwd(reference.fused_reshape_concat_bwd), bwd(kernels.fused_reshape_concat_bwd), gh, gt,
                 np.full_like(x, np.nan), rtol=0, atol=0)


def _pair(fn):
    def run(a, o):
        fn(a, o)
        return o
    return run
