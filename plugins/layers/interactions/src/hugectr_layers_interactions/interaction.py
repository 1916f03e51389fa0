"""Interaction: DLRM's dot interaction of the MLP output with the embedding vectors (formats.md 1.9.1)."""
from __future__ import annotations

from hugectr_core.contracts import Layer, WorkspaceSpec

from ._ops import ops


class Interaction(Layer):
    """Pairwise dot products of T = [mlp; emb_0 .. emb_{F-1}] (F+1 vectors of width d).

    Bottoms: mlp (B, d) and emb (B, F, d). Top: (B, d + F(F+1)/2 + 1) =
    [mlp, strictly-lower triangle of T·Tᵀ in row-major order (row 1..F, col < row), 0].
    HugeCTR's second top exists only in fp16 mixed precision, so exactly one top is accepted.
    On CuPy the dot products are one batched GEMM each way (Z = T·Tᵀ forward, dT = dZ·T backward)
    around small gather/scatter kernels; T and Z live in the layer's workspace.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("Interaction", ["mlp", "emb"], ["inter"]).infer_shapes([(32, 16), (32, 26, 16)])
        [(32, 368)]
    """

    num_bottoms = 2
    num_tops = None

    def validate_args(self) -> None:
        tops = list(self.config.top_names)
        if len(tops) == 2:
            raise self.error(f"two tops {tops} are only supported by HugeCTR's fp16 mixed-precision "
                             "Interaction; give one top name")
        if len(tops) != 1:
            raise self.error(f"needs exactly 1 top tensor, got {len(tops)}: {tops}")

    def infer_shapes(self, bottom_shapes):
        mlp, emb = (tuple(s) for s in bottom_shapes)
        if len(mlp) != 2 or len(emb) != 3:
            raise self.error(f"bottoms must be mlp (B, d) and emb (B, F, d), got {mlp} and {emb}")
        if mlp[0] != emb[0]:
            raise self.error(f"batch sizes differ: mlp {mlp}, emb {emb}")
        if mlp[1] != emb[2]:
            raise self.error(f"mlp width {mlp[1]} must equal the embedding vector size {emb[2]} "
                             f"(mlp {mlp}, emb {emb}); make the last MLP layer output {emb[2]} values")
        num_f = emb[1]
        return [(mlp[0], mlp[1] + num_f * (num_f + 1) // 2 + 1)]

    def workspace_specs(self, bottom_shapes):
        """T = [mlp; emb] (kept from forward for backward) and Z = T·Tᵀ (reused for dZ in backward)."""
        (batch, d), num_f = bottom_shapes[0], bottom_shapes[1][1]
        return [WorkspaceSpec("t", (batch, num_f + 1, d)), WorkspaceSpec("z", (batch, num_f + 1, num_f + 1))]

    def forward(self, ctx, bottoms, tops, params, ws):
        ops(ctx.xp).interaction_fwd(bottoms[0], bottoms[1], tops[0], ws.get("t"), ws.get("z"))

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        xp = ctx.xp
        grad_mlp, grad_emb = bottom_grads
        if grad_mlp is None and grad_emb is None:
            return
        # The kernels write both gradients; an input that needs none gets a throwaway buffer
        # (rare: Interaction's inputs normally both come from trainable layers).
        grad_mlp = xp.empty_like(bottoms[0]) if grad_mlp is None else grad_mlp
        grad_emb = xp.empty_like(bottoms[1]) if grad_emb is None else grad_emb
        # ws["t"] still holds forward's T (the engine runs forward, then backward, on one workspace).
        ops(xp).interaction_bwd(bottoms[0], bottoms[1], top_grads[0], grad_mlp, grad_emb, ws.get("t"), ws.get("z"))
