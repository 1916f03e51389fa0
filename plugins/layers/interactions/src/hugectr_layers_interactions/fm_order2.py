"""FmOrder2: the second-order factorisation-machine term (formats.md 1.9.1)."""
from __future__ import annotations

from hugectr_core.contracts import Layer

from ._ops import ops


class FmOrder2(Layer):
    """(B, S·D) -> (B, D): ``0.5·((Σ_s v_s)² − Σ_s v_s²)`` per component, S = width / D.

    The input holds S vectors of width ``out_dim`` = D side by side (slot-major).

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("FmOrder2", ["x"], ["y"], out_dim=4).infer_shapes([(8, 12)])
        [(8, 4)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    def validate_args(self) -> None:
        self.out_dim = int(self.args.get("out_dim") or 0)
        if self.out_dim < 1:
            raise self.error(f"out_dim={self.out_dim} must be >= 1 (the embedding vector size D)")

    def infer_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        if len(shape) != 2:
            raise self.error(f"input must be 2-D (B, S*D), got {shape}; Reshape the embeddings first")
        if shape[1] % self.out_dim:
            raise self.error(f"input width {shape[1]} is not divisible by out_dim={self.out_dim}: it must hold "
                             f"S vectors of width {self.out_dim}")
        return [(shape[0], self.out_dim)]

    def json_params(self) -> dict:
        return {"out_dim": self.out_dim}

    def _slots(self, x):
        return x.reshape(x.shape[0], -1, self.out_dim)

    def forward(self, ctx, bottoms, tops, params, ws):
        ops(ctx.xp).fm_order2_fwd(self._slots(bottoms[0]), tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is not None:
            ops(ctx.xp).fm_order2_bwd(self._slots(bottoms[0]), top_grads[0], self._slots(bottom_grads[0]))
