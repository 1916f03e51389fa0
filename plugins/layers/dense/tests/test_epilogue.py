"""The cuBLASLt bias(+ReLU) epilogue (nvmath-python) against the two-pass GEMM + bias_act_fwd and NumPy."""
import numpy as np
import pytest

from hugectr_layers_dense import epilogue, reference


def test_without_nvmath_the_fused_path_declines(monkeypatch):
    monkeypatch.setattr(epilogue, "_nvmath", lambda: None)
    assert not epilogue.available()
    assert epilogue.linear(None, None, None, True, None) is False  # the caller runs GEMM + bias_act_fwd


def test_threaded_multi_gpu_processes_keep_the_two_pass_path(monkeypatch):
    from hugectr_core import backend

    monkeypatch.setattr(epilogue, "_nvmath", lambda: pytest.fail("nvmath must not be asked"))
    with backend.one_of_several_device_threads():
        assert backend.drives_devices_from_threads()
        assert epilogue.linear(None, None, None, True, None) is False
    assert not backend.drives_devices_from_threads()


def test_the_two_pass_guard_is_per_thread():
    import threading

    from hugectr_core import backend

    seen = []
    with backend.one_of_several_device_threads():
        other = threading.Thread(target=lambda: seen.append(backend.drives_devices_from_threads()))
        other.start()
        other.join()
    assert seen == [False]  # a pool's workers do not turn the fused path off for other threads


def test_reference_linear_fwd_is_gemm_then_bias_act():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((7, 5)), rng.standard_normal((5, 3)), rng.standard_normal((1, 3))
    for relu in (False, True):
        y = reference.linear_fwd(x, w, b, relu, np.empty((7, 3)))
        want = x @ w + b
        np.testing.assert_allclose(y, np.maximum(want, 0) if relu else want, rtol=1e-12)
    np.testing.assert_allclose(reference.linear_fwd(x, w, None, False, np.empty((7, 3))), x @ w, rtol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,tf32", [(np.float32, False), (np.float32, True), (np.float16, False)])
@pytest.mark.parametrize("m,k,n", [(4096, 479, 1024), (1000, 13, 512), (333, 256, 128), (64, 512, 1)])
@pytest.mark.parametrize("relu", [False, True])
def test_gpu_fused_linear_matches_two_passes_and_numpy(gpu_xp, monkeypatch, dtype, tf32, m, k, n, relu):
    pytest.importorskip("nvmath")
    from hugectr_core import runtime
    from hugectr_layers_dense import kernels

    cp = gpu_xp
    runtime._set_tf32(cp, tf32)
    try:
        rng = np.random.default_rng(m + k + n)
        x = rng.standard_normal((m, k)).astype(dtype)
        w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dtype)
        b = rng.standard_normal((1, n)).astype(dtype)
        dx, dw, db = cp.asarray(x), cp.asarray(w), cp.asarray(b)
        fused = cp.full((m, n), np.nan, dtype)
        assert epilogue.linear(dx, dw, db, relu, fused)  # the fused path ran
        kernels.linear_fwd(dx, dw, db, relu, fused)  # again, from the planned GEMM
        monkeypatch.setattr(epilogue, "enabled", False)
        two_pass = kernels.linear_fwd(dx, dw, db, relu, cp.full((m, n), np.nan, dtype))
        want = reference.linear_fwd(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), relu,
                                    np.empty((m, n)))
        rtol, atol = {np.float16: (1e-2, 1e-2), np.float32: (5e-3, 5e-3) if tf32 else (1e-5, 1e-5)}[dtype]
        np.testing.assert_allclose(cp.asnumpy(fused).astype(np.float64), want, rtol=rtol, atol=atol)
        np.testing.assert_allclose(cp.asnumpy(fused), cp.asnumpy(two_pass), rtol=rtol, atol=atol)
        if relu:
            assert float(fused.min()) >= 0
    finally:
        runtime._set_tf32(cp, False)
