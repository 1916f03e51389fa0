"""Helpers shared by InnerProduct and MLP: backend dispatch, activation names, row views."""
from __future__ import annotations

import math

import numpy as np

from hugectr_core.enums import type_string

from . import reference

ACTIVATION_NAMES = {"Relu": "Relu", "relu": "Relu", "Non": "None", "None": "None", "none": "None"}


def ops_for(xp):
    """The kernel set for an array module: ``reference`` on NumPy, the CUDA launchers on CuPy."""
    if xp is np:
        return reference
    from . import kernels  # noqa: PLC0415 - only on a GPU backend

    return kernels


def activation_name(value) -> str | None:
    """'Relu' or 'None' for an ``Activation_t`` member or a string; None when not recognised."""
    return ACTIVATION_NAMES.get(type_string(value))


def init_name(value) -> str:
    return type_string(value)


def rows(a, width: int):
    """``a`` as a 2D (rows, width) view; the GEMMs run on the last axis of 2D and 3D tensors."""
    if not a.flags.c_contiguous:  # reshape would copy and the layer's writes would be lost
        raise ValueError(f"expected a C-contiguous tensor of shape {a.shape}; the engine's buffers are")
    return a.reshape(-1, width)


def leading_rows(shape) -> int:
    return int(math.prod(shape[:-1]))
