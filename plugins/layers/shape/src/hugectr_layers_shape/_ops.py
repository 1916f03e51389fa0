"""Pick the kernel implementation for an array module: NumPy twins or CUDA launchers."""
from hugectr_core.backend import is_numpy
from hugectr_core.errors import BackendError


def ops(xp):
    """``reference`` on NumPy, ``kernels`` on CuPy (both expose the same functions)."""
    if is_numpy(xp):
        from . import reference as module
    else:
        from . import kernels as module
    return module


def rows_view(array, rows: int):
    """``array`` as a 2-D (rows, -1) view; refuses to silently copy a non-contiguous output."""
    if not array.flags.c_contiguous:
        raise BackendError(f"shape layers need C-contiguous tensors, got strides {array.strides} "
                           f"for shape {array.shape}; allocate the tensor contiguously")
    return array.reshape(rows, -1)
