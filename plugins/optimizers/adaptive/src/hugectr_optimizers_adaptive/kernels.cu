// Fused optimizer updates of hugectr-optimizers-adaptive (formats.md 3.5). Device code only.
//
// Launch contract: 1-D grid-stride loops, any grid/block size is correct; launchers in kernels.py use
// block 256. T is the weight/state/gradient type (float or double); every scalar argument is a T.
// No atomics: every thread owns distinct elements (rows[] must be unique in the *_rows kernels).
//
// rowwise_adagrad_update_rows runs one thread per row (r threads, not r*v): it reduces the row's squared
// gradient, then updates the row.
//
// Axis letters: n = elements of a flat buffer; r = unique rows being updated; v = embedding vector
// element. Row kernels read grad_rv[i*v + c] and write table_xv[rows[i]*v + c] (x = all table rows).
// inv_scaler = 1/scaler: gradients arrive multiplied by the static loss scale.
// Adam's lr_t = lr*sqrt(1-beta2^t)/(1-beta1^t) is computed on the host (bias correction on the step
// size, eps outside it, as HugeCTR's adam_update_kernel).

template <typename T>
__device__ __forceinline__ void adam_step(T& w, T& m, T& v, T g, T lr_t, T beta1, T beta2, T eps) {
  const T m_new = beta1 * m + (T(1) - beta1) * g;
  const T v_new = beta2 * v + (T(1) - beta2) * g * g;
  m = m_new;
  v = v_new;
  w -= lr_t * m_new / (sqrt(v_new) + eps);
}

template <typename T>
__device__ __forceinline__ void adagrad_step(T& w, T& a, T g, T lr, T eps) {
  const T a_new = a + g * g;
  a = a_new;
  w -= lr * g / (sqrt(a_new) + eps);
}

template <typename T>
__global__ void adam_update(T* w_n, const T* g_n, T* m_n, T* v_n, long long n, T lr_t, T beta1, T beta2,
                            T eps, T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x) {
    adam_step(w_n[i], m_n[i], v_n[i], g_n[i] * inv_scaler, lr_t, beta1, beta2, eps);
  }
}

template <typename T>
__global__ void adam_update_rows(T* table_xv, T* m_xv, T* v_xv, const long long* rows_r, const T* grad_rv,
                                 long long r, long long v, T lr_t, T beta1, T beta2, T eps, T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < r * v;
       i += (long long)blockDim.x * gridDim.x) {
    const long long at = rows_r[i / v] * v + i % v;
    adam_step(table_xv[at], m_xv[at], v_xv[at], grad_rv[i] * inv_scaler, lr_t, beta1, beta2, eps);
  }
}

template <typename T>
__global__ void adagrad_update(T* w_n, const T* g_n, T* a_n, long long n, T lr, T eps, T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x) {
    adagrad_step(w_n[i], a_n[i], g_n[i] * inv_scaler, lr, eps);
  }
}

template <typename T>
__global__ void adagrad_update_rows(T* table_xv, T* a_xv, const long long* rows_r, const T* grad_rv,
                                    long long r, long long v, T lr, T eps, T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < r * v;
       i += (long long)blockDim.x * gridDim.x) {
    const long long at = rows_r[i / v] * v + i % v;
    adagrad_step(table_xv[at], a_xv[at], grad_rv[i] * inv_scaler, lr, eps);
  }
}

// Ftrl (formats.md 3.5): n' = n + g^2; z += g - (sqrt(n'+e0) - sqrt(n+e0)) * w / lr;
// w = |z| <= l1 ? 0 : (l1*sign(z) - z) / ((beta + sqrt(n'+e0)) / lr + l2); e0 = FLT_EPSILON.
template <typename T>
__device__ __forceinline__ void ftrl_step(T& w, T& n, T& z, T g, T lr, T beta, T l1, T l2) {
  const T e0 = T(1.1920928955078125e-07);
  const T n_new = n + g * g;
  const T sigma = (sqrt(n_new + e0) - sqrt(n + e0)) / lr;
  const T z_new = z + g - sigma * w;
  n = n_new;
  z = z_new;
  const T sign = z_new > T(0) ? T(1) : (z_new < T(0) ? T(-1) : T(0));
  w = (fabs(z_new) <= l1) ? T(0) : (l1 * sign - z_new) / ((beta + sqrt(n_new + e0)) / lr + l2);
}

template <typename T>
__global__ void ftrl_update(T* w_n, const T* g_n, T* n_n, T* z_n, long long n, T lr, T beta, T l1, T l2,
                            T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x) {
    ftrl_step(w_n[i], n_n[i], z_n[i], g_n[i] * inv_scaler, lr, beta, l1, l2);
  }
}

template <typename T>
__global__ void ftrl_update_rows(T* table_xv, T* n_xv, T* z_xv, const long long* rows_r, const T* grad_rv,
                                 long long r, long long v, T lr, T beta, T l1, T l2, T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < r * v;
       i += (long long)blockDim.x * gridDim.x) {
    const long long at = rows_r[i / v] * v + i % v;
    ftrl_step(table_xv[at], n_xv[at], z_xv[at], grad_rv[i] * inv_scaler, lr, beta, l1, l2);
  }
}

// Row-wise AdaGrad (TorchRec's, beyond HugeCTR): one accumulator per row, a_x1[x] (shape [rows, 1]).
// a += mean_c(g[c]^2); w[c] -= lr * g[c] / (sqrt(a) + eps), g = grad * inv_scaler. One thread per row.
template <typename T>
__global__ void rowwise_adagrad_update_rows(T* table_xv, T* a_x1, const long long* rows_r, const T* grad_rv,
                                            long long r, long long v, T lr, T eps, T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < r;
       i += (long long)blockDim.x * gridDim.x) {
    const long long row = rows_r[i];
    T sum_sq = T(0);
    for (long long c = 0; c < v; ++c) {
      const T g = grad_rv[i * v + c] * inv_scaler;
      sum_sq += g * g;
    }
    const T a_new = a_x1[row] + sum_sq / T(v);
    a_x1[row] = a_new;
    const T step = lr / (sqrt(a_new) + eps);
    for (long long c = 0; c < v; ++c) table_xv[row * v + c] -= step * (grad_rv[i * v + c] * inv_scaler);
  }
}
