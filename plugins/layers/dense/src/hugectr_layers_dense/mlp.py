"""MLP: a stack of fully connected layers, each followed by ReLU or nothing (formats.md 1.9.1, 2.7)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hugectr_core import cublas, initializers
from hugectr_core.contracts.layer import Layer, ParamSpec, WorkspaceSpec

from ._common import activation_name, bias_partial_rows, init_name, leading_rows, ops_for, partials_view, rows


@dataclass(frozen=True)
class FcStage:
    """One fully connected stage of the MLP."""

    width: int
    relu: bool
    bias: bool


class MLP(Layer):
    """HugeCTR's MLP layer: ``h_{i+1} = act_i(h_i @ W_i + b_i)``.

    Arguments: ``num_outputs`` (required, one width per stage), ``act_type`` (Relu or Non, for every
    stage), ``activations`` (per-stage list overriding it: "Relu" / "None"), ``use_bias`` and
    ``biases`` (per-stage list overriding it), ``weight_init_type``, ``bias_init_type``.
    Shapes (B batch, K input width): ``(B, K) -> (B, num_outputs[-1])`` (a 3D input runs on its last
    axis). Parameters in dense-file order: per stage ``W_i[in_i, out_i]``, then ``b_i[1, out_i]`` if
    the stage has a bias. HugeCTR's optional second bottom (an Interaction's fp16 gradient top) is an
    alias that ``Model.add`` resolves, so the layer itself takes one bottom. Runs in float16, float32 and float64 (mixed precision allowed).

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> mlp = make_layer("MLP", ["x"], ["y"], num_outputs=[8, 4], activations=["Relu", "None"])
        >>> mlp.infer_shapes([(16, 3)])
        [(16, 4)]
        >>> [s.shape for s in mlp.param_specs([(16, 3)])]
        [(3, 8), (1, 8), (8, 4), (1, 4)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    num_bottoms = None  # arity checked in validate_args, to explain the unsupported second bottom

    # -- configuration ---------------------------------------------------------------------
    def validate_args(self) -> None:
        if len(self.config.bottom_names) != 1:
            raise self.error(f"needs exactly 1 bottom tensor, got {list(self.config.bottom_names)}; HugeCTR's "
                             "optional 2nd bottom is accepted only as an Interaction's second top (an alias that "
                             "Model.add resolves)")
        widths = list(self.args.get("num_outputs") or [])
        if not widths:
            raise self.error("num_outputs is required: pass the width of every stage, e.g. num_outputs=[512, 256]")
        if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise self.error(f"num_outputs must be integers >= 1, got {widths}")
        self.stages = [FcStage(w, r, b) for w, r, b in zip(widths, self._relus(len(widths)), self._biases(len(widths)))]
        initializers.fc_weight(self.args["weight_init_type"], 1, 1)  # unknown names fail here
        initializers.fc_bias(self.args["bias_init_type"], 1)

    def _relus(self, count: int) -> list[bool]:
        per_stage = list(self.args.get("activations") or [])
        if not per_stage:
            name = activation_name(self.args["act_type"])
            if name is None:
                raise self.error(f"act_type must be Activation_t.Relu or Activation_t.Non, got {self.args['act_type']!r}")
            return [name == "Relu"] * count
        if len(per_stage) != count:
            raise self.error(f"activations has {len(per_stage)} entries but num_outputs has {count}: give one per stage")
        names = [activation_name(a) for a in per_stage]
        if None in names:
            raise self.error(f"activations entries must be 'Relu' or 'None', got {per_stage}")
        return [n == "Relu" for n in names]

    def _biases(self, count: int) -> list[bool]:
        per_stage = list(self.args.get("biases") or [])
        if not per_stage:
            return [bool(self.args.get("use_bias", True))] * count
        if len(per_stage) != count:
            raise self.error(f"biases has {len(per_stage)} entries but num_outputs has {count}: give one per stage")
        return [bool(b) for b in per_stage]

    def _input_width(self, bottom_shapes) -> int:
        shape = tuple(bottom_shapes[0])
        if len(shape) < 2:
            raise self.error(f"input '{self.config.bottom_names[0]}' must be at least 2D (B,K), got shape {shape}")
        return shape[-1]

    def _fan_ins(self, bottom_shapes) -> list[int]:
        return [self._input_width(bottom_shapes)] + [s.width for s in self.stages[:-1]]

    def infer_shapes(self, bottom_shapes):
        self._input_width(bottom_shapes)
        return [tuple(bottom_shapes[0][:-1]) + (self.stages[-1].width,)]

    def param_specs(self, bottom_shapes):
        specs = []
        for i, (fan_in, stage) in enumerate(zip(self._fan_ins(bottom_shapes), self.stages)):
            specs.append(ParamSpec(f"weight{i}", (fan_in, stage.width),
                                   initializers.fc_weight(self.args["weight_init_type"], fan_in, stage.width)))
            if stage.bias:
                specs.append(ParamSpec(f"bias{i}", (1, stage.width),
                                       initializers.fc_bias(self.args["bias_init_type"], stage.width)))
        return specs

    def workspace_specs(self, bottom_shapes):
        """``out{i}``: hidden outputs kept for backward; ``grad{i}``: gradient w.r.t. stage i's output;
        ``ones``: M ones for the bias-gradient GEMM ``ones(1, M) @ dy`` (stages with a bias and no
        ReLU); ``bias_partials``: float64 words holding the (P, width) per-row-block column sums of
        the fused ReLU + bias backward (stages with both), sized for the widest such stage."""
        m = leading_rows(bottom_shapes[0])
        specs = [WorkspaceSpec(f"out{i}", (m, s.width)) for i, s in enumerate(self.stages[:-1])]
        specs += [WorkspaceSpec(f"grad{i}", (m, s.width)) for i, s in enumerate(self.stages)
                  if i < len(self.stages) - 1 or s.relu]
        if any(s.bias and not s.relu for s in self.stages):
            specs.append(WorkspaceSpec("ones", (m,)))
        fused = [bias_partial_rows(m, s.width) * s.width for s in self.stages if s.bias and s.relu]
        if fused:
            specs.append(WorkspaceSpec("bias_partials", (max(fused),), np.float64))
        return specs

    def json_params(self) -> dict:
        param = {"num_output": self.stages[-1].width, "num_outputs": [s.width for s in self.stages]}
        if self.args.get("biases"):
            param["biases"] = [s.bias for s in self.stages]
        else:
            param["use_bias"] = bool(self.args.get("use_bias", True))
        if self.args.get("activations"):
            param["activations"] = ["Relu" if s.relu else "None" for s in self.stages]
        else:
            param["activation"] = "Relu" if self.stages[0].relu else "None"
        for key, arg in (("weight_init", "weight_init_type"), ("bias_init", "bias_init_type")):
            if init_name(self.args[arg]) != "Default":
                param[key] = init_name(self.args[arg])
        return {"mlp_param": param}

    # -- computation -------------------------------------------------------------------------
    def _split_params(self, params, k: int) -> list[tuple]:
        """[(W_i, b_i or None)] per stage, checking every shape."""
        out, pos, fan_in = [], 0, k
        for i, stage in enumerate(self.stages):
            weight = params[pos]
            bias = params[pos + 1] if stage.bias else None
            pos += 2 if stage.bias else 1
            want = [(fan_in, stage.width)] + ([(1, stage.width)] if stage.bias else [])
            got = [tuple(weight.shape)] + ([tuple(bias.shape)] if stage.bias else [])
            if got != want:
                raise self.error(f"stage {i}: parameters have shapes {got}, expected {want}")
            out.append((weight, bias))
            fan_in = stage.width
        if pos != len(params):
            raise self.error(f"got {len(params)} parameter tensors, expected {pos}")
        return out

    def _outputs(self, tops, ws) -> list:
        """Stage outputs as 2D (rows, width) views: workspace buffers, then the top."""
        last = self.stages[-1].width
        return [ws[f"out{i}"] for i in range(len(self.stages) - 1)] + [rows(tops[0], last)]

    def forward(self, ctx, bottoms, tops, params, ws):
        ops, x = ops_for(ctx.xp), bottoms[0]
        h = rows(x, x.shape[-1])
        for stage, (weight, bias), y in zip(self.stages, self._split_params(params, x.shape[-1]), self._outputs(tops, ws)):
            ops.linear_fwd(h, weight, bias, stage.relu, y)
            h = y

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        xp, ops, x = ctx.xp, ops_for(ctx.xp), bottoms[0]
        weights = self._split_params(params, x.shape[-1])
        grad_slots = self._split_grads(param_grads)
        outputs = self._outputs(tops, ws)
        inputs = [rows(x, x.shape[-1])] + outputs[:-1]
        last = len(self.stages) - 1
        dy = rows(top_grads[0], self.stages[-1].width)
        ones = ws.get("ones")
        if ones is not None:
            ones.fill(1)  # M writes: cheaper than tracking whether this buffer was filled already
        for i in range(last, -1, -1):
            stage = self.stages[i]
            dweight, dbias = grad_slots[i]
            # ReLU masks into our own buffer: top_grads belong to the next layer
            if stage.relu and dbias is not None:  # one pass: masked dy and its column sums
                partials = self._bias_partials(ws, dy, stage.width)
                dy, _ = ops.relu_bias_bwd(dy, outputs[i], ws[f"grad{i}"], dbias, partials)
            elif stage.relu:
                dy = ops.relu_bwd(dy, outputs[i], ws[f"grad{i}"])
            elif dbias is not None:
                ops.bias_grad(dy, dbias, ones)
            ops.weight_grad(inputs[i], dy, dweight)
            if i > 0:
                dy = cublas.matmul(xp, dy, weights[i][0], ws[f"grad{i - 1}"], trans_b=True)
            elif bottom_grads[0] is not None:
                cublas.matmul(xp, dy, weights[0][0], rows(bottom_grads[0], x.shape[-1]), trans_b=True)

    def _bias_partials(self, ws, dy, width: int):
        """The (P, width) scratch of the fused bias gradient, a view into ``ws["bias_partials"]``."""
        try:
            return partials_view(ws["bias_partials"], dy.dtype, dy.shape[0], width)
        except ValueError as err:
            raise self.error(f"{err}: the workspaces were planned for another batch shape; "
                             "recompile the model") from err

    def _split_grads(self, param_grads) -> list[tuple]:
        out, pos = [], 0
        for stage in self.stages:
            out.append((param_grads[pos], param_grads[pos + 1] if stage.bias else None))
            pos += 2 if stage.bias else 1
        return out
