"""GRU: HugeCTR's legacy cuDNN GRU layer, as a standard GRU with our own weight layout (formats.md 1.9.1)."""
from __future__ import annotations

from hugectr_core import initializers
from hugectr_core.contracts.layer import Layer, ParamSpec, WorkspaceSpec
from hugectr_core.enums import type_string

from ._common import ops_for


class GRU(Layer):
    """A single-layer unidirectional GRU over ``T = SeqLength`` steps, ``h_0 = 0``.

    Input ``(1, B*T*E)`` or ``(B, T*E)`` with ``E = vector_size`` (read as ``x[b, t, e]``);
    output the hidden states ``(B, T*N)`` with ``N = num_output`` (``h[b, t, k]``). The batch is
    taken from the input size (``numel / (T*E)``), so train and eval graphs may differ in batch;
    ``batchsize`` is kept for the graph JSON. Gates in cuDNN order r, z, n::

        r = sigmoid(x Wx_r + bx_r + h Wh_r + bh_r)
        z = sigmoid(x Wx_z + bx_z + h Wh_z + bh_z)
        n = tanh(x Wx_n + bx_n + r * (h Wh_n + bh_n))
        h' = (1 - z) * n + z * h

    Parameters (dense-file order) ``Wx[E, 3N]``, ``Wh[N, 3N]``, ``bx[1, 3N]``, ``bh[1, 3N]``, columns
    grouped r | z | n. **This layout is ours, not cuDNN's packed weight bytes**: a HugeCTR GRU model
    file cannot be loaded into it unchanged. Weights are initialised like InnerProduct's
    (``weight_init_type``: Wx with fans (E, 3N), Wh with (N, 3N); ``bias_init_type`` with 3N).
    fp32/fp64 only (``supports_fp16 = False``: HugeCTR does not allow GRU in mixed precision).

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> gru = make_layer("GRU", ["x"], ["h"], num_output=8, batchsize=4, SeqLength=3, vector_size=5)
        >>> gru.infer_shapes([(1, 4 * 3 * 5)])
        [(4, 24)]
        >>> [s.shape for s in gru.param_specs([(4, 15)])]
        [(5, 24), (8, 24), (1, 24), (1, 24)]
    """

    supports_fp16 = False

    def validate_args(self) -> None:
        for arg in ("num_output", "batchsize", "SeqLength", "vector_size"):
            v = self.args.get(arg)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise self.error(f"{arg} must be an integer >= 1, got {v!r}")
        self.hidden, self.steps, self.width = self.args["num_output"], self.args["SeqLength"], self.args["vector_size"]
        initializers.fc_weight(self.args["weight_init_type"], 1, 1)  # unknown names fail here
        initializers.fc_bias(self.args["bias_init_type"], 1)

    def _batch(self, bottom_shapes) -> int:
        shape = tuple(bottom_shapes[0])
        per_sample = self.steps * self.width
        numel = 1
        for s in shape:
            numel *= s
        if len(shape) != 2 or numel % per_sample or (shape[0] != 1 and shape[1] != per_sample):
            raise self.error(f"input '{self.config.bottom_names[0]}' has shape {shape}; expected (1, B*T*E) or "
                             f"(B, T*E) with T=SeqLength={self.steps}, E=vector_size={self.width}")
        return numel // per_sample

    def infer_shapes(self, bottom_shapes):
        return [(self._batch(bottom_shapes), self.steps * self.hidden)]

    def param_specs(self, bottom_shapes):
        e, n, g = self.width, self.hidden, 3 * self.hidden
        w_init, b_init = self.args["weight_init_type"], self.args["bias_init_type"]
        return [ParamSpec("Wx", (e, g), initializers.fc_weight(w_init, e, g)),
                ParamSpec("Wh", (n, g), initializers.fc_weight(w_init, n, g)),
                ParamSpec("bx", (1, g), initializers.fc_bias(b_init, g)),
                ParamSpec("bh", (1, g), initializers.fc_bias(b_init, g))]

    def workspace_specs(self, bottom_shapes):
        b, t, n = self._batch(bottom_shapes), self.steps, self.hidden
        return [WorkspaceSpec("xg", (b, t, 3 * n)), WorkspaceSpec("hg", (t, b, 3 * n)),
                WorkspaceSpec("gates", (t, b, 4 * n)), WorkspaceSpec("hs", (t + 1, b, n)),
                WorkspaceSpec("dh", (b, n)), WorkspaceSpec("dh_tmp", (b, n))]

    def json_params(self) -> dict:
        param = {"num_output": self.hidden, "batchsize": self.args["batchsize"], "SeqLength": self.steps,
                 "vector_size": self.width}
        for key, arg in (("weight_init", "weight_init_type"), ("bias_init", "bias_init_type")):
            if type_string(self.args[arg]) != "Default":
                param[key] = type_string(self.args[arg])
        return {"gru_param": param}

    def forward(self, ctx, bottoms, tops, params, ws):
        xp, (wx, wh, bx, bh) = ctx.xp, params
        xg, hg, gates, hs = ws["xg"], ws["hg"], ws["gates"], ws["hs"]
        b, t_steps, g = xg.shape
        xp.matmul(bottoms[0].reshape(b * t_steps, self.width), wx, out=xg.reshape(b * t_steps, g))
        hs[0] = 0
        ops = ops_for(xp)
        for t in range(t_steps):
            xp.matmul(hs[t], wh, out=hg[t])
            ops.gru_fwd_step(xg, hg[t], bx, bh, hs[t], t, gates[t], hs[t + 1])
        xp.copyto(tops[0].reshape(b, t_steps, self.hidden), hs[1:].transpose(1, 0, 2))

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        """Backpropagation through time; ``xg``/``hg`` are overwritten with the gate gradients."""
        xp, (wx, wh, _, _) = ctx.xp, params
        dxg, dhg, gates, hs, dh, dh_tmp = ws["xg"], ws["hg"], ws["gates"], ws["hs"], ws["dh"], ws["dh_tmp"]
        b, t_steps, g = dxg.shape
        dy_btn = top_grads[0].reshape(b, t_steps, self.hidden)
        dh[...] = 0
        ops = ops_for(xp)
        for t in reversed(range(t_steps)):
            ops.gru_bwd_step(dy_btn, t, gates[t], hs[t], dh, dxg, dhg[t])
            xp.matmul(dhg[t], wh.T, out=dh_tmp)
            dh += dh_tmp
        x2d, dxg2d, dhg2d = bottoms[0].reshape(b * t_steps, self.width), dxg.reshape(b * t_steps, g), dhg.reshape(-1, g)
        xp.matmul(x2d.T, dxg2d, out=param_grads[0])
        xp.matmul(hs[:t_steps].reshape(-1, self.hidden).T, dhg2d, out=param_grads[1])
        xp.sum(dxg2d, axis=0, keepdims=True, out=param_grads[2])
        xp.sum(dhg2d, axis=0, keepdims=True, out=param_grads[3])
        if bottom_grads[0] is not None:
            xp.matmul(dxg2d, wx.T, out=bottom_grads[0].reshape(b * t_steps, self.width))
