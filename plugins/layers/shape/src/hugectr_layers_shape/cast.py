"""Cast: fp32 <-> fp16 (formats.md 1.9.1)."""
from __future__ import annotations

import numpy as np

from hugectr_core.contracts import Layer


class Cast(Layer):
    """Copy the input into a top of the other precision; backward casts the gradient back.

    The top dtype is float16 when the graph computes in float32 and float32 otherwise (a mixed
    precision graph computes in float16, so Cast hands a float32 tensor on). Element values are
    converted with round-to-nearest (``astype``).

    Example:
        >>> import numpy as np
        >>> from hugectr_core.testing import make_layer
        >>> cast = make_layer("Cast", ["x"], ["y"])
        >>> cast.top_dtypes(np.float32), cast.top_dtypes(np.float16)
        ([<class 'numpy.float16'>], [<class 'numpy.float32'>])
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    def infer_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])]

    def top_dtypes(self, compute_dtype) -> list:
        return [np.float16 if np.dtype(compute_dtype) == np.float32 else np.float32]

    def forward(self, ctx, bottoms, tops, params, ws):
        ctx.xp.copyto(tops[0], bottoms[0], casting="unsafe")

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is not None:
            ctx.xp.copyto(bottom_grads[0], top_grads[0], casting="unsafe")
