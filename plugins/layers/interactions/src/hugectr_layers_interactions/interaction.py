"""Interaction: DLRM's dot interaction of the MLP output with the embedding vectors (formats.md 1.9.1)."""
from __future__ import annotations

from hugectr_core.contracts import Layer, WorkspaceSpec

from ._ops import ops


class Interaction(Layer):
    """Pairwise dot products of T = [mlp; emb_0 .. emb_{F-1}] (F+1 vectors of width d).

    Bottoms: mlp (B, d) and emb (B, F, d). Top: (B, d + F(F+1)/2 + 1) =
    [mlp, strictly-lower triangle of T·Tᵀ in row-major order (row 1..F, col < row), 0].
    HugeCTR's second top (its fp16 gradient buffer) is resolved by ``Model.add`` as an alias of the first,
    so the layer itself takes exactly one top.
    On CuPy T is never built: forward is one batched GEMM Z_ee = emb·embᵀ (the layer's workspace)
    and a gather kernel that also computes the F mlp·emb dot products; backward is one kernel
    (grad_emb = S_ee·emb + s_me·mlpᵀ, grad_mlp = g[:, :d] + embᵀ·s_me, S the symmetric pair
    gradients) that reads emb once and needs no workspace.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("Interaction", ["mlp", "emb"], ["inter"]).infer_shapes([(32, 16), (32, 26, 16)])
        [(32, 368)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    num_bottoms = 2
    num_tops = None

    def validate_args(self) -> None:
        tops = list(self.config.top_names)
        if len(tops) == 2:
            raise self.error(f"two tops {tops}: the second (HugeCTR's fp16 gradient buffer) is an alias that "
                             "Model.add resolves (hugectr_core.fused_path); the layer itself takes one top")
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
        """Z_ee = emb·embᵀ (B, F, F), forward's GEMM output (backward needs no workspace)."""
        batch, num_f = bottom_shapes[1][:2]
        return [WorkspaceSpec("z_ee", (batch, num_f, num_f))]

    def forward(self, ctx, bottoms, tops, params, ws):
        ops(ctx.xp).interaction_fwd(bottoms[0], bottoms[1], tops[0], ws.get("z_ee"))

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        xp = ctx.xp
        grad_mlp, grad_emb = bottom_grads
        if grad_mlp is None and grad_emb is None:
            return
        # The kernels write both gradients; an input that needs none gets a throwaway buffer
        # (rare: Interaction's inputs normally both come from trainable layers).
        grad_mlp = xp.empty_like(bottoms[0]) if grad_mlp is None else grad_mlp
        grad_emb = xp.empty_like(bottoms[1]) if grad_emb is None else grad_emb
        ops(xp).interaction_bwd(bottoms[0], bottoms[1], top_grads[0], grad_mlp, grad_emb)
