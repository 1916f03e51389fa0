// hugectr_layers_losses: BinaryCrossEntropyLoss (fused sigmoid), CrossEntropyLoss (2-class softmax)
// and MultiCrossEntropyLoss (weighted per-label sigmoid CE) (formats.md 3.3).
//
// The core prelude is prepended: every kernel is a template instantiated for float, double and
// __half; it loads T and computes in acc_t<T> (float for __half). Per-row/per-element losses are
// written as acc_t<T> (float32 under mixed precision), gradients as T; scalars are acc_t<T>.
//
// Launch contract: 1-D grid-stride loops (HCTR_GRID_STRIDE_LOOP), any grid and block size (the
// launchers use 256 threads per block). Axis letters: b batch row, c class (2), l label column (L).
// bce: one thread per row of (B, 1). ce: one thread per row; label is (B, 1) holding the class
// (>= 0.5 means class 1) or (B, 2) holding target probabilities (label_cols says which).
// mce: one thread per element of (B, L). Rows b >= n_valid pad a short last batch: loss 0, grad 0.
// No atomics: the losses are summed afterwards by a CuPy reduction.

template <typename A>
__device__ __forceinline__ A loss_sigmoid(A x) {
  const A e = exp(-fabs(x));
  return x >= A(0) ? A(1) / (A(1) + e) : e / (A(1) + e);
}

template <typename A>
__device__ __forceinline__ A sigmoid_ce(A x, A y) {  // max(x,0) - x*y + log(1 + exp(-|x|)): never overflows
  return (x > A(0) ? x : A(0)) - x * y + log1p(exp(-fabs(x)));
}

template <typename T>
__global__ void bce_fwd(const T* __restrict__ x_b, const T* __restrict__ y_b, acc_t<T>* __restrict__ loss_b,
                        long long n_rows, long long n_valid) {
  HCTR_GRID_STRIDE_LOOP(i, n_rows) {
    loss_b[i] = i < n_valid ? sigmoid_ce(hctr_load(x_b, i), hctr_load(y_b, i)) : acc_t<T>(0);
  }
}

template <typename T>
__global__ void bce_bwd(const T* __restrict__ x_b, const T* __restrict__ y_b, T* __restrict__ grad_b,
                        long long n_rows, long long n_valid, acc_t<T> scale) {
  HCTR_GRID_STRIDE_LOOP(i, n_rows) {
    const acc_t<T> g = i < n_valid ? (loss_sigmoid(hctr_load(x_b, i)) - hctr_load(y_b, i)) * scale : acc_t<T>(0);
    hctr_store(grad_b, i, g);
  }
}

// Target probabilities (t0, t1) of row i.
template <typename T>
__device__ __forceinline__ void ce_target(const T* y, long long i, int label_cols, acc_t<T>& t0, acc_t<T>& t1) {
  if (label_cols == 1) {
    t1 = hctr_load(y, i) >= acc_t<T>(0.5) ? acc_t<T>(1) : acc_t<T>(0);
    t0 = acc_t<T>(1) - t1;
  } else {
    t0 = hctr_load(y, 2 * i);
    t1 = hctr_load(y, 2 * i + 1);
  }
}

// loss = (t0 + t1)·logsumexp(x) − t0·x0 − t1·x1
template <typename T>
__global__ void ce_fwd(const T* __restrict__ x_b2, const T* __restrict__ y_bl, acc_t<T>* __restrict__ loss_b,
                       long long n_rows, long long n_valid, int label_cols) {
  HCTR_GRID_STRIDE_LOOP(i, n_rows) {
    if (i >= n_valid) { loss_b[i] = acc_t<T>(0); continue; }
    const acc_t<T> x0 = hctr_load(x_b2, 2 * i), x1 = hctr_load(x_b2, 2 * i + 1);
    const acc_t<T> m = x0 > x1 ? x0 : x1;
    const acc_t<T> lse = m + log(exp(x0 - m) + exp(x1 - m));
    acc_t<T> t0, t1;
    ce_target(y_bl, i, label_cols, t0, t1);
    loss_b[i] = (t0 + t1) * lse - t0 * x0 - t1 * x1;
  }
}

// grad_c = ((t0 + t1)·softmax_c − t_c)·scale
template <typename T>
__global__ void ce_bwd(const T* __restrict__ x_b2, const T* __restrict__ y_bl, T* __restrict__ grad_b2,
                       long long n_rows, long long n_valid, int label_cols, acc_t<T> scale) {
  HCTR_GRID_STRIDE_LOOP(i, n_rows) {
    if (i >= n_valid) {
      hctr_store(grad_b2, 2 * i, acc_t<T>(0));
      hctr_store(grad_b2, 2 * i + 1, acc_t<T>(0));
      continue;
    }
    const acc_t<T> x0 = hctr_load(x_b2, 2 * i), x1 = hctr_load(x_b2, 2 * i + 1);
    const acc_t<T> p1 = loss_sigmoid(x1 - x0), p0 = acc_t<T>(1) - p1;
    acc_t<T> t0, t1;
    ce_target(y_bl, i, label_cols, t0, t1);
    hctr_store(grad_b2, 2 * i, ((t0 + t1) * p0 - t0) * scale);
    hctr_store(grad_b2, 2 * i + 1, ((t0 + t1) * p1 - t1) * scale);
  }
}

// Element (b, l): w_l · sigmoid CE, or 0 when the label is < -0.5 (masked) or b >= n_valid.
template <typename T>
__global__ void mce_fwd(const T* __restrict__ x_bl, const T* __restrict__ y_bl, const T* __restrict__ w_l,
                        acc_t<T>* __restrict__ loss_bl, long long n_rows, long long L, long long n_valid) {
  HCTR_GRID_STRIDE_LOOP(i, n_rows * L) {
    const acc_t<T> y = hctr_load(y_bl, i);
    loss_bl[i] = (i / L < n_valid && y >= acc_t<T>(-0.5)) ? hctr_load(w_l, i % L) * sigmoid_ce(hctr_load(x_bl, i), y)
                                                          : acc_t<T>(0);
  }
}

template <typename T>
__global__ void mce_bwd(const T* __restrict__ x_bl, const T* __restrict__ y_bl, const T* __restrict__ w_l,
                        T* __restrict__ grad_bl, long long n_rows, long long L, long long n_valid, acc_t<T> scale) {
  HCTR_GRID_STRIDE_LOOP(i, n_rows * L) {
    const acc_t<T> y = hctr_load(y_bl, i);
    const bool live = i / L < n_valid && y >= acc_t<T>(-0.5);
    hctr_store(grad_bl, i, live ? hctr_load(w_l, i % L) * (loss_sigmoid(hctr_load(x_bl, i)) - y) * scale
                                : acc_t<T>(0));
  }
}
