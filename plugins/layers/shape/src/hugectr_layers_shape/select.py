"""Select and Gather: pick entries of one axis by index (formats.md 1.9.1)."""
from __future__ import annotations

import math

from hugectr_core.contracts import Layer

from ._ops import ops, rows_view


class Select(Layer):
    """Gather along ``dim``: ``out = x.take(index, axis=dim)``, so ``shape[dim] = len(index)``.

    Indices may repeat; backward scatter-adds, so a repeated index receives the sum of its
    gradients. Unlike HugeCTR 23.08+, which instantiates the fp16 kernel in both precisions
    (formats.md 1.9.1 ⚠), this works in fp32 and fp16.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("Select", ["x"], ["y"], dim=1, index=[2, 0]).infer_shapes([(8, 3, 4)])
        [(8, 2, 4)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    index_arg = "index"

    def _read_dim(self) -> int:
        return int(self.args.get("dim", 0) or 0)

    def validate_args(self) -> None:
        self.dim = self._read_dim()
        raw = self.args.get(self.index_arg) or []
        try:
            self.index = [int(i) for i in raw]
        except (TypeError, ValueError) as exc:
            raise self.error(f"{self.index_arg} must be a list of integers, got {raw!r}") from exc
        if not self.index:
            raise self.error(f"{self.index_arg} is empty: give the positions to pick, e.g. {self.index_arg}=[0, 2]")
        if self.dim < 0:
            raise self.error(f"dim={self.dim} must be >= 0")
        if min(self.index) < 0:
            raise self.error(f"{self.index_arg}={self.index} holds a negative position; positions start at 0")

    def infer_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        if self.dim >= len(shape):
            raise self.error(f"dim={self.dim} does not exist for the {len(shape)}-D input {shape}")
        if max(self.index) >= shape[self.dim]:
            raise self.error(f"{self.index_arg}={self.index} is out of range for dimension {self.dim} of size "
                             f"{shape[self.dim]} (input {shape})")
        return [shape[:self.dim] + (len(self.index),) + shape[self.dim + 1:]]

    def _views(self, full, picked):
        """(outer, x, inner) and (outer, q, inner) 3-D views of the input and output."""
        outer = math.prod(full.shape[:self.dim])
        inner = math.prod(full.shape[self.dim + 1:])
        return (rows_view(full, outer).reshape(outer, full.shape[self.dim], inner),
                rows_view(picked, outer).reshape(outer, len(self.index), inner))

    def forward(self, ctx, bottoms, tops, params, ws):
        in_oxi, out_oqi = self._views(bottoms[0], tops[0])
        ops(ctx.xp).select_fwd(in_oxi, self.index, out_oqi)

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is None:
            return
        grad_in_oxi, _ = self._views(bottom_grads[0], tops[0])
        _, grad_out_oqi = self._views(bottoms[0], ctx.xp.ascontiguousarray(top_grads[0]))
        ops(ctx.xp).select_bwd(grad_out_oqi, self.index, grad_in_oxi)


class Gather(Select):
    """Select rows of dim 0: (B, N) -> (len(indices), N) (HugeCTR implements it as Select on dim 0).

    HugeCTR does not allow it under mixed precision (``supports_fp16 = False``).

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("Gather", ["x"], ["y"], indices=[3, 1]).infer_shapes([(8, 5)])
        [(2, 5)]
    """

    supports_fp16 = False
    index_arg = "indices"

    def _read_dim(self) -> int:
        return 0

    def json_params(self) -> dict:
        return {"indices": list(self.index)}
