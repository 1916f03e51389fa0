// CUDA kernels of hugectr-layers-dense: the non-GEMM parts of InnerProduct and MLP.
//
// The core prelude (hugectr_core/cuda/prelude.cuh) is prepended by KernelModule: it gives
// HCTR_GRID_STRIDE_LOOP, acc_t<T> (float for __half, T otherwise), hctr_load and hctr_store.
// Every kernel loads T, computes in acc_t<T> and stores T; T is float, double or __half
// (instantiated by name from kernels.py, e.g. "bias_act_fwd<__half>").
//
// Axis letters: m rows (batch, or batch*slots for 3D inputs), n output width (columns).
// Every array is C-contiguous, row-major: element (r, c) of an (m, n) array sits at r*n + c.
// Launch contract (see kernels.py):
//   bias_act_fwd<T>: 1D grid-stride over m*n elements, any grid/block size.
//   relu_bwd<T>:     1D grid-stride over `total` elements, any grid/block size.
//   bias_grad<T>:    blockDim.x must be exactly 256, `cols` a power of two <= 32 (columns per
//                    tile, 256/cols row lanes); grid-stride over tiles, any grid size. No atomics:
//                    each column is summed by the lanes of one block, then reduced in shared
//                    memory, so the result is deterministic. kernels.py uses it for narrow
//                    outputs (n < 32) only; wider bias gradients are a GEMM ones(1, m) @ dy.
//   relu_bias_bwd<T>: fused backward of relu(x @ W + b), for stages with both ReLU and bias.
//                    blockDim.x must be exactly 256, `cols` as for bias_grad; grid.y = P row blocks,
//                    block y covering rows [y * rows_per_block, (y + 1) * rows_per_block) (the launcher
//                    makes P * rows_per_block >= m); grid.x any size (grid-stride over column tiles).
//                    Writes dx = dy * (y > 0) and, per row block, one row of column sums of dx into
//                    partials_pn (P, n), acc_t<T>. No atomics: deterministic.
//   bias_partials_sum<T>: 1D grid-stride over the n columns; db[c] = sum over the P partial rows,
//                    in a fixed order (deterministic). Second level of the fused bias gradient.
//   bias_act_fwd_v16<T>, relu_bias_bwd_v16<T>: the same two operations with 16-byte loads and stores
//                    (kVec<T> = 16 / sizeof(T) elements: 4 float, 8 __half, 2 double). Only for n a
//                    multiple of kVec<T> and every pointer 16-byte aligned (kernels.py checks). The
//                    scalar kernels moved 2- or 4-byte words and ran at half the card's bandwidth.
//                    bias_act_fwd_v16: 1D grid-stride over the m * n / kVec vectors.
//                    relu_bias_bwd_v16: the launch contract of relu_bias_bwd with tiles of 32 columns:
//                    32 / kVec column threads x 8 * kVec row lanes per 256-thread block, so the grid
//                    and the (P, n) partials are those of the scalar kernel.

template <typename T>
__global__ void bias_act_fwd(T* y_mn, const T* bias_n, int has_bias, int relu, long long m, long long n) {
    HCTR_GRID_STRIDE_LOOP(i, m * n) {
        acc_t<T> v = hctr_load(y_mn, i);
        if (has_bias) {
            v += hctr_load(bias_n, i % n);
        }
        if (relu) {
            v = v > acc_t<T>(0) ? v : acc_t<T>(0);
        }
        hctr_store(y_mn, i, v);
    }
}

// dx = dy where y > 0, else 0 (y is the ReLU output; y > 0 exactly where its input was > 0).
// dx may alias dy.
template <typename T>
__global__ void relu_bwd(const T* dy, const T* y, T* dx, long long total) {
    HCTR_GRID_STRIDE_LOOP(i, total) {
        hctr_store(dx, i, hctr_load(y, i) > acc_t<T>(0) ? hctr_load(dy, i) : acc_t<T>(0));
    }
}

// db[c] = sum over rows r of dy[r, c], accumulated in acc_t<T>.
// A block covers a tile of COLS adjacent columns with 256/COLS row lanes each. COLS is a
// compile-time constant (so the row loop has a constant stride); the launcher picks it as the
// smallest power of two >= n, capped at 32, so narrow outputs such as N=1 keep all 256 threads busy.
template <typename T, int COLS>
__device__ void bias_grad_tiles(const T* dy_mn, T* db_n, long long m, long long n) {
    using A = acc_t<T>;
    constexpr int kLanes = 256 / COLS;  // blockDim.x == 256
    __shared__ A partial[256];
    const int col_in_tile = threadIdx.x % COLS;
    const int lane = threadIdx.x / COLS;
    const long long tiles = (n + COLS - 1) / COLS;
    // The tile loop depends only on blockIdx, so every thread of a block reaches each barrier.
    for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const long long col = tile * COLS + col_in_tile;
        A acc = A(0);
        if (col < n) {
            for (long long r = lane; r < m; r += kLanes) {
                acc += hctr_load(dy_mn, r * n + col);
            }
        }
        partial[threadIdx.x] = acc;
        __syncthreads();
        if (lane == 0 && col < n) {
            A sum = A(0);
            for (int l = 0; l < kLanes; ++l) {
                sum += partial[l * COLS + col_in_tile];
            }
            hctr_store(db_n, col, sum);
        }
        __syncthreads();
    }
}

template <typename T>
__global__ void bias_grad(const T* dy_mn, T* db_n, long long m, long long n, int cols) {
    switch (cols) {  // uniform across the grid: no divergence
        case 1: bias_grad_tiles<T, 1>(dy_mn, db_n, m, n); break;
        case 2: bias_grad_tiles<T, 2>(dy_mn, db_n, m, n); break;
        case 4: bias_grad_tiles<T, 4>(dy_mn, db_n, m, n); break;
        case 8: bias_grad_tiles<T, 8>(dy_mn, db_n, m, n); break;
        case 16: bias_grad_tiles<T, 16>(dy_mn, db_n, m, n); break;
        default: bias_grad_tiles<T, 32>(dy_mn, db_n, m, n); break;
    }
}

// Fused ReLU backward + first level of the bias gradient. Same tile layout as bias_grad_tiles
// (COLS adjacent columns, 256/COLS row lanes, so a warp reads 32 adjacent elements of a row), but
// each block only walks its own slice of rows and writes its column sums to partials_pn[blockIdx.y].
// dx may alias dy: every element is read and then written by the same thread.
template <typename T, int COLS>
__device__ void relu_bias_bwd_tiles(const T* dy_mn, const T* y_mn, T* dx_mn, acc_t<T>* partials_pn,
                                    long long m, long long n, long long rows_per_block) {
    using A = acc_t<T>;
    constexpr int kLanes = 256 / COLS;  // blockDim.x == 256
    __shared__ A partial[256];
    const int col_in_tile = threadIdx.x % COLS;
    const int lane = threadIdx.x / COLS;
    const long long row_begin = (long long)blockIdx.y * rows_per_block;
    const long long row_stop = row_begin + rows_per_block;
    const long long row_end = row_stop < m ? row_stop : m;
    const long long tiles = (n + COLS - 1) / COLS;
    // The tile loop depends only on blockIdx, so every thread of a block reaches each barrier.
    for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const long long col = tile * COLS + col_in_tile;
        A acc = A(0);
        if (col < n) {
            for (long long r = row_begin + lane; r < row_end; r += kLanes) {
                const long long i = r * n + col;
                const A g = hctr_load(y_mn, i) > A(0) ? hctr_load(dy_mn, i) : A(0);
                hctr_store(dx_mn, i, g);
                acc += g;  // g is exactly the stored value: dy is T, so the cast back is exact
            }
        }
        partial[threadIdx.x] = acc;
        __syncthreads();
        if (lane == 0 && col < n) {
            A sum = A(0);
            for (int l = 0; l < kLanes; ++l) {
                sum += partial[l * COLS + col_in_tile];
            }
            partials_pn[(long long)blockIdx.y * n + col] = sum;
        }
        __syncthreads();
    }
}

template <typename T>
__global__ void relu_bias_bwd(const T* dy_mn, const T* y_mn, T* dx_mn, acc_t<T>* partials_pn,
                              long long m, long long n, long long rows_per_block, int cols) {
    switch (cols) {  // uniform across the grid: no divergence
        case 1: relu_bias_bwd_tiles<T, 1>(dy_mn, y_mn, dx_mn, partials_pn, m, n, rows_per_block); break;
        case 2: relu_bias_bwd_tiles<T, 2>(dy_mn, y_mn, dx_mn, partials_pn, m, n, rows_per_block); break;
        case 4: relu_bias_bwd_tiles<T, 4>(dy_mn, y_mn, dx_mn, partials_pn, m, n, rows_per_block); break;
        case 8: relu_bias_bwd_tiles<T, 8>(dy_mn, y_mn, dx_mn, partials_pn, m, n, rows_per_block); break;
        case 16: relu_bias_bwd_tiles<T, 16>(dy_mn, y_mn, dx_mn, partials_pn, m, n, rows_per_block); break;
        default: relu_bias_bwd_tiles<T, 32>(dy_mn, y_mn, dx_mn, partials_pn, m, n, rows_per_block); break;
    }
}

// db[c] = sum over p of partials[p, c]; thread c reads column c, so a warp reads adjacent columns.
template <typename T>
__global__ void bias_partials_sum(const acc_t<T>* partials_pn, T* db_n, long long p, long long n) {
    HCTR_GRID_STRIDE_LOOP(c, n) {
        acc_t<T> sum = acc_t<T>(0);
        for (long long r = 0; r < p; ++r) {
            sum += partials_pn[r * n + c];
        }
        hctr_store(db_n, c, sum);
    }
}

// -- 16-byte vector variants ---------------------------------------------------------------------------
template <typename T> struct HctrVec { static constexpr int n = 16 / sizeof(T); };

// One 16-byte word as kVec values of T (the engine's buffers are 256-byte aligned; kernels.py checks).
template <typename T>
__device__ __forceinline__ uint4 load16(const T* p, long long vec_index) {
    return reinterpret_cast<const uint4*>(p)[vec_index];
}
template <typename T>
__device__ __forceinline__ void store16(T* p, long long vec_index, uint4 word) {
    reinterpret_cast<uint4*>(p)[vec_index] = word;
}

template <typename T>
__global__ void bias_act_fwd_v16(T* y_mn, const T* bias_n, int has_bias, int relu, long long m, long long n) {
    using A = acc_t<T>;
    constexpr int K = HctrVec<T>::n;
    const long long nv = n / K;
    HCTR_GRID_STRIDE_LOOP(i, m * nv) {
        uint4 word = load16(y_mn, i);
        T* v = reinterpret_cast<T*>(&word);
        uint4 bias_word = has_bias ? load16(bias_n, i % nv) : make_uint4(0u, 0u, 0u, 0u);
        const T* b = reinterpret_cast<const T*>(&bias_word);
#pragma unroll
        for (int k = 0; k < K; ++k) {
            A x = static_cast<A>(v[k]);
            if (has_bias) x += static_cast<A>(b[k]);
            if (relu) x = x > A(0) ? x : A(0);
            v[k] = static_cast<T>(x);
        }
        store16(y_mn, i, word);
    }
}

// Tile: 32 adjacent columns = 32 / K column threads of K values; 256 / (32 / K) row lanes. Each thread
// keeps K running column sums of its rows, then lane 0 of every column thread adds the lanes' sums in
// a fixed order (shared memory), so the partials are deterministic. dx may alias dy (read, then written,
// by the same thread).
template <typename T>
__global__ void relu_bias_bwd_v16(const T* dy_mn, const T* y_mn, T* dx_mn, acc_t<T>* partials_pn,
                                  long long m, long long n, long long rows_per_block) {
    using A = acc_t<T>;
    constexpr int K = HctrVec<T>::n;
    constexpr int kColThreads = 32 / K;
    constexpr int kLanes = 256 / kColThreads;  // blockDim.x == 256
    __shared__ A partial[256 * K];
    const int col_thread = threadIdx.x % kColThreads;
    const int lane = threadIdx.x / kColThreads;
    const long long nv = n / K;
    const long long row_begin = (long long)blockIdx.y * rows_per_block;
    const long long row_stop = row_begin + rows_per_block;
    const long long row_end = row_stop < m ? row_stop : m;
    const long long tiles = (n + 31) / 32;
    for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const long long cv = tile * kColThreads + col_thread;  // column vector: columns cv*K .. cv*K+K-1
        A acc[K];
#pragma unroll
        for (int k = 0; k < K; ++k) acc[k] = A(0);
        if (cv < nv) {
            for (long long r = row_begin + lane; r < row_end; r += kLanes) {
                const long long i = r * nv + cv;
                uint4 g_word = load16(dy_mn, i);
                const uint4 y_word = load16(y_mn, i);
                T* g = reinterpret_cast<T*>(&g_word);
                const T* y = reinterpret_cast<const T*>(&y_word);
#pragma unroll
                for (int k = 0; k < K; ++k) {
                    const A gk = static_cast<A>(y[k]) > A(0) ? static_cast<A>(g[k]) : A(0);
                    g[k] = static_cast<T>(gk);  // exact: gk is 0 or a T value
                    acc[k] += gk;
                }
                store16(dx_mn, i, g_word);
            }
        }
#pragma unroll
        for (int k = 0; k < K; ++k) partial[threadIdx.x * K + k] = acc[k];
        __syncthreads();
        if (lane == 0 && cv < nv) {
#pragma unroll
            for (int k = 0; k < K; ++k) {
                A sum = A(0);
                for (int l = 0; l < kLanes; ++l) sum += partial[(l * kColThreads + col_thread) * K + k];
                partials_pn[(long long)blockIdx.y * n + cv * K + k] = sum;
            }
        }
        __syncthreads();
    }
}
