// hugectr_layers_interactions: DLRM dot interaction and DCN (MultiCross) cross layers.
//
// Axis letters: b batch, f embedding vectors (F of them), d vector width, o Interaction output
// width (d + F(F+1)/2 + 1), n MultiCross width. "_1n" is a (1, n) row, "_b1" a (B, 1) column.
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
  const long long total = batch * width;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    const long long b = idx / width, col = idx - b * width;
    T value = T(0);
    if (col < d) {
      value = mlp_bd[b * d + col];
    } else if (col < d + pairs) {
      const long long p = col - d;
      int i = 1;
      while ((long long)(i + 1) * i / 2 <= p) ++i;  // largest i with i*(i-1)/2 <= p
      const int j = (int)(p - (long long)i * (i - 1) / 2);
      const T* ti = t_vector(mlp_bd, emb_bfd, b, i, F, d);
      const T* tj = t_vector(mlp_bd, emb_bfd, b, j, F, d);
      for (int e = 0; e < d; ++e) value += ti[e] * tj[e];
    }  // else: the trailing zero pad
    out_bo[idx] = value;
  }
}

template <typename T>
__global__ void interaction_bwd(const T* __restrict__ mlp_bd, const T* __restrict__ emb_bfd,
                                const T* __restrict__ grad_out_bo, T* __restrict__ grad_mlp_bd,
                                T* __restrict__ grad_emb_bfd, long long batch, int F, int d) {
  const long long width = d + (long long)F * (F + 1) / 2 + 1;
  const long long per_sample = (long long)(F + 1) * d;
  const long long total = batch * per_sample;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    const long long b = idx / per_sample, rem = idx - b * per_sample;
    const int v = (int)(rem / d), e = (int)(rem - (long long)v * d);
    const T* g = grad_out_bo + b * width;
    T acc = T(0);
    for (int m = 0; m <= F; ++m) {
      if (m == v) continue;
      const int hi = m > v ? m : v, lo = m > v ? v : m;
      acc += g[d + (long long)hi * (hi - 1) / 2 + lo] * t_vector(mlp_bd, emb_bfd, b, m, F, d)[e];
    }
    if (v == 0) {
      grad_mlp_bd[b * d + e] = acc + g[e];
    } else {
      grad_emb_bfd[(b * F + (v - 1)) * (long long)d + e] = acc;
    }
  }
}

// Sum of `value` over the block; every thread gets the result. blockDim.x == MC_BLOCK.
template <typename T>
__device__ T block_sum(T value, T* buffer) {
  buffer[threadIdx.x] = value;
  __syncthreads();
  for (int stride = MC_BLOCK / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) buffer[threadIdx.x] += buffer[threadIdx.x + stride];
    __syncthreads();
  }
  const T total = buffer[0];
  __syncthreads();  // buffer is reused by the next row
  return total;
}

template <typename T>
__global__ void multicross_fwd_layer(const T* __restrict__ x0_bn, const T* __restrict__ xl_bn,
                                     const T* __restrict__ w_1n, const T* __restrict__ bias_1n,
                                     T* __restrict__ out_bn, T* __restrict__ dot_b1, long long batch, int n) {
  __shared__ T buffer[MC_BLOCK];
  for (long long row = blockIdx.x; row < batch; row += gridDim.x) {  // uniform per block
    const T* x0 = x0_bn + row * n;
    const T* xl = xl_bn + row * n;
    T part = T(0);
    for (int j = threadIdx.x; j < n; j += blockDim.x) part += xl[j] * w_1n[j];
    const T dot = block_sum(part, buffer);
    if (threadIdx.x == 0) dot_b1[row] = dot;
    for (int j = threadIdx.x; j < n; j += blockDim.x) out_bn[row * n + j] = x0[j] * dot + bias_1n[j] + xl[j];
  }
}

template <typename T>
__global__ void multicross_bwd_layer(const T* __restrict__ x0_bn, const T* __restrict__ w_1n,
                                     const T* __restrict__ dot_b1, const T* __restrict__ grad_out_bn,
                                     T* __restrict__ grad_x0_bn, T* __restrict__ grad_xl_bn,
                                     T* __restrict__ ddot_b1, long long batch, int n) {
  __shared__ T buffer[MC_BLOCK];
  for (long long row = blockIdx.x; row < batch; row += gridDim.x) {
    const T* x0 = x0_bn + row * n;
    const T* g = grad_out_bn + row * n;
    T part = T(0);
    for (int j = threadIdx.x; j < n; j += blockDim.x) part += g[j] * x0[j];
    const T ddot = block_sum(part, buffer);
    if (threadIdx.x == 0) ddot_b1[row] = ddot;
    const T dot = dot_b1[row];
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      grad_x0_bn[row * n + j] += g[j] * dot;  // accumulates the x0 term of every cross layer
      grad_xl_bn[row * n + j] = g[j] + ddot * w_1n[j];
    }
  }
}

// h_bn and out_bn may be the same array (each element is read, then written, by one thread).
template <typename T>
__global__ void multicross_v2_fwd_elem(const T* x0_bn, const T* xl_bn, const T* bias_1n, const T* h_bn,
                                       T* out_bn, long long batch, int n) {
  const long long total = batch * n;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    const int j = (int)(idx % n);
    out_bn[idx] = x0_bn[idx] * (h_bn[idx] + bias_1n[j]) + xl_bn[idx];
  }
}

template <typename T>
__global__ void multicross_v2_bwd_elem(const T* __restrict__ x0_bn, const T* __restrict__ bias_1n,
                                       const T* __restrict__ h_bn, const T* __restrict__ grad_out_bn,
                                       T* __restrict__ grad_x0_bn, T* __restrict__ dh_bn, long long batch, int n) {
  const long long total = batch * n;
  for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
       idx += (long long)blockDim.x * gridDim.x) {
    const int j = (int)(idx % n);
    const T g = grad_out_bn[idx];
    dh_bn[idx] = g * x0_bn[idx];
    grad_x0_bn[idx] += g * (h_bn[idx] + bias_1n[j]);
  }
}
