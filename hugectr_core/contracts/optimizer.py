"""The optimizer contract (formats.md 3.5).

One optimizer object serves dense weights (one flat buffer of all dense parameters, one update
per step) and embeddings (the same elementwise update over touched rows, or all rows for
``Update_t.Global``). The learning rate always comes from the solver's scheduler; ``step`` is
the 1-based iteration (Adam's t). Gradients arrive multiplied by the loss ``scaler``: updates
divide by it.

Example:
    >>> import numpy as np
    >>> from hugectr_core.params import CreateOptimizer
    >>> from hugectr_core.plugins import registry
    >>> opt = registry("optimizers").load("Adam")(CreateOptimizer(optimizer_type="Adam"))
    >>> w, g = np.ones(3, np.float32), np.full(3, 0.5, np.float32)
    >>> states = [np.full_like(w, opt.initial_state(n)) for n in opt.state_names]
    >>> opt.update(np, w, g, states, lr=1e-3, step=1, scaler=1.0)
    >>> [round(float(x), 4) for x in w]
    [0.999, 0.999, 0.999]
"""
from __future__ import annotations


class Optimizer:
    """Base class of optimizer plugins. ``state_names`` orders the state tensors as HugeCTR's files do."""

    state_names: tuple = ()

    def __init__(self, params):
        self.params = params  # hugectr.OptParamsPy

    def initial_state(self, name: str) -> float:
        return 0.0

    def state_shape(self, name: str, weight_shape: tuple) -> tuple:
        """Shape of state ``name`` for a weight of ``weight_shape``: the weight's own shape by default.

        An optimizer with compact state overrides it, e.g. row-wise AdaGrad keeps one accumulator per
        embedding row: ``(rows, vec) -> (rows, 1)``. Embeddings allocate their states with it; the flat
        dense buffer (1-D) always gets states shaped like the weights. ``update``/``update_rows`` then
        receive states of these shapes.
        """
        return tuple(weight_shape)

    def update(self, xp, weight, grad, states: list, lr: float, step: int, scaler: float) -> None:
        """Update ``weight`` in place from ``grad``; ``states`` have the shapes of ``state_shape``."""
        raise NotImplementedError

    def update_rows(self, xp, table, states: list, rows, grad_rows, lr: float, step: int, scaler: float) -> None:
        """Sparse Local update: only ``table[rows]`` (unique row indices) and the same rows of states."""
        sub_w = table[rows]
        sub_s = [s[rows] for s in states]
        self.update(xp, sub_w, grad_rows, sub_s, lr, step, scaler)
        table[rows] = sub_w
        for full, part in zip(states, sub_s):
            full[rows] = part
