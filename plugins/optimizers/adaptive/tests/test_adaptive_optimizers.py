"""Adam, AdaGrad and Ftrl against formats.md 3.5 written out in float64, plus GPU twins."""
import importlib.resources
import math

import numpy as np
import pytest

from hugectr_core.errors import ConfigError
from hugectr_core.params import CreateOptimizer
from hugectr_core.plugins import registry
from hugectr_optimizers_adaptive import reference

LR = (0.01, 0.005)
B1, B2, EPS = 0.9, 0.999, 1e-7


def make(name, **kw):
    return registry("optimizers").load(name)(CreateOptimizer(optimizer_type=name, **kw))


def expected_adam(w, grads, scaler):
    w, m, v = w.astype(np.float64), np.zeros(w.shape), np.zeros(w.shape)
    for t, (lr, grad) in enumerate(zip(LR, grads), start=1):
        g = grad.astype(np.float64) / scaler
        m = B1 * m + (1 - B1) * g
        v = B2 * v + (1 - B2) * g * g
        w = w - lr * math.sqrt(1 - B2 ** t) / (1 - B1 ** t) * m / (np.sqrt(v) + EPS)
    return w, [m, v]


def expected_adagrad(w, grads, scaler, a0, eps):
    w, a = w.astype(np.float64), np.full(w.shape, a0)
    for lr, grad in zip(LR, grads):
        g = grad.astype(np.float64) / scaler
        a = a + g * g
        w = w - lr * g / (np.sqrt(a) + eps)
    return w, [a]


def expected_ftrl(w, grads, scaler, beta, l1, l2):
    e0 = float(np.finfo(np.float32).eps)
    w, n, z = w.astype(np.float64), np.zeros(w.shape), np.zeros(w.shape)
    for lr, grad in zip(LR, grads):
        g = grad.astype(np.float64) / scaler
        n_new = n + g * g
        z = z + g - (np.sqrt(n_new + e0) - np.sqrt(n + e0)) / lr * w
        n = n_new
        w = np.where(np.abs(z) <= l1, 0.0, (l1 * np.sign(z) - z) / ((beta + np.sqrt(n + e0)) / lr + l2))
    return w, [n, z]


def expected_rmsprop(w, grads, scaler, beta, eps):
    w, v = w.astype(np.float64), np.zeros(w.shape)
    for lr, grad in zip(LR, grads):
        g = grad.astype(np.float64) / scaler
        v = beta * v + (1 - beta) * g * g
        w = w - lr * g / (np.sqrt(v) + eps)
    return w, [v]


def two_steps(opt, w, grads, scaler):
    states = [np.full_like(w, opt.initial_state(n)) for n in opt.state_names]
    for step, (lr, g) in enumerate(zip(LR, grads), start=1):
        opt.update(np, w, g, states, lr=lr, step=step, scaler=scaler)
    return w, states


def random_case(scaler, shape=(4, 6), seed=1):
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=shape).astype(np.float32)
    return w0, [(rng.normal(size=shape) * scaler).astype(np.float32) for _ in LR]


@pytest.mark.parametrize("scaler", [1.0, 64.0])
def test_adam_two_steps_match_formula(scaler):
    w0, grads = random_case(scaler)
    w, states = two_steps(make("Adam", beta1=B1, beta2=B2, epsilon=EPS), w0.copy(), grads, scaler)
    w_ref, s_ref = expected_adam(w0, grads, scaler)
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
    for got, want in zip(states, s_ref):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("scaler", [1.0, 64.0])
@pytest.mark.parametrize("a0,eps", [(0.0, 1e-7), (0.1, 1e-3)])
def test_adagrad_two_steps_match_formula(scaler, a0, eps):
    w0, grads = random_case(scaler, seed=2)
    opt = make("AdaGrad", initial_accu_value=a0, epsilon=eps)
    assert opt.initial_state("accum") == pytest.approx(a0)
    w, states = two_steps(opt, w0.copy(), grads, scaler)
    w_ref, s_ref = expected_adagrad(w0, grads, scaler, a0, eps)
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states[0], s_ref[0], rtol=1e-5, atol=1e-7)


def test_adam_bias_correction_on_step_size_with_eps_outside():
    # first step with g = 1: m = 0.1, v = 0.001 -> w moves by lr*sqrt(0.001)/0.1 * 0.1/(sqrt(0.001)+eps)
    opt = make("Adam", epsilon=0.5)
    w, g = np.zeros(1), np.ones(1)
    opt.update(np, w, g, [np.zeros(1), np.zeros(1)], lr=1.0, step=1, scaler=1.0)
    assert w[0] == pytest.approx(-math.sqrt(0.001) / 0.1 * 0.1 / (math.sqrt(0.001) + 0.5))


def test_adam_rejects_step_zero():
    with pytest.raises(ConfigError, match="1-based"):
        make("Adam").update(np, np.zeros(2), np.ones(2), [np.zeros(2), np.zeros(2)], lr=0.1, step=0, scaler=1.0)


@pytest.mark.parametrize("scaler", [1.0, 64.0])
@pytest.mark.parametrize("beta,l1,l2", [(0.0, 0.0, 0.0), (1.0, 0.01, 0.1)])
def test_ftrl_two_steps_match_formula(scaler, beta, l1, l2):
    w0, grads = random_case(scaler)
    opt = make("Ftrl", beta=beta, lambda1=l1, lambda2=l2)
    w, states = two_steps(opt, w0.astype(np.float64), [g.astype(np.float64) for g in grads], scaler)
    w_ref, s_ref = expected_ftrl(w0, grads, scaler, beta, l1, l2)
    np.testing.assert_allclose(w, w_ref, rtol=1e-9, atol=1e-12)
    for got, want in zip(states, s_ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    with pytest.raises(ConfigError, match="learning rate must be > 0"):
        opt.update(np, w, w, states, lr=0.0, step=3, scaler=1.0)


@pytest.mark.parametrize("scaler", [1.0, 64.0])
@pytest.mark.parametrize("beta, eps", [(0.9, 1e-7), (0.5, 1e-3)])
def test_rmsprop_two_steps_match_formula(scaler, beta, eps):
    """HugeCTR's rms_prop_update_grad, with beta taken from CreateOptimizer's beta1 (both default to 0.9)."""
    w0, grads = random_case(scaler)
    w, states = two_steps(make("RMSProp", beta1=beta, epsilon=eps), w0.copy(), grads, scaler)
    w_ref, states_ref = expected_rmsprop(w0, grads, scaler, beta, eps)
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(states[0], states_ref[0], rtol=1e-5, atol=1e-8)


def test_state_names_in_file_order():
    assert make("Adam").state_names == ("m", "v")
    assert make("AdaGrad").state_names == ("accum",)
    assert make("Ftrl").state_names == ("n", "z") and not make("Ftrl").global_moves_untouched_rows
    assert make("RMSProp").state_names == ("v",) and not make("RMSProp").global_moves_untouched_rows
    assert make("Adam").global_moves_untouched_rows and not make("AdaGrad").global_moves_untouched_rows


@pytest.mark.parametrize("name,kw", [("Adam", {}), ("AdaGrad", {"initial_accu_value": 0.1}),
                                     ("Ftrl", {"beta": 1.0, "lambda1": 0.01, "lambda2": 0.1}),
                                     ("RMSProp", {"beta1": 0.8})])
def test_update_rows_equals_update_on_selected_rows(name, kw):
    rng = np.random.default_rng(3)
    opt = make(name, **kw)
    table = rng.normal(size=(12, 3)).astype(np.float32)
    states = [np.abs(rng.normal(size=table.shape)).astype(np.float32) for _ in opt.state_names]
    rows = np.array([11, 0, 4, 6], np.int64)
    grad_rows = rng.normal(size=(4, 3)).astype(np.float32)

    sub_w, sub_s = table[rows].copy(), [s[rows].copy() for s in states]
    opt.update(np, sub_w, grad_rows, sub_s, lr=0.1, step=5, scaler=2.0)
    new_table, new_states = table.copy(), [s.copy() for s in states]
    opt.update_rows(np, new_table, new_states, rows, grad_rows, lr=0.1, step=5, scaler=2.0)

    untouched = np.setdiff1d(np.arange(12), rows)
    np.testing.assert_array_equal(new_table[rows], sub_w)
    np.testing.assert_array_equal(new_table[untouched], table[untouched])
    for full, part, old in zip(new_states, sub_s, states):
        np.testing.assert_array_equal(full[rows], part)
        np.testing.assert_array_equal(full[untouched], old[untouched])


def test_kernels_cu_is_package_data():
    source = importlib.resources.files("hugectr_optimizers_adaptive").joinpath("kernels.cu")
    assert source.is_file()
    text = source.read_text()
    for name in ("adam_update", "adam_update_rows", "adagrad_update", "adagrad_update_rows", "ftrl_update",
                 "ftrl_update_rows"):
        assert f"void {name}(" in text


# -- GPU twins -------------------------------------------------------------------------------

DENSE = {  # kernel name -> (number of state arrays, scalars after the arrays)
    "adam_update": (2, (0.01, B1, B2, EPS, 0.5)),
    "adagrad_update": (1, (0.01, EPS, 0.5)),
    "ftrl_update": (2, (0.01, 1.0, 0.01, 0.1, 0.5)),
    "rmsprop_update": (1, (0.01, 0.9, EPS, 0.5)),  # CuPy runs the twin's expressions: checks they run there
}


def _rtol(name, dtype):
    """FTRL's z takes the difference of two square roots: float32 cancellation costs a digit."""
    return 1e-4 if name.startswith("ftrl") and dtype == np.float32 else 1e-5


def _states(rng, n, shape, dtype):
    return [np.abs(rng.normal(size=shape)).astype(dtype) for _ in range(n)]


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(DENSE))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_kernel_twins(name, dtype):
    from hugectr_core.testing import assert_twins
    from hugectr_optimizers_adaptive import kernels

    rng = np.random.default_rng(4)
    n_states, scalars = DENSE[name]
    w, g = (rng.normal(size=2049).astype(dtype) for _ in range(2))
    assert_twins(getattr(reference, name), getattr(kernels, name), w, g,
                 *_states(rng, n_states, w.shape, dtype), *scalars, rtol=_rtol(name, dtype), atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(DENSE))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_kernel_twins(name, dtype):
    from hugectr_core.testing import assert_twins
    from hugectr_optimizers_adaptive import kernels

    rng = np.random.default_rng(5)
    n_states, scalars = DENSE[name]
    table = rng.normal(size=(400, 32)).astype(dtype)
    rows = rng.permutation(400)[:77].astype(np.int64)
    grad_rows = rng.normal(size=(77, 32)).astype(dtype)
    assert_twins(getattr(reference, name + "_rows"), getattr(kernels, name + "_rows"), table,
                 *_states(rng, n_states, table.shape, dtype), rows, grad_rows, *scalars, rtol=_rtol(name, dtype),
                 atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("name,kw", [("Adam", {}), ("AdaGrad", {"initial_accu_value": 0.1}),
                                     ("Ftrl", {"beta": 1.0, "lambda1": 0.01, "lambda2": 0.1}),
                                     ("RMSProp", {"beta1": 0.8})])
def test_optimizer_on_cupy_equals_numpy(name, kw, gpu_xp):
    w0, grads = random_case(8.0, shape=(128, 16), seed=6)
    w_host, s_host = two_steps(make(name, **kw), w0.copy(), grads, 8.0)
    opt = make(name, **kw)
    w = gpu_xp.asarray(w0)
    states = [gpu_xp.full_like(w, opt.initial_state(n)) for n in opt.state_names]
    for step, (lr, g) in enumerate(zip(LR, grads), start=1):
        opt.update(gpu_xp, w, gpu_xp.asarray(g), states, lr=lr, step=step, scaler=8.0)
    np.testing.assert_allclose(w.get(), w_host, rtol=1e-5, atol=1e-6)
    for d, h in zip(states, s_host):
        np.testing.assert_allclose(d.get(), h, rtol=1e-5, atol=1e-6)


# -- RowWiseAdaGrad (beyond HugeCTR) ---------------------------------------------------------------

def expected_rowwise_adagrad(w, grads, scaler, a0, eps):
    """Two steps written out per row in float64: a += mean(g_row^2); w_row -= lr g_row / (sqrt(a) + eps)."""
    w, a = w.astype(np.float64).copy(), np.full((w.shape[0], 1), a0, np.float64)
    for lr, grad in zip(LR, grads):
        for r in range(w.shape[0]):
            g = grad[r].astype(np.float64) / scaler
            a[r, 0] += sum(x * x for x in g) / g.size
            w[r] -= lr * g / (math.sqrt(a[r, 0]) + eps)
    return w, a


@pytest.mark.parametrize("scaler", [1.0, 4.0])
@pytest.mark.parametrize("a0,eps", [(0.0, 1e-7), (0.1, 1e-3)])
def test_rowwise_adagrad_two_steps_on_all_rows_match_formula(scaler, a0, eps):
    opt = make("RowWiseAdaGrad", initial_accu_value=a0, epsilon=eps)
    w0, grads = random_case(scaler, shape=(5, 6))
    w, grads = w0.astype(np.float64), [g.astype(np.float64) for g in grads]
    a = np.full(opt.state_shape("accum", w.shape), opt.initial_state("accum"))
    assert a.shape == (5, 1)
    for step, (lr, g) in enumerate(zip(LR, grads), start=1):
        opt.update(np, w, g, [a], lr=lr, step=step, scaler=scaler)
    want_w, want_a = expected_rowwise_adagrad(w0, grads, scaler, a0, eps)
    np.testing.assert_allclose(w, want_w, rtol=1e-12)
    np.testing.assert_allclose(a, want_a, rtol=1e-12)


def test_rowwise_adagrad_rows_touch_only_their_rows_and_hand_step():
    opt = make("RowWiseAdaGrad", epsilon=0.0)
    table, a = np.ones((4, 2)), np.zeros((4, 1))
    opt.update_rows(np, table, [a], np.array([2, 0]), np.array([[3.0, 4.0], [1.0, 1.0]]), lr=0.5, step=1, scaler=1.0)
    assert a[:, 0].tolist() == [1.0, 0.0, 12.5, 0.0]  # (9 + 16) / 2 and (1 + 1) / 2
    np.testing.assert_allclose(table[2], [1 - 0.5 * 3 / math.sqrt(12.5), 1 - 0.5 * 4 / math.sqrt(12.5)])
    np.testing.assert_allclose(table[0], [0.5, 0.5])
    assert table[1].tolist() == [1.0, 1.0] and table[3].tolist() == [1.0, 1.0]


def test_rowwise_adagrad_dense_flat_buffer_is_elementwise_adagrad():
    rw, ada = make("RowWiseAdaGrad", initial_accu_value=0.1), make("AdaGrad", initial_accu_value=0.1)
    assert rw.state_shape("accum", (37,)) == (37,)
    w0, grads = random_case(2.0, shape=(37,))
    w1, w2, a1, a2 = w0.copy(), w0.copy(), np.full(37, 0.1), np.full(37, 0.1)
    for step, (lr, g) in enumerate(zip(LR, grads), start=1):
        rw.update(np, w1, g, [a1], lr=lr, step=step, scaler=2.0)
        ada.update(np, w2, g, [a2], lr=lr, step=step, scaler=2.0)
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(a1, a2)


def test_default_state_shape_is_the_weight_shape():
    assert make("Adam").state_shape("m", (10, 4)) == (10, 4)
    assert "void rowwise_adagrad_update_rows(" in importlib.resources.files(
        "hugectr_optimizers_adaptive").joinpath("kernels.cu").read_text()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rowwise_adagrad_row_kernel_twin(dtype):
    from hugectr_core.testing import assert_twins
    from hugectr_optimizers_adaptive import kernels

    rng = np.random.default_rng(8)
    table = rng.normal(size=(400, 32)).astype(dtype)
    a = np.abs(rng.normal(size=(400, 1))).astype(dtype)
    rows = rng.permutation(400)[:77].astype(np.int64)
    grad_rows = rng.normal(size=(77, 32)).astype(dtype)
    assert_twins(reference.rowwise_adagrad_update_rows, kernels.rowwise_adagrad_update_rows, table, a, rows,
                 grad_rows, 0.01, EPS, 0.5, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_rowwise_adagrad_on_cupy_equals_numpy(gpu_xp):
    w0, grads = random_case(8.0, shape=(128, 16), seed=6)
    opt = make("RowWiseAdaGrad", initial_accu_value=0.1)
    w_host, a_host = w0.copy(), np.full((128, 1), 0.1, w0.dtype)
    w, a = gpu_xp.asarray(w0), gpu_xp.full((128, 1), 0.1, w0.dtype)
    for step, (lr, g) in enumerate(zip(LR, grads), start=1):
        opt.update(np, w_host, g, [a_host], lr=lr, step=step, scaler=8.0)
        opt.update(gpu_xp, w, gpu_xp.asarray(g), [a], lr=lr, step=step, scaler=8.0)
    np.testing.assert_allclose(w.get(), w_host, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.get(), a_host, rtol=1e-5, atol=1e-6)
