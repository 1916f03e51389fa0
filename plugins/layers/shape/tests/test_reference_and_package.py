"""reference.py against explicit loops, and kernels.cu shipped as package data."""
import importlib.resources

import numpy as np

from hugectr_layers_shape import reference


def test_kernels_cu_is_package_data():
    cu = importlib.resources.files("hugectr_layers_shape").joinpath("kernels.cu")
    assert cu.is_file()
    text = cu.read_text()
    for name in ("concat_fwd", "concat_bwd", "slice_fwd", "slice_bwd", "select_fwd", "select_bwd", "scale_fwd",
                 "scale_bwd", "fused_reshape_concat_fwd", "fused_reshape_concat_bwd"):
        assert f"__global__ void {name}(" in text
        assert hasattr(reference, name)
    assert "HCTR_GRID_STRIDE_LOOP" in text and "acc_t<T>" in text


def test_reference_concat_and_slice_match_loops():
    rng = np.random.default_rng(0)
    narrow = rng.standard_normal((3, 2))
    wide = np.zeros((3, 5))
    reference.concat_fwd(narrow, wide, 2)
    back = np.zeros((3, 2))
    reference.concat_bwd(wide, back, 2)
    sliced = np.zeros((3, 2))
    reference.slice_fwd(wide, sliced, 2)
    acc = np.ones((3, 5))
    reference.slice_bwd(narrow, acc, 2)
    for r in range(3):
        for c in range(2):
            assert wide[r, 2 + c] == narrow[r, c]
            assert back[r, c] == narrow[r, c] == sliced[r, c]
            assert acc[r, 2 + c] == 1 + narrow[r, c]
    assert np.all(wide[:, [0, 1, 4]] == 0) and np.all(acc[:, [0, 1, 4]] == 1)
