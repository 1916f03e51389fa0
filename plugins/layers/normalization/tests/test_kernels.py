"""Package data, lazy CuPy import, and GPU twins of every kernel (float32, float64, float16)."""
import importlib.resources
import subprocess
import sys

import numpy as np
import pytest

from hugectr_core.testing import make_layer, run_layer
from hugectr_layers_normalization import reference

KERNEL_NAMES = ["bn_stats", "bn_apply", "bn_bwd", "ln_fwd", "ln_bwd_data", "ln_bwd_params"]
DTYPES = [np.float32, np.float64, np.float16]


def tol(dtype):
    """fp32: sequential GPU sums vs NumPy pairwise sums; fp16: outputs rounded to 11 bits, arithmetic in fp32."""
    return {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-4),
            np.float16: dict(rtol=1e-2, atol=1e-2)}[dtype]


def test_kernels_cu_is_package_data():
    cu = importlib.resources.files("hugectr_layers_normalization").joinpath("kernels.cu")
    assert cu.is_file()
    text = cu.read_text()
    for name in KERNEL_NAMES:
        assert f"void {name}(" in text
        assert callable(getattr(reference, name))
    assert "GRID_STRIDE_LOOP(i, n) \\" not in text  # uses the prelude's HCTR_GRID_STRIDE_LOOP


def test_import_does_not_import_cupy():
    code = ("import sys, hugectr_layers_normalization, hugectr_layers_normalization.kernels; "
            "print('cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_kernel_name_expressions_cover_all_dtypes():
    from hugectr_layers_normalization.kernels import KERNELS

    for name in KERNEL_NAMES:
        for t in ("float", "double", "__half"):
            assert f"{name}<{t}>" in KERNELS.name_expressions


def _rand(shape, dtype, seed, scale=2.0, shift=0.5):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 3), (64, 17), (1000, 130)])
def test_twin_bn_kernels(gpu_xp, dtype, shape):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_normalization import kernels

    b, c = shape
    x, dy = _rand(shape, dtype, 0), _rand(shape, dtype, 1, shift=0.0)
    gamma, beta = _rand((c,), dtype, 2), _rand((c,), dtype, 3)
    stats_tol = tol(np.float32 if dtype == np.float16 else dtype)
    assert_twins(reference.bn_stats, kernels.bn_stats, x, 1e-5, np.empty(c), np.empty(c), **stats_tol)
    mean, inv_std = reference.bn_stats(x, 1e-5, np.empty(c), np.empty(c))
    assert_twins(reference.bn_apply, kernels.bn_apply, x, mean, inv_std, gamma, beta, np.empty_like(x), **tol(dtype))

    def strip_none(fn):
        return lambda *a: tuple(o for o in fn(*a) if o is not None)

    bwd_tol = dict(rtol=tol(dtype)["rtol"], atol=tol(dtype)["atol"] * (b if dtype == np.float16 else 1))
    assert_twins(strip_none(reference.bn_bwd), strip_none(kernels.bn_bwd), dy, x, mean, inv_std, gamma,
                 np.empty_like(x), np.empty_like(gamma), np.empty_like(gamma), **bwd_tol)
    assert_twins(strip_none(reference.bn_bwd), strip_none(kernels.bn_bwd), dy, x, mean, inv_std, gamma,
                 None, np.empty_like(gamma), np.empty_like(gamma), **bwd_tol)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (37, 64), (2048, 129)])
def test_twin_ln_kernels(gpu_xp, dtype, shape):
    from hugectr_core.testing import assert_twins
    from hugectr_layers_normalization import kernels

    r, d = shape
    x, dy = _rand(shape, dtype, 4), _rand(shape, dtype, 5, shift=0.0)
    gamma, beta = _rand((d,), dtype, 6), _rand((d,), dtype, 7)
    assert_twins(reference.ln_fwd, kernels.ln_fwd, x, gamma, beta, 1e-5, np.empty(r), np.empty(r),
                 np.empty_like(x), **tol(dtype))
    mean, inv_std, _ = reference.ln_fwd(x, gamma, beta, 1e-5, np.empty(r), np.empty(r), np.empty_like(x))
    assert_twins(reference.ln_bwd_data, kernels.ln_bwd_data, dy, x, mean, inv_std, gamma, np.empty_like(x),
                 **tol(dtype))
    sum_tol = dict(rtol=tol(dtype)["rtol"], atol=tol(dtype)["atol"] * (r if dtype == np.float16 else 1))
    assert_twins(reference.ln_bwd_params, kernels.ln_bwd_params, dy, x, mean, inv_std, np.empty_like(gamma),
                 np.empty_like(gamma), **sum_tol)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_layers_on_gpu_match_numpy(gpu_xp, dtype):
    cp = gpu_xp
    for name, shape, extra in (("BatchNorm", (128, 24), 2), ("LayerNorm", (8, 16, 24), 0)):
        layer = make_layer(name, ["x"], ["y"])
        x, dy = _rand(shape, dtype, 8), _rand(shape, dtype, 9, shift=0.0)
        params = [_rand((24,), dtype, 10), _rand((24,), dtype, 11)]
        stats = [np.zeros(24, np.float32), np.ones(24, np.float32)][:extra]
        host = run_layer(layer, [x], params + [s.copy() for s in stats], top_grads=[dy])
        dev = run_layer(layer, [cp.asarray(x)], [cp.asarray(p) for p in params + stats], top_grads=[cp.asarray(dy)])
        t = tol(dtype)
        np.testing.assert_allclose(cp.asnumpy(dev["tops"][0]).astype(np.float64), host["tops"][0].astype(np.float64), **t)
        np.testing.assert_allclose(cp.asnumpy(dev["bottom_grads"][0]).astype(np.float64),
                                   host["bottom_grads"][0].astype(np.float64), **t)
        scale = shape[0] if dtype == np.float16 else 1
        for g_dev, g_host in zip(dev["param_grads"], host["param_grads"]):
            np.testing.assert_allclose(cp.asnumpy(g_dev).astype(np.float64), g_host.astype(np.float64),
                                       rtol=t["rtol"], atol=t["atol"] * scale)
