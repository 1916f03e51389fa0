// hugectr_layers_interactions: DLRM dot interaction and DCN (MultiCross) cross layers.
//
// Axis letters: b batch, f embedding vectors (F of them), v the V = F+1 vectors [mlp; emb] (never
// stored as one array), d vector width, o Interaction output width (d + F(F+1)/2 + 1), n MultiCross
// width. "_1n" is a (1, n) row, "_b1" a (B, 1) column.
// FmOrder2: s slots (S), d vector width (D). WeightMultiply: s input columns (S), d weight columns (D).
// The core prelude is prepended: every kernel is a template instantiated for float, double and
// __half; it loads T, computes in acc_t<T> (float for __half) and stores T.
// All arrays are C-contiguous row-major. No atomics anywhere: every output element has exactly
// one writer, so every kernel is deterministic.
//
// Launch contracts:
// * Interaction forward: cuBLAS strided-batched GEMM Z_ee = emb*emb^T (B, F, F) (kernels.py:
//   batched_gemm), then interaction_gather: one WARP per sample (grid-stride over samples,
//   blockDim.x a multiple of 32; launchers: 256 = 8 samples per block). It computes the F
//   mlp.emb dot products itself and copies the F(F-1)/2 embedding pairs from Z_ee; the pair
//   column (i, j), 1 <= i <= F, j < i, sits at column d + i*(i-1)/2 + j.
// * Interaction backward: interaction_bwd alone, one BLOCK per sample (grid-stride over samples,
//   blockDim.x a multiple of 32; launchers: d rounded up to 32, at most 256), dynamic shared
//   memory V*VP*sizeof(acc_t<T>) bytes with VP = V rounded up to a multiple of 4 (the symmetric
//   pair-gradient matrix). No workspace.
// * multicross_fwd_layer / multicross_bwd_layer: one WARP per sample row (grid-stride over rows,
//   uniform within a warp), blockDim.x a multiple of 32 (launchers: 256 = 8 rows per block): the
//   row dot product is a strided loop over n per lane and a shuffle reduction, then the warp
//   writes the row. No shared memory, no __syncthreads.
// * multicross_v2_*: 1-D grid-stride loops, one logical thread per element (B*n).
// * fm_order2_fwd / fm_order2_bwd: 1-D grid-stride loops, one logical thread per (b, d) pair.
// * weight_multiply_fwd: one thread per output element (B*S*D); weight_multiply_bwd_x: one per
//   (b, s) (a loop over d); weight_multiply_bwd_w: one per (s, d) (a loop over the batch).

#define HCTR_WARP 32

// Sum of `value` over the 32 lanes of a warp; every lane gets the result.
template <typename A>
__device__ __forceinline__ A warp_sum(A value) {
  for (int offset = HCTR_WARP / 2; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// Interaction forward, one WARP per sample (grid-stride over samples, uniform within a warp):
// out = [mlp, pairs (i > j over the V = F+1 vectors [mlp; emb], row-major: row 1..F, col < row), 0].
// Pair (i, 0) is the dot product mlp . emb[i-1], computed here (lanes stride over d, shuffle sum);
// pair (i, j >= 1) is copied from Z_ee[i-1][j-1] = emb[i-1] . emb[j-1] (cuBLAS GEMM, B x F x F).
template <typename T>
__global__ void interaction_gather(const T* __restrict__ mlp_bd, const T* __restrict__ emb_bfd,
                                   const T* __restrict__ z_bff, T* __restrict__ out_bo, long long batch, int F,
                                   int d) {
  const long long width = d + (long long)F * (F + 1) / 2 + 1;
  const int lane = threadIdx.x % HCTR_WARP;
  const long long warps = (long long)gridDim.x * blockDim.x / HCTR_WARP;
  for (long long b = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / HCTR_WARP; b < batch; b += warps) {
    const T* m = mlp_bd + b * d;
    T* out = out_bo + b * width;
    for (int e = lane; e < d; e += HCTR_WARP) out[e] = m[e];
    for (int i = 1; i <= F; ++i) {
      const T* emb_row = emb_bfd + (b * F + (i - 1)) * (long long)d;
      acc_t<T> part = acc_t<T>(0);
      for (int e = lane; e < d; e += HCTR_WARP) part += hctr_load(m, e) * hctr_load(emb_row, e);
      const acc_t<T> dot = warp_sum(part);  // every lane gets it
      T* row = out + d + (long long)i * (i - 1) / 2;
      const T* z_row = z_bff + (b * F + (i - 1)) * (long long)F;
      for (int j = lane; j < i; j += HCTR_WARP) {
        if (j == 0) {
          hctr_store(row, 0, dot);
        } else {
          row[j] = z_row[j - 1];
        }
      }
    }
    if (lane == 0) hctr_store(out, width - 1, acc_t<T>(0));  // the trailing zero pad
  }
}

// 4 consecutive accumulate-type values from 16-byte aligned shared memory (one vector load each).
__device__ __forceinline__ void load4(const float* p, float& a, float& b, float& c, float& e) {
  const float4 v = *reinterpret_cast<const float4*>(p);
  a = v.x; b = v.y; c = v.z; e = v.w;
}
__device__ __forceinline__ void load4(const double* p, double& a, double& b, double& c, double& e) {
  const double2 lo = *reinterpret_cast<const double2*>(p), hi = *reinterpret_cast<const double2*>(p + 2);
  a = lo.x; b = lo.y; c = hi.x; e = hi.y;
}

// The gradient of rows r0..r0+3 of T = [mlp; emb] at column e of sample b: row 0 is the MLP input (plus
// the pass-through part of the output gradient, g[e]), row r > 0 is embedding r - 1; rows >= V do not exist.
template <typename T, typename A>
__device__ __forceinline__ void store_interaction_grad4(A acc0, A acc1, A acc2, A acc3, int r0, int V, int F,
                                                        int d, long long b, int e, const T* g, T* grad_mlp_bd,
                                                        T* grad_emb_bfd) {
  const A acc[4] = {acc0, acc1, acc2, acc3};
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const int r = r0 + q;
    if (r == 0) {
      hctr_store(grad_mlp_bd, b * d + e, hctr_load(g, e) + acc[q]);
    } else if (r < V) {
      hctr_store(grad_emb_bfd, (b * F + (r - 1)) * (long long)d + e, acc[q]);
    }
  }
}

// Interaction backward in one kernel, one BLOCK per sample (grid-stride over samples; blockDim.x a
// multiple of 32; dynamic shared memory V*VP*sizeof(acc_t<T>), VP = V rounded up to a multiple of 4).
// With S the symmetric V x V pair-gradient matrix (S[i][j] = S[j][i] = g(pair max(i,j), min(i,j)),
// zero diagonal and zero padding columns V..VP-1), dT = S*T for T = [mlp; emb] never stored:
//   grad_mlp[e]    = g[e] + sum_j S[0][j]   T[j][e]   (pass-through + emb^T g_me)
//   grad_emb[f][e] =        sum_j S[f+1][j] T[j][e]   (S_ee emb + g_me mlp^T)
// T[j][e] is read straight from mlp (j = 0) or emb (j >= 1). Each thread owns columns e (strided by
// blockDim.x) and computes 4 rows at a time; S[j][r..r+3] = S[r..r+3][j] by symmetry is one vector
// load broadcast to the block. Every output element has one writer: no atomics.
template <typename T>
__global__ void interaction_bwd(const T* __restrict__ mlp_bd, const T* __restrict__ emb_bfd,
                                const T* __restrict__ grad_out_bo, T* __restrict__ grad_mlp_bd,
                                T* __restrict__ grad_emb_bfd, long long batch, int F, int d) {
  using A = acc_t<T>;
  extern __shared__ __align__(16) unsigned char interaction_smem[];
  A* s = reinterpret_cast<A*>(interaction_smem);
  const int V = F + 1, VP = (V + 3) & ~3;
  const long long width = d + (long long)F * V / 2 + 1;
  for (long long b = blockIdx.x; b < batch; b += gridDim.x) {
    const T* g = grad_out_bo + b * width;
    __syncthreads();  // the previous sample's S is no longer read
    for (int k = threadIdx.x; k < V * VP; k += blockDim.x) {
      const int r = k / VP, c = k - r * VP;
      A value = A(0);
      if (c < V && r != c) {
        const int hi = r > c ? r : c, lo = r > c ? c : r;
        value = hctr_load(g, d + (long long)hi * (hi - 1) / 2 + lo);
      }
      s[k] = value;
    }
    __syncthreads();
    const T* m = mlp_bd + b * d;
    const T* emb = emb_bfd + b * F * (long long)d;
    for (int e = threadIdx.x; e < d; e += blockDim.x) {
      for (int r0 = 0; r0 < V; r0 += 4) {
        A acc0 = A(0), acc1 = A(0), acc2 = A(0), acc3 = A(0);
        for (int j = 0; j < V; ++j) {
          const A t = j == 0 ? hctr_load(m, e) : hctr_load(emb, (long long)(j - 1) * d + e);
          A s0, s1, s2, s3;
          load4(s + j * VP + r0, s0, s1, s2, s3);
          acc0 += s0 * t;
          acc1 += s1 * t;
          acc2 += s2 * t;
          acc3 += s3 * t;
        }
        store_interaction_grad4(acc0, acc1, acc2, acc3, r0, V, F, d, b, e, g, grad_mlp_bd, grad_emb_bfd);
      }
    }
  }
}

// interaction_bwd for V = F + 1 <= 32 (DLRM: 27): the same sums, but each thread reads its column of
// T = [mlp; emb] from global memory once into registers (the generic kernel re-reads it for every 4 output
// rows), and S is filled through a per-block table of pair columns (no integer divisions per sample).
// Dynamic shared memory: V*VP acc_t<T> values of S, then V*VP ints of the table (-1: a zero entry).
template <typename T>
__global__ void interaction_bwd_v32(const T* __restrict__ mlp_bd, const T* __restrict__ emb_bfd,
                                    const T* __restrict__ grad_out_bo, T* __restrict__ grad_mlp_bd,
                                    T* __restrict__ grad_emb_bfd, long long batch, int F, int d) {
  using A = acc_t<T>;
  constexpr int kMaxV = 32;
  extern __shared__ __align__(16) unsigned char interaction_smem[];
  const int V = F + 1, VP = (V + 3) & ~3;
  A* s = reinterpret_cast<A*>(interaction_smem);
  int* pair_col = reinterpret_cast<int*>(s + V * VP);
  const long long width = d + (long long)F * V / 2 + 1;
  for (int k = threadIdx.x; k < V * VP; k += blockDim.x) {
    const int r = k / VP, c = k - r * VP;
    int col = -1;
    if (c < V && r != c) {
      const int hi = r > c ? r : c, lo = r > c ? c : r;
      col = d + hi * (hi - 1) / 2 + lo;
    }
    pair_col[k] = col;
  }
  for (long long b = blockIdx.x; b < batch; b += gridDim.x) {
    const T* g = grad_out_bo + b * width;
    __syncthreads();  // pair_col is written (first sample); the previous sample's S is no longer read
    for (int k = threadIdx.x; k < V * VP; k += blockDim.x) {
      const int col = pair_col[k];
      s[k] = col >= 0 ? hctr_load(g, col) : A(0);
    }
    __syncthreads();
    const T* m = mlp_bd + b * d;
    const T* emb = emb_bfd + b * F * (long long)d;
    for (int e = threadIdx.x; e < d; e += blockDim.x) {
      A t[kMaxV];
#pragma unroll
      for (int j = 0; j < kMaxV; ++j) {
        t[j] = j >= V ? A(0) : (j == 0 ? hctr_load(m, e) : hctr_load(emb, (long long)(j - 1) * d + e));
      }
      for (int r0 = 0; r0 < V; r0 += 4) {
        A acc0 = A(0), acc1 = A(0), acc2 = A(0), acc3 = A(0);
#pragma unroll
        for (int j = 0; j < kMaxV; ++j) {
          if (j < V) {  // uniform across the block
            A s0, s1, s2, s3;
            load4(s + j * VP + r0, s0, s1, s2, s3);
            acc0 += s0 * t[j];
            acc1 += s1 * t[j];
            acc2 += s2 * t[j];
            acc3 += s3 * t[j];
          }
        }
        store_interaction_grad4(acc0, acc1, acc2, acc3, r0, V, F, d, b, e, g, grad_mlp_bd, grad_emb_bfd);
      }
    }
  }
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
