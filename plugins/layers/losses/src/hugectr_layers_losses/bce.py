"""BinaryCrossEntropyLoss: sigmoid + binary cross-entropy, fused (formats.md 3.3)."""
from __future__ import annotations

import numpy as np

from hugectr_core.backend import is_numpy
from hugectr_core.contracts import LossLayer, WorkspaceSpec
from hugectr_core.enums import type_string


def _ops(xp):
    if is_numpy(xp):
        from . import reference as module
    else:
        from . import kernels as module
    return module


class RegularizedLoss(LossLayer):
    """Shared by the loss layers: regulariser arguments (reported, not applied) and valid rows.

    Per-row losses go to a float32 workspace when the logits are float16 (mixed precision) and to
    one of the compute dtype otherwise (float64 gradient checks keep full precision): both are
    declared, only one is used (a few bytes per row).
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    def validate_args(self) -> None:
        self.use_regularizer = bool(self.args.get("use_regularizer", False))
        self.regularizer_type = type_string(self.args.get("regularizer_type", "L1"))
        self.regularizer_lambda = float(self.args.get("lambda", 0.0) or 0.0)
        if self.use_regularizer and self.regularizer_type not in ("L1", "L2"):
            raise self.error(f"regularizer_type '{self.regularizer_type}' is unknown: use Regularizer_t.L1 or L2")
        if self.regularizer_lambda < 0:
            raise self.error(f"lambda={self.regularizer_lambda} must be >= 0")

    def regularizer(self):
        """``None``, or ``("L1" | "L2", lambda)`` for the engine to apply to the dense weights."""
        return (self.regularizer_type, self.regularizer_lambda) if self.use_regularizer else None

    def json_params(self) -> dict:
        if not self.use_regularizer:
            return {}
        return {"regularizer": self.regularizer_type, "lambda": self.regularizer_lambda}

    def _loss_workspaces(self, shape):
        return [WorkspaceSpec("row_loss", tuple(shape)), WorkspaceSpec("row_loss_fp32", tuple(shape), dtype=np.float32)]

    @staticmethod
    def _row_loss(ws, logits):
        return ws["row_loss_fp32"] if logits.dtype == np.float16 else ws["row_loss"]

    def _valid_rows(self, ctx, logits) -> int:
        rows = logits.shape[0]
        # the runtime always says (global_batchsize set): a device may then hold no valid row of a short
        # last batch; a bare context (tests, tools) with current_batchsize 0 means "all rows"
        told = ctx.current_batchsize > 0 or ctx.global_batchsize > 0
        return min(ctx.current_batchsize, rows) if told else rows

    def _reduce(self, ctx, row_loss, top, divisor) -> None:
        """top = weight · Σ row_loss / divisor (summed in the workspace's dtype, written to the fp32 top)."""
        ctx.xp.sum(row_loss.reshape(1, -1), axis=1, keepdims=True, out=top)
        top *= self.weight / max(divisor, 1)


class BinaryCrossEntropyLoss(RegularizedLoss):
    """Mean sigmoid cross-entropy of logits (B, 1) against labels (B, 1); top (1, 1).

    Only the first ``ctx.current_batchsize`` rows count (the rest pad a short last batch). The
    loss is multiplied by ``self.weight`` (``compile(loss_names, loss_weights)``); backward writes
    ``(σ(x) - y) · ctx.grad_scale · weight``. The regulariser arguments are only reported through
    ``regularizer()``: the engine adds the L1/L2 term on the dense weights. Works with float16
    logits and labels (mixed precision): the per-row losses and the top stay float32.

    Example:
        >>> import numpy as np
        >>> from hugectr_core.testing import make_layer, run_layer
        >>> loss = make_layer("BinaryCrossEntropyLoss", ["logit", "label"], ["loss"])
        >>> out = run_layer(loss, [np.zeros((4, 1)), np.ones((4, 1))], [])
        >>> round(float(out["tops"][0][0, 0]), 4)  # log(2)
        0.6931
    """

    def infer_shapes(self, bottom_shapes):
        logits = tuple(bottom_shapes[0])
        if len(logits) != 2 or logits[1] != 1:
            raise self.error(f"logits must be (B, 1), got {logits}; the last layer needs num_output=1")
        return super().infer_shapes(bottom_shapes)

    def workspace_specs(self, bottom_shapes):
        return self._loss_workspaces(bottom_shapes[0])

    def forward(self, ctx, bottoms, tops, params, ws):
        xp, (logits, label) = ctx.xp, bottoms
        n_valid = self._valid_rows(ctx, logits)
        row_loss = self._row_loss(ws, logits)
        _ops(xp).bce_fwd(logits, label, row_loss, n_valid)
        self._reduce(ctx, row_loss, tops[0], n_valid)

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is None:
            return
        logits, label = bottoms
        _ops(ctx.xp).bce_bwd(logits, label, bottom_grads[0], self._valid_rows(ctx, logits),
                             ctx.grad_scale * self.weight)

    def predict(self, xp, logits):
        """σ(logits): what the metrics see."""
        return _ops(xp).sigmoid(logits)
