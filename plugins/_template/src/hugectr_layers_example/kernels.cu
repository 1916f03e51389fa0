// CUDA kernels of hugectr-layers-example: the Swish activation y = x * sigmoid(x).
//
// hugectr-core's prelude (hugectr_core/cuda/prelude.cuh) is prepended by KernelModule: it includes
// cuda_fp16.h and defines HCTR_GRID_STRIDE_LOOP, acc_t<T> (float for __half, T otherwise),
// hctr_load and hctr_store. Every kernel loads T, computes in acc_t<T> and stores T; kernels.py
// instantiates each for float, double and __half by name ("swish_fwd<__half>").
//
// Axis letters: i flat element index over all n elements of a C-contiguous tensor of any rank.
// Launch contract (see kernels.py): 1D grid-stride loops over n elements, so any grid and block
// size is correct. dx may alias dy. No atomics: results are deterministic.

// Stable sigmoid: e = exp(-|v|) never overflows. exp/fabs are overloaded for float and double.
template <typename A>
__device__ __forceinline__ A stable_sigmoid(A v) {
    const A e = exp(-fabs(v));
    return v >= A(0) ? A(1) / (A(1) + e) : e / (A(1) + e);
}

template <typename T>
__global__ void swish_fwd(const T* x, T* y, long long n) {
    HCTR_GRID_STRIDE_LOOP(i, n) {
        const acc_t<T> v = hctr_load(x, i);
        hctr_store(y, i, v * stable_sigmoid(v));
    }
}

// x is the forward input: dx = dy * s * (1 + x * (1 - s)), s = sigmoid(x).
template <typename T>
__global__ void swish_bwd(const T* dy, const T* x, T* dx, long long n) {
    using A = acc_t<T>;
    HCTR_GRID_STRIDE_LOOP(i, n) {
        const A v = hctr_load(x, i);
        const A s = stable_sigmoid(v);
        hctr_store(dx, i, hctr_load(dy, i) * s * (A(1) + v * (A(1) - s)));
    }
}
