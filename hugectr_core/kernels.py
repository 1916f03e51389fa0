"""Loading a plugin's CUDA kernels.

A plugin keeps device code in ``kernels.cu`` beside its Python (package data). The core's
``cuda/prelude.cuh`` is prepended: ``#include <cuda_fp16.h>``, ``HCTR_GRID_STRIDE_LOOP(i, n)`` and
``acc_t<T>`` (float for ``__half``) with ``hctr_load``/``hctr_store``, so one template serves float,
double and half (load T, compute in acc_t<T>, store T). ``KernelModule``
reads it through ``importlib.resources`` and compiles it into one ``cupy.RawModule`` on first use,
with an explicit list of ``name_expressions`` (template instantiations). Kernels are looked up by
name, dtype dispatch goes by name (``op<float>``), never by if/else ladders.

Example:
    >>> KERNELS = KernelModule("hugectr_layers_activations", ["relu_fwd<float>", "relu_fwd<double>"])
    >>> KERNELS.launch("relu_fwd", x.dtype, n, (x, y, n))  # doctest: +SKIP
"""
from __future__ import annotations

import importlib.resources
import threading

import numpy as np

CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double",
          np.dtype(np.float16): "__half", np.dtype(np.int32): "int", np.dtype(np.int64): "long long",
          np.dtype(np.uint32): "unsigned int"}


def PRELUDE() -> str:  # noqa: N802 - reads like the constant it is
    return importlib.resources.files("hugectr_core").joinpath("cuda/prelude.cuh").read_text()


def ctype(dtype) -> str:
    return CTYPES[np.dtype(dtype)]


class KernelModule:
    """One lazily compiled ``cupy.RawModule`` over a package's ``kernels.cu``."""

    def __init__(self, package: str, name_expressions, filename: str = "kernels.cu", options=("-std=c++17",)):
        self.package = package
        self.filename = filename
        self.name_expressions = tuple(name_expressions)
        self.options = tuple(options)
        self._module = None
        self._lock = threading.Lock()

    def source(self) -> str:
        """The shared prelude (fp16, acc_t, HCTR_GRID_STRIDE_LOOP) followed by the plugin's kernels.cu."""
        return PRELUDE() + "\n" + importlib.resources.files(self.package).joinpath(self.filename).read_text()

    def module(self):
        with self._lock:
            if self._module is None:
                import cupy  # noqa: PLC0415 - only when a kernel is first needed

                self._module = cupy.RawModule(code=self.source(), options=self.options,
                                              name_expressions=self.name_expressions)
        return self._module

    def function(self, name: str, *dtypes):
        """The kernel ``name<T...>`` for the given dtypes (or plain ``name`` when none)."""
        expr = f"{name}<{', '.join(ctype(d) for d in dtypes)}>" if dtypes else name
        if expr not in self.name_expressions:
            raise KeyError(f"{self.package}/{self.filename}: kernel '{expr}' is not among its name_expressions")
        return self.module().get_function(expr)

    def launch(self, name: str, dtypes, n_threads: int, args, block: int = 256, shared_mem: int = 0):
        """Launch a grid-stride kernel over ``n_threads`` logical threads."""
        dtypes = dtypes if isinstance(dtypes, (tuple, list)) else (dtypes,)
        grid = max(1, min((int(n_threads) + block - 1) // block, 65535 * 8))
        self.function(name, *dtypes)((grid,), (block,), tuple(args), shared_mem=shared_mem)
