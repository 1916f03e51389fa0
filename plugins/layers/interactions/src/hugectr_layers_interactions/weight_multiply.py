"""WeightMultiply: scale every input column by a learned row of weights (formats.md 1.9.1)."""
from __future__ import annotations

from hugectr_core import initializers
from hugectr_core.contracts import Layer, ParamSpec
from hugectr_core.enums import type_string

from ._ops import ops


class WeightMultiply(Layer):
    """(B, S) -> (B, S·D): ``out[b, s·D + d] = x[b, s]·W[s, d]``, parameter W[S, D].

    Initialisers (formats.md 3.6, fans S and S·D): Default = XavierUniform = U(±√(6/(S+S·D))),
    Uniform = U(±1/(S+S·D)), XavierNorm = N(0, √(2/(S+S·D))/0.8796), Zero.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> layer = make_layer("WeightMultiply", ["x"], ["y"], weight_dims=[3, 4])
        >>> layer.infer_shapes([(8, 3)]), [p.shape for p in layer.param_specs([(8, 3)])]
        ([(8, 12)], [(3, 4)])
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    def validate_args(self) -> None:
        dims = self.args.get("weight_dims") or []
        try:
            self.weight_dims = tuple(int(d) for d in dims)
        except (TypeError, ValueError) as exc:
            raise self.error(f"weight_dims must be [S, D], got {dims!r}") from exc
        if len(self.weight_dims) != 2 or min(self.weight_dims) < 1:
            raise self.error(f"weight_dims must be two positive integers [S, D], got {list(dims)}")
        self.init_kind = type_string(self.args.get("weight_init_type", "Default"))

    def infer_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        slots, width = self.weight_dims
        if len(shape) != 2 or shape[1] != slots:
            raise self.error(f"input must be (B, {slots}) to match weight_dims={list(self.weight_dims)}, got {shape}")
        return [(shape[0], slots * width)]

    def param_specs(self, bottom_shapes):
        slots, width = self.weight_dims
        return [ParamSpec("W", self.weight_dims,
                          initializers.variance_scaling(self.init_kind, slots, slots * width))]

    def json_params(self) -> dict:
        params = {"weight_dims": list(self.weight_dims)}
        if self.init_kind != "Default":
            params["weight_init"] = self.init_kind
        return params

    def forward(self, ctx, bottoms, tops, params, ws):
        ops(ctx.xp).weight_multiply_fwd(bottoms[0], params[0], tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        kernels = ops(ctx.xp)
        kernels.weight_multiply_bwd_w(bottoms[0], top_grads[0], param_grads[0])
        if bottom_grads[0] is not None:
            kernels.weight_multiply_bwd_x(params[0], top_grads[0], bottom_grads[0])
