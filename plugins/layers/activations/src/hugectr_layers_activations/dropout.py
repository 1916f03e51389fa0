"""Dropout (formats.md 1.9.1): inverted dropout in training, identity in evaluation."""
from __future__ import annotations

import math

import numpy as np

from hugectr_core.contracts.layer import WorkspaceSpec

from ._dispatch import ops_for
from .layers import ElementwiseLayer


class Dropout(ElementwiseLayer):
    """Training: ``y = x * mask`` with ``mask = 1/(1-p)`` where a uniform draw is ``>= p``, else 0.

    The uniforms come from the step's generator (``ctx.rng``); the mask is kept in the workspace
    buffer ``mask`` (the bottom's shape, always float32 so that uniforms can be drawn into it under
    mixed precision too) for backward, ``dx = dy * mask``. Evaluation copies ``x``.

    Example:
        >>> import numpy as np
        >>> from hugectr_core.testing import make_layer, run_layer
        >>> drop = make_layer("Dropout", ["x"], ["y"], dropout_rate=0.5)
        >>> y = run_layer(drop, [np.ones((2, 4))], [])["tops"][0]
        >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
    """

    def validate_args(self) -> None:
        rate = self.args.get("dropout_rate")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (0.0 <= rate < 1.0) \
                or not math.isfinite(rate):
            raise self.error(f"dropout_rate must be in [0, 1), got {rate!r}; 1.0 would drop everything")
        self.rate = float(rate)

    def workspace_specs(self, bottom_shapes):
        return [WorkspaceSpec("mask", tuple(bottom_shapes[0]), dtype=np.float32)]

    def json_params(self) -> dict:
        return {"rate": self.rate}

    def _uniforms(self, ctx, mask):
        """Draw the uniforms straight into the mask buffer: no allocation per step. The kernel (and
        its twin) read each uniform before overwriting it with the mask value."""
        if ctx.rng is None:
            raise self.error("training needs a random generator in the step context (ctx.rng)")
        if mask.dtype != np.float32:
            raise self.error(f"dropout needs a float32 mask workspace, got {mask.dtype}")
        if ctx.device_count > 1:
            # every device draws the whole global batch's uniforms and keeps its own rows, so the masks
            # (and the training) do not depend on the device count
            rows = mask.shape[0]
            full = ctx.rng.random((rows * ctx.device_count,) + mask.shape[1:], dtype=mask.dtype)
            mask[...] = full[ctx.row_offset:ctx.row_offset + rows]
            return mask
        ctx.rng.random(mask.shape, dtype=mask.dtype, out=mask)
        return mask

    def forward(self, ctx, bottoms, tops, params, ws):
        x = bottoms[0]
        if not ctx.training:
            ctx.xp.copyto(tops[0], x)
            return
        ops_for(ctx.xp).dropout_fwd(x, self._uniforms(ctx, ws["mask"]), self.rate, ws["mask"], tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is None:
            return
        if not ctx.training:
            ctx.xp.copyto(bottom_grads[0], top_grads[0])
            return
        ops_for(ctx.xp).dropout_bwd(top_grads[0], ws["mask"], bottom_grads[0])
