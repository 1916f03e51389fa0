"""MatrixMultiply: (batched) matrix product of two tensors (formats.md 1.9.1)."""
from __future__ import annotations

from hugectr_core.contracts import Layer


class MatrixMultiply(Layer):
    """A·B for (m,n)×(n,k), (B,m,n)×(B,n,k), (B,H,m,n)×(B,H,n,k) and (B,m)×(m,g,h) -> (B,g,h).

    The last case treats the second tensor as an (m, g·h) matrix. Backward: dA = dC·Bᵀ,
    dB = Aᵀ·dC (batched). GEMMs go to ``xp.matmul`` (cuBLAS on CuPy). Not allowed under mixed
    precision (``supports_fp16 = False``).

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("MatrixMultiply", ["a", "b"], ["c"]).infer_shapes([(8, 2, 3), (8, 3, 5)])
        [(8, 2, 5)]
    """

    num_bottoms = 2
    supports_fp16 = False

    def infer_shapes(self, bottom_shapes):
        a, b = (tuple(s) for s in bottom_shapes)
        if len(a) == 2 and len(b) == 3:
            if a[1] != b[0]:
                raise self.error(f"(B, m) × (m, g, h) needs equal m, got {a} and {b}")
            return [(a[0], b[1], b[2])]
        if len(a) != len(b) or len(a) not in (2, 3, 4):
            raise self.error(f"unsupported ranks {a} × {b}: use 2-D×2-D, 3-D×3-D, 4-D×4-D or (B, m)×(m, g, h)")
        if a[:-2] != b[:-2]:
            raise self.error(f"batch dimensions differ: {a} × {b}")
        if a[-1] != b[-2]:
            raise self.error(f"inner dimensions differ: {a} × {b} (the last of the first must equal the "
                             "second-to-last of the second)")
        return [a[:-1] + (b[-1],)]

    def _matrices(self, a, b, c):
        """2-D×3-D becomes an ordinary (B, m)×(m, g·h) product."""
        if a.ndim == 2 and b.ndim == 3:
            return a, b.reshape(b.shape[0], -1), c.reshape(c.shape[0], -1)
        return a, b, c

    @staticmethod
    def _t(x):
        return x.swapaxes(-1, -2)

    def forward(self, ctx, bottoms, tops, params, ws):
        a, b, c = self._matrices(bottoms[0], bottoms[1], tops[0])
        ctx.xp.matmul(a, b, out=c)

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        xp = ctx.xp
        a, b, dc = self._matrices(bottoms[0], bottoms[1], top_grads[0])
        if bottom_grads[0] is not None:
            xp.matmul(dc, self._t(b), out=bottom_grads[0])
        if bottom_grads[1] is not None:
            xp.matmul(self._t(a), dc, out=bottom_grads[1].reshape(b.shape))
