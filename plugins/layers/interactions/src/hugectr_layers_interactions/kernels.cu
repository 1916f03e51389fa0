// hugectr_layers_interactions: DLRM dot interaction and DCN (MultiCross) cross layers.
//
// Axis letters: b batch, f embedding vectors (F of them), d vector width, o Interaction output
// width (d + F(F+1)/2 + 1), n MultiCross width. "_1n" is a (1, n) row, "_b1" a (B, 1) column.
// FmOrder2: s slots (S), d vector width (D). WeightMultiply: s input columns (S), d weight columns (D).
// The core prelude is prepended: every kernel is a template instantiated for float, double and
// __half; it loads T, computes in acc_t<T> (float for __half) and stores T.
// All arrays are C-contiguous row-major. No atomics anywhere: every output element has exactly
// one writer, so every kernel is deterministic.
//
// Launch contracts:
// * interaction_fwd / interaction_bwd / multicross_v2_*: 1-D grid-stride loops, any grid and
//   block size (launchers: 256 threads, ceil(total/256) blocks, capped). interaction_fwd has one
//   logical thread per output element (B*o); a pair column (i, j), 1 <= i <= F, j < i, sits at
//   column d + i*(i-1)/2 + j and the thread computes that dot product of length d.
//   interaction_bwd has one logical thread per element of T (B*(F+1)*d): dT[v] = sum over m != v
//   of g(v, m) * T[m], plus the pass-through gradient for the mlp vector (v = 0).
// * multicross_fwd_layer / multicross_bwd_layer: one block per sample row (grid-stride over rows),
//   blockDim.x MUST be MC_BLOCK (256): a block-wide tree reduction in shared memory computes the
//   row dot product, then the block writes the row.
// * fm_order2_fwd / fm_order2_bwd: 1-D grid-stride loops, one logical thread per (b, d) pair.
// * weight_multiply_fwd: one thread per output element (B*S*D); weight_multiply_bwd_x: one per
//   (b, s) (a loop over d); weight_multiply_bwd_w: one per (s, d) (a loop over the batch).

#define MC_BLOCK 256

// Vector v of sample b in T = [mlp; emb_0 .. emb_{F-1}].
template <typename T>
__device__ __forceinline__ const T* t_vector(const T* mlp_bd, const T* emb_bfd, long long b, int v, int F, int d) {
  return v == 0 ? mlp_bd + b * d : emb_bfd + (b * F + (v - 1)) * (long long)d;
}

template <typename T>
__global__ void interaction_fwd(const T* __restrict__ mlp_bd, const T* __restrict__ emb_bfd,
                                T* __restrict__ out_bo, long long batch, int F, int d) {
  const long long pairs = (long long)F * (F + 1) / 2;
  const long long width = d + pairs + 1;
  HCTR_GRID_STRIDE_LOOP(idx, batch * width) {
    const long long b = idx / width, col = idx - b * width;
    acc_t<T> value = acc_t<T>(0);
    if (col < d) {
      value = hctr_load(mlp_bd, b * d + col);
    } else if (col < d + pairs) {
      const long long p = col - d;
      int i = 1;
      while ((long long)(i + 1) * i / 2 <= p) ++i;  // largest i with i*(i-1)/2 <= p
      const int j = (int)(p - (long long)i * (i - 1) / 2);
      const T* ti = t_vector(mlp_bd, emb_bfd, b, i, F, d);
      const T* tj = t_vector(mlp_bd, emb_bfd, b, j, F, d);
      for (int e = 0; e < d; ++e) value += hctr_load(ti, e) * hctr_load(tj, e);
    }  // else: the trailing zero pad
    hctr_store(out_bo, idx, value);
  }
}

template <typename T>
__global__ void interaction_bwd(const T* __restrict__ mlp_bd, const T* __restrict__ emb_bfd,
                                const T* __restrict__ grad_out_bo, T* __restrict__ grad_mlp_bd,
                                T* __restrict__ grad_emb_bfd, long long batch, int F, int d) {
  const long long width = d + (long long)F * (F + 1) / 2 + 1;
  const long long per_sample = (long long)(F + 1) * d;
  HCTR_GRID_STRIDE_LOOP(idx, batch * per_sample) {
    const long long b = idx / per_sample, rem = idx - b * per_sample;
    const int v = (int)(rem / d), e = (int)(rem - (long long)v * d);
    const T* g = grad_out_bo + b * width;
    acc_t<T> acc = acc_t<T>(0);
    for (int m = 0; m <= F; ++m) {
      if (m == v) continue;
      const int hi = m > v ? m : v, lo = m > v ? v : m;
      acc += hctr_load(g, d + (long long)hi * (hi - 1) / 2 + lo) * hctr_load(t_vector(mlp_bd, emb_bfd, b, m, F, d), e);
    }
    if (v == 0) {
      hctr_store(grad_mlp_bd, b * d + e, acc + hctr_load(g, e));
    } else {
      hctr_store(grad_emb_bfd, (b * F + (v - 1)) * (long long)d + e, acc);
    }
  }
}

// Sum of `value` over the block; every thread gets the result. blockDim.x == MC_BLOCK.
template <typename A>
__device__ A block_sum(A value, A* buffer) {
  buffer[threadIdx.x] = value;
  __syncthreads();
  for (int stride = MC_BLOCK / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) buffer[threadIdx.x] += buffer[threadIdx.x + stride];
    __syncthreads();
  }
  const A total = buffer[0];
  __syncthreads();  // buffer is reused by the next row
  return total;
}

template <typename T>
__global__ void multicross_fwd_layer(const T* __restrict__ x0_bn, const T* __restrict__ xl_bn,
                                     const T* __restrict__ w_1n, const T* __restrict__ bias_1n,
                                     T* __restrict__ out_bn, T* __restrict__ dot_b1, long long batch, int n) {
  __shared__ acc_t<T> buffer[MC_BLOCK];
  for (long long row = blockIdx.x; row < batch; row += gridDim.x) {  // uniform per block
    const T* x0 = x0_bn + row * n;
    const T* xl = xl_bn + row * n;
    acc_t<T> part = acc_t<T>(0);
    for (int j = threadIdx.x; j < n; j += blockDim.x) part += hctr_load(xl, j) * hctr_load(w_1n, j);
    const acc_t<T> dot = block_sum(part, buffer);
    if (threadIdx.x == 0) hctr_store(dot_b1, row, dot);
    for (int j = threadIdx.x; j < n; j += blockDim.x)
      hctr_store(out_bn, row * n + j, hctr_load(x0, j) * dot + hctr_load(bias_1n, j) + hctr_load(xl, j));
  }
}

template <typename T>
__global__ void multicross_bwd_layer(const T* __restrict__ x0_bn, const T* __restrict__ w_1n,
                                     const T* __restrict__ dot_b1, const T* __restrict__ grad_out_bn,
                                     T* __restrict__ grad_x0_bn, T* __restrict__ grad_xl_bn,
                                     T* __restrict__ ddot_b1, long long batch, int n) {
  __shared__ acc_t<T> buffer[MC_BLOCK];
  for (long long row = blockIdx.x; row < batch; row += gridDim.x) {
    const T* x0 = x0_bn + row * n;
    const T* g = grad_out_bn + row * n;
    acc_t<T> part = acc_t<T>(0);
    for (int j = threadIdx.x; j < n; j += blockDim.x) part += hctr_load(g, j) * hctr_load(x0, j);
    const acc_t<T> ddot = block_sum(part, buffer);
    if (threadIdx.x == 0) hctr_store(ddot_b1, row, ddot);
    const acc_t<T> dot = hctr_load(dot_b1, row);
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      const long long k = row * n + j;  // grad_x0 accumulates the x0 term of every cross layer
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
