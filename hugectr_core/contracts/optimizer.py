"""The optimizer contract (formats.md 3.5).

One optimizer object serves dense weights (one flat buffer of all dense parameters, one update
per step) and embeddings (the same elementwise update over touched rows, or all rows for
``Update_t.Global``). The learning rate always comes from the solver's scheduler; ``step`` is
the 1-based iteration (Adam's t). Gradients arrive multiplied by the loss ``scaler``: updates
divide by it.

Example:
    >>> opt = registry("optimizers").load("Adam")(opt_params)          # doctest: +SKIP
    >>> states = [xp.full_like(w, opt.initial_state(n)) for n in opt.state_names]
    >>> opt.update(xp, w, g, states, lr=1e-3, step=1, scaler=1.0)
"""
from __future__ import annotations


class Optimizer:
    """Base class of optimizer plugins. ``state_names`` orders the state tensors as HugeCTR's files do."""

    state_names: tuple = ()

    def __init__(self, params):
        self.params = params  # hugectr.OptParamsPy

    def initial_state(self, name: str) -> float:
        return 0.0

    def update(self, xp, weight, grad, states: list, lr: float, step: int, scaler: float) -> None:
        """Update ``weight`` in place from ``grad``; ``states`` are arrays shaped like ``weight``."""
        raise NotImplementedError

    def update_rows(self, xp, table, states: list, rows, grad_rows, lr: float, step: int, scaler: float) -> None:
        """Sparse Local update: only ``table[rows]`` (unique row indices) and the same rows of states."""
        sub_w = table[rows]
        sub_s = [s[rows] for s in states]
        self.update(xp, sub_w, grad_rows, sub_s, lr, step, scaler)
        table[rows] = sub_w
        for full, part in zip(states, sub_s):
            full[rows] = part
