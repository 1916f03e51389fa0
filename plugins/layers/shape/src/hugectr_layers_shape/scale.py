"""Scale: repeat elements (axis 0) or rows (axis 1) ``factor`` times (formats.md 1.9.1)."""
from __future__ import annotations

from hugectr_core.contracts import Layer

from ._ops import ops, rows_view


class Scale(Layer):
    """axis 0: (B, N) -> (B, N·f), every element repeated f times consecutively;
    axis 1: (B, N) -> (B·f, N), every row repeated f times.

    Backward SUMS the gradients of the f replicas, which is the correct gradient of a repeat.
    HugeCTR's backward copies only the first replica's gradient (formats.md 1.9.1 ⚠); we do not
    reproduce that bug. Not allowed under mixed precision (``supports_fp16 = False``).

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("Scale", ["x"], ["y"], axis=1, factor=3).infer_shapes([(4, 5)])
        [(12, 5)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    supports_fp16 = False

    def validate_args(self) -> None:
        self.axis = int(self.args.get("axis", 0))
        factor = self.args.get("factor", 1)
        if isinstance(factor, bool) or float(factor) != int(factor):
            raise self.error(f"factor={factor!r} must be an integer >= 1")
        self.factor = int(factor)
        if self.axis not in (0, 1):
            raise self.error(f"axis={self.axis} is not supported: use 0 (repeat elements) or 1 (repeat rows)")
        if self.factor < 1:
            raise self.error(f"factor={self.factor} must be >= 1")

    def infer_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        if len(shape) != 2:
            raise self.error(f"input must be 2-D (B, N), got {shape}")
        batch, width = shape
        return [(batch, width * self.factor) if self.axis == 0 else (batch * self.factor, width)]

    def json_params(self) -> dict:
        return {"scale_param": {"axis": self.axis, "factor": self.factor}}

    def _views(self, small, big):
        """(p, i) and (p, f, i): inner i = 1 for axis 0, N for axis 1."""
        inner = 1 if self.axis == 0 else small.shape[1]
        outer = small.size // inner
        return rows_view(small, outer), rows_view(big, outer).reshape(outer, self.factor, inner)

    def forward(self, ctx, bottoms, tops, params, ws):
        in_pi, out_pfi = self._views(bottoms[0], tops[0])
        ops(ctx.xp).scale_fwd(in_pi, out_pfi)

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is None:
            return
        grad_in_pi, grad_out_pfi = self._views(bottom_grads[0], ctx.xp.ascontiguousarray(top_grads[0]))
        ops(ctx.xp).scale_bwd(grad_out_pfi, grad_in_pi)
