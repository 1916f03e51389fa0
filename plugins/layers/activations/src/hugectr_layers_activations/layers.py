"""Element-wise activations ReLU, Sigmoid and ELU (formats.md 1.9.1): shape-preserving, any rank."""
from __future__ import annotations

import math

from hugectr_core.contracts.layer import Layer

from ._dispatch import ops_for


class ElementwiseLayer(Layer):
    """A one-in, one-out layer whose top has the bottom's shape."""

    def infer_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])]


class ReLU(ElementwiseLayer):
    """``y = max(0, x)``; backward passes ``dy`` where ``y > 0``.

    Example:
        >>> import numpy as np
        >>> from hugectr_core.testing import make_layer, run_layer
        >>> run_layer(make_layer("ReLU", ["x"], ["y"]), [np.array([[-1.0, 2.0]])], [])["tops"][0]
        array([[0., 2.]])
    """

    def forward(self, ctx, bottoms, tops, params, ws):
        ops_for(ctx.xp).relu_fwd(bottoms[0], tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is not None:
            ops_for(ctx.xp).relu_bwd(top_grads[0], tops[0], bottom_grads[0])


class Sigmoid(ElementwiseLayer):
    """``y = 1 / (1 + e^-x)``; backward uses the saved top: ``dx = dy * y * (1 - y)``.

    Do not put a Sigmoid before BinaryCrossEntropyLoss: HugeCTR fuses it into the loss.

    Example:
        >>> import numpy as np
        >>> from hugectr_core.testing import make_layer, run_layer
        >>> run_layer(make_layer("Sigmoid", ["x"], ["y"]), [np.array([[0.0]])], [])["tops"][0]
        array([[0.5]])
    """

    def forward(self, ctx, bottoms, tops, params, ws):
        ops_for(ctx.xp).sigmoid_fwd(bottoms[0], tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is not None:
            ops_for(ctx.xp).sigmoid_bwd(top_grads[0], tops[0], bottom_grads[0])


class ELU(ElementwiseLayer):
    """``y = x`` for ``x > 0``, else ``elu_alpha * (e^x - 1)``.

    Example:
        >>> import numpy as np
        >>> from hugectr_core.testing import make_layer, run_layer
        >>> elu = make_layer("ELU", ["x"], ["y"], elu_alpha=2.0)
        >>> elu.json_params()
        {'elu_param': {'alpha': 2.0}}
    """

    def validate_args(self) -> None:
        alpha = self.args.get("elu_alpha")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
            raise self.error(f"elu_alpha must be a finite number, got {alpha!r}")
        self.alpha = float(alpha)

    def json_params(self) -> dict:
        return {"elu_param": {"alpha": self.alpha}}

    def forward(self, ctx, bottoms, tops, params, ws):
        ops_for(ctx.xp).elu_fwd(bottoms[0], self.alpha, tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is not None:
            ops_for(ctx.xp).elu_bwd(top_grads[0], bottoms[0], self.alpha, bottom_grads[0])
