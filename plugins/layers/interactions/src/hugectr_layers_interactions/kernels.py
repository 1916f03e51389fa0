"""CuPy launchers for ``kernels.cu``; same names and signatures as ``reference.py``.

CuPy is imported only when a kernel is first launched (through ``KernelModule``).
"""
from __future__ import annotations

import numpy as np

from hugectr_core.errors import BackendError
from hugectr_core.kernels import KernelModule

_NAMES = ("interaction_fwd", "interaction_bwd", "multicross_fwd_layer", "multicross_bwd_layer",
          "multicross_v2_fwd_elem", "multicross_v2_bwd_elem", "fm_order2_fwd", "fm_order2_bwd",
          "weight_multiply_fwd", "weight_multiply_bwd_x", "weight_multiply_bwd_w")
KERNELS = KernelModule("hugectr_layers_interactions",
                       [f"{n}<{t}>" for n in _NAMES for t in ("float", "double", "__half")])
MC_BLOCK = 256  # must match kernels.cu


def _inputs(*arrays):
    import cupy  # noqa: PLC0415 - launchers only run on CuPy arrays

    return [cupy.ascontiguousarray(a) for a in arrays]


def _outputs(*arrays):
    for a in arrays:
        if not a.flags.c_contiguous:
            raise BackendError(f"interaction kernels need C-contiguous outputs, got strides {a.strides}")
    return arrays


def _per_row(name, dtype, batch, args):
    """One MC_BLOCK-thread block per sample row (grid-stride over rows)."""
    grid = max(1, min(int(batch), 65535))
    KERNELS.function(name, dtype)((grid,), (MC_BLOCK,), tuple(args))


def interaction_fwd(mlp_bd, emb_bfd, out_bo) -> None:
    mlp_bd, emb_bfd = _inputs(mlp_bd, emb_bfd)
    _outputs(out_bo)
    (batch, d), num_f = mlp_bd.shape, emb_bfd.shape[1]
    KERNELS.launch("interaction_fwd", mlp_bd.dtype, out_bo.size,
                   (mlp_bd, emb_bfd, out_bo, np.int64(batch), np.int32(num_f), np.int32(d)))


def interaction_bwd(mlp_bd, emb_bfd, grad_out_bo, grad_mlp_bd, grad_emb_bfd) -> None:
    mlp_bd, emb_bfd, grad_out_bo = _inputs(mlp_bd, emb_bfd, grad_out_bo)
    _outputs(grad_mlp_bd, grad_emb_bfd)
    (batch, d), num_f = mlp_bd.shape, emb_bfd.shape[1]
    KERNELS.launch("interaction_bwd", mlp_bd.dtype, batch * (num_f + 1) * d,
                   (mlp_bd, emb_bfd, grad_out_bo, grad_mlp_bd, grad_emb_bfd,
                    np.int64(batch), np.int32(num_f), np.int32(d)))


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
