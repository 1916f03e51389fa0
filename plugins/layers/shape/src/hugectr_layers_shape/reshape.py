"""Reshape (formats.md 1.9.1): a view in three modes, a gather copy in the ``selected`` mode."""
from __future__ import annotations

import math

from hugectr_core.contracts import Layer


class Reshape(Layer):
    """Reinterpret a tensor's shape, or gather slots of a (B, S, E) tensor.

    Modes, chosen from the arguments (first match wins):

    * ``selected=True, selected_slots=[s, ...]``: (B, S, E) -> (B, len(slots) * E), picking the
      listed slots in order (a copy; backward scatters and sums repeated slots).
    * ``shape=[d0, d1, ...]`` with at most one ``-1`` placeholder: any -> that shape.
    * ``leading_dim=L`` -> (numel / L, L); with ``time_step=T`` -> (numel / (L*T), T, L).

    The three view modes set ``aliases_bottom = True`` on the instance: the engine then makes the
    top a reshaped view of the bottom and skips backward. ``forward``/``backward`` still copy, so
    the layer also works when called directly.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> make_layer("Reshape", ["x"], ["y"], leading_dim=6).infer_shapes([(4, 3, 2)])
        [(4, 6)]
        >>> make_layer("Reshape", ["x"], ["y"], selected=True, selected_slots=[2, 0]).infer_shapes([(4, 3, 2)])
        [(4, 4)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    def validate_args(self) -> None:
        args = self.args
        self.leading_dim = int(args.get("leading_dim") or 0)
        self.time_step = int(args.get("time_step") or 0)
        self.selected = [int(s) for s in args.get("selected_slots") or []]
        self.shape = [int(d) for d in args.get("shape") or []]
        if args.get("selected"):
            self.mode = "selected"
            if not self.selected:
                raise self.error("selected=True needs a non-empty selected_slots list")
        elif self.shape:
            self.mode = "shape"
            if self.shape.count(-1) > 1 or any(d == 0 or d < -1 for d in self.shape):
                raise self.error(f"shape={self.shape} must hold positive sizes and at most one -1 placeholder")
        elif self.leading_dim > 0:
            self.mode = "leading_dim"
            if self.time_step < 0:
                raise self.error(f"time_step={self.time_step} must be >= 0")
        else:
            raise self.error("give leading_dim (> 0, optionally with time_step), selected=True with "
                             "selected_slots, or shape=[...]")
        self.aliases_bottom = self.mode != "selected"

    def infer_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        return [getattr(self, f"_infer_{self.mode}")(shape)]

    def _infer_selected(self, shape):
        if len(shape) != 3:
            raise self.error(f"selected mode needs a 3-D (B, S, E) input, got {shape}")
        bad = [s for s in self.selected if not 0 <= s < shape[1]]
        if bad:
            raise self.error(f"selected_slots {bad} are outside [0, {shape[1]}) for input {shape}")
        return (shape[0], len(self.selected) * shape[2])

    def _infer_shape(self, shape):
        numel, known = math.prod(shape), math.prod(d for d in self.shape if d != -1)
        if numel % known:
            raise self.error(f"cannot reshape {shape} ({numel} elements) into {self.shape}")
        out = tuple(numel // known if d == -1 else d for d in self.shape)
        if math.prod(out) != numel:
            raise self.error(f"shape={self.shape} holds {math.prod(out)} elements but input {shape} has {numel}")
        return out

    def _infer_leading_dim(self, shape):
        numel = math.prod(shape)
        block = self.leading_dim * max(self.time_step, 1)
        if numel % block:
            what = f"leading_dim*time_step = {block}" if self.time_step else f"leading_dim={block}"
            raise self.error(f"input {shape} has {numel} elements, which {what} does not divide")
        if self.time_step:
            return (numel // block, self.time_step, self.leading_dim)
        return (numel // block, self.leading_dim)

    def json_params(self) -> dict:
        if self.mode == "selected":
            return {"selected": list(self.selected)}
        if self.mode == "shape":
            return {"shape": list(self.shape)}  # HugeCTR does not write it (formats.md 2.7); we do, to round-trip
        return {"leading_dim": self.leading_dim, "time_step": self.time_step}

    def forward(self, ctx, bottoms, tops, params, ws):
        xp, bottom, top = ctx.xp, bottoms[0], tops[0]
        if self.mode != "selected":
            xp.copyto(top, bottom.reshape(top.shape))
            return
        top_bse = top.reshape(bottom.shape[0], len(self.selected), bottom.shape[2])
        for j, slot in enumerate(self.selected):
            xp.copyto(top_bse[:, j, :], bottom[:, slot, :])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        xp, grad_in, grad_out = ctx.xp, bottom_grads[0], top_grads[0]
        if grad_in is None:
            return
        if self.mode != "selected":
            xp.copyto(grad_in, grad_out.reshape(grad_in.shape))
            return
        grad_out_bse = grad_out.reshape(grad_in.shape[0], len(self.selected), grad_in.shape[2])
        grad_in.fill(0)  # unselected slots get no gradient; a slot picked twice sums both
        for j, slot in enumerate(self.selected):
            xp.add(grad_in[:, slot, :], grad_out_bse[:, j, :], out=grad_in[:, slot, :])
