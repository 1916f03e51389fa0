"""SGD, MomentumSGD and Nesterov against formats.md 3.5 written out in float64, plus GPU twins."""
import importlib.resources

import numpy as np
import pytest

from hugectr_core.params import CreateOptimizer
from hugectr_core.plugins import registry
from hugectr_optimizers_sgd import reference

MU = 0.9
LR = (0.1, 0.05)   # a different learning rate per step, as a scheduler would give


def make(name, **kw):
    return registry("optimizers").load(name)(CreateOptimizer(optimizer_type=name, momentum_factor=MU, **kw))


def expected(name, w, grads, scaler):
    """formats.md 3.5 in float64, one line per formula."""
    w, m = w.astype(np.float64), np.zeros_like(w, np.float64)
    for lr, grad in zip(LR, grads):
        g = grad.astype(np.float64) / scaler
        if name == "SGD":
            w = w - lr * g
        elif name == "MomentumSGD":
            m = MU * m - lr * g
            w = w + m
        else:  # Nesterov
            m_new = MU * m - lr * g
            w = w - MU * m + (1 + MU) * m_new
            m = m_new
    return w, m


def two_steps(opt, w, grads, scaler):
    states = [np.full_like(w, opt.initial_state(n)) for n in opt.state_names]
    for step, (lr, g) in enumerate(zip(LR, grads), start=1):
        opt.update(np, w, g, states, lr=lr, step=step, scaler=scaler)
    return w, states


@pytest.mark.parametrize("name", ["SGD", "MomentumSGD", "Nesterov"])
@pytest.mark.parametrize("scaler", [1.0, 128.0])
def test_two_steps_match_formulas(name, scaler):
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(3, 5)).astype(np.float32)
    grads = [(rng.normal(size=w0.shape) * scaler).astype(np.float32) for _ in LR]
    w, states = two_steps(make(name), w0.copy(), grads, scaler)
    w_ref, m_ref = expected(name, w0, grads, scaler)
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
    if states:
        np.testing.assert_allclose(states[0], m_ref, rtol=1e-5, atol=1e-6)
    assert not np.allclose(w, w0)


@pytest.mark.parametrize("name,states", [("SGD", ()), ("MomentumSGD", ("momentum",)), ("Nesterov", ("accum",))])
def test_state_names_in_file_order(name, states):
    opt = make(name)
    assert opt.state_names == states
    assert all(opt.initial_state(s) == 0.0 for s in states)


@pytest.mark.parametrize("name", ["SGD", "MomentumSGD", "Nesterov"])
def test_update_rows_equals_update_on_selected_rows(name):
    rng = np.random.default_rng(2)
    table = rng.normal(size=(10, 4)).astype(np.float32)
    states = [rng.normal(size=table.shape).astype(np.float32) for _ in make(name).state_names]
    rows = np.array([7, 2, 5], np.int64)
    grad_rows = rng.normal(size=(3, 4)).astype(np.float32)

    sub_w, sub_s = table[rows].copy(), [s[rows].copy() for s in states]
    make(name).update(np, sub_w, grad_rows, sub_s, lr=0.1, step=3, scaler=2.0)
    new_table, new_states = table.copy(), [s.copy() for s in states]
    make(name).update_rows(np, new_table, new_states, rows, grad_rows, lr=0.1, step=3, scaler=2.0)

    np.testing.assert_array_equal(new_table[rows], sub_w)
    untouched = np.setdiff1d(np.arange(10), rows)
    np.testing.assert_array_equal(new_table[untouched], table[untouched])
    for full, part, old in zip(new_states, sub_s, states):
        np.testing.assert_array_equal(full[rows], part)
        np.testing.assert_array_equal(full[untouched], old[untouched])


def test_global_flags_say_which_optimizers_move_untouched_rows():
    assert not make("SGD").global_moves_untouched_rows
    assert make("MomentumSGD").global_moves_untouched_rows
    assert make("Nesterov").global_moves_untouched_rows


def test_kernels_cu_is_package_data():
    source = importlib.resources.files("hugectr_optimizers_sgd").joinpath("kernels.cu")
    assert source.is_file()
    text = source.read_text()
    for name in ("sgd_update", "momentum_update_rows", "nesterov_update"):
        assert f"void {name}(" in text


# -- GPU twins -------------------------------------------------------------------------------

DENSE = {  # kernel name -> (number of state arrays, extra scalars after lr)
    "sgd_update": (0, ()), "momentum_update": (1, (MU,)), "nesterov_update": (1, (MU,)),
}


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(DENSE))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_kernel_twins(name, dtype):
    from hugectr_core.testing import assert_twins
    from hugectr_optimizers_sgd import kernels

    rng = np.random.default_rng(3)
    n_states, extra = DENSE[name]
    arrays = [rng.normal(size=1000 + 37).astype(dtype) for _ in range(2 + n_states)]
    assert_twins(getattr(reference, name), getattr(kernels, name), *arrays, 0.05, *extra, 0.5,
                 rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(DENSE))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_kernel_twins(name, dtype):
    from hugectr_core.testing import assert_twins
    from hugectr_optimizers_sgd import kernels

    rng = np.random.default_rng(4)
    n_states, extra = DENSE[name]
    table_and_states = [rng.normal(size=(500, 16)).astype(dtype) for _ in range(1 + n_states)]
    rows = rng.permutation(500)[:123].astype(np.int64)
    grad_rows = rng.normal(size=(123, 16)).astype(dtype)
    assert_twins(getattr(reference, name + "_rows"), getattr(kernels, name + "_rows"),
                 *table_and_states, rows, grad_rows, 0.05, *extra, 0.5, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["SGD", "MomentumSGD", "Nesterov"])
def test_optimizer_on_cupy_equals_numpy(name, gpu_xp):
    rng = np.random.default_rng(5)
    w0 = rng.normal(size=(64, 8)).astype(np.float32)
    grads = [rng.normal(size=w0.shape).astype(np.float32) for _ in LR]
    w_host, s_host = two_steps(make(name), w0.copy(), grads, 4.0)
    opt = make(name)
    w = gpu_xp.asarray(w0)
    states = [gpu_xp.zeros_like(w) for _ in opt.state_names]
    for step, (lr, g) in enumerate(zip(LR, grads), start=1):
        opt.update(gpu_xp, w, gpu_xp.asarray(g), states, lr=lr, step=step, scaler=4.0)
    np.testing.assert_allclose(w.get(), w_host, rtol=1e-5, atol=1e-6)
    for d, h in zip(states, s_host):
        np.testing.assert_allclose(d.get(), h, rtol=1e-5, atol=1e-6)
