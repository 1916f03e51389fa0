// Fused optimizer updates of hugectr-optimizers-sgd (formats.md 3.5). Device code only.
//
// Launch contract: 1-D grid-stride loops, any grid/block size is correct; launchers in kernels.py use
// block 256. T is the weight/state/gradient type (float or double); every scalar argument is a T.
// No atomics: every thread owns distinct elements (rows[] must be unique in the *_rows kernels).
//
// Axis letters: n = elements of a flat buffer; r = unique rows being updated; v = embedding vector
// element. Row kernels read grad_rv[i*v + c] and write table_xv[rows[i]*v + c] (x = all table rows).
// inv_scaler = 1/scaler: gradients arrive multiplied by the static loss scale.

template <typename T>
__device__ __forceinline__ void sgd_step(T& w, T g, T lr) { w -= lr * g; }

template <typename T>
__device__ __forceinline__ void momentum_step(T& w, T& m, T g, T lr, T mu) {
  m = mu * m - lr * g;
  w += m;
}

template <typename T>
__device__ __forceinline__ void nesterov_step(T& w, T& m, T g, T lr, T mu) {
  const T m_old = m;
  const T m_new = mu * m_old - lr * g;
  m = m_new;
  w += -mu * m_old + (T(1) + mu) * m_new;
}

template <typename T>
__global__ void sgd_update(T* w_n, const T* g_n, long long n, T lr, T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x) {
    sgd_step(w_n[i], g_n[i] * inv_scaler, lr);
  }
}

template <typename T>
__global__ void sgd_update_rows(T* table_xv, const long long* rows_r, const T* grad_rv, long long r,
                                long long v, T lr, T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < r * v;
       i += (long long)blockDim.x * gridDim.x) {
    const long long at = rows_r[i / v] * v + i % v;
    sgd_step(table_xv[at], grad_rv[i] * inv_scaler, lr);
  }
}

template <typename T>
__global__ void momentum_update(T* w_n, const T* g_n, T* m_n, long long n, T lr, T mu, T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x) {
    momentum_step(w_n[i], m_n[i], g_n[i] * inv_scaler, lr, mu);
  }
}

template <typename T>
__global__ void momentum_update_rows(T* table_xv, T* m_xv, const long long* rows_r, const T* grad_rv,
                                     long long r, long long v, T lr, T mu, T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < r * v;
       i += (long long)blockDim.x * gridDim.x) {
    const long long at = rows_r[i / v] * v + i % v;
    momentum_step(table_xv[at], m_xv[at], grad_rv[i] * inv_scaler, lr, mu);
  }
}

template <typename T>
__global__ void nesterov_update(T* w_n, const T* g_n, T* m_n, long long n, T lr, T mu, T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x) {
    nesterov_step(w_n[i], m_n[i], g_n[i] * inv_scaler, lr, mu);
  }
}

template <typename T>
__global__ void nesterov_update_rows(T* table_xv, T* m_xv, const long long* rows_r, const T* grad_rv,
                                     long long r, long long v, T lr, T mu, T inv_scaler) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < r * v;
       i += (long long)blockDim.x * gridDim.x) {
    const long long at = rows_r[i / v] * v + i % v;
    nesterov_step(table_xv[at], m_xv[at], grad_rv[i] * inv_scaler, lr, mu);
  }
}
