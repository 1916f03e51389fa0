"""Slice: copy column ranges of the last axis into one top each (formats.md 1.9.1)."""
from __future__ import annotations

import math

from hugectr_core.contracts import Layer

from ._ops import ops, rows_view


class Slice(Layer):
    """One top per ``(start, end)`` range of the last axis; 2-D (B, N) or 3-D (B, S, N) input.

    Starts and ends must be non-decreasing and within the last axis; ranges may overlap, in which
    case backward sums the overlapping gradients. Every top is a copy.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("Slice", ["x"], ["a", "b"], ranges=[(0, 3), (2, 5)]).infer_shapes([(8, 5)])
        [(8, 3), (8, 3)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    num_tops = None

    def validate_args(self) -> None:
        try:
            self.ranges = [(int(a), int(b)) for a, b in self.args.get("ranges") or []]
        except (TypeError, ValueError) as exc:
            raise self.error(f"ranges must be a list of (start, end) pairs, got {self.args.get('ranges')!r}") from exc
        if not self.ranges:
            raise self.error("ranges is empty: give one (start, end) pair per top, e.g. ranges=[(0, 3), (3, 8)]")
        if len(self.ranges) != len(self.config.top_names):
            raise self.error(f"{len(self.ranges)} ranges but {len(self.config.top_names)} tops "
                             f"{list(self.config.top_names)}: give one top name per range")
        for i, (start, end) in enumerate(self.ranges):
            if start < 0 or end <= start:
                raise self.error(f"range {i} {(start, end)} must satisfy 0 <= start < end")
        for i in range(1, len(self.ranges)):
            (s0, e0), (s1, e1) = self.ranges[i - 1], self.ranges[i]
            if s1 < s0 or e1 < e0:
                raise self.error(f"range {i} {(s1, e1)} goes backwards after {(s0, e0)}: starts and ends "
                                 "must be non-decreasing (overlap is allowed)")

    def infer_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        if len(shape) not in (2, 3):
            raise self.error(f"input must be 2-D (B, N) or 3-D (B, S, N), got {shape}")
        width = shape[-1]
        for i, (start, end) in enumerate(self.ranges):
            if end > width:
                raise self.error(f"range {i} {(start, end)} exceeds the last dimension {width} of input {shape}")
        return [shape[:-1] + (end - start,) for start, end in self.ranges]

    def json_params(self) -> dict:
        return {"ranges": [[a, b] for a, b in self.ranges]}

    def forward(self, ctx, bottoms, tops, params, ws):
        kernels = ops(ctx.xp)
        rows = math.prod(bottoms[0].shape[:-1])
        in_rn = bottoms[0].reshape(rows, -1)
        for top, (start, _end) in zip(tops, self.ranges):
            kernels.slice_fwd(in_rn, rows_view(top, rows), start)

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        if bottom_grads[0] is None:
            return
        kernels = ops(ctx.xp)
        rows = math.prod(bottoms[0].shape[:-1])
        grad_in_rn = rows_view(bottom_grads[0], rows)
        grad_in_rn.fill(0)  # columns no range covers get zero; overlaps accumulate
        for grad_out, (start, _end) in zip(top_grads, self.ranges):
            if grad_out is not None:
                kernels.slice_bwd(grad_out.reshape(rows, -1), grad_in_rn, start)
