"""MultiCross: DCN's cross network, v1 (vector weights) and v2 (low-rank matrices) (formats.md 1.9.1)."""
from __future__ import annotations

import math

from hugectr_core import cublas, initializers
from hugectr_core.contracts import Layer, ParamSpec, WorkspaceSpec
from hugectr_core.enums import type_string

from ._ops import ops


class MultiCross(Layer):
    """``num_layers`` cross layers on a (B, n) input; x0 is the input.

    * v1 (``projection_dim=0``): x_{l+1} = x0 · (x_l · w_lᵀ) + b_l + x_l, w_l and b_l (1, n).
    * v2 (``projection_dim=k``): x_{l+1} = x0 ⊙ ((x_l U_l) V_l + b_l) + x_l, U (n, k), V (k, n), b (1, n).

    On CuPy, v1 runs one warp-per-row kernel per layer each way (the row dot product by shuffles,
    fused with the element-wise update) and its weight/bias gradients as cuBLAS GEMVs.

    Parameters per layer in dense-file order: v1 ``w, b``; v2 ``U, V, b``. Default initialisers
    (formats.md 3.6): v1 w ~ N(0, √(1/n)), v2 U, V ~ N(0, √(2/(n+k))), all untruncated; b = 0.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> layer = make_layer("MultiCross", ["x"], ["y"], num_layers=2, projection_dim=4)
        >>> [p.shape for p in layer.param_specs([(8, 10)])]
        [(10, 4), (4, 10), (1, 10), (10, 4), (4, 10), (1, 10)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    def validate_args(self) -> None:
        self.num_layers = int(self.args.get("num_layers") or 0)
        self.projection_dim = int(self.args.get("projection_dim") or 0)
        if self.num_layers < 1:
            raise self.error(f"num_layers={self.num_layers}: MultiCross needs num_layers >= 1")
        if self.projection_dim < 0:
            raise self.error(f"projection_dim={self.projection_dim} must be >= 0 (0 selects DCN v1)")

    @property
    def is_v2(self) -> bool:
        return self.projection_dim > 0

    def infer_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        if len(shape) != 2:
            raise self.error(f"input must be 2-D (B, n), got {shape}; Reshape it first")
        return [shape]

    def json_params(self) -> dict:
        # HugeCTR does not write projection_dim (formats.md 2.7); we do, so DCN v2 graphs round-trip.
        params = {"num_layers": self.num_layers, "projection_dim": self.projection_dim}
        for key, arg in (("weight_init", "weight_init_type"), ("bias_init", "bias_init_type")):
            kind = type_string(self.args.get(arg, "Default"))
            if kind != "Default":
                params[key] = kind
        return {"mc_param": params}

    # -- parameters and scratch -------------------------------------------------------------
    def _weight_init(self, shape, default_std):
        kind = self.args.get("weight_init_type", "Default")
        if type_string(kind) == "Default":
            return initializers.normal(default_std)
        return initializers.variance_scaling(kind, shape[0], shape[1])

    def _bias_init(self, n):
        kind = self.args.get("bias_init_type", "Default")
        if type_string(kind) == "Default":
            return initializers.constant(0.0)
        return initializers.variance_scaling(kind, 1, n)

    def param_specs(self, bottom_shapes):
        n, k = bottom_shapes[0][1], self.projection_dim
        specs = []
        for l in range(self.num_layers):
            if self.is_v2:
                std = math.sqrt(2.0 / (n + k))
                specs += [ParamSpec(f"U{l}", (n, k), self._weight_init((n, k), std)),
                          ParamSpec(f"V{l}", (k, n), self._weight_init((k, n), std))]
            else:
                specs.append(ParamSpec(f"w{l}", (1, n), self._weight_init((1, n), math.sqrt(1.0 / n))))
            specs.append(ParamSpec(f"b{l}", (1, n), self._bias_init(n)))
        return specs

    def workspace_specs(self, bottom_shapes):
        batch, n = bottom_shapes[0]
        specs = [WorkspaceSpec("xl", (max(self.num_layers - 1, 1), batch, n)),  # inputs of layers 1..L-1
                 WorkspaceSpec("grad", (2, batch, n)),                            # ping-pong dL/dx_l
                 WorkspaceSpec("grad_x0", (batch, n))]                            # the x0 terms, summed
        if self.is_v2:
            k = self.projection_dim
            specs += [WorkspaceSpec("xu", (self.num_layers, batch, k)),  # x_l U_l, kept for backward
                      WorkspaceSpec("h", (batch, n)), WorkspaceSpec("dxu", (batch, k))]
        else:
            specs += [WorkspaceSpec("dot", (self.num_layers, batch, 1)),  # x_l · w_l, kept for backward
                      WorkspaceSpec("ddot", (batch, 1)),
                      WorkspaceSpec("ones", (1, batch))]  # grad_b = onesᵀ·g as a GEMV (a column sum)
        return specs

    def _layer_params(self, params, l):
        per = 3 if self.is_v2 else 2
        return params[per * l: per * (l + 1)]

    def _inputs(self, bottom, ws):
        """x_0 .. x_{L-1}: the bottom, then the workspace rows."""
        return [bottom] + [ws["xl"][l] for l in range(self.num_layers - 1)]

    # -- computation --------------------------------------------------------------------------
    def forward(self, ctx, bottoms, tops, params, ws):
        xp, kernels, x0 = ctx.xp, ops(ctx.xp), bottoms[0]
        inputs = self._inputs(x0, ws)
        for l, xl in enumerate(inputs):
            out = inputs[l + 1] if l + 1 < self.num_layers else tops[0]
            if self.is_v2:
                u, v, bias = self._layer_params(params, l)
                cublas.matmul(xp, xl, u, ws["xu"][l])
                cublas.matmul(xp, ws["xu"][l], v, out)
                kernels.multicross_v2_fwd_elem(x0, xl, bias, out, out)
            else:
                w, bias = self._layer_params(params, l)
                kernels.multicross_fwd_layer(x0, xl, w, bias, out, ws["dot"][l])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        xp, x0 = ctx.xp, bottoms[0]
        inputs = self._inputs(x0, ws)
        ws["grad_x0"].fill(0)
        grad = top_grads[0]
        for l in reversed(range(self.num_layers)):
            grad_in = ws["grad"][l % 2]  # never the buffer holding `grad` (that is (l + 1) % 2)
            step = self._backward_v2 if self.is_v2 else self._backward_v1
            step(xp, x0, inputs[l], grad, grad_in, self._layer_params(params, l),
                 self._layer_params(param_grads, l), ws, l)
            grad = grad_in
        if bottom_grads[0] is not None:
            xp.add(grad, ws["grad_x0"], out=bottom_grads[0])

    @staticmethod
    def _backward_v1(xp, x0, xl, grad_out, grad_in, layer_params, layer_grads, ws, l):
        (w, _bias), (grad_w, grad_b) = layer_params, layer_grads
        ops(xp).multicross_bwd_layer(x0, w, ws["dot"][l], grad_out, ws["grad_x0"], grad_in, ws["ddot"])
        # Column reductions over the batch as GEMVs (cuBLAS on CuPy): dw = ddotᵀ·x_l, db = 1ᵀ·g,
        # the bias sum in exact fp32 products even under TF32 (it is a plain sum of the gradient).
        cublas.matmul(xp, ws["ddot"], xl, grad_w, trans_a=True)
        ones = ws["ones"]
        ones.fill(1)
        ops(xp).batched_gemm(ones[None], grad_out[None], grad_b[None], allow_tf32=False)

    @staticmethod
    def _backward_v2(xp, x0, xl, grad_out, grad_in, layer_params, layer_grads, ws, l):
        (u, v, bias), (grad_u, grad_v, grad_b) = layer_params, layer_grads
        xu, h, dh = ws["xu"][l], ws["h"], grad_in  # grad_in holds dh until it is overwritten below
        cublas.matmul(xp, xu, v, h)  # recompute (x_l U) V instead of keeping it per layer
        ops(xp).multicross_v2_bwd_elem(x0, bias, h, grad_out, ws["grad_x0"], dh)
        xp.sum(dh, axis=0, keepdims=True, out=grad_b)
        cublas.matmul(xp, xu, dh, grad_v, trans_a=True)
        cublas.matmul(xp, dh, v, ws["dxu"], trans_b=True)
        cublas.matmul(xp, xl, ws["dxu"], grad_u, trans_a=True)
        cublas.matmul(xp, ws["dxu"], u, grad_in, trans_b=True)
        xp.add(grad_in, grad_out, out=grad_in)
