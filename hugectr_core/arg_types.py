"""Type checks of the parameter objects' fields, read from their annotations.

HugeCTR's pybind layer refuses a string where an int belongs; plain dataclasses would keep it and fail
later, deep inside, with a Python error that names nothing. ``check_field_types`` turns that into one
``ConfigError`` naming the object and the argument, at construction.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class P:
    ...     batchsize: int = 1
    >>> check_field_types(P(batchsize="8"), "CreateSolver")
    Traceback (most recent call last):
    ...
    hugectr_core.errors.ConfigError: CreateSolver: batchsize must be an int, got '8'
"""
from __future__ import annotations

import math
import numbers
from dataclasses import fields

import numpy as np

from .errors import ConfigError


def is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value) -> bool:
    """A finite real number (an int counts; a bool does not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


# annotation (as written, ``from __future__ import annotations``) -> (check, what the message asks for)
_KINDS = {
    "int": (is_int, "an int"),
    "float": (is_number, "a finite number"),
    "bool": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "list": (lambda v: isinstance(v, (list, tuple)), "a list"),
    "dict": (lambda v: isinstance(v, dict), "a dict"),
}


def check_field_types(obj, where: str) -> None:
    """Every field annotated int, float, bool, str, list or dict holds one (others have their own checks)."""
    for f in fields(obj):
        kind = _KINDS.get(f.type if isinstance(f.type, str) else getattr(f.type, "__name__", ""))
        value = getattr(obj, f.name)
        if kind is not None and not kind[0](value):
            raise ConfigError(f"{where}: {f.name} must be {kind[1]}, got {value!r}")


def check_int_list(values, name: str, where: str, minimum: int) -> list:
    """``values`` as a list of ints >= ``minimum`` (a ConfigError naming ``name`` otherwise)."""
    if not isinstance(values, (list, tuple)) or not all(is_int(v) and v >= minimum for v in values):
        raise ConfigError(f"{where}: {name} must be a list of ints >= {minimum}, got {values!r}")
    return [int(v) for v in values]
