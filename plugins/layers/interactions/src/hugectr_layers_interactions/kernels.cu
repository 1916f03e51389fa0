// hugectr_layers_interactions: DLRM dot interaction and DCN (MultiCross) cross layers.
//
// Axis letters: b batch, f embedding vectors (F of them), v the F+1 vectors of T = [mlp; emb],
// d vector width, o Interaction output
// width (d + F(F+1)/2 + 1), n MultiCross width. "_1n" is a (1, n) row, "_b1" a (B, 1) column.
// FmOrder2: s slots (S), d vector width (D). WeightMultiply: s input columns (S), d weight columns (D).
// The core prelude is prepended: every kernel is a template instantiated for float, double and
// __half; it loads T, computes in acc_t<T> (float for __half) and stores T.
// All arrays are C-contiguous row-major. No atomics anywhere: every output element has exactly
// one writer, so every kernel is deterministic.
//
// Launch contracts:
// * Interaction runs as three launches each way, the dot products being cuBLAS strided-batched GEMMs
//   (kernels.py: batched_gemm): forward interaction_stack (T = [mlp; emb], B*(F+1)*d threads),
//   GEMM Z = T*T^T (B, F+1, F+1), interaction_gather (one thread per output element B*o; the pair
//   column (i, j), 1 <= i <= F, j < i, sits at column d + i*(i-1)/2 + j and reads Z[i][j]);
//   backward interaction_bwd_prepare (B*((F+1)^2 + d) threads: dZ = G + G^T split into its mlp row
//   (B, 1, F+1) and embedding rows (B, F, F+1), and the mlp pass-through copy of the output
//   gradient), then GEMMs grad_mlp = dZ_mlp*T + grad_mlp (beta 1) and grad_emb = dZ_emb*T.
//   All 1-D grid-stride loops, any grid and block size (launchers: 256 threads).
// * multicross_fwd_layer / multicross_bwd_layer: one WARP per sample row (grid-stride over rows,
//   uniform within a warp), blockDim.x a multiple of 32 (launchers: 256 = 8 rows per block): the
//   row dot product is a strided loop over n per lane and a shuffle reduction, then the warp
//   writes the row. No shared memory, no __syncthreads.
// * multicross_v2_*: 1-D grid-stride loops, one logical thread per element (B*n).
// * fm_order2_fwd / fm_order2_bwd: 1-D grid-stride loops, one logical thread per (b, d) pair.
// * weight_multiply_fwd: one thread per output element (B*S*D); weight_multiply_bwd_x: one per
//   (b, s) (a loop over d); weight_multiply_bwd_w: one per (s, d) (a loop over the batch).

#define HCTR_WARP 32

// Largest i with i*(i-1)/2 <= p: the row of pair p in the row-major strictly-lower triangle.
__device__ __forceinline__ int pair_row(long long p) {
  int i = (int)((1.0f + sqrtf(1.0f + 8.0f * (float)p)) * 0.5f);
  while (i > 1 && (long long)i * (i - 1) / 2 > p) --i;
  while ((long long)(i + 1) * i / 2 <= p) ++i;
  return i;
}

// T = [mlp; emb_0 .. emb_{F-1}] (B, F+1, d): one thread per element of T.
template <typename T>
__global__ void interaction_stack(const T* __restrict__ mlp_bd, const T* __restrict__ emb_bfd,
                                  T* __restrict__ t_bvd, long long batch, int F, int d) {
  const long long per_sample = (long long)(F + 1) * d;
  HCTR_GRID_STRIDE_LOOP(idx, batch * per_sample) {
    const long long b = idx / per_sample, rem = idx - b * per_sample;
    // emb[b, v-1, e] sits at (b*F + v-1)*d + e = idx - (b+1)*d for idx = (b*(F+1) + v)*d + e
    t_bvd[idx] = rem < d ? mlp_bd[b * d + rem] : emb_bfd[idx - (b + 1) * d];
  }
}

// out = [mlp, Z[i][j] for pairs i > j row-major, 0]: one thread per output element.
template <typename T>
__global__ void interaction_gather(const T* __restrict__ mlp_bd, const T* __restrict__ z_bvv,
                                   T* __restrict__ out_bo, long long batch, int F, int d) {
  const int V = F + 1;
  const long long pairs = (long long)F * V / 2;
  const long long width = d + pairs + 1;
  HCTR_GRID_STRIDE_LOOP(idx, batch * width) {
    const long long b = idx / width, col = idx - b * width;
    if (col < d) {
      out_bo[idx] = mlp_bd[b * d + col];
    } else if (col < d + pairs) {
      const long long p = col - d;
      const int i = pair_row(p);
      const int j = (int)(p - (long long)i * (i - 1) / 2);
      out_bo[idx] = z_bvv[(b * V + i) * V + j];
    } else {
      hctr_store(out_bo, idx, acc_t<T>(0));  // the trailing zero pad
    }
  }
}

// dZ[b][v][m] = g(pair(max(v,m), min(v,m))) for v != m, 0 on the diagonal; row v = 0 goes to
// dz_mlp (B, 1, V), rows v >= 1 to dz_emb (B, F, V). Threads past V*V per sample copy the
// pass-through gradient g[b, :d] into grad_mlp (the mlp GEMM then adds dZ_mlp*T with beta = 1).
template <typename T>
__global__ void interaction_bwd_prepare(const T* __restrict__ grad_out_bo, T* __restrict__ dz_mlp_b1v,
                                        T* __restrict__ dz_emb_bfv, T* __restrict__ grad_mlp_bd,
                                        long long batch, int F, int d) {
  const int V = F + 1;
  const long long width = d + (long long)F * V / 2 + 1;
  const long long per_sample = (long long)V * V + d;
  HCTR_GRID_STRIDE_LOOP(idx, batch * per_sample) {
    const long long b = idx / per_sample;
    const int rem = (int)(idx - b * per_sample);
    const T* g = grad_out_bo + b * width;
    if (rem >= V * V) {
      const int e = rem - V * V;
      grad_mlp_bd[b * d + e] = g[e];
      continue;
    }
    const int v = rem / V, m = rem - v * V;
    T* dst = v == 0 ? dz_mlp_b1v + b * V + m : dz_emb_bfv + (b * F + (v - 1)) * (long long)V + m;
    if (v == m) {
      hctr_store(dst, 0, acc_t<T>(0));
    } else {
      const int hi = v > m ? v : m, lo = v > m ? m : v;
      *dst = g[d + (long long)hi * (hi - 1) / 2 + lo];
    }
  }
}

// Sum of `value` over the 32 lanes of a warp; every lane gets the result.
template <typename A>
__device__ __forceinline__ A warp_sum(A value) {
  for (int offset = HCTR_WARP / 2; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// DCN v1 cross layer, one warp per row: dot = x_l . w (kept for backward); out = x0*dot + b + x_l.
template <typename T>
__global__ void multicross_fwd_layer(const T* __restrict__ x0_bn, const T* __restrict__ xl_bn,
                                     const T* __restrict__ w_1n, const T* __restrict__ bias_1n,
                                     T* __restrict__ out_bn, T* __restrict__ dot_b1, long long batch, int n) {
  const int lane = threadIdx.x % HCTR_WARP;
  const long long warps = (long long)gridDim.x * blockDim.x / HCTR_WARP;
  for (long long row = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / HCTR_WARP; row < batch; row += warps) {
    const T* x0 = x0_bn + row * n;
    const T* xl = xl_bn + row * n;
    acc_t<T> part = acc_t<T>(0);
    for (int j = lane; j < n; j += HCTR_WARP) part += hctr_load(xl, j) * hctr_load(w_1n, j);
    const acc_t<T> dot = warp_sum(part);
    if (lane == 0) hctr_store(dot_b1, row, dot);
    for (int j = lane; j < n; j += HCTR_WARP)
      hctr_store(out_bn, row * n + j, hctr_load(x0, j) * dot + hctr_load(bias_1n, j) + hctr_load(xl, j));
  }
}

// One warp per row: ddot = g . x0; grad_x0 += g*dot (accumulates over layers); grad_xl = g + ddot*w.
template <typename T>
__global__ void multicross_bwd_layer(const T* __restrict__ x0_bn, const T* __restrict__ w_1n,
                                     const T* __restrict__ dot_b1, const T* __restrict__ grad_out_bn,
                                     T* __restrict__ grad_x0_bn, T* __restrict__ grad_xl_bn,
                                     T* __restrict__ ddot_b1, long long batch, int n) {
  const int lane = threadIdx.x % HCTR_WARP;
  const long long warps = (long long)gridDim.x * blockDim.x / HCTR_WARP;
  for (long long row = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / HCTR_WARP; row < batch; row += warps) {
    const T* x0 = x0_bn + row * n;
    const T* g = grad_out_bn + row * n;
    acc_t<T> part = acc_t<T>(0);
    for (int j = lane; j < n; j += HCTR_WARP) part += hctr_load(g, j) * hctr_load(x0, j);
    const acc_t<T> ddot = warp_sum(part);
    if (lane == 0) hctr_store(ddot_b1, row, ddot);
    const acc_t<T> dot = hctr_load(dot_b1, row);
    for (int j = lane; j < n; j += HCTR_WARP) {
      const long long k = row * n + j;
      hctr_store(grad_x0_bn, k, hctr_load(grad_x0_bn, k) + hctr_load(g, j) * dot);
      hctr_store(grad_xl_bn, k, hctr_load(g, j) + ddot * hctr_load(w_1n, j));
    }
  }
}

// h_bn and out_bn may be the same array (each element is read, then written, by one thread).
template <typename T>
__global__ void multicross_v2_fwd_elem(const T* x0_bn, const T* xl_bn, const T* bias_1n, const T* h_bn,
                                       T* out_bn, long long batch, int n) {
  HCTR_GRID_STRIDE_LOOP(idx, batch * n) {
    const int j = (int)(idx % n);
    hctr_store(out_bn, idx, hctr_load(x0_bn, idx) * (hctr_load(h_bn, idx) + hctr_load(bias_1n, j)) +
                                hctr_load(xl_bn, idx));
  }
}

template <typename T>
__global__ void multicross_v2_bwd_elem(const T* __restrict__ x0_bn, const T* __restrict__ bias_1n,
                                       const T* __restrict__ h_bn, const T* __restrict__ grad_out_bn,
                                       T* __restrict__ grad_x0_bn, T* __restrict__ dh_bn, long long batch, int n) {
  HCTR_GRID_STRIDE_LOOP(idx, batch * n) {
    const int j = (int)(idx % n);
    const acc_t<T> g = hctr_load(grad_out_bn, idx);
    hctr_store(dh_bn, idx, g * hctr_load(x0_bn, idx));
    hctr_store(grad_x0_bn, idx, hctr_load(grad_x0_bn, idx) + g * (hctr_load(h_bn, idx) + hctr_load(bias_1n, j)));
  }
}

// FmOrder2: out[b, d] = 0.5 * ((sum_s v[b,s,d])^2 - sum_s v[b,s,d]^2); one thread per (b, d).
template <typename T>
__global__ void fm_order2_fwd(const T* __restrict__ in_bsd, T* __restrict__ out_bd, long long batch, int S, int D) {
  HCTR_GRID_STRIDE_LOOP(idx, batch * D) {
    const long long b = idx / D, d = idx - b * D;
    acc_t<T> sum = acc_t<T>(0), sum_sq = acc_t<T>(0);
    for (int s = 0; s < S; ++s) {
      const acc_t<T> v = hctr_load(in_bsd, (b * S + s) * D + d);
      sum += v;
      sum_sq += v * v;
    }
    hctr_store(out_bd, idx, acc_t<T>(0.5) * (sum * sum - sum_sq));
  }
}

// grad_in[b, s, d] = grad_out[b, d] * (sum_s' v[b,s',d] - v[b,s,d]); one thread per (b, d).
template <typename T>
__global__ void fm_order2_bwd(const T* __restrict__ in_bsd, const T* __restrict__ grad_out_bd,
                              T* __restrict__ grad_in_bsd, long long batch, int S, int D) {
  HCTR_GRID_STRIDE_LOOP(idx, batch * D) {
    const long long b = idx / D, d = idx - b * D;
    acc_t<T> sum = acc_t<T>(0);
    for (int s = 0; s < S; ++s) sum += hctr_load(in_bsd, (b * S + s) * D + d);
    const acc_t<T> g = hctr_load(grad_out_bd, idx);
    for (int s = 0; s < S; ++s) {
      const long long k = (b * S + s) * D + d;
      hctr_store(grad_in_bsd, k, g * (sum - hctr_load(in_bsd, k)));
    }
  }
}

// WeightMultiply: out[b, s*D + d] = x[b, s] * W[s, d]; one thread per output element.
template <typename T>
__global__ void weight_multiply_fwd(const T* __restrict__ x_bs, const T* __restrict__ w_sd, T* __restrict__ out_bn,
                                    long long batch, int S, int D) {
  HCTR_GRID_STRIDE_LOOP(idx, batch * S * D) {
    const long long b = idx / ((long long)S * D), sd = idx - b * S * D;
    hctr_store(out_bn, idx, hctr_load(x_bs, b * S + sd / D) * hctr_load(w_sd, sd));
  }
}

// grad_x[b, s] = sum_d grad_out[b, s*D + d] * W[s, d]; one thread per (b, s).
template <typename T>
__global__ void weight_multiply_bwd_x(const T* __restrict__ w_sd, const T* __restrict__ grad_out_bn,
                                      T* __restrict__ grad_x_bs, long long batch, int S, int D) {
  HCTR_GRID_STRIDE_LOOP(idx, batch * S) {
    const long long s = idx % S;
    acc_t<T> acc = acc_t<T>(0);
    for (int d = 0; d < D; ++d) acc += hctr_load(grad_out_bn, idx * D + d) * hctr_load(w_sd, s * D + d);
    hctr_store(grad_x_bs, idx, acc);
  }
}

// grad_W[s, d] = sum_b grad_out[b, s*D + d] * x[b, s]; one thread per (s, d), looping the batch.
template <typename T>
__global__ void weight_multiply_bwd_w(const T* __restrict__ x_bs, const T* __restrict__ grad_out_bn,
                                      T* __restrict__ grad_w_sd, long long batch, int S, int D) {
  HCTR_GRID_STRIDE_LOOP(idx, (long long)S * D) {
    const long long s = idx / D;
    acc_t<T> acc = acc_t<T>(0);
    for (long long b = 0; b < batch; ++b)
      acc += hctr_load(grad_out_bn, b * S * D + idx) * hctr_load(x_bs, b * S + s);
    hctr_store(grad_w_sd, idx, acc);
  }
}
