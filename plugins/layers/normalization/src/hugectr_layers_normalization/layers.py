"""BatchNorm and LayerNorm (formats.md 1.9.1; JSON 2.7 ``bn_param``/``ln_param``; init 3.6 gamma=1, beta=0)."""
from __future__ import annotations

import math

import numpy as np

from hugectr_core import initializers
from hugectr_core.contracts.layer import Layer, ParamSpec, WorkspaceSpec
from hugectr_core.enums import type_string

from . import reference

INIT_NAMES = ("Default", "Zero", "Uniform", "XavierNorm", "XavierUniform")


def ops_for(xp):
    """The kernel set for an array module: ``reference`` on NumPy, the CUDA launchers on CuPy."""
    if xp is np:
        return reference
    from . import kernels  # noqa: PLC0415 - only on a GPU backend

    return kernels


def scale_shift_init(init_type, default_value: float, width: int):
    """gamma/beta initialiser: Default is the constant ``default_value`` (1 for gamma, 0 for beta),
    Zero is 0, the others are HugeCTR's VarianceScaling family with fan_in = fan_out = ``width``."""
    kind = type_string(init_type)
    if kind == "Default":
        return initializers.constant(default_value)
    return initializers.variance_scaling(kind, width, width)


class _Normalization(Layer):
    """Shared argument checks and JSON of BatchNorm and LayerNorm."""

    cuda_graph_safe = True  # device work only: recorded and replayed by use_cuda_graph

    json_key = ""

    def validate_args(self) -> None:
        eps = self.args.get("eps")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise self.error(f"eps must be a number > 0, got {eps!r}; the default is 1e-5")
        self.eps = float(eps)
        for arg in ("gamma_init_type", "beta_init_type"):
            if type_string(self.args[arg]) not in INIT_NAMES:
                raise self.error(f"{arg}={type_string(self.args[arg])!r} is not an initializer; "
                                 f"use one of {', '.join(INIT_NAMES)} (hugectr.Initializer_t)")

    def _scale_shift_specs(self, width: int) -> list[ParamSpec]:
        return [ParamSpec("gamma", (width,), scale_shift_init(self.args["gamma_init_type"], 1.0, width)),
                ParamSpec("beta", (width,), scale_shift_init(self.args["beta_init_type"], 0.0, width))]

    def _json_inits(self, param: dict) -> dict:
        for key, arg in (("gamma_init", "gamma_init_type"), ("beta_init", "beta_init_type")):
            if type_string(self.args[arg]) != "Default":
                param[key] = type_string(self.args[arg])
        return param


class BatchNorm(_Normalization):
    """Per-feature batch normalisation of a ``(B, C)`` tensor (cuDNN's per-activation mode).

    Training: ``y = gamma * (x - mean_B) / sqrt(var_B + eps) + beta`` with the batch mean and the
    biased batch variance; the running statistics become
    ``running = running * (1 - factor) + batch * factor`` (``factor=1`` keeps the last batch's).
    The running variance is updated with the **unbiased** batch variance, as cuDNN (and so
    HugeCTR) does, while the forward normalises with the biased one. Eval uses the running statistics.
    Parameters: trainable ``gamma[C]``, ``beta[C]``; non-trainable ``running_mean[C]`` (0) and
    ``running_var[C]`` (1), saved to ``.ntp.json``. Backward uses the batch statistics the
    training forward saved in the workspaces ``mean`` and ``inv_std`` (float64).

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> bn = make_layer("BatchNorm", ["x"], ["y"], factor=0.5)
        >>> bn.infer_shapes([(8, 3)])
        [(8, 3)]
        >>> [(s.name, s.trainable) for s in bn.param_specs([(8, 3)])]
        [('gamma', True), ('beta', True), ('running_mean', False), ('running_var', False)]
    """

    def validate_args(self) -> None:
        super().validate_args()
        factor = self.args.get("factor")
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor <= 1:
            raise self.error(f"factor must be a number in [0, 1] (running-average weight of the batch), got {factor!r}")
        self.factor = float(factor)

    def _features(self, bottom_shapes) -> int:
        shape = tuple(bottom_shapes[0])
        if len(shape) != 2:
            raise self.error(f"input '{self.config.bottom_names[0]}' must be 2D (B, C), got shape {shape}; "
                             "add a Reshape layer before it")
        return shape[1]

    def infer_shapes(self, bottom_shapes):
        self._features(bottom_shapes)
        return [tuple(bottom_shapes[0])]

    def param_specs(self, bottom_shapes):
        c = self._features(bottom_shapes)
        return self._scale_shift_specs(c) + [
            ParamSpec("running_mean", (c,), initializers.constant(0.0), trainable=False),
            ParamSpec("running_var", (c,), initializers.constant(1.0), trainable=False)]

    def workspace_specs(self, bottom_shapes):
        c = self._features(bottom_shapes)
        return [WorkspaceSpec("mean", (c,), np.float64), WorkspaceSpec("inv_std", (c,), np.float64)]

    def json_params(self) -> dict:
        return {"bn_param": self._json_inits({"factor": self.factor, "eps": self.eps})}

    def forward(self, ctx, bottoms, tops, params, ws):
        xp, x = ctx.xp, bottoms[0]
        gamma, beta, running_mean, running_var = params
        mean, inv_std = ws["mean"], ws["inv_std"]
        ops = ops_for(xp)
        if ctx.training:
            ops.bn_stats(x, self.eps, mean, inv_std)
            rows = x.shape[0]
            # cuDNN (hence HugeCTR) folds the *unbiased* batch variance into the running variance
            batch_var = (1.0 / xp.square(inv_std) - self.eps) * (rows / max(rows - 1, 1))
            running_mean *= 1.0 - self.factor
            running_mean += (self.factor * mean).astype(running_mean.dtype)
            running_var *= 1.0 - self.factor
            running_var += (self.factor * batch_var).astype(running_var.dtype)
        else:
            mean[...] = running_mean
            inv_std[...] = 1.0 / xp.sqrt(running_var.astype(np.float64) + self.eps)
        ops.bn_apply(x, mean, inv_std, gamma, beta, tops[0])

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        ops_for(ctx.xp).bn_bwd(top_grads[0], bottoms[0], ws["mean"], ws["inv_std"], params[0],
                               bottom_grads[0], param_grads[0], param_grads[1])


class LayerNorm(_Normalization):
    """Normalisation over the last dim of a 2D, 3D or 4D tensor.

    ``y = gamma * (x - mean_D) / sqrt(var_D + eps) + beta`` per row (biased variance, eps inside
    the sqrt). Parameters ``gamma[D]`` (1), ``beta[D]`` (0). The row statistics are kept in the
    float64 workspaces ``mean`` and ``inv_std`` for backward.

    Example:
        >>> from hugectr_core.testing import make_layer
        >>> ln = make_layer("LayerNorm", ["x"], ["y"], eps=1e-6)
        >>> ln.infer_shapes([(4, 5, 16)])
        [(4, 5, 16)]
        >>> [s.shape for s in ln.param_specs([(4, 5, 16)])]
        [(16,), (16,)]
    """

    def _check_rank(self, bottom_shapes) -> tuple:
        shape = tuple(bottom_shapes[0])
        if len(shape) not in (2, 3, 4):
            raise self.error(f"input '{self.config.bottom_names[0]}' must be 2D, 3D or 4D, got shape {shape}")
        return shape

    def infer_shapes(self, bottom_shapes):
        return [self._check_rank(bottom_shapes)]

    def param_specs(self, bottom_shapes):
        return self._scale_shift_specs(self._check_rank(bottom_shapes)[-1])

    def workspace_specs(self, bottom_shapes):
        rows = math.prod(self._check_rank(bottom_shapes)[:-1])
        return [WorkspaceSpec("mean", (rows,), np.float64), WorkspaceSpec("inv_std", (rows,), np.float64)]

    def json_params(self) -> dict:
        return {"ln_param": self._json_inits({"eps": self.eps})}

    def forward(self, ctx, bottoms, tops, params, ws):
        x = bottoms[0]
        d = x.shape[-1]
        ops_for(ctx.xp).ln_fwd(x.reshape(-1, d), params[0], params[1], self.eps, ws["mean"], ws["inv_std"],
                               tops[0].reshape(-1, d))

    def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
        x = bottoms[0]
        d = x.shape[-1]
        x_rd, dy_rd = x.reshape(-1, d), top_grads[0].reshape(-1, d)
        ops = ops_for(ctx.xp)
        ops.ln_bwd_params(dy_rd, x_rd, ws["mean"], ws["inv_std"], param_grads[0], param_grads[1])
        if bottom_grads[0] is not None:
            ops.ln_bwd_data(dy_rd, x_rd, ws["mean"], ws["inv_std"], params[0], bottom_grads[0].reshape(-1, d))
