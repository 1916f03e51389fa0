// hugectr_layers_shape: column-block copies for Concat and Slice.
//
// Launch contract: 1-D grid-stride loops, any grid and block size is correct (the launchers use
// 256 threads per block and ceil(rows*k/256) blocks, capped). One logical thread per element of
// the narrow (rows, k) block. All arrays are C-contiguous row-major.
//
// Axis letters: r rows (every axis before the concatenated/sliced one, collapsed), k columns of
// the narrow block (one Concat input, one Slice output), n columns of the wide tensor.
// Arguments, for every kernel: (src, dst, rows, n, k, offset); offset is the block's first
// column inside the wide tensor.
//
// No atomics: every thread writes one distinct element. slice_bwd accumulates (+=) because
// Slice ranges may overlap; the launcher runs one launch per range on the same stream, so the
// accumulations are serialised and deterministic.

template <typename T>
__global__ void concat_fwd(const T* __restrict__ in_rk, T* __restrict__ out_rn,
                           long long rows, long long n, long long k, long long offset) {
  const long long total = rows * k;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)blockDim.x * gridDim.x) {
    const long long r = i / k, c = i - r * k;
    out_rn[r * n + offset + c] = in_rk[i];
  }
}

template <typename T>
__global__ void concat_bwd(const T* __restrict__ grad_out_rn, T* __restrict__ grad_in_rk,
                           long long rows, long long n, long long k, long long offset) {
  const long long total = rows * k;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)blockDim.x * gridDim.x) {
    const long long r = i / k, c = i - r * k;
    grad_in_rk[i] = grad_out_rn[r * n + offset + c];
  }
}

template <typename T>
__global__ void slice_fwd(const T* __restrict__ in_rn, T* __restrict__ out_rk,
                          long long rows, long long n, long long k, long long offset) {
  const long long total = rows * k;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)blockDim.x * gridDim.x) {
    const long long r = i / k, c = i - r * k;
    out_rk[i] = in_rn[r * n + offset + c];
  }
}

template <typename T>
__global__ void slice_bwd(const T* __restrict__ grad_out_rk, T* __restrict__ grad_in_rn,
                          long long rows, long long n, long long k, long long offset) {
  const long long total = rows * k;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
       i += (long long)blockDim.x * gridDim.x) {
    const long long r = i / k, c = i - r * k;
    grad_in_rn[r * n + offset + c] += grad_out_rk[i];
  }
}
