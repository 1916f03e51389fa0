// hugectr_layers_shape: copies for Concat, Slice, Select/Gather, Scale and FusedReshapeConcat.
//
// The core prelude (hugectr_core/cuda/prelude.cuh) is prepended: every kernel is a template
// instantiated for float, double and __half; it loads T, computes (sums) in acc_t<T> and stores T.
//
// Launch contract: 1-D grid-stride loops (HCTR_GRID_STRIDE_LOOP), any grid and block size is
// correct (the launchers use 256 threads per block, ceil(threads/256) blocks, capped). All arrays
// are C-contiguous row-major. No atomics anywhere: every thread writes distinct elements, and the
// scatter-adds (select_bwd, scale_bwd) are written as per-output gathers, so results are
// deterministic.
//
// Axis letters: r rows (every axis before the concatenated/sliced one, collapsed), k columns of
// the narrow block (one Concat input, one Slice output), n columns of the wide tensor;
// Select: o outer (axes before dim), x the selected axis of the input, q len(index), i inner
// (axes after dim); Scale: p outer positions, f factor (replicas), i inner; FusedReshapeConcat:
// b batch, s slot (S of them), e one input's width, n the concatenated width.

// ---- Concat / Slice: (src, dst, rows, n, k, offset); one thread per element of the narrow block.
template <typename T>
__global__ void concat_fwd(const T* __restrict__ in_rk, T* __restrict__ out_rn,
                           long long rows, long long n, long long k, long long offset) {
  HCTR_GRID_STRIDE_LOOP(i, rows * k) {
    const long long r = i / k, c = i - r * k;
    out_rn[r * n + offset + c] = in_rk[i];
  }
}

template <typename T>
__global__ void concat_bwd(const T* __restrict__ grad_out_rn, T* __restrict__ grad_in_rk,
                           long long rows, long long n, long long k, long long offset) {
  HCTR_GRID_STRIDE_LOOP(i, rows * k) {
    const long long r = i / k, c = i - r * k;
    grad_in_rk[i] = grad_out_rn[r * n + offset + c];
  }
}

template <typename T>
__global__ void slice_fwd(const T* __restrict__ in_rn, T* __restrict__ out_rk,
                          long long rows, long long n, long long k, long long offset) {
  HCTR_GRID_STRIDE_LOOP(i, rows * k) {
    const long long r = i / k, c = i - r * k;
    out_rk[i] = in_rn[r * n + offset + c];
  }
}

// Accumulates (+=): Slice ranges may overlap; the launcher runs one launch per range on the same
// stream, so the accumulations are serialised and deterministic.
template <typename T>
__global__ void slice_bwd(const T* __restrict__ grad_out_rk, T* __restrict__ grad_in_rn,
                          long long rows, long long n, long long k, long long offset) {
  HCTR_GRID_STRIDE_LOOP(i, rows * k) {
    const long long r = i / k, c = i - r * k;
    const long long j = r * n + offset + c;
    hctr_store(grad_in_rn, j, hctr_load(grad_in_rn, j) + hctr_load(grad_out_rk, i));
  }
}

// ---- Select / Gather: out[o, q, i] = in[o, index[q], i]; one thread per output element.
template <typename T>
__global__ void select_fwd(const T* __restrict__ in_oxi, const long long* __restrict__ index_q,
                           T* __restrict__ out_oqi, long long outer, long long x, long long q, long long inner) {
  HCTR_GRID_STRIDE_LOOP(t, outer * q * inner) {
    const long long o = t / (q * inner), rem = t - o * q * inner;
    const long long c = rem / inner, i = rem - c * inner;
    out_oqi[t] = in_oxi[(o * x + index_q[c]) * inner + i];
  }
}

// grad_in[o, j, i] = sum over every c with index[c] == j of grad_out[o, c, i] (0 if none): one
// thread per input element loops over the q indices (a gather, so no atomics for repeated indices).
template <typename T>
__global__ void select_bwd(const T* __restrict__ grad_out_oqi, const long long* __restrict__ index_q,
                           T* __restrict__ grad_in_oxi, long long outer, long long x, long long q, long long inner) {
  HCTR_GRID_STRIDE_LOOP(t, outer * x * inner) {
    const long long o = t / (x * inner), rem = t - o * x * inner;
    const long long j = rem / inner, i = rem - j * inner;
    acc_t<T> acc = acc_t<T>(0);
    for (long long c = 0; c < q; ++c) {
      if (index_q[c] == j) acc += hctr_load(grad_out_oqi, (o * q + c) * inner + i);
    }
    hctr_store(grad_in_oxi, t, acc);
  }
}

// ---- Scale: out[p, r, i] = in[p, i] for r < f (axis 0: inner = 1; axis 1: inner = N).
template <typename T>
__global__ void scale_fwd(const T* __restrict__ in_pi, T* __restrict__ out_pfi,
                          long long outer, long long factor, long long inner) {
  HCTR_GRID_STRIDE_LOOP(t, outer * factor * inner) {
    const long long p = t / (factor * inner), i = t % inner;
    out_pfi[t] = in_pi[p * inner + i];
  }
}

// grad_in[p, i] = sum over the f replicas (the true gradient; HugeCTR copies only replica 0).
template <typename T>
__global__ void scale_bwd(const T* __restrict__ grad_out_pfi, T* __restrict__ grad_in_pi,
                          long long outer, long long factor, long long inner) {
  HCTR_GRID_STRIDE_LOOP(t, outer * inner) {
    const long long p = t / inner, i = t - p * inner;
    acc_t<T> acc = acc_t<T>(0);
    for (long long r = 0; r < factor; ++r) acc += hctr_load(grad_out_pfi, (p * factor + r) * inner + i);
    hctr_store(grad_in_pi, t, acc);
  }
}

// ---- FusedReshapeConcat: one input (B, S, e) into columns [offset, offset+e) of
// history (B*(S-1), n) (slots 0..S-2) and target (B, n) (slot S-1); one thread per input element.
template <typename T>
__global__ void fused_reshape_concat_fwd(const T* __restrict__ in_bse, T* __restrict__ hist_rn,
                                         T* __restrict__ tgt_bn, long long batch, long long slots,
                                         long long e, long long n, long long offset) {
  HCTR_GRID_STRIDE_LOOP(t, batch * slots * e) {
    const long long b = t / (slots * e), rem = t - b * slots * e;
    const long long s = rem / e, c = rem - s * e;
    if (s < slots - 1) {
      hist_rn[(b * (slots - 1) + s) * n + offset + c] = in_bse[t];
    } else {
      tgt_bn[b * n + offset + c] = in_bse[t];
    }
  }
}

template <typename T>
__global__ void fused_reshape_concat_bwd(const T* __restrict__ grad_hist_rn, const T* __restrict__ grad_tgt_bn,
                                         T* __restrict__ grad_in_bse, long long batch, long long slots,
                                         long long e, long long n, long long offset) {
  HCTR_GRID_STRIDE_LOOP(t, batch * slots * e) {
    const long long b = t / (slots * e), rem = t - b * slots * e;
    const long long s = rem / e, c = rem - s * e;
    grad_in_bse[t] = s < slots - 1 ? grad_hist_rn[(b * (slots - 1) + s) * n + offset + c]
                                   : grad_tgt_bn[b * n + offset + c];
  }
}
