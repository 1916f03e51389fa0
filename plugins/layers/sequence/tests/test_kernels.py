"""Package data, lazy CuPy import, reference-vs-layer equality, GPU twins (float32, float64, float16)."""
import importlib.resources
import subprocess
import sys

import numpy as np
import pytest

from hugectr_core.testing import init_params, make_layer, run_layer
from hugectr_layers_sequence import reference

KERNEL_NAMES = ["softmax_fwd", "softmax_bwd", "sequence_mask", "gru_fwd_step", "gru_bwd_step"]
DTYPES = [np.float32, np.float64, np.float16]


def tol(dtype):
    """fp32: GPU sequential sums vs NumPy pairwise; fp16: 11-bit outputs, fp32 arithmetic on both sides."""
    return {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6),
            np.float16: dict(rtol=1e-2, atol=1e-2)}[dtype]


def test_kernels_cu_is_package_data():
    cu = importlib.resources.files("hugectr_layers_sequence").joinpath("kernels.cu")
    assert cu.is_file()
    text = cu.read_text()
    for name in KERNEL_NAMES:
        assert f"void {name}(" in text
        assert callable(getattr(reference, name))


def test_import_does_not_import_cupy():
    code = "import sys, hugectr_layers_sequence, hugectr_layers_sequence.kernels; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_kernel_name_expressions_cover_all_dtypes():
    from hugectr_layers_sequence.kernels import KERNELS

    assert set(KERNELS.name_expressions) == {f"{n}<{t}>" for n in KERNEL_NAMES for t in ("float", "double", "__half")}


def test_softmax_layer_numpy_path_equals_reference():
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))
    mask = (rng.random((2, 1, 4, 5)) > 0.5).astype(np.float64)
    res = run_layer(make_layer("Softmax", ["x", "m"], ["y"], factor=0.3), [x, mask], [], top_grads=[dy])
    y = reference.softmax_fwd(x, mask, 0.3, np.empty_like(x))
    np.testing.assert_array_equal(res["tops"][0], y)
    np.testing.assert_array_equal(res["bottom_grads"][0], reference.softmax_bwd(dy, y, 0.3, np.empty_like(x)))


def test_reference_in_place_softmax():
    x = np.random.default_rng(1).standard_normal((3, 4))
    expected = reference.softmax_fwd(x, None, 2.0, np.empty_like(x))
    np.testing.assert_array_equal(reference.softmax_fwd(x, None, 2.0, x), expected)


def _rand(shape, dtype, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, mask_shape", [((5,), None), ((300, 77), None), ((2, 4, 9, 33), (2, 1, 9, 33)),
                                                 ((2, 4, 9, 33), (2, 4, 9, 33))])
def test_twin_softmax(gpu_xp, dtype, x_shape, mask_shape):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_sequence import kernels

    x, dy = _rand(x_shape, dtype, 0, 3.0), _rand(x_shape, dtype, 1)
    mask = None if mask_shape is None else (np.random.default_rng(2).random(mask_shape) > 0.3).astype(dtype)
    assert_twins(reference.softmax_fwd, kernels.softmax_fwd, x, mask, 0.7, np.empty_like(x), **tol(dtype))
    y = reference.softmax_fwd(x, mask, 0.7, np.empty_like(x))
    assert_twins(reference.softmax_bwd, kernels.softmax_bwd, dy, y, 0.7, np.empty_like(x), **tol(dtype))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_sequence_mask(gpu_xp, dtype):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_sequence import kernels

    rng = np.random.default_rng(3)
    lf, lt = rng.integers(0, 12, (64, 1)).astype(dtype), rng.uniform(0, 20, (64, 1)).astype(dtype)
    assert_twins(reference.sequence_mask, kernels.sequence_mask, lf, lt, np.empty((64, 1, 11, 19), dtype), rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_twin_gru_steps(gpu_xp, dtype):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_sequence import kernels

    b, steps, n, t = 33, 4, 17, 2
    xg, hg = _rand((b, steps, 3 * n), dtype, 4), _rand((b, 3 * n), dtype, 5)
    bx, bh, h_prev = _rand((1, 3 * n), dtype, 6), _rand((1, 3 * n), dtype, 7), _rand((b, n), dtype, 8)
    assert_twins(reference.gru_fwd_step, kernels.gru_fwd_step, xg, hg, bx, bh, h_prev, t,
                 np.empty((b, 4 * n), dtype), np.empty((b, n), dtype), **tol(dtype))
    gates, _ = reference.gru_fwd_step(xg, hg, bx, bh, h_prev, t, np.empty((b, 4 * n), dtype), np.empty((b, n), dtype))
    dy, dh = _rand((b, steps, n), dtype, 9), _rand((b, n), dtype, 10)
    assert_twins(reference.gru_bwd_step, kernels.gru_bwd_step, dy, t, gates, h_prev, dh, np.zeros_like(xg),
                 np.empty((b, 3 * n), dtype), **tol(dtype))


def _layer_cases():
    rng = np.random.default_rng(11)
    mask = (rng.random((2, 1, 5, 7)) > 0.3).astype(np.float64)
    mask[..., 0] = 1
    return [
        ("Softmax", ["x"], {}, [rng.standard_normal((4, 6, 9))], True),
        ("Softmax", ["x", "m"], {"factor": 0.5}, [rng.standard_normal((2, 3, 5, 7)), mask], False),
        ("MultiHeadAttention", ["q", "k", "v", "m"], {"num_attention_heads": 4},
         [rng.standard_normal((2, 5, 16)), rng.standard_normal((2, 7, 16)), rng.standard_normal((2, 7, 16)), mask], True),
        ("GRU", ["x"], {"num_output": 8, "batchsize": 3, "SeqLength": 4, "vector_size": 5},
         [rng.standard_normal((3, 20))], False),
    ]


# fp16 only where HugeCTR allows it: not for the masked Softmax nor for GRU (their fp32/fp64 cases run).
LAYER_CASES = [(case, dtype) for case, (*_, fp16_ok) in enumerate(_layer_cases()) for dtype in DTYPES
               if fp16_ok or dtype != np.float16]


@pytest.mark.gpu
@pytest.mark.parametrize("case, dtype", LAYER_CASES)
def test_layers_on_gpu_match_numpy(gpu_xp, case, dtype):
    cp = gpu_xp
    name, bottom_names, args, bottoms, _ = _layer_cases()[case]
    layer = make_layer(name, bottom_names, ["y"], **args)
    bottoms = [b.astype(dtype) for b in bottoms]
    shapes = [b.shape for b in bottoms]
    params = [p.astype(dtype) for p in init_params(layer, shapes, seed=12)]
    dy = _rand(layer.infer_shapes(shapes)[0], dtype, 13)
    host = run_layer(layer, bottoms, params, top_grads=[dy])
    dev = run_layer(layer, [cp.asarray(b) for b in bottoms], [cp.asarray(p) for p in params], top_grads=[cp.asarray(dy)])
    t = tol(dtype) if dtype != np.float32 else dict(rtol=1e-4, atol=1e-5)  # cuBLAS vs NumPy GEMM order
    np.testing.assert_allclose(cp.asnumpy(dev["tops"][0]).astype(np.float64), host["tops"][0].astype(np.float64), **t)
    for g_dev, g_host in zip(dev["bottom_grads"] + dev["param_grads"], host["bottom_grads"] + host["param_grads"]):
        if g_host is not None:
            np.testing.assert_allclose(cp.asnumpy(g_dev).astype(np.float64), g_host.astype(np.float64), **t)
