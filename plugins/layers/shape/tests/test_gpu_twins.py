"""CUDA kernels against their NumPy twins, and layers on CuPy against NumPy (need a GPU)."""
import numpy as np
import pytest

from hugectr_core.testing import assert_twins, make_layer, run_layer
from hugectr_layers_shape import kernels, reference

pytestmark = pytest.mark.gpu
DTYPES = [np.float32, np.float64]


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
    assert_twins(_returning(getattr(reference, name)), _returning(getattr(kernels, name)), src, dst, offset, rtol=0, atol=0)


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
    tol = 1e-6 if dtype == np.float32 else 1e-12
    for h, d in zip(host["tops"] + host["bottom_grads"], dev["tops"] + dev["bottom_grads"]):
        np.testing.assert_allclose(gpu_xp.asnumpy(d), h, rtol=tol, atol=tol)
