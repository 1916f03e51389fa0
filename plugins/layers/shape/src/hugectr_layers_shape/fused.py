"""FusedReshapeConcat and FusedReshapeConcatGeneral (DIN; formats.md 1.9.1)."""
from __future__ import annotations

from hugectr_core.contracts import Layer

from ._ops import ops, rows_view


def _check_inputs(layer, bottom_shapes):
    shapes = [tuple(s) for s in bottom_shapes]
    if any(len(s) != 3 for s in shapes):
        raise layer.error(f"inputs must all be 3-D (B, S, e_i), got {shapes}")
    if any(s[:2] != shapes[0][:2] for s in shapes):
        raise layer.error(f"inputs must agree on (B, S), got {shapes}")
    return shapes[0][0], shapes[0][1], sum(s[2] for s in shapes)


def _offsets(bottoms):
    offsets, col = [], 0
    for b in bottoms:
        offsets.append(col)
        col += b.shape[2]
    return offsets


class FusedReshapeConcat(Layer):
    """k inputs (B, S, e_i) -> history (B·(S-1), Σe) and target (B, Σe).

    The inputs are concatenated on the last axis; slots 0..S-2 of every sample go to the first
    top (row b·(S-1)+s), slot S-1 to the second. Needs S >= 2. Not allowed under mixed precision.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("FusedReshapeConcat", ["a", "b"], ["hist", "tgt"]).infer_shapes([(4, 3, 2), (4, 3, 5)])
        [(8, 7), (4, 7)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    num_bottoms = None
    num_tops = 2
    supports_fp16 = False

    def infer_shapes(self, bottom_shapes):
        batch, slots, width = _check_inputs(self, bottom_shapes)
        if slots < 2:
            raise self.error(f"needs S >= 2 slots (S-1 history + 1 target), got S={slots}")
        return [(batch * (slots - 1), width), (batch, width)]

    def forward(self, ctx, bottoms, tops, params, ws):
        kernels = ops(ctx.xp)
        hist, tgt = rows_view(tops[0], tops[0].shape[0]), rows_view(tops[1], tops[1].shape[0])
        for bottom, offset in zip(bottoms, _offsets(bottoms)):
            kernels.fused_reshape_concat_fwd(bottom, hist, tgt, offset)

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        kernels = ops(ctx.xp)
        for grad, offset in zip(bottom_grads, _offsets(bottoms)):
            if grad is not None:
                kernels.fused_reshape_concat_bwd(top_grads[0], top_grads[1], grad, offset)


class FusedReshapeConcatGeneral(Layer):
    """k inputs (B, S, e_i) -> (B·S, Σe): concatenate on the last axis, fold the slots into rows.

    Not allowed under mixed precision.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("FusedReshapeConcatGeneral", ["a", "b"], ["y"]).infer_shapes([(4, 3, 2), (4, 3, 5)])
        [(12, 7)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    num_bottoms = None
    supports_fp16 = False

    def infer_shapes(self, bottom_shapes):
        batch, slots, width = _check_inputs(self, bottom_shapes)
        return [(batch * slots, width)]

    def forward(self, ctx, bottoms, tops, params, ws):
        kernels = ops(ctx.xp)
        rows = tops[0].shape[0]
        out_rn = rows_view(tops[0], rows)
        for bottom, offset in zip(bottoms, _offsets(bottoms)):
            kernels.concat_fwd(bottom.reshape(rows, -1), out_rn, offset)

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        kernels = ops(ctx.xp)
        rows = top_grads[0].shape[0]
        grad_out_rn = top_grads[0].reshape(rows, -1)
        for grad, offset in zip(bottom_grads, _offsets(bottoms)):
            if grad is not None:
                kernels.concat_bwd(grad_out_rn, rows_view(grad, rows), offset)
