"""SequenceMask: attention mask from two length vectors (formats.md 1.9.1; JSON 2.7)."""
from __future__ import annotations

from hugectr_core.contracts.layer import Layer

from ._common import ops_for


class SequenceMask(Layer):
    """``(B, 1)`` lengths ``len_from``, ``len_to`` -> mask ``(B, 1, Lf, Lt)``.

    ``mask[b, 0, i, j] = 1`` if ``i < len_from[b]`` and ``j < len_to[b]``, else 0, with
    ``Lf = max_sequence_len_from`` and ``Lt = max_sequence_len_to``. Lengths are real numbers
    (float tensors). The inputs get no gradient.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> m = make_layer("SequenceMask", ["len_q", "len_k"], ["mask"], max_sequence_len_from=5,
        ...                max_sequence_len_to=7)
        >>> m.infer_shapes([(4, 1), (4, 1)])
        [(4, 1, 5, 7)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    num_bottoms = 2

    def validate_args(self) -> None:
        for arg in ("max_sequence_len_from", "max_sequence_len_to"):
            v = self.args.get(arg)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise self.error(f"{arg} must be an integer >= 1, got {v!r}")
        self.len_from = self.args["max_sequence_len_from"]
        self.len_to = self.args["max_sequence_len_to"]

    def infer_shapes(self, bottom_shapes):
        a, b = (tuple(s) for s in bottom_shapes)
        if len(a) != 2 or a[1] != 1 or a != b:
            raise self.error(f"inputs {list(self.config.bottom_names)} must both have shape (B, 1), got {a} and {b}")
        return [(a[0], 1, self.len_from, self.len_to)]

    def bottom_needs_grad(self, index: int) -> bool:
        return False

    def json_params(self) -> dict:
        return {"max_sequence_len_from": self.len_from, "max_sequence_len_to": self.len_to}

    def forward(self, ctx, bottoms, tops, params, ws):
        ops_for(ctx.xp).sequence_mask(bottoms[0], bottoms[1], tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        """Lengths are not differentiable: nothing to write."""
