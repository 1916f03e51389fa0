"""bce kernels against their NumPy twins, and the layer on CuPy against NumPy (need a GPU)."""
import numpy as np
import pytest

from hugectr_core.contracts import StepContext
from hugectr_core.testing import assert_twins
from hugectr_layers_losses import kernels, reference
from hugectr_core.testing import make_layer

pytestmark = pytest.mark.gpu
DTYPES = [np.float32, np.float64]


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}


def returning(fn):
    def run(x, y, out, *rest):
        fn(x, y, out, *rest)
        return out
    return run


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_valid", [1000, 777])
def test_bce_twins(dtype, n_valid):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((1000, 1)) * 20).astype(dtype)
    y = rng.integers(0, 2, (1000, 1)).astype(dtype)
    out = np.full((1000, 1), np.nan, dtype)
    assert_twins(returning(reference.bce_fwd), returning(kernels.bce_fwd), x, y, out, n_valid, **tol(dtype))
    assert_twins(returning(reference.bce_bwd), returning(kernels.bce_bwd), x, y, out, n_valid, 0.25, **tol(dtype))
    assert_twins(reference.sigmoid, kernels.sigmoid, x, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_gpu_matches_numpy(gpu_xp, dtype):
    rng = np.random.default_rng(1)
    layer = make_layer("BinaryCrossEntropyLoss", ["logit", "label"], ["loss"])
    layer.weight = 0.5
    x = rng.standard_normal((64, 1)).astype(dtype)
    y = rng.integers(0, 2, (64, 1)).astype(dtype)
    results = []
    for xp in (np, gpu_xp):
        ctx = StepContext(xp=xp, training=True, batch_size=64, current_batchsize=50, device_count=1, scaler=2.0)
        top, grad, ws = xp.zeros((1, 1), dtype), xp.zeros((64, 1), dtype), {"row_loss": xp.zeros((64, 1), dtype)}
        bottoms = [xp.asarray(x), xp.asarray(y)]
        layer.forward(ctx, bottoms, [top], [], ws)
        layer.backward(ctx, bottoms, [top], [], [grad, None], [], [], ws)
        results.append([top, grad, layer.predict(xp, bottoms[0])])
    for h, d in zip(*results):
        np.testing.assert_allclose(gpu_xp.asnumpy(d), h, **tol(dtype))
