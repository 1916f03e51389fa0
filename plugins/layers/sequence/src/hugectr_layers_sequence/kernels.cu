// CUDA kernels of hugectr-layers-sequence: (masked) softmax, sequence mask, GRU step gates.
//
// Axis letters: r softmax row (all axes but the last, folded), c column (last axis, n_cols);
// b batch, i/j query/key position (Lf/Lt); t time step, k hidden unit (N), g = 3N gate
// pre-activations in cuDNN order r, z, n.
// Launch contract (see kernels.py): 1D grid-stride loops (HCTR_GRID_STRIDE_LOOP from the core's
// prelude). softmax_fwd/softmax_bwd: one logical thread per row (n = rows), looping over the row,
// so y may alias x and dx may alias dy (each thread reads an element before writing it).
// sequence_mask: one thread per output element (n = B*Lf*Lt). gru_fwd_step / gru_bwd_step: one
// thread per (b, k) (n = B*N). No atomics, no shared memory: deterministic. T is float, double or
// __half (instantiated by name); arithmetic in acc_t<T>; scalar factors are passed as double.

#define HCTR_MASK_PENALTY 10000

// Softmax of z = x*factor - (1 - mask)*10000 over each row. A mask row is shared by `heads`
// consecutive groups of `seq_from` rows (mask (B,1,Sf,St) against x (B,heads,Sf,St)); with
// heads = 1 the mask has x's shape. has_mask = 0: z = x*factor, mask is never read.
template <typename T>
__global__ void softmax_fwd(const T* x, const T* mask, int has_mask, double factor, long long rows, long long cols,
                            long long heads, long long seq_from, T* y) {
    using A = acc_t<T>;
    const A f = A(factor);
    HCTR_GRID_STRIDE_LOOP(r, rows) {
        const long long mrow = (r / (heads * seq_from)) * seq_from + r % seq_from;
        const T* xr = x + r * cols;
        const T* mr = mask + mrow * cols;
        A zmax = A(0);
        for (long long c = 0; c < cols; ++c) {
            A z = hctr_load(xr, c) * f;
            if (has_mask) z -= (A(1) - hctr_load(mr, c)) * A(HCTR_MASK_PENALTY);
            zmax = (c == 0 || z > zmax) ? z : zmax;
        }
        A sum = A(0);
        for (long long c = 0; c < cols; ++c) {
            A z = hctr_load(xr, c) * f;
            if (has_mask) z -= (A(1) - hctr_load(mr, c)) * A(HCTR_MASK_PENALTY);
            sum += exp(z - zmax);
        }
        for (long long c = 0; c < cols; ++c) {
            A z = hctr_load(xr, c) * f;
            if (has_mask) z -= (A(1) - hctr_load(mr, c)) * A(HCTR_MASK_PENALTY);
            hctr_store(y, r * cols + c, exp(z - zmax) / sum);
        }
    }
}

template <typename T>
__global__ void softmax_bwd(const T* dy, const T* y, double factor, long long rows, long long cols, T* dx) {
    using A = acc_t<T>;
    const A f = A(factor);
    HCTR_GRID_STRIDE_LOOP(r, rows) {
        A dot = A(0);
        for (long long c = 0; c < cols; ++c) dot += hctr_load(dy, r * cols + c) * hctr_load(y, r * cols + c);
        for (long long c = 0; c < cols; ++c) {
            const A yc = hctr_load(y, r * cols + c);
            hctr_store(dx, r * cols + c, f * yc * (hctr_load(dy, r * cols + c) - dot));
        }
    }
}

// out[b, 0, i, j] = (i < len_from[b] && j < len_to[b]); lengths are real numbers of T.
template <typename T>
__global__ void sequence_mask(const T* len_from, const T* len_to, long long B, long long Lf, long long Lt, T* out) {
    using A = acc_t<T>;
    HCTR_GRID_STRIDE_LOOP(e, B * Lf * Lt) {
        const long long b = e / (Lf * Lt), i = (e / Lt) % Lf, j = e % Lt;
        const bool keep = A(i) < hctr_load(len_from, b) && A(j) < hctr_load(len_to, b);
        hctr_store(out, e, keep ? A(1) : A(0));
    }
}

template <typename A>
__device__ __forceinline__ A hctr_sigmoid(A v) { return A(1) / (A(1) + exp(-v)); }

// xg (B,T,3N) = x @ Wx, hg (B,3N) = h_prev @ Wh (no biases); gates (B,4N) <- r, z, n, hn; h (B,N).
template <typename T>
__global__ void gru_fwd_step(const T* xg, const T* hg, const T* bx, const T* bh, const T* h_prev, long long B,
                             long long T_steps, long long N, long long t, T* gates, T* h) {
    using A = acc_t<T>;
    HCTR_GRID_STRIDE_LOOP(e, B * N) {
        const long long b = e / N, k = e % N;
        const T* xr = xg + (b * T_steps + t) * 3 * N;
        const T* hr = hg + b * 3 * N;
        const A r = hctr_sigmoid(hctr_load(xr, k) + hctr_load(bx, k) + hctr_load(hr, k) + hctr_load(bh, k));
        const A z = hctr_sigmoid(hctr_load(xr, N + k) + hctr_load(bx, N + k) + hctr_load(hr, N + k) +
                                 hctr_load(bh, N + k));
        const A hn = hctr_load(hr, 2 * N + k) + hctr_load(bh, 2 * N + k);
        const A n = tanh(hctr_load(xr, 2 * N + k) + hctr_load(bx, 2 * N + k) + r * hn);
        T* gr = gates + b * 4 * N;
        hctr_store(gr, k, r);
        hctr_store(gr, N + k, z);
        hctr_store(gr, 2 * N + k, n);
        hctr_store(gr, 3 * N + k, hn);
        hctr_store(h, e, (A(1) - z) * n + z * hctr_load(h_prev, e));
    }
}

// dh (B,N): in dL/dh_t from step t+1 (dy (B,T,N) added here), out dL/dh_{t-1} via z*h_prev only.
// dxg (B,T,3N) at step t <- dr, dz, dn; dhg (B,3N) <- dr, dz, dn*r (pre-activation gradients).
template <typename T>
__global__ void gru_bwd_step(const T* dy, const T* gates, const T* h_prev, long long B, long long T_steps,
                             long long N, long long t, T* dh, T* dxg, T* dhg) {
    using A = acc_t<T>;
    HCTR_GRID_STRIDE_LOOP(e, B * N) {
        const long long b = e / N, k = e % N;
        const T* gr = gates + b * 4 * N;
        const A r = hctr_load(gr, k), z = hctr_load(gr, N + k), n = hctr_load(gr, 2 * N + k),
                hn = hctr_load(gr, 3 * N + k);
        const A d = hctr_load(dh, e) + hctr_load(dy, (b * T_steps + t) * N + k);
        const A dn = d * (A(1) - z) * (A(1) - n * n);
        const A dz = d * (hctr_load(h_prev, e) - n) * z * (A(1) - z);
        const A dr = dn * hn * r * (A(1) - r);
        T* dxr = dxg + (b * T_steps + t) * 3 * N;
        T* dhr = dhg + b * 3 * N;
        hctr_store(dxr, k, dr);
        hctr_store(dxr, N + k, dz);
        hctr_store(dxr, 2 * N + k, dn);
        hctr_store(dhr, k, dr);
        hctr_store(dhr, N + k, dz);
        hctr_store(dhr, 2 * N + k, dn * r);
        hctr_store(dh, e, d * z);
    }
}
