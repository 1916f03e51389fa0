"""ReduceSum and Add (formats.md 1.9.1): plain array-module operations writing with ``out=``."""
from __future__ import annotations

from hugectr_core.contracts import Layer


class ReduceSum(Layer):
    """Sum over ``axis``, keeping the dimension: (B, S, E) with axis=1 -> (B, 1, E).

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("ReduceSum", ["x"], ["y"], axis=2).infer_shapes([(4, 3, 5)])
        [(4, 3, 1)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    def validate_args(self) -> None:
        self.axis = int(self.args.get("axis", 1))
        if self.axis < 0:
            raise self.error(f"axis={self.axis} must be >= 0")

    def infer_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        if self.axis >= len(shape):
            raise self.error(f"axis={self.axis} does not exist for the {len(shape)}-D input {shape}")
        return [shape[:self.axis] + (1,) + shape[self.axis + 1:]]

    def json_params(self) -> dict:
        return {"axis": self.axis}

    def forward(self, ctx, bottoms, tops, params, ws):
        ctx.xp.sum(bottoms[0], axis=self.axis, keepdims=True, out=tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is not None:
            xp = ctx.xp
            xp.copyto(bottom_grads[0], xp.broadcast_to(top_grads[0], bottom_grads[0].shape))


class Add(Layer):
    """Element-wise sum of N >= 2 tensors of the same shape.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("Add", ["a", "b", "c"], ["s"]).infer_shapes([(4, 3)] * 3)
        [(4, 3)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    num_bottoms = None
    min_bottoms = 2

    def infer_shapes(self, bottom_shapes):
        shapes = [tuple(s) for s in bottom_shapes]
        if any(s != shapes[0] for s in shapes):
            raise self.error(f"all inputs must have the same shape, got {shapes}")
        return [shapes[0]]

    def forward(self, ctx, bottoms, tops, params, ws):
        xp = ctx.xp
        xp.add(bottoms[0], bottoms[1], out=tops[0])
        for bottom in bottoms[2:]:
            xp.add(tops[0], bottom, out=tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        for grad in bottom_grads:
            if grad is not None:
                ctx.xp.copyto(grad, top_grads[0])


class ReduceMean(ReduceSum):
    """Mean over ``axis``, keeping the dimension: (B, S, E) with axis=1 -> (B, 1, E).

    Not allowed under mixed precision (``supports_fp16 = False``).

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("ReduceMean", ["x"], ["y"], axis=1).infer_shapes([(4, 3, 5)])
        [(4, 1, 5)]
    """

    supports_fp16 = False

    def forward(self, ctx, bottoms, tops, params, ws):
        ctx.xp.mean(bottoms[0], axis=self.axis, keepdims=True, out=tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is not None:
            xp, count = ctx.xp, bottoms[0].shape[self.axis]
            xp.multiply(xp.broadcast_to(top_grads[0], bottom_grads[0].shape), 1.0 / count, out=bottom_grads[0])


class Sub(Add):
    """``x - y`` of two tensors of the same shape. Not allowed under mixed precision.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("Sub", ["x", "y"], ["d"]).infer_shapes([(4, 3)] * 2)
        [(4, 3)]
    """

    num_bottoms = 2
    supports_fp16 = False

    def forward(self, ctx, bottoms, tops, params, ws):
        ctx.xp.subtract(bottoms[0], bottoms[1], out=tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is not None:
            ctx.xp.copyto(bottom_grads[0], top_grads[0])
        if bottom_grads[1] is not None:
            ctx.xp.negative(top_grads[0], out=bottom_grads[1])


class ElementwiseMultiply(Add):
    """Element-wise product of N >= 2 tensors of the same shape.

    Backward: ``dx_i = dy * Π_{j≠i} x_j``, multiplied out (no division, so zeros are fine).

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("ElementwiseMultiply", ["a", "b"], ["p"]).infer_shapes([(4, 3)] * 2)
        [(4, 3)]
    """

    def forward(self, ctx, bottoms, tops, params, ws):
        xp = ctx.xp
        xp.multiply(bottoms[0], bottoms[1], out=tops[0])
        for bottom in bottoms[2:]:
            xp.multiply(tops[0], bottom, out=tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        xp = ctx.xp
        for i, grad in enumerate(bottom_grads):
            if grad is None:
                continue
            xp.copyto(grad, top_grads[0])
            for j, bottom in enumerate(bottoms):
                if j != i:
                    xp.multiply(grad, bottom, out=grad)
