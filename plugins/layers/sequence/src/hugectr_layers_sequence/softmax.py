"""Softmax over the last axis, optionally masked (formats.md 1.9.1; JSON 2.7 ``factor``)."""
from __future__ import annotations

import numpy as np

from hugectr_core.contracts.layer import Layer
from hugectr_core.errors import BackendError

from ._common import mask_error, ops_for


class Softmax(Layer):
    """Softmax over the last axis of any tensor; with a second bottom, HugeCTR's masked softmax.

    One bottom ``x``: ``y = softmax(x)`` over the last axis (``factor`` is ignored, as in HugeCTR).
    Two bottoms ``(x, mask)``: ``y = softmax(x * factor - (1 - mask) * 10000)``; ``mask`` has x's
    shape, or is ``(B, 1, Sf, St)`` for a 4D ``x`` of shape ``(B, heads, Sf, St)`` (broadcast over
    heads). The mask gets no gradient. The masked form is float32/float64 only (HugeCTR allows it
    in fp32 only): it raises a clear error in ``forward`` when it meets float16 arrays, since
    ``infer_shapes`` cannot see the dtype.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> sm = make_layer("Softmax", ["scores", "mask"], ["probs"], factor=0.125)
        >>> sm.infer_shapes([(2, 4, 8, 8), (2, 1, 8, 8)])
        [(2, 4, 8, 8)]
        >>> sm.json_params()
        {'factor': 0.125}
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    num_bottoms = None
    min_bottoms = 1

    def validate_args(self) -> None:
        if len(self.config.bottom_names) > 2:
            raise self.error(f"takes 1 bottom (x) or 2 (x, mask), got {len(self.config.bottom_names)}")
        factor = self.args.get("factor")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)):
            raise self.error(f"factor must be a number, got {factor!r}")
        self.factor = float(factor)

    @property
    def masked(self) -> bool:
        return len(self.config.bottom_names) == 2

    def infer_shapes(self, bottom_shapes):
        x_shape = tuple(bottom_shapes[0])
        if len(x_shape) < 1 or x_shape[-1] < 1:
            raise self.error(f"input '{self.config.bottom_names[0]}' needs a non-empty last axis, got {x_shape}")
        if self.masked:
            why = mask_error(x_shape, bottom_shapes[1])
            if why:
                raise self.error(f"{why}; mask tensor '{self.config.bottom_names[1]}'")
        return [x_shape]

    def bottom_needs_grad(self, index: int) -> bool:
        return index == 0

    def json_params(self) -> dict:
        return {"factor": self.factor}

    def _factor(self) -> float:
        return self.factor if self.masked else 1.0

    def forward(self, ctx, bottoms, tops, params, ws):
        mask = bottoms[1] if self.masked else None
        if mask is not None and np.dtype(bottoms[0].dtype) == np.float16:
            raise BackendError(f"layer '{self.name}' (Softmax): the masked softmax (2 bottoms) runs in fp32 only, "
                               "as in HugeCTR; use_mixed_precision=False, or drop the mask input")
        ops_for(ctx.xp).softmax_fwd(bottoms[0], mask, self._factor(), tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is not None:
            ops_for(ctx.xp).softmax_bwd(top_grads[0], tops[0], self._factor(), bottom_grads[0])
