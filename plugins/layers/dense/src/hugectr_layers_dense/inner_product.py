"""InnerProduct: ``y = x @ W + b`` on the last axis (formats.md 1.9.1, initialisers 3.6)."""
from __future__ import annotations

from hugectr_core import cublas, initializers
from hugectr_core.contracts.layer import Layer, ParamSpec, WorkspaceSpec

from ._common import init_name, leading_rows, ops_for, rows


class InnerProduct(Layer):
    """HugeCTR's fully connected layer.

    Shapes (axis letters: B batch, S slots, K input width, N ``num_output``): ``(B, K) -> (B, N)``
    and ``(B, S, K) -> (B, S, N)``; the GEMM runs on the last axis. Parameters in dense-file order:
    ``W[K, N]`` (row-major) then ``b[1, N]``. Runs in float16, float32 and float64 (mixed precision
    allowed). Workspace ``ones`` (M = B or B*S entries, all 1) makes the bias gradient of wide
    outputs one GEMM ``ones(1, M) @ dy`` on the GPU.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> fc = make_layer("InnerProduct", ["x"], ["y"], num_output=4)
        >>> fc.infer_shapes([(8, 5, 3)])
        [(8, 5, 4)]
        >>> [s.shape for s in fc.param_specs([(8, 3)])]
        [(3, 4), (1, 4)]
    """

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    def validate_args(self) -> None:
        n = self.args.get("num_output")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise self.error(f"num_output must be an integer >= 1, got {n!r}; pass e.g. num_output=1024")
        self.num_output = n
        initializers.fc_weight(self.args["weight_init_type"], 1, 1)  # unknown names fail here, not at compile
        initializers.fc_bias(self.args["bias_init_type"], 1)

    def _input_width(self, bottom_shapes) -> int:
        shape = tuple(bottom_shapes[0])
        if len(shape) not in (2, 3):
            raise self.error(f"input '{self.config.bottom_names[0]}' must be 2D (B,K) or 3D (B,S,K), "
                             f"got shape {shape}; add a Reshape layer before it")
        return shape[-1]

    def infer_shapes(self, bottom_shapes):
        self._input_width(bottom_shapes)
        return [tuple(bottom_shapes[0][:-1]) + (self.num_output,)]

    def param_specs(self, bottom_shapes):
        k, n = self._input_width(bottom_shapes), self.num_output
        return [ParamSpec("weight", (k, n), initializers.fc_weight(self.args["weight_init_type"], k, n)),
                ParamSpec("bias", (1, n), initializers.fc_bias(self.args["bias_init_type"], n))]

    def workspace_specs(self, bottom_shapes):
        return [WorkspaceSpec("ones", (leading_rows(bottom_shapes[0]),))]

    def json_params(self) -> dict:
        fc_param = {"num_output": self.num_output}
        for key, arg in (("weight_init", "weight_init_type"), ("bias_init", "bias_init_type")):
            if init_name(self.args[arg]) != "Default":
                fc_param[key] = init_name(self.args[arg])
        return {"fc_param": fc_param}

    def _check_params(self, x, params) -> None:
        k, n = x.shape[-1], self.num_output
        shapes = [tuple(p.shape) for p in params]
        if shapes != [(k, n), (1, n)]:
            raise self.error(f"parameters have shapes {shapes}, expected [{(k, n)}, {(1, n)}] for input width {k}")

    def forward(self, ctx, bottoms, tops, params, ws):
        x, (weight, bias) = bottoms[0], params
        self._check_params(x, params)
        y_mn = rows(tops[0], self.num_output)
        ops_for(ctx.xp).linear_fwd(rows(x, x.shape[-1]), weight, bias, False, y_mn)

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        xp, x, weight = ctx.xp, bottoms[0], params[0]
        x_mk, dy_mn = rows(x, x.shape[-1]), rows(top_grads[0], self.num_output)
        ops = ops_for(xp)
        ops.weight_grad(x_mk, dy_mn, param_grads[0])  # cuBLAS reads x transposed in place
        ones = ws["ones"]
        ones.fill(1)  # M writes: cheaper than tracking whether this buffer was filled already
        ops.bias_grad(dy_mn, param_grads[1], ones)
        if bottom_grads[0] is not None:
            cublas.matmul(xp, dy_mn, weight, rows(bottom_grads[0], x.shape[-1]), trans_b=True)
