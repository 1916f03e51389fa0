"""SGD, MomentumSGD and Nesterov (formats.md 3.5), on NumPy and, through fused kernels, on CuPy.

With ``g = grad / scaler`` and ``mu = params.momentum_factor``:

* SGD: ``w -= lr*g``
* MomentumSGD: ``m = mu*m - lr*g; w += m``
* Nesterov: ``m' = mu*m - lr*g; w += -mu*m + (1+mu)*m'``
"""
from __future__ import annotations

from hugectr_core.backend import is_numpy
from hugectr_core.contracts import Optimizer

from . import reference


def _impl(xp):
    """The NumPy twins on NumPy, the CUDA launchers on CuPy (imported only then)."""
    if is_numpy(xp):
        return reference
    from . import kernels  # noqa: PLC0415 - keeps CuPy out of import time

    return kernels


class SGD(Optimizer):
    """Plain stochastic gradient descent: ``w -= lr * grad / scaler``; no state.

    Example:
        >>> import numpy as np
        >>> from hugectr_core.params import CreateOptimizer
        >>> opt = SGD(CreateOptimizer(optimizer_type="SGD"))
        >>> w = np.ones(3, np.float32)
        >>> opt.update(np, w, np.full(3, 2.0, np.float32), [], lr=0.5, step=1, scaler=2.0)
        >>> w.tolist()
        [0.5, 0.5, 0.5]
    """

    state_names = ()
    global_moves_untouched_rows = False  # a zero gradient leaves a row unchanged: Global == Local
    plain_sgd = True  # w -= lr * g / scaler: embeddings may fuse it into their gradient reduction

    def update(self, xp, weight, grad, states, lr, step, scaler):
        _impl(xp).sgd_update(weight, grad, lr, 1.0 / scaler)

    def update_rows(self, xp, table, states, rows, grad_rows, lr, step, scaler):
        _impl(xp).sgd_update_rows(table, rows, grad_rows, lr, 1.0 / scaler)


class MomentumSGD(Optimizer):
    """SGD with momentum: ``m = mu*m - lr*g; w += m`` (state ``momentum``, mu = momentum_factor).

    Example:
        >>> import numpy as np
        >>> from hugectr_core.params import CreateOptimizer
        >>> opt = MomentumSGD(CreateOptimizer(optimizer_type="MomentumSGD", momentum_factor=0.5))
        >>> w, m = np.ones(2, np.float32), np.zeros(2, np.float32)
        >>> opt.update(np, w, np.ones(2, np.float32), [m], lr=0.1, step=1, scaler=1.0)
        >>> [round(float(x), 6) for x in w]
        [0.9, 0.9]
    """

    state_names = ("momentum",)
    global_moves_untouched_rows = True  # m decays and keeps moving w even with a zero gradient

    def update(self, xp, weight, grad, states, lr, step, scaler):
        _impl(xp).momentum_update(weight, grad, states[0], lr, self.params.momentum_factor, 1.0 / scaler)

    def update_rows(self, xp, table, states, rows, grad_rows, lr, step, scaler):
        _impl(xp).momentum_update_rows(table, states[0], rows, grad_rows, lr,
                                       self.params.momentum_factor, 1.0 / scaler)


class Nesterov(Optimizer):
    """Nesterov momentum: ``m' = mu*m - lr*g; w += -mu*m + (1+mu)*m'`` (state ``accum``).

    Example:
        >>> import numpy as np
        >>> from hugectr_core.params import CreateOptimizer
        >>> opt = Nesterov(CreateOptimizer(optimizer_type="Nesterov", momentum_factor=0.5))
        >>> w, m = np.ones(2, np.float32), np.zeros(2, np.float32)
        >>> opt.update(np, w, np.ones(2, np.float32), [m], lr=0.1, step=1, scaler=1.0)
        >>> [round(float(x), 6) for x in w]
        [0.85, 0.85]
    """

    state_names = ("accum",)
    global_moves_untouched_rows = True

    def update(self, xp, weight, grad, states, lr, step, scaler):
        _impl(xp).nesterov_update(weight, grad, states[0], lr, self.params.momentum_factor, 1.0 / scaler)

    def update_rows(self, xp, table, states, rows, grad_rows, lr, step, scaler):
        _impl(xp).nesterov_update_rows(table, states[0], rows, grad_rows, lr,
                                       self.params.momentum_factor, 1.0 / scaler)
