"""CuPy launchers for ``kernels.cu``; same names and signatures as ``reference.py``.

CuPy is imported only when a kernel is first launched (through ``KernelModule``).
"""
from __future__ import annotations

import numpy as np

from hugectr_core import cublas
from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule

_NAMES = ("interaction_gather", "interaction_bwd", "interaction_bwd_v32", "multicross_fwd_layer",
          "multicross_bwd_layer", "multicross_v2_fwd_elem", "multicross_v2_bwd_elem", "fm_order2_fwd",
          "fm_order2_bwd", "weight_multiply_fwd", "weight_multiply_bwd_x", "weight_multiply_bwd_w")
KERNELS = KernelModule("hugectr_layers_interactions",
                       [f"{n}<{t}>" for n in _NAMES for t in ("float", "double", "__half")])
WARP = 32  # multicross_*_layer: one warp per sample row

def _inputs(*arrays):
    import cupy  # noqa: PLC0415 - launchers only run on CuPy arrays

    return [cupy.ascontiguousarray(a) for a in arrays]


def _outputs(*arrays):
    for a in arrays:
        if not a.flags.c_contiguous:
            raise BackendError(f"interaction kernels need C-contiguous outputs, got strides {a.strides}")
    return arrays


# -- batched GEMM through cuBLAS (hugectr_core.cublas) ---------------------------------------------
def batched_gemm(a_bmk, b_bkn, out_bmn, trans_b=False, beta=0.0, allow_tf32=True) -> None:
    """out[i] = a[i] @ op(b[i]) + beta·out[i] with cuBLAS, on C-contiguous operands, no temporaries.

    Unlike ``cupy.matmul`` this never copies a transposed operand (emb·embᵀ reads emb in place) and
    takes ``beta`` (accumulate into ``out``). ``allow_tf32=False``
    keeps exact fp32 products even under enable_tf32_compute (used for bias-gradient column sums).
    """
    a_bmk, b_bkn = _inputs(a_bmk, b_bkn)  # no-ops on the contiguous workspaces of the hot path
    _outputs(out_bmn)
    cublas.gemm_strided_batched(a_bmk, b_bkn, out_bmn, trans_b=trans_b, beta=beta, allow_tf32=allow_tf32)



# -- Interaction ------------------------------------------------------------------------------------
# Shared memory a block may take without opting in (cudaFuncAttributeMaxDynamicSharedMemorySize).
_DEFAULT_SHARED_BYTES = 48 * 1024


def interaction_gather(mlp_bd, emb_bfd, z_bff, out_bo) -> None:
    """One warp per sample: [mlp, mlp·emb dots and Z_ee pairs in HugeCTR's order, 0]."""
    mlp_bd, emb_bfd, z_bff = _inputs(mlp_bd, emb_bfd, z_bff)
    _outputs(out_bo)
    (batch, d), num_f = mlp_bd.shape, emb_bfd.shape[1]
    KERNELS.launch("interaction_gather", mlp_bd.dtype, batch * WARP,
                   (mlp_bd, emb_bfd, z_bff, out_bo, np.int64(batch), np.int32(num_f), np.int32(d)))


REGISTER_VECTORS = 32  # interaction_bwd_v32 keeps up to this many vectors of T = [mlp; emb] in registers


def interaction_bwd_launch_config(batch, num_f, d, dtype) -> tuple[str, int, int, int]:
    """(kernel, threads to cover, block size, dynamic shared bytes) of the one-block-per-sample backward.

    A block holds the symmetric (F+1)x(F+1) pair-gradient matrix, rows padded to a multiple of 4
    (vector loads), in the accumulate type; its threads stride over the d columns. Up to
    ``REGISTER_VECTORS`` vectors, ``interaction_bwd_v32`` also keeps a table of pair columns (ints).
    """
    vectors = num_f + 1
    padded = (vectors + 3) // 4 * 4
    acc_bytes = 8 if np.dtype(dtype) == np.float64 else 4  # acc_t: float for __half
    in_registers = vectors <= REGISTER_VECTORS
    name = "interaction_bwd_v32" if in_registers else "interaction_bwd"
    shared = vectors * padded * (acc_bytes + (4 if in_registers else 0))
    if shared > _DEFAULT_SHARED_BYTES:
        raise BackendError(f"interaction_bwd: {num_f} embedding vectors need {shared} bytes of shared memory "
                           f"per block (more than {_DEFAULT_SHARED_BYTES}); at most 108 embedding vectors "
                           "(fp16/fp32) or 75 (fp64) are supported: use fewer embedding slots per Interaction")
    block = min(256, max(WARP, (d + WARP - 1) // WARP * WARP))
    return name, batch * block, block, shared


def interaction_fwd(mlp_bd, emb_bfd, out_bo, z_bff=None) -> None:
    """Z_ee = emb·embᵀ (one batched GEMM into ``z_bff``, the layer's workspace), then the gather,
    which adds the mlp·emb dot products itself: T = [mlp; emb] is never built."""
    import cupy  # noqa: PLC0415

    batch, num_f = emb_bfd.shape[:2]
    if z_bff is None:  # tests and callers without a compiled model
        z_bff = cupy.empty((batch, num_f, num_f), dtype=emb_bfd.dtype)
    _outputs(z_bff)
    (emb_bfd,) = _inputs(emb_bfd)
    batched_gemm(emb_bfd, emb_bfd, z_bff, trans_b=True)
    interaction_gather(mlp_bd, emb_bfd, z_bff, out_bo)


def interaction_bwd(mlp_bd, emb_bfd, grad_out_bo, grad_mlp_bd, grad_emb_bfd) -> None:
    """One kernel: grad_emb = S_ee·emb + s_me·mlpᵀ, grad_mlp = g[:, :d] + embᵀ·s_me (S = the symmetric
    pair gradients), reading emb once and needing no workspace."""
    mlp_bd, emb_bfd, grad_out_bo = _inputs(mlp_bd, emb_bfd, grad_out_bo)
    _outputs(grad_mlp_bd, grad_emb_bfd)
    (batch, d), num_f = mlp_bd.shape, emb_bfd.shape[1]
    name, threads, block, shared = interaction_bwd_launch_config(batch, num_f, d, mlp_bd.dtype)
    if batch == 0:
        return
    KERNELS.launch(name, mlp_bd.dtype, threads,
                   (mlp_bd, emb_bfd, grad_out_bo, grad_mlp_bd, grad_emb_bfd, np.int64(batch), np.int32(num_f),
                    np.int32(d)), block=block, shared_mem=shared)


# -- MultiCross ------------------------------------------------------------------------------------
def _per_row(name, dtype, batch, args):
    """One warp per sample row (grid-stride over rows); blocks of 256 threads = 8 rows."""
    KERNELS.launch(name, dtype, int(batch) * WARP, tuple(args))


def multicross_fwd_layer(x0_bn, xl_bn, w_1n, bias_1n, out_bn, dot_b1) -> None:
    x0_bn, xl_bn, w_1n, bias_1n = _inputs(x0_bn, xl_bn, w_1n, bias_1n)
    _outputs(out_bn, dot_b1)
    batch, n = x0_bn.shape
    _per_row("multicross_fwd_layer", x0_bn.dtype, batch,
             (x0_bn, xl_bn, w_1n, bias_1n, out_bn, dot_b1, np.int64(batch), np.int32(n)))


def multicross_bwd_layer(x0_bn, w_1n, dot_b1, grad_out_bn, grad_x0_bn, grad_xl_bn, ddot_b1) -> None:
    x0_bn, w_1n, dot_b1, grad_out_bn = _inputs(x0_bn, w_1n, dot_b1, grad_out_bn)
    _outputs(grad_x0_bn, grad_xl_bn, ddot_b1)
    batch, n = x0_bn.shape
    _per_row("multicross_bwd_layer", x0_bn.dtype, batch,
             (x0_bn, w_1n, dot_b1, grad_out_bn, grad_x0_bn, grad_xl_bn, ddot_b1, np.int64(batch), np.int32(n)))


def multicross_v2_fwd_elem(x0_bn, xl_bn, bias_1n, h_bn, out_bn) -> None:
    _outputs(out_bn)
    h_bn = h_bn if h_bn is out_bn else _inputs(h_bn)[0]
    x0_bn, xl_bn, bias_1n = _inputs(x0_bn, xl_bn, bias_1n)
    batch, n = x0_bn.shape
    KERNELS.launch("multicross_v2_fwd_elem", x0_bn.dtype, batch * n,
                   (x0_bn, xl_bn, bias_1n, h_bn, out_bn, np.int64(batch), np.int32(n)))


def multicross_v2_bwd_elem(x0_bn, bias_1n, h_bn, grad_out_bn, grad_x0_bn, dh_bn) -> None:
    x0_bn, bias_1n, h_bn, grad_out_bn = _inputs(x0_bn, bias_1n, h_bn, grad_out_bn)
    _outputs(grad_x0_bn, dh_bn)
    batch, n = x0_bn.shape
    KERNELS.launch("multicross_v2_bwd_elem", x0_bn.dtype, batch * n,
                   (x0_bn, bias_1n, h_bn, grad_out_bn, grad_x0_bn, dh_bn, np.int64(batch), np.int32(n)))


def fm_order2_fwd(in_bsd, out_bd) -> None:
    (in_bsd,) = _inputs(in_bsd)
    _outputs(out_bd)
    batch, slots, d = in_bsd.shape
    KERNELS.launch("fm_order2_fwd", in_bsd.dtype, batch * d,
                   (in_bsd, out_bd, np.int64(batch), np.int32(slots), np.int32(d)))


def fm_order2_bwd(in_bsd, grad_out_bd, grad_in_bsd) -> None:
    in_bsd, grad_out_bd = _inputs(in_bsd, grad_out_bd)
    _outputs(grad_in_bsd)
    batch, slots, d = in_bsd.shape
    KERNELS.launch("fm_order2_bwd", in_bsd.dtype, batch * d,
                   (in_bsd, grad_out_bd, grad_in_bsd, np.int64(batch), np.int32(slots), np.int32(d)))


def weight_multiply_fwd(x_bs, w_sd, out_bn) -> None:
    x_bs, w_sd = _inputs(x_bs, w_sd)
    _outputs(out_bn)
    (batch, slots), d = x_bs.shape, w_sd.shape[1]
    KERNELS.launch("weight_multiply_fwd", x_bs.dtype, out_bn.size,
                   (x_bs, w_sd, out_bn, np.int64(batch), np.int32(slots), np.int32(d)))


def weight_multiply_bwd_x(w_sd, grad_out_bn, grad_x_bs) -> None:
    w_sd, grad_out_bn = _inputs(w_sd, grad_out_bn)
    _outputs(grad_x_bs)
    (batch, slots), d = grad_x_bs.shape, w_sd.shape[1]
    KERNELS.launch("weight_multiply_bwd_x", w_sd.dtype, grad_x_bs.size,
                   (w_sd, grad_out_bn, grad_x_bs, np.int64(batch), np.int32(slots), np.int32(d)))


def weight_multiply_bwd_w(x_bs, grad_out_bn, grad_w_sd) -> None:
    x_bs, grad_out_bn = _inputs(x_bs, grad_out_bn)
    _outputs(grad_w_sd)
    (batch, slots), d = x_bs.shape, grad_w_sd.shape[1]
    KERNELS.launch("weight_multiply_bwd_w", x_bs.dtype, grad_w_sd.size,
                   (x_bs, grad_out_bn, grad_w_sd, np.int64(batch), np.int32(slots), np.int32(d)))
