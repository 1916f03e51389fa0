"""Activations ReLU, Sigmoid, ELU and PReLU_Dice (formats.md 1.9.1): shape-preserving, any rank."""
from __future__ import annotations

import math

from hugectr_core.contracts.layer import Layer, WorkspaceSpec

from ._dispatch import ops_for


class ElementwiseLayer(Layer):
    """A one-in, one-out layer whose top has the bottom's shape."""

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

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


class PReLU_Dice(ElementwiseLayer):  # noqa: N801 - HugeCTR's type name
    """Dice activation: ``y = p·x + (1 − p)·α·x``, ``p = σ((x − E[x]) / √(Var[x] + eps))``.

    E and Var are per feature (last axis) over the batch, i.e. over every leading axis of a 2-D
    (B, F) or 3-D (B, S, F) input; Var is biased. α = ``elu_alpha`` is a fixed hyper-parameter
    (not learned). Backward differentiates through the batch statistics too. The statistics of the
    forward pass are kept in the workspace ``stats`` (mean, 1/std, and two backward sums).
    Not allowed under mixed precision (``supports_fp16 = False``).

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> dice = make_layer("PReLU_Dice", ["x"], ["y"], elu_alpha=0.25, eps=1e-8)
        >>> dice.json_params()
        {'prelu_dice_param': {'alpha': 0.25, 'eps': 1e-08}}
    """

    supports_fp16 = False

    def validate_args(self) -> None:
        alpha, eps = self.args.get("elu_alpha"), self.args.get("eps")
        for name, value in (("elu_alpha", alpha), ("eps", eps)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise self.error(f"{name} must be a finite number, got {value!r}")
        if eps < 0:
            raise self.error(f"eps={eps} must be >= 0 (it keeps the variance away from zero)")
        self.alpha, self.eps = float(alpha), float(eps)

    def infer_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        if len(shape) < 2:
            raise self.error(f"input must be at least 2-D (B, F), got {shape}")
        return [shape]

    def workspace_specs(self, bottom_shapes):
        return [WorkspaceSpec("stats", (4, bottom_shapes[0][-1]))]  # mean, inv_std, mean(h), mean(h·z)

    def json_params(self) -> dict:
        return {"prelu_dice_param": {"alpha": self.alpha, "eps": self.eps}}

    @staticmethod
    def _rows(x):
        return x.reshape(-1, x.shape[-1])

    def forward(self, ctx, bottoms, tops, params, ws):
        kernels, stats = ops_for(ctx.xp), ws["stats"]
        x = self._rows(bottoms[0])
        kernels.dice_stats(x, stats[0], stats[1], self.eps)
        kernels.dice_fwd(x, stats[0], stats[1], self.alpha, self._rows(tops[0]))

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is None:
            return
        kernels, stats = ops_for(ctx.xp), ws["stats"]
        x, dy = self._rows(bottoms[0]), self._rows(ctx.xp.ascontiguousarray(top_grads[0]))
        kernels.dice_bwd_stats(x, dy, stats[0], stats[1], self.alpha, stats[2], stats[3])
        kernels.dice_bwd(x, dy, stats[0], stats[1], stats[2], stats[3], self.alpha, self._rows(bottom_grads[0]))
