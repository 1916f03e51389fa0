// hugectr_layers_losses: binary cross-entropy with the sigmoid fused in (formats.md 3.3).
//
// Launch contract: 1-D grid-stride loops over the batch rows, any grid and block size (the
// launchers use 256 threads per block). One logical thread per row. Axis letter: b batch row;
// the logits and labels are (B, 1), C-contiguous, so row i is element i. Rows i >= n_valid are
// padding of a short last batch: they get loss 0 and gradient 0. No atomics: the per-row losses
// are summed afterwards by a CuPy reduction.

template <typename T>
__global__ void bce_fwd(const T* __restrict__ x_b, const T* __restrict__ y_b, T* __restrict__ loss_b,
                        long long n_rows, long long n_valid) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_rows;
       i += (long long)blockDim.x * gridDim.x) {
    if (i >= n_valid) {
      loss_b[i] = T(0);
      continue;
    }
    const T x = x_b[i], y = y_b[i];
    // max(x,0) - x*y + log(1 + exp(-|x|)): never overflows
    loss_b[i] = (x > T(0) ? x : T(0)) - x * y + log1p(exp(-fabs(x)));
  }
}

template <typename T>
__global__ void bce_bwd(const T* __restrict__ x_b, const T* __restrict__ y_b, T* __restrict__ grad_b,
                        long long n_rows, long long n_valid, T scale) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_rows;
       i += (long long)blockDim.x * gridDim.x) {
    if (i >= n_valid) {
      grad_b[i] = T(0);
      continue;
    }
    const T x = x_b[i];
    const T e = exp(-fabs(x));
    const T sig = x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    grad_b[i] = (sig - y_b[i]) * scale;
  }
}
