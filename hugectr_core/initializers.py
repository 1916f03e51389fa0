"""Parameter initialisers of formats.md 3.6, shared by every layer plugin.

Each function returns an ``init(rng, shape) -> np.ndarray`` closure for ``ParamSpec``; ``fan_in`` and
``fan_out`` are the layer's, not necessarily the tensor's dims (HugeCTR's bias uses the weight's fans).

Example:
    >>> import numpy as np
    >>> init = fc_weight("Default", 4, 3)
    >>> init(np.random.default_rng(0), (4, 3)).shape
    (4, 3)
"""
from __future__ import annotations

import math

import numpy as np

from .enums import type_string
from .errors import ConfigError

TRUNC_STD = 0.87962566  # HugeCTR divides by this "truncated normal" correction but never truncates


def _normal(std: float):
    return lambda rng, shape: rng.normal(0.0, std, size=shape)


def _uniform(limit: float):
    return lambda rng, shape: rng.uniform(-limit, limit, size=shape)


def constant(value: float):
    return lambda rng, shape: np.full(shape, value, dtype=np.float64)


def _kind(init_type) -> str:
    kind = type_string(init_type)
    if kind not in ("Default", "Uniform", "XavierNorm", "XavierUniform", "Zero"):
        raise ConfigError(f"unknown initializer '{kind}': use hugectr.Initializer_t members")
    return kind


def fc_weight(init_type, fan_in: int, fan_out: int):
    """InnerProduct / MLP weight ``W[K, N]``."""
    kind, fan = _kind(init_type), fan_in + fan_out
    if kind == "Zero":
        return constant(0.0)
    if kind == "Uniform":
        return _uniform(1.0 / fan)
    if kind == "XavierUniform":
        return _uniform(math.sqrt(6.0 / fan))
    return _normal(math.sqrt(2.0 / fan) / TRUNC_STD)  # Default and XavierNorm


def fc_bias(init_type, fan_out: int):
    """InnerProduct / MLP bias ``b[1, N]``."""
    kind = _kind(init_type)
    if kind == "Zero":
        return constant(0.0)
    if kind == "Uniform":
        return _uniform(1.0 / fan_out)
    if kind == "XavierUniform":
        return _uniform(math.sqrt(6.0 / fan_out))
    if kind == "XavierNorm":
        return _normal(math.sqrt(2.0 / fan_out) / TRUNC_STD)
    return _normal(math.sqrt(1.0 / fan_out))


def variance_scaling(init_type, fan_in: int, fan_out: int, default: str = "XavierUniform"):
    """Generic VarianceScaling(scale=1, fan_avg) family, e.g. WeightMultiply (Default = XavierUniform)."""
    kind = _kind(init_type)
    kind = default if kind == "Default" else kind
    fan = fan_in + fan_out
    return {"Zero": constant(0.0), "Uniform": _uniform(1.0 / fan),
            "XavierUniform": _uniform(math.sqrt(6.0 / fan)),
            "XavierNorm": _normal(math.sqrt(2.0 / fan) / TRUNC_STD)}[kind]


def normal(std: float):
    """Untruncated N(0, std) (MultiCross weights)."""
    return _normal(std)
