// CUDA kernels of hugectr-layers-activations: element-wise activations, dropout and PReLU_Dice.
//
// The core prelude is prepended: every kernel is a template instantiated for float, double and
// __half; it loads T, computes in acc_t<T> (float for __half) and stores T. Scalar arguments
// (alpha, rate, eps) are passed as acc_t<T> (float for float/__half, double for double).
//
// Axis letters: i flat element index over all n elements of a C-contiguous tensor of any rank;
// PReLU_Dice: r rows (every leading axis, the "batch" of the statistics), f features (last axis).
// Launch contract (see kernels.py): every kernel is a 1D grid-stride loop (HCTR_GRID_STRIDE_LOOP),
// so any grid and block size is correct; element-wise kernels have one logical thread per element,
// dice_stats / dice_bwd_stats one per feature (a loop over the rows). Outputs may alias the
// gradient input (dx may be dy) in the element-wise kernels. No atomics anywhere: results are
// deterministic and equal the NumPy twins in reference.py up to rounding of exp/expm1 and sums.
// Dropout's rand and mask are float32 whatever T is (uniforms cannot be drawn in fp16); mask holds
// 0 or 1/(1-rate).

template <typename A>
__device__ __forceinline__ A hctr_sigmoid(A x) {  // stable: e = exp(-|x|) never overflows
    const A e = exp(-fabs(x));
    return x >= A(0) ? A(1) / (A(1) + e) : e / (A(1) + e);
}

template <typename T>
__global__ void relu_fwd(const T* x, T* y, long long n) {
    HCTR_GRID_STRIDE_LOOP(i, n) {
        const acc_t<T> v = hctr_load(x, i);
        hctr_store(y, i, v > acc_t<T>(0) ? v : acc_t<T>(0));
    }
}

// y is the forward output: y > 0 exactly where x > 0.
template <typename T>
__global__ void relu_bwd(const T* dy, const T* y, T* dx, long long n) {
    HCTR_GRID_STRIDE_LOOP(i, n) {
        hctr_store(dx, i, hctr_load(y, i) > acc_t<T>(0) ? hctr_load(dy, i) : acc_t<T>(0));
    }
}

template <typename T>
__global__ void sigmoid_fwd(const T* x, T* y, long long n) {
    HCTR_GRID_STRIDE_LOOP(i, n) { hctr_store(y, i, hctr_sigmoid(hctr_load(x, i))); }
}

template <typename T>
__global__ void sigmoid_bwd(const T* dy, const T* y, T* dx, long long n) {
    HCTR_GRID_STRIDE_LOOP(i, n) {
        const acc_t<T> v = hctr_load(y, i);
        hctr_store(dx, i, hctr_load(dy, i) * v * (acc_t<T>(1) - v));
    }
}

template <typename T>
__global__ void elu_fwd(const T* x, acc_t<T> alpha, T* y, long long n) {
    HCTR_GRID_STRIDE_LOOP(i, n) {
        const acc_t<T> v = hctr_load(x, i);
        hctr_store(y, i, v > acc_t<T>(0) ? v : alpha * expm1(v));
    }
}

// x is the forward input.
template <typename T>
__global__ void elu_bwd(const T* dy, const T* x, acc_t<T> alpha, T* dx, long long n) {
    HCTR_GRID_STRIDE_LOOP(i, n) {
        const acc_t<T> v = hctr_load(x, i), g = hctr_load(dy, i);
        hctr_store(dx, i, v > acc_t<T>(0) ? g : g * alpha * exp(v));
    }
}

// rand holds uniforms in [0, 1): an element is dropped when rand < rate (as cuDNN does), kept
// ones are scaled by 1/(1-rate) (inverted dropout). mask receives 0 or the scale. rand and mask
// may be the same buffer (each element is read before it is written, by the same thread).
template <typename T>
__global__ void dropout_fwd(const T* x, const float* rand, float rate, float* mask, T* y, long long n) {
    const float scale = 1.0f / (1.0f - rate);
    HCTR_GRID_STRIDE_LOOP(i, n) {
        const float m = rand[i] >= rate ? scale : 0.0f;
        mask[i] = m;
        hctr_store(y, i, hctr_load(x, i) * static_cast<acc_t<T>>(m));
    }
}

template <typename T>
__global__ void dropout_bwd(const T* dy, const float* mask, T* dx, long long n) {
    HCTR_GRID_STRIDE_LOOP(i, n) { hctr_store(dx, i, hctr_load(dy, i) * static_cast<acc_t<T>>(mask[i])); }
}

// PReLU_Dice statistics: per feature f, mean over the rows and 1/sqrt(biased var + eps).
template <typename T>
__global__ void dice_stats(const T* x_rf, T* mean_f, T* inv_std_f, acc_t<T> eps, long long rows, long long F) {
    HCTR_GRID_STRIDE_LOOP(f, F) {
        acc_t<T> sum = acc_t<T>(0);
        for (long long r = 0; r < rows; ++r) sum += hctr_load(x_rf, r * F + f);
        const acc_t<T> mean = sum / acc_t<T>(rows);
        acc_t<T> sq = acc_t<T>(0);
        for (long long r = 0; r < rows; ++r) {
            const acc_t<T> c = hctr_load(x_rf, r * F + f) - mean;
            sq += c * c;
        }
        hctr_store(mean_f, f, mean);
        hctr_store(inv_std_f, f, acc_t<T>(1) / sqrt(sq / acc_t<T>(rows) + eps));
    }
}

// y = x * (alpha + (1 - alpha) * p), p = sigmoid((x - mean) * inv_std).
template <typename T>
__global__ void dice_fwd(const T* x_rf, const T* mean_f, const T* inv_std_f, acc_t<T> alpha, T* y_rf,
                         long long rows, long long F) {
    HCTR_GRID_STRIDE_LOOP(i, rows * F) {
        const long long f = i % F;
        const acc_t<T> v = hctr_load(x_rf, i);
        const acc_t<T> p = hctr_sigmoid((v - hctr_load(mean_f, f)) * hctr_load(inv_std_f, f));
        hctr_store(y_rf, i, v * (alpha + (acc_t<T>(1) - alpha) * p));
    }
}

// Per feature: hmean = mean_r(h), hzmean = mean_r(h * z) with h = dy * x * (1 - alpha) * p * (1 - p).
template <typename T>
__global__ void dice_bwd_stats(const T* x_rf, const T* dy_rf, const T* mean_f, const T* inv_std_f, acc_t<T> alpha,
                               T* hmean_f, T* hzmean_f, long long rows, long long F) {
    HCTR_GRID_STRIDE_LOOP(f, F) {
        const acc_t<T> mean = hctr_load(mean_f, f), inv_std = hctr_load(inv_std_f, f);
        acc_t<T> sum_h = acc_t<T>(0), sum_hz = acc_t<T>(0);
        for (long long r = 0; r < rows; ++r) {
            const acc_t<T> v = hctr_load(x_rf, r * F + f);
            const acc_t<T> z = (v - mean) * inv_std;
            const acc_t<T> p = hctr_sigmoid(z);
            const acc_t<T> h = hctr_load(dy_rf, r * F + f) * v * (acc_t<T>(1) - alpha) * p * (acc_t<T>(1) - p);
            sum_h += h;
            sum_hz += h * z;
        }
        hctr_store(hmean_f, f, sum_h / acc_t<T>(rows));
        hctr_store(hzmean_f, f, sum_hz / acc_t<T>(rows));
    }
}

// dx = dy * (alpha + (1 - alpha) p) + inv_std * (h - hmean - z * hzmean): the direct term plus the
// gradient through the standardisation (batch mean and biased variance).
template <typename T>
__global__ void dice_bwd(const T* x_rf, const T* dy_rf, const T* mean_f, const T* inv_std_f, const T* hmean_f,
                         const T* hzmean_f, acc_t<T> alpha, T* dx_rf, long long rows, long long F) {
    HCTR_GRID_STRIDE_LOOP(i, rows * F) {
        const long long f = i % F;
        const acc_t<T> v = hctr_load(x_rf, i), g = hctr_load(dy_rf, i), inv_std = hctr_load(inv_std_f, f);
        const acc_t<T> z = (v - hctr_load(mean_f, f)) * inv_std;
        const acc_t<T> p = hctr_sigmoid(z);
        const acc_t<T> h = g * v * (acc_t<T>(1) - alpha) * p * (acc_t<T>(1) - p);
        hctr_store(dx_rf, i, g * (alpha + (acc_t<T>(1) - alpha) * p) +
                                 inv_std * (h - hctr_load(hmean_f, f) - z * hctr_load(hzmean_f, f)));
    }
}
