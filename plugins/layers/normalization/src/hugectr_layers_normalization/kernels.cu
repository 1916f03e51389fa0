// CUDA kernels of hugectr-layers-normalization: BatchNorm and LayerNorm.
//
// Axis letters: b batch rows, c features (BatchNorm, x is (B, C) row-major); r rows, d the
// normalised last dim (LayerNorm, x is (R, D) row-major, any leading dims folded into R).
// Launch contract (see kernels.py): 1D grid-stride loops; bn_* kernels run one logical thread per
// feature c (n = C), ln_fwd / ln_bwd_data one per row r (n = R), ln_bwd_params one per column d
// (n = D). Each thread loops over its row/column, so any grid and block size is correct; no
// atomics, no shared memory, deterministic. The prelude (hugectr_core/cuda/prelude.cuh) gives
// HCTR_GRID_STRIDE_LOOP, acc_t<T> and hctr_load/hctr_store: T is float, double or __half, all
// arithmetic is in acc_t<T>. Saved statistics (mean, inv_std) are double in every precision.
// Variance is the biased batch/row variance, eps is inside the sqrt.

template <typename T>
__global__ void bn_stats(const T* x, long long B, long long C, double eps, double* mean, double* inv_std) {
    using A = acc_t<T>;
    HCTR_GRID_STRIDE_LOOP(c, C) {
        A sum = A(0);
        for (long long b = 0; b < B; ++b) sum += hctr_load(x, b * C + c);
        const A mu = sum / A(B);
        A sq = A(0);
        for (long long b = 0; b < B; ++b) {
            const A d = hctr_load(x, b * C + c) - mu;
            sq += d * d;
        }
        mean[c] = (double)mu;
        inv_std[c] = (double)(A(1) / sqrt(sq / A(B) + A(eps)));
    }
}

template <typename T>
__global__ void bn_apply(const T* x, const double* mean, const double* inv_std, const T* gamma, const T* beta,
                         long long B, long long C, T* y) {
    using A = acc_t<T>;
    HCTR_GRID_STRIDE_LOOP(c, C) {
        const A mu = A(mean[c]), r = A(inv_std[c]);
        const A g = hctr_load(gamma, c), be = hctr_load(beta, c);
        for (long long b = 0; b < B; ++b) hctr_store(y, b * C + c, g * ((hctr_load(x, b * C + c) - mu) * r) + be);
    }
}

// dx is written only when write_dx != 0 (the caller passes any valid pointer otherwise).
template <typename T>
__global__ void bn_bwd(const T* dy, const T* x, const double* mean, const double* inv_std, const T* gamma,
                       long long B, long long C, int write_dx, T* dx, T* dgamma, T* dbeta) {
    using A = acc_t<T>;
    HCTR_GRID_STRIDE_LOOP(c, C) {
        const A mu = A(mean[c]), r = A(inv_std[c]), gm = hctr_load(gamma, c);
        A sum_dy = A(0), sum_dy_xhat = A(0);
        for (long long b = 0; b < B; ++b) {
            const A d = hctr_load(dy, b * C + c);
            sum_dy += d;
            sum_dy_xhat += d * (hctr_load(x, b * C + c) - mu) * r;
        }
        hctr_store(dgamma, c, sum_dy_xhat);
        hctr_store(dbeta, c, sum_dy);
        if (write_dx) {
            const A mean_g = gm * sum_dy / A(B), mean_gx = gm * sum_dy_xhat / A(B);
            for (long long b = 0; b < B; ++b) {
                const A xhat = (hctr_load(x, b * C + c) - mu) * r;
                hctr_store(dx, b * C + c, r * (gm * hctr_load(dy, b * C + c) - mean_g - xhat * mean_gx));
            }
        }
    }
}

template <typename T>
__global__ void ln_fwd(const T* x, const T* gamma, const T* beta, double eps, long long R, long long D,
                       double* mean, double* inv_std, T* y) {
    using A = acc_t<T>;
    HCTR_GRID_STRIDE_LOOP(r, R) {
        const T* row = x + r * D;
        A sum = A(0);
        for (long long d = 0; d < D; ++d) sum += hctr_load(row, d);
        const A mu = sum / A(D);
        A sq = A(0);
        for (long long d = 0; d < D; ++d) {
            const A v = hctr_load(row, d) - mu;
            sq += v * v;
        }
        const A rs = A(1) / sqrt(sq / A(D) + A(eps));
        mean[r] = (double)mu;
        inv_std[r] = (double)rs;
        for (long long d = 0; d < D; ++d)
            hctr_store(y, r * D + d, hctr_load(gamma, d) * ((hctr_load(row, d) - mu) * rs) + hctr_load(beta, d));
    }
}

template <typename T>
__global__ void ln_bwd_data(const T* dy, const T* x, const double* mean, const double* inv_std, const T* gamma,
                            long long R, long long D, T* dx) {
    using A = acc_t<T>;
    HCTR_GRID_STRIDE_LOOP(r, R) {
        const A mu = A(mean[r]), rs = A(inv_std[r]);
        A sum_g = A(0), sum_gx = A(0);
        for (long long d = 0; d < D; ++d) {
            const A g = hctr_load(dy, r * D + d) * hctr_load(gamma, d);
            sum_g += g;
            sum_gx += g * (hctr_load(x, r * D + d) - mu) * rs;
        }
        const A mean_g = sum_g / A(D), mean_gx = sum_gx / A(D);
        for (long long d = 0; d < D; ++d) {
            const A g = hctr_load(dy, r * D + d) * hctr_load(gamma, d);
            const A xhat = (hctr_load(x, r * D + d) - mu) * rs;
            hctr_store(dx, r * D + d, rs * (g - mean_g - xhat * mean_gx));
        }
    }
}

template <typename T>
__global__ void ln_bwd_params(const T* dy, const T* x, const double* mean, const double* inv_std,
                              long long R, long long D, T* dgamma, T* dbeta) {
    using A = acc_t<T>;
    HCTR_GRID_STRIDE_LOOP(d, D) {
        A sum_dy = A(0), sum_dy_xhat = A(0);
        for (long long r = 0; r < R; ++r) {
            const A g = hctr_load(dy, r * D + d);
            sum_dy += g;
            sum_dy_xhat += g * (hctr_load(x, r * D + d) - A(mean[r])) * A(inv_std[r]);
        }
        hctr_store(dgamma, d, sum_dy_xhat);
        hctr_store(dbeta, d, sum_dy);
    }
}
