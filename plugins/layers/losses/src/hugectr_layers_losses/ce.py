"""CrossEntropyLoss (2-class softmax) and MultiCrossEntropyLoss (weighted multi-label sigmoid) (formats.md 3.3)."""
from __future__ import annotations

import functools

import numpy as np

from hugectr_core.backend import is_numpy

from .bce import RegularizedLoss, _ops


class CrossEntropyLoss(RegularizedLoss):
    """Mean 2-class softmax cross-entropy of logits (B, 2); top (1, 1).

    The label is either (B, 1) holding the class (HugeCTR's reading: ``label < 0.5`` is class 0,
    otherwise class 1) or (B, 2) holding one-hot or soft target probabilities. HugeCTR declares a
    (B, 2) label but reads only ``label[i]`` as the class (formats.md 3.3 ⚠); we do the sensible
    thing for each shape instead. Loss per row Σ_c t_c·(logsumexp(x) − x_c), mean over the valid
    rows × weight; backward writes ``(softmax − t)·ctx.grad_scale·weight``. ``predict`` gives the
    probability of class 1, (B, 1). Not allowed under mixed precision.

    Example:
        >>> import numpy as np
        >>> from hugectr_core.testing import make_layer, run_layer
        >>> loss = make_layer("CrossEntropyLoss", ["logits", "label"], ["loss"])
        >>> out = run_layer(loss, [np.zeros((4, 2)), np.ones((4, 1))], [])
        >>> round(float(out["tops"][0][0, 0]), 4)  # log(2)
        0.6931
    """

    supports_fp16 = False

    def infer_shapes(self, bottom_shapes):
        logits, label = (tuple(s) for s in bottom_shapes)
        if len(logits) != 2 or logits[1] != 2:
            raise self.error(f"logits must be (B, 2), got {logits}; the last layer needs num_output=2")
        if label not in ((logits[0], 1), (logits[0], 2)):
            raise self.error(f"label must be (B, 1) holding the class or (B, 2) holding target probabilities "
                             f"for logits {logits}, got {label}")
        return [(1, 1)]

    def workspace_specs(self, bottom_shapes):
        return self._loss_workspaces((bottom_shapes[0][0], 1))

    def forward(self, ctx, bottoms, tops, params, ws):
        logits, label = bottoms
        n_valid = self._valid_rows(ctx, logits)
        row_loss = self._row_loss(ws, logits)
        _ops(ctx.xp).ce_fwd(logits, label, row_loss, n_valid)
        self._reduce(ctx, row_loss, tops[0], n_valid)

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is None:
            return
        logits, label = bottoms
        _ops(ctx.xp).ce_bwd(logits, label, bottom_grads[0], self._valid_rows(ctx, logits),
                            ctx.grad_scale * self.weight)

    def predict(self, xp, logits):
        """Softmax probability of class 1: σ(x1 − x0), shape (B, 1)."""
        return _ops(xp).sigmoid(logits[:, 1:2] - logits[:, 0:1])


class MultiCrossEntropyLoss(RegularizedLoss):
    """Weighted multi-label sigmoid cross-entropy of logits (B, L) against labels (B, L); top (1, 1).

    ``target_weight_vec`` gives one weight per label column (default all 1). Elements whose label
    is < −0.5 are masked (no loss, no gradient). The loss is Σ w_l·CE / (valid rows · L) × weight;
    backward writes ``w_l·(σ(x) − y)·ctx.grad_scale·weight / L``. ``predict`` is σ(x), (B, L).
    Not allowed under mixed precision.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> loss = make_layer("MultiCrossEntropyLoss", ["logits", "label"], ["loss"], target_weight_vec=[1.0, 0.5])
        >>> loss.json_params()
        {'target_weight': [1.0, 0.5]}
    """

    supports_fp16 = False

    def validate_args(self) -> None:
        super().validate_args()
        raw = self.args.get("target_weight_vec") or []
        try:
            self.target_weight = [float(w) for w in raw]
        except (TypeError, ValueError) as exc:
            raise self.error(f"target_weight_vec must be a list of numbers, got {raw!r}") from exc

    def infer_shapes(self, bottom_shapes):
        logits = tuple(bottom_shapes[0])
        if len(logits) != 2:
            raise self.error(f"logits must be (B, L), got {logits}")
        shapes = super().infer_shapes(bottom_shapes)
        if self.target_weight and len(self.target_weight) != logits[1]:
            raise self.error(f"target_weight_vec has {len(self.target_weight)} entries but the label has "
                             f"{logits[1]} columns: give one weight per label column")
        return shapes

    def json_params(self) -> dict:
        return {"target_weight": self._weights(logits_cols=None), **super().json_params()}

    def _weights(self, logits_cols):
        if self.target_weight or logits_cols is None:
            return list(self.target_weight)
        return [1.0] * logits_cols

    def workspace_specs(self, bottom_shapes):
        return self._loss_workspaces(bottom_shapes[0])

    def _weight_array(self, xp, logits):
        weights = tuple(self._weights(logits.shape[1]))
        if is_numpy(xp):
            return np.asarray(weights, dtype=logits.dtype)
        # copied to the device once per (weights, dtype, device), not every step: a CUDA graph replays
        # no host-to-device copy of a host list
        return _device_weights(weights, np.dtype(logits.dtype).str, xp.cuda.Device().id)

    def forward(self, ctx, bottoms, tops, params, ws):
        logits, label = bottoms
        n_valid = self._valid_rows(ctx, logits)
        row_loss = self._row_loss(ws, logits)
        _ops(ctx.xp).mce_fwd(logits, label, self._weight_array(ctx.xp, logits), row_loss, n_valid)
        self._reduce(ctx, row_loss, tops[0], n_valid * logits.shape[1])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is None:
            return
        logits, label = bottoms
        _ops(ctx.xp).mce_bwd(logits, label, self._weight_array(ctx.xp, logits), bottom_grads[0],
                             self._valid_rows(ctx, logits), ctx.grad_scale * self.weight / logits.shape[1])

    def predict(self, xp, logits):
        """σ(logits), (B, L)."""
        return _ops(xp).sigmoid(logits)


@functools.lru_cache(maxsize=64)
def _device_weights(weights: tuple, dtype: str, device_id: int):
    import cupy  # noqa: PLC0415 - only reached on the GPU backend

    with cupy.cuda.Device(device_id):
        return cupy.asarray(np.asarray(weights, dtype=dtype))
