"""MultiHeadAttention, HugeCTR HEAD API without projection weights (formats.md 1.9.1; JSON 2.7)."""
from __future__ import annotations

import math

from hugectr_core.contracts.layer import Layer, WorkspaceSpec

from ._common import mask_error, ops_for


class MultiHeadAttention(Layer):
    """Scaled dot-product attention over ``h = num_attention_heads`` heads.

    Bottoms ``Q (B, Sf, H)``, ``K (B, St, H)``, ``V (B, St, H)`` and an optional mask
    ``(B, 1, Sf, St)`` (or ``(B, h, Sf, St)``); top ``(B, Sf, H)``. With ``d = H / h`` and head ``a``
    taking columns ``[a*d, (a+1)*d)``::

        P_a = softmax(Q_a K_a^T / sqrt(d) - (1 - mask) * 10000)      # (B, Sf, St)
        O[:, :, a*d:(a+1)*d] = P_a V_a

    There are no projection weights (add InnerProduct layers on the 3D inputs for them). Q, K and
    V get gradients, the mask does not. The probabilities ``P`` are kept in the workspace
    ``probs`` (B, h, Sf, St) for backward; the batched GEMMs run through ``xp.matmul``, the
    row softmax and its backward are the package's CUDA kernels (shared with Softmax).

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> mha = make_layer("MultiHeadAttention", ["q", "k", "v"], ["o"], num_attention_heads=4)
        >>> mha.infer_shapes([(2, 5, 16), (2, 7, 16), (2, 7, 16)])
        [(2, 5, 16)]
    """

    num_bottoms = None
    min_bottoms = 3

    def validate_args(self) -> None:
        if len(self.config.bottom_names) > 4:
            raise self.error(f"takes bottoms (Q, K, V) or (Q, K, V, mask), got {len(self.config.bottom_names)}")
        heads = self.args.get("num_attention_heads")
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
            raise self.error(f"num_attention_heads must be an integer >= 1, got {heads!r}")
        self.heads = heads
        self.transpose_b = bool(self.args.get("transpose_b", False))

    @property
    def has_mask(self) -> bool:
        return len(self.config.bottom_names) == 4

    def _dims(self, bottom_shapes):
        """(B, Sf, St, H, d) after checking every input shape."""
        q, k, v = (tuple(s) for s in bottom_shapes[:3])
        names = self.config.bottom_names
        if len(q) != 3 or len(k) != 3 or k != v or q[0] != k[0] or q[2] != k[2]:
            raise self.error(f"Q '{names[0]}' {q}, K '{names[1]}' {k}, V '{names[2]}' {v}: expected Q (B, Sf, H), "
                             "K and V (B, St, H) with the same B and H (the legacy 4D 2-input form is not supported)")
        b, sf, hid = q
        st = k[1]
        if hid % self.heads:
            raise self.error(f"hidden size {hid} is not divisible by num_attention_heads={self.heads}; "
                             "pick a head count that divides it")
        if self.has_mask:
            why = mask_error((b, self.heads, sf, st), bottom_shapes[3])
            if why:
                raise self.error(f"{why}; mask tensor '{names[3]}'")
        return b, sf, st, hid, hid // self.heads

    def infer_shapes(self, bottom_shapes):
        b, sf, _, hid, _ = self._dims(bottom_shapes)
        return [(b, sf, hid)]

    def workspace_specs(self, bottom_shapes):
        b, sf, st, _, d = self._dims(bottom_shapes)
        h = self.heads
        return [WorkspaceSpec("q", (b, h, sf, d)), WorkspaceSpec("k", (b, h, st, d)), WorkspaceSpec("v", (b, h, st, d)),
                WorkspaceSpec("probs", (b, h, sf, st)), WorkspaceSpec("dprobs", (b, h, sf, st)),
                WorkspaceSpec("scratch_f", (b, h, sf, d)), WorkspaceSpec("scratch_t", (b, h, st, d))]

    def bottom_needs_grad(self, index: int) -> bool:
        return index < 3

    def json_params(self) -> dict:
        return {"num_attention_heads": self.heads, "transpose_b": self.transpose_b}

    def _split(self, xp, x, out):
        """(B, S, H) -> (B, h, S, d) copy into ``out``."""
        b, s, hid = x.shape
        xp.copyto(out, x.reshape(b, s, self.heads, hid // self.heads).transpose(0, 2, 1, 3))

    def _merge(self, xp, x_bhsd, out):
        """(B, h, S, d) -> (B, S, H) copy into ``out``."""
        b, h, s, d = x_bhsd.shape
        xp.copyto(out.reshape(b, s, h, d), x_bhsd.transpose(0, 2, 1, 3))

    def forward(self, ctx, bottoms, tops, params, ws):
        xp = ctx.xp
        for name, x in zip("qkv", bottoms[:3]):
            self._split(xp, x, ws[name])
        probs = ws["probs"]
        xp.matmul(ws["q"], ws["k"].swapaxes(-1, -2), out=probs)
        scale = 1.0 / math.sqrt(ws["q"].shape[-1])
        ops_for(xp).softmax_fwd(probs, bottoms[3] if self.has_mask else None, scale, probs)
        xp.matmul(probs, ws["v"], out=ws["scratch_f"])
        self._merge(xp, ws["scratch_f"], tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        xp = ctx.xp
        q, k, v, probs, dprobs = ws["q"], ws["k"], ws["v"], ws["probs"], ws["dprobs"]
        d_out, d_kv = ws["scratch_f"], ws["scratch_t"]
        self._split(xp, top_grads[0], d_out)
        if bottom_grads[2] is not None:
            xp.matmul(probs.swapaxes(-1, -2), d_out, out=d_kv)
            self._merge(xp, d_kv, bottom_grads[2])
        xp.matmul(d_out, v.swapaxes(-1, -2), out=dprobs)
        ops_for(xp).softmax_bwd(dprobs, probs, 1.0 / math.sqrt(q.shape[-1]), dprobs)  # d(scores) incl. 1/sqrt(d)
        if bottom_grads[0] is not None:
            xp.matmul(dprobs, k, out=d_out)
            self._merge(xp, d_out, bottom_grads[0])
        if bottom_grads[1] is not None:
            xp.matmul(dprobs.swapaxes(-1, -2), q, out=d_kv)
            self._merge(xp, d_kv, bottom_grads[1])
