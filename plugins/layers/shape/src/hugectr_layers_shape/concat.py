"""Concat: join 2-D or 3-D tensors along axis 1 or 2 (formats.md 1.9.1)."""
from __future__ import annotations

import math

from hugectr_core.contracts import Layer

from ._ops import ops, rows_view


class Concat(Layer):
    """Concatenate N tensors of the same rank along ``axis``.

    2-D: (B, a), (B, b) -> (B, a + b) with ``axis=1``. 3-D: ``axis=1`` (B, f_i, e) -> (B, Σf, e),
    ``axis=2`` (B, f, e_i) -> (B, f, Σe). Every axis except ``axis`` must agree.

    Every case is a column-block copy on a 2-D view: the axes before ``axis`` collapse into rows,
    the rest into columns.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("Concat", ["a", "b"], ["c"]).infer_shapes([(4, 3), (4, 5)])
        [(4, 8)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    num_bottoms = None
    min_bottoms = 2

    def validate_args(self) -> None:
        self.axis = int(self.args.get("axis", 1))
        if self.axis not in (1, 2):
            raise self.error(f"axis={self.axis} is not supported: use 1 (2-D or 3-D inputs) or 2 (3-D inputs)")

    def infer_shapes(self, bottom_shapes):
        shapes = [tuple(s) for s in bottom_shapes]
        ndim = len(shapes[0])
        if ndim not in (2, 3) or any(len(s) != ndim for s in shapes):
            raise self.error(f"inputs must all be 2-D or all 3-D, got shapes {shapes}")
        if self.axis >= ndim:
            raise self.error(f"axis={self.axis} does not exist for {ndim}-D inputs {shapes}; use axis=1")
        for s in shapes[1:]:
            if s[:self.axis] + s[self.axis + 1:] != shapes[0][:self.axis] + shapes[0][self.axis + 1:]:
                raise self.error(f"all dimensions except axis {self.axis} must match, got {shapes}")
        out = list(shapes[0])
        out[self.axis] = sum(s[self.axis] for s in shapes)
        return [tuple(out)]

    def json_params(self) -> dict:
        return {"axis": self.axis}

    def _blocks(self, bottoms):
        """(rows, [first column of each input inside the output])."""
        rows = math.prod(bottoms[0].shape[:self.axis])
        offsets, col = [], 0
        for b in bottoms:
            offsets.append(col)
            col += math.prod(b.shape[self.axis:])
        return rows, offsets

    def forward(self, ctx, bottoms, tops, params, ws):
        kernels = ops(ctx.xp)
        rows, offsets = self._blocks(bottoms)
        out_rn = rows_view(tops[0], rows)
        for bottom, offset in zip(bottoms, offsets):
            kernels.concat_fwd(bottom.reshape(rows, -1), out_rn, offset)

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        kernels = ops(ctx.xp)
        rows, offsets = self._blocks(bottoms)
        grad_out_rn = top_grads[0].reshape(rows, -1)
        for grad, offset in zip(bottom_grads, offsets):
            if grad is not None:
                kernels.concat_bwd(grad_out_rn, rows_view(grad, rows), offset)
