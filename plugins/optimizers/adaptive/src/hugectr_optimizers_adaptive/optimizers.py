"""Adam, AdaGrad, Ftrl and RMSProp (formats.md 3.5), on NumPy and on CuPy (fused kernels; RMSProp: the
NumPy twin's array expressions).

With ``g = grad / scaler``, ``t`` the 1-based step and ``eps = params.epsilon``:

* Adam: ``m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; w -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)``
* AdaGrad: ``a += g^2; w -= lr*g/(sqrt(a)+eps)``, ``a`` starting at ``params.initial_accu_value``
* Ftrl: states ``n``, ``z``; formats.md 3.5 (beta/lr joins lambda2 in the denominator)
* RMSProp: ``v = beta1*v + (1-beta1)*g^2; w -= lr*g/(sqrt(v)+eps)`` (HugeCTR: dynamic EC tables only)
* RowWiseAdaGrad (TorchRec's, beyond HugeCTR): one accumulator per embedding row,
  ``a += mean(g_row^2); w_row -= lr*g_row/(sqrt(a)+eps)``; elementwise AdaGrad on dense weights
"""
from __future__ import annotations

from hugectr_core.backend import is_numpy
from hugectr_core.contracts import Optimizer
from hugectr_core.errors import ConfigError

from . import reference


def _impl(xp):
    """The NumPy twins on NumPy, the CUDA launchers on CuPy (imported only then)."""
    if is_numpy(xp):
        return reference
    from . import kernels  # noqa: PLC0415 - keeps CuPy out of import time

    return kernels


class Adam(Optimizer):
    """Adam with HugeCTR's bias correction on the step size (eps outside); states ``m``, ``v``.

    Example:
        >>> import numpy as np
        >>> from hugectr_core.params import CreateOptimizer
        >>> opt = Adam(CreateOptimizer(optimizer_type="Adam", update_type="Local"))
        >>> w, m, v = np.ones(2, np.float32), np.zeros(2, np.float32), np.zeros(2, np.float32)
        >>> opt.update(np, w, np.ones(2, np.float32), [m, v], lr=0.1, step=1, scaler=1.0)
        >>> [round(float(x), 4) for x in w]
        [0.9, 0.9]
    """

    state_names = ("m", "v")
    global_moves_untouched_rows = True  # m/v decay and keep moving w even with a zero gradient

    def step_size(self, lr: float, step: int) -> float:
        if step < 1:
            raise ConfigError(f"Adam: step must be the 1-based iteration (>= 1), got {step}")
        return reference.adam_step_size(lr, step, self.params.beta1, self.params.beta2)

    def update(self, xp, weight, grad, states, lr, step, scaler):
        p = self.params
        _impl(xp).adam_update(weight, grad, states[0], states[1], self.step_size(lr, step),
                              p.beta1, p.beta2, p.epsilon, 1.0 / scaler)

    def update_rows(self, xp, table, states, rows, grad_rows, lr, step, scaler):
        p = self.params
        _impl(xp).adam_update_rows(table, states[0], states[1], rows, grad_rows, self.step_size(lr, step),
                                   p.beta1, p.beta2, p.epsilon, 1.0 / scaler)


class AdaGrad(Optimizer):
    """AdaGrad: ``a += g^2; w -= lr*g/(sqrt(a)+eps)``; state ``accum`` starts at ``initial_accu_value``.

    HugeCTR's dense AdaGrad fills the accumulator with a byte ``memset`` of the float, so only 0 works
    there; here any ``initial_accu_value`` is honoured (dense and sparse alike).

    Example:
        >>> import numpy as np
        >>> from hugectr_core.params import CreateOptimizer
        >>> opt = AdaGrad(CreateOptimizer(optimizer_type="AdaGrad", epsilon=0.0))
        >>> w, a = np.ones(2, np.float32), np.zeros(2, np.float32)
        >>> opt.update(np, w, np.full(2, 3.0, np.float32), [a], lr=0.1, step=1, scaler=1.0)
        >>> [round(float(x), 4) for x in w]
        [0.9, 0.9]
    """

    state_names = ("accum",)
    global_moves_untouched_rows = False  # a zero gradient leaves a row unchanged: Global == Local

    def initial_state(self, name: str) -> float:
        return float(self.params.initial_accu_value)

    def update(self, xp, weight, grad, states, lr, step, scaler):
        _impl(xp).adagrad_update(weight, grad, states[0], lr, self.params.epsilon, 1.0 / scaler)

    def update_rows(self, xp, table, states, rows, grad_rows, lr, step, scaler):
        _impl(xp).adagrad_update_rows(table, states[0], rows, grad_rows, lr, self.params.epsilon, 1.0 / scaler)


class RMSProp(Optimizer):
    """RMSProp as HugeCTR's (``rms_prop_update_grad``): ``v = beta*v + (1-beta)*g^2; w -= lr*g/(sqrt(v)+eps)``.

    ``beta`` is ``CreateOptimizer``'s ``beta1`` and ``eps`` its ``epsilon``: their defaults (0.9, 1e-7) are
    HugeCTR's RMSProp defaults. HugeCTR offers RMSProp only to dynamic Embedding Collection tables; here it
    trains dense weights and every embedding too. Rows a batch does not touch keep their weights, so
    Update_t.Global equals Local.

    Example:
        >>> import numpy as np
        >>> from hugectr_core.params import CreateOptimizer
        >>> opt = RMSProp(CreateOptimizer(optimizer_type="RMSProp", epsilon=0.0))
        >>> w, v = np.ones(2, np.float32), np.zeros(2, np.float32)
        >>> opt.update(np, w, np.full(2, 2.0, np.float32), [v], lr=0.1, step=1, scaler=1.0)
        >>> [round(float(x), 4) for x in v], [round(float(x), 4) for x in w]   # v = 0.1 * 4
        ([0.4, 0.4], [0.6838, 0.6838])
    """

    state_names = ("v",)
    global_moves_untouched_rows = False

    def update(self, xp, weight, grad, states, lr, step, scaler):
        p = self.params
        _impl(xp).rmsprop_update(weight, grad, states[0], lr, p.beta1, p.epsilon, 1.0 / scaler)

    def update_rows(self, xp, table, states, rows, grad_rows, lr, step, scaler):
        p = self.params
        _impl(xp).rmsprop_update_rows(table, states[0], rows, grad_rows, lr, p.beta1, p.epsilon, 1.0 / scaler)


class Ftrl(Optimizer):
    """FTRL-proximal as HugeCTR's: ``n' = n + g^2``, ``z += g - (sqrt(n'+e0) - sqrt(n+e0)) w / lr``,
    ``w = 0`` where ``|z| <= lambda1`` else ``(lambda1 sign(z) - z) / ((beta + sqrt(n'+e0)) / lr + lambda2)``.

    A learning rate of 0 is refused (FTRL divides by it). Rows a batch does not touch keep their
    weights, so Update_t.Global equals Local for embeddings.

    Example:
        >>> import numpy as np
        >>> from hugectr_core.params import CreateOptimizer
        >>> opt = Ftrl(CreateOptimizer(optimizer_type="Ftrl", beta=1.0, lambda1=0.0, lambda2=0.0))
        >>> w, n, z = np.zeros(1, np.float64), np.zeros(1, np.float64), np.zeros(1, np.float64)
        >>> opt.update(np, w, np.ones(1), [n, z], lr=0.5, step=1, scaler=1.0)
        >>> round(float(w[0]), 4)
        -0.25
    """

    state_names = ("n", "z")
    global_moves_untouched_rows = False

    def _lr(self, lr: float) -> float:
        if lr <= 0:
            raise ConfigError(f"Ftrl: the learning rate must be > 0 (it divides by it), got {lr}")
        return lr

    def update(self, xp, weight, grad, states, lr, step, scaler):
        p = self.params
        _impl(xp).ftrl_update(weight, grad, states[0], states[1], self._lr(lr), p.beta, p.lambda1, p.lambda2,
                              1.0 / scaler)

    def update_rows(self, xp, table, states, rows, grad_rows, lr, step, scaler):
        p = self.params
        _impl(xp).ftrl_update_rows(table, states[0], states[1], rows, grad_rows, self._lr(lr), p.beta, p.lambda1,
                                   p.lambda2, 1.0 / scaler)


class RowWiseAdaGrad(Optimizer):
    """Row-wise AdaGrad (as TorchRec's): one accumulator per embedding row instead of one per element.

    ``a += mean(g_row^2); w_row -= lr * g_row / (sqrt(a) + eps)``; ``a`` starts at ``initial_accu_value``.
    Embeddings get the state ``[rows, 1]`` (``state_shape``), a ``1/vec`` of AdaGrad's memory. The flat
    dense buffer has no rows: there the update is elementwise AdaGrad (each element its own row of 1).
    Rows a batch does not touch keep their weights, so Update_t.Global equals Local.

    Example:
        >>> import numpy as np
        >>> from hugectr_core.params import CreateOptimizer
        >>> opt = RowWiseAdaGrad(CreateOptimizer(optimizer_type="RowWiseAdaGrad", epsilon=0.0))
        >>> opt.state_shape("accum", (1000, 16))
        (1000, 1)
        >>> table, a = np.ones((2, 2)), np.zeros((2, 1))
        >>> opt.update_rows(np, table, [a], np.array([1]), np.array([[3.0, 4.0]]), lr=0.1, step=1, scaler=1.0)
        >>> a[:, 0].tolist(), [round(float(x), 4) for x in table[1]]   # a = (9 + 16) / 2
        ([0.0, 12.5], [0.9151, 0.8869])
    """

    state_names = ("accum",)
    global_moves_untouched_rows = False

    def initial_state(self, name: str) -> float:
        return float(self.params.initial_accu_value)

    def state_shape(self, name: str, weight_shape: tuple) -> tuple:
        return (weight_shape[0], 1) if len(weight_shape) == 2 else tuple(weight_shape)

    def update(self, xp, weight, grad, states, lr, step, scaler):
        if states[0].shape == weight.shape:  # flat dense buffer: elementwise AdaGrad
            _impl(xp).adagrad_update(weight, grad, states[0], lr, self.params.epsilon, 1.0 / scaler)
        else:  # a whole table: every row
            rows = xp.arange(weight.shape[0], dtype=xp.int64)
            self.update_rows(xp, weight, states, rows, grad, lr, step, scaler)

    def update_rows(self, xp, table, states, rows, grad_rows, lr, step, scaler):
        _impl(xp).rowwise_adagrad_update_rows(table, states[0], rows, grad_rows, lr, self.params.epsilon,
                                              1.0 / scaler)
