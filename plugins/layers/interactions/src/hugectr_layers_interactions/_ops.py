"""Pick the kernel implementation for an array module: NumPy twins or CUDA launchers."""
from hugectr_core.backend import is_numpy


def ops(xp):
    """``reference`` on NumPy, ``kernels`` on CuPy (both expose the same functions)."""
    if is_numpy(xp):
        from . import reference as module
    else:
        from . import kernels as module
    return module
