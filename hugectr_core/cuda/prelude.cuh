// hugectr-core CUDA prelude: prepended by hugectr_core.kernels.KernelModule to every plugin's kernels.cu.
// Gives fp16 support (cuda_fp16.h), a grid-stride loop and the accumulate type: kernels load T,
// compute in acc_t<T> (float for __half, T otherwise) and store T.
#include <cuda_fp16.h>
#ifndef HUGECTR_PRELUDE
#define HUGECTR_PRELUDE
#define HCTR_GRID_STRIDE_LOOP(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
         i += (long long)blockDim.x * gridDim.x)
template <typename T> struct HctrAcc { using type = T; };
template <> struct HctrAcc<__half> { using type = float; };
template <typename T> using acc_t = typename HctrAcc<T>::type;
template <typename T> __device__ __forceinline__ acc_t<T> hctr_load(const T* p, long long i) {
    return static_cast<acc_t<T>>(p[i]);
}
template <typename T> __device__ __forceinline__ void hctr_store(T* p, long long i, acc_t<T> v) {
    p[i] = static_cast<T>(v);
}
#endif
