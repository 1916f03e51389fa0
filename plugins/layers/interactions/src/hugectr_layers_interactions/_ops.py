"""Pick the kernel implementation for an array module: NumPy twins or CUDA launchers."""
from hugectr_core.backend import is_numpy


def ops(xp):
    """``reference`` on NumPy, ``kernels`` on CuPy (both expose the same functions)."""
    if is_numpy(xp):
        from . import reference as module
    else:
        from . import kernels as module
    return module


Z_ROW_ALIGN = 8  # elements: 16 bytes of fp16, 32 of fp32 (with 26-wide rows cuBLAS ran a CUDA-core fp32 kernel)


def z_row_stride(num_f: int) -> int:
    """Row stride of Interaction's Z_ee = emb·embᵀ workspace: F rounded up to ``Z_ROW_ALIGN`` elements."""
    return -(-int(num_f) // Z_ROW_ALIGN) * Z_ROW_ALIGN
