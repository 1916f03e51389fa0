"""Swish: ``y = x * sigmoid(x)`` (also called SiLU), element-wise, any rank, no hyper-parameter."""
from __future__ import annotations

import numpy as np

from hugectr_core.contracts.layer import Layer

from . import reference


def ops_for(xp):
    """The kernel set for an array module: the NumPy twins, or the CUDA launchers on CuPy."""
    if xp is np:
        return reference
    from . import kernels  # noqa: PLC0415 - import (and compile) GPU code only when it is used

    return kernels


class Swish(Layer):
    """The Swish activation ``y = x * sigmoid(x)``; the top has the bottom's shape.

    Backward uses the saved bottom: ``dx = dy * s * (1 + x * (1 - s))`` with ``s = sigmoid(x)``.
    Works in float16 (mixed precision), float32 and float64; it has no parameters and needs no
    workspace.

    Example:
        >>> import numpy as np
        >>> from hugectr_core.testing import make_layer, run_layer
        >>> swish = make_layer("Swish", ["x"], ["y"])
        >>> run_layer(swish, [np.array([[0.0, 2.0]])], [])["tops"][0].round(4)
        array([[0.    , 1.7616]])

    In a HugeCTR script, once this package is installed::

        model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Swish,
                                     bottom_names=["fc1"], top_names=["swish1"]))
    """

    # forward and backward only launch kernels on the current stream: use_cuda_graph may record and replay
    # them (docs/plugins.md says what a layer must not do to claim this)
    cuda_graph_safe = True

    def validate_args(self) -> None:
        # Layers check their hyper-parameters here and raise self.error(...) naming the bad one.
        # Swish has none; DenseLayer fills every HugeCTR keyword with its default, so nothing to refuse.
        pass

    def infer_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])]

    def forward(self, ctx, bottoms, tops, params, ws):
        ops_for(ctx.xp).swish_fwd(bottoms[0], tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is not None:  # None: the engine does not need this gradient
            ops_for(ctx.xp).swish_bwd(top_grads[0], bottoms[0], bottom_grads[0])
