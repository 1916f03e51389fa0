// CUDA kernels of hugectr-layers-activations: element-wise activations and dropout.
//
// Axis letters: i flat element index over all n elements of a C-contiguous tensor of any rank.
// Launch contract (see kernels.py): every kernel is a 1D grid-stride loop over n elements, so
// any grid and block size is correct. Outputs may alias the gradient input (dx may be dy).
// No atomics anywhere: results are deterministic and equal the NumPy twins in reference.py
// up to the last bit of exp/expm1.
// T is float or double (instantiated by name from kernels.py).

#define GRID_STRIDE_LOOP(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)

template <typename T>
__global__ void relu_fwd(const T* x, T* y, long long n) {
    GRID_STRIDE_LOOP(i, n) { y[i] = x[i] > T(0) ? x[i] : T(0); }
}

// y is the forward output: y > 0 exactly where x > 0.
template <typename T>
__global__ void relu_bwd(const T* dy, const T* y, T* dx, long long n) {
    GRID_STRIDE_LOOP(i, n) { dx[i] = y[i] > T(0) ? dy[i] : T(0); }
}

// Stable form: e = exp(-|x|) never overflows.
template <typename T>
__global__ void sigmoid_fwd(const T* x, T* y, long long n) {
    GRID_STRIDE_LOOP(i, n) {
        const T e = exp(-fabs(x[i]));
        y[i] = x[i] >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    }
}

template <typename T>
__global__ void sigmoid_bwd(const T* dy, const T* y, T* dx, long long n) {
    GRID_STRIDE_LOOP(i, n) { dx[i] = dy[i] * y[i] * (T(1) - y[i]); }
}

template <typename T>
__global__ void elu_fwd(const T* x, T alpha, T* y, long long n) {
    GRID_STRIDE_LOOP(i, n) { y[i] = x[i] > T(0) ? x[i] : alpha * expm1(x[i]); }
}

// x is the forward input.
template <typename T>
__global__ void elu_bwd(const T* dy, const T* x, T alpha, T* dx, long long n) {
    GRID_STRIDE_LOOP(i, n) { dx[i] = x[i] > T(0) ? dy[i] : dy[i] * alpha * exp(x[i]); }
}

// rand holds uniforms in [0, 1): an element is dropped when rand < rate (as cuDNN does), kept
// ones are scaled by 1/(1-rate) (inverted dropout). mask receives 0 or the scale.
template <typename T>
__global__ void dropout_fwd(const T* x, const T* rand, T rate, T* mask, T* y, long long n) {
    const T scale = T(1) / (T(1) - rate);
    GRID_STRIDE_LOOP(i, n) {
        const T m = rand[i] >= rate ? scale : T(0);
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

template <typename T>
__global__ void dropout_bwd(const T* dy, const T* mask, T* dx, long long n) {
    GRID_STRIDE_LOOP(i, n) { dx[i] = dy[i] * mask[i]; }
}
