// Kernels of hugectr-embeddings-sparse: GPU hash table, lookup+combine, segmented gradient reduction.
// Device code only. Launchers: kernels.py; NumPy twins: reference.py.
//
// Launch contract: 1-D grid-stride loops; any grid/block size is correct (kernels.py uses 256).
// Axis letters: k = key occurrences of a batch (CSR values), s = (sample, slot) segments
// (B*slot_num, sample-major), v = embedding vector element, x = table rows (capacity),
// h = hash slots (power of two, at least twice the capacity), u = unique rows of a batch.
//
// Hash table (open addressing, linear probing): slot_keys_h holds keys as unsigned 64-bit integers,
// EMPTY_KEY where free; slot_rows_h the row of that key (-1 while a row is being published, -2 when
// the row counter ran past max_rows: the host checks the counter and reports a full table).
// ATOMICS: hash_insert_or_find claims slots with atomicCAS and takes new rows from an atomicAdd
// counter, so the row a new key receives depends on thread timing (row ids are not deterministic;
// the key -> row mapping is always consistent). A thread that finds its key claimed by another
// thread spins until the row is published (safe with independent thread scheduling, sm_70+).
// gather_combine, segmented_reduce_* and adam_lazy_update_rows use no atomics: one thread per output element
// (adam_lazy_update_rows needs unique rows_u).

#define EMPTY_KEY 0xFFFFFFFFFFFFFFFFULL

__device__ __forceinline__ unsigned long long mix64(unsigned long long k) {
  // MurmurHash3 fmix64 finaliser: spreads sequential keys over the slots.
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

template <typename K>
__global__ void hash_insert_or_find(unsigned long long* slot_keys_h, long long* slot_rows_h, long long* row_keys_x,
                                    unsigned long long* counter, const K* keys_k, long long n, long long n_slots,
                                    long long max_rows, long long* rows_k) {
  const unsigned long long mask = (unsigned long long)n_slots - 1ULL;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x) {
    const unsigned long long key = (unsigned long long)keys_k[i];
    unsigned long long h = mix64(key) & mask;
    long long row = -3;  // no free slot found (cannot happen at load factor <= 1/2)
    for (long long probe = 0; probe < n_slots; ++probe) {
      const unsigned long long prev = atomicCAS(&slot_keys_h[h], EMPTY_KEY, key);
      if (prev == EMPTY_KEY) {  // this thread inserted the key: take the next free row
        const unsigned long long r = atomicAdd(counter, 1ULL);
        row = r < (unsigned long long)max_rows ? (long long)r : -2LL;
        if (row >= 0) row_keys_x[row] = (long long)key;
        __threadfence();
        atomicExch((unsigned long long*)&slot_rows_h[h], (unsigned long long)row);
        break;
      }
      if (prev == key) {  // already present (maybe inserted by another thread right now)
        volatile long long* published = slot_rows_h + h;
        while ((row = *published) == -1LL) {
        }
        break;
      }
      h = (h + 1ULL) & mask;
    }
    rows_k[i] = row;
  }
}

template <typename K>
__global__ void hash_find(const unsigned long long* slot_keys_h, const long long* slot_rows_h, const K* keys_k,
                          long long n, long long n_slots, long long* rows_k) {
  const unsigned long long mask = (unsigned long long)n_slots - 1ULL;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x) {
    const unsigned long long key = (unsigned long long)keys_k[i];
    unsigned long long h = mix64(key) & mask;
    long long row = -1;
    for (long long probe = 0; probe < n_slots; ++probe) {
      const unsigned long long k = slot_keys_h[h];
      if (k == key) {
        row = slot_rows_h[h];
        break;
      }
      if (k == EMPTY_KEY) break;
      h = (h + 1ULL) & mask;
    }
    rows_k[i] = row < 0 ? -1LL : row;
  }
}

// out_sv[s, c] = combine over k in [offsets_s[s], offsets_s[s+1]) of table_xv[rows_k[k], c];
// rows < 0 (unseen keys at evaluation) add zero; mean divides by the slot's key count (0 keys -> 0).
template <typename T>
__global__ void gather_combine(const T* table_xv, const long long* rows_k, const long long* offsets_s,
                               long long n_seg, long long v, int mean, T* out_sv) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_seg * v;
       i += (long long)blockDim.x * gridDim.x) {
    const long long s = i / v, c = i % v;
    const long long start = offsets_s[s], end = offsets_s[s + 1];
    T acc = T(0);
    for (long long k = start; k < end; ++k) {
      const long long r = rows_k[k];
      if (r >= 0) acc += table_xv[r * v + c];
    }
    if (mean && end > start) acc /= T(end - start);
    out_sv[i] = acc;
  }
}

// float32 tables whose vector size is a multiple of 4: the same gather with 16-byte loads and stores
// (q = v / 4 float4 columns per row): a quarter of the threads and index loads, full-width transactions.
__device__ __forceinline__ void add4(float4& a, const float4 b, float w) {
  a.x += b.x * w; a.y += b.y * w; a.z += b.z * w; a.w += b.w * w;
}

// Four consecutive values of a float (16-byte) or __half (8-byte) row as a float4: the f4 kernels read
// the gradient and write the lookup in the dense network's dtype, so mixed precision needs no fp32
// staging copy; fp16 values round once, to nearest, exactly as the staging cast did.
__device__ __forceinline__ float4 load4(const float* p, long long i4) { return reinterpret_cast<const float4*>(p)[i4]; }
__device__ __forceinline__ float4 load4(const __half* p, long long i4) {
  const uint2 w = reinterpret_cast<const uint2*>(p)[i4];
  const float2 lo = __half22float2(*reinterpret_cast<const __half2*>(&w.x));
  const float2 hi = __half22float2(*reinterpret_cast<const __half2*>(&w.y));
  return make_float4(lo.x, lo.y, hi.x, hi.y);
}
__device__ __forceinline__ void store4(float* p, long long i4, float4 v) { reinterpret_cast<float4*>(p)[i4] = v; }
__device__ __forceinline__ void store4(__half* p, long long i4, float4 v) {
  __half2 lo = __floats2half2_rn(v.x, v.y), hi = __floats2half2_rn(v.z, v.w);
  uint2 w;
  w.x = *reinterpret_cast<const unsigned int*>(&lo);
  w.y = *reinterpret_cast<const unsigned int*>(&hi);
  reinterpret_cast<uint2*>(p)[i4] = w;
}

// TO: the output's element type (float or __half); the sum is float either way.
template <typename TO>
__global__ void gather_combine_f4(const float4* table_xq, const long long* rows_k, const long long* offsets_s,
                                  long long n_seg, long long q, int mean, TO* out_sv) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_seg * q;
       i += (long long)blockDim.x * gridDim.x) {
    const long long s = i / q, c = i - s * q;
    const long long start = offsets_s[s], end = offsets_s[s + 1];
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (long long k = start; k < end; ++k) {
      const long long r = rows_k[k];
      if (r >= 0) add4(acc, table_xq[r * q + c], 1.f);
    }
    if (mean && end > start) {
      const float inv = 1.f / float(end - start);
      acc.x *= inv; acc.y *= inv; acc.z *= inv; acc.w *= inv;
    }
    store4(out_sv, i, acc);
  }
}

template <typename TG>
__global__ void segmented_reduce_chunks_f4(const TG* top_grad_sv, const long long* seg_j, const float* scale_j,
                                           const long long* starts_u, const long long* chunk_start_u,
                                           long long n_unique, long long max_chunks, long long chunk, long long q,
                                           float4* partial_qq);
__global__ void segmented_reduce_merge_f4(const float4* partial_qq, const long long* chunk_start_u,
                                          long long n_unique, long long q, float4* grad_uq);

// grad_uv[u, c] = sum over j in [starts_u[u], starts_u[u+1]) of top_grad_sv[seg_j[j], c] * scale_j[j]
// (j runs over key occurrences sorted by row, so each unique row owns one contiguous run).
// Skewed keys make some runs very long (a hot row of a power-law slot occurs thousands of times per
// batch), so the sum is done in two passes without atomics: segmented_reduce_chunks sums chunks of at
// most `chunk` occurrences (chunk_start_u[u] = first chunk of row u, an exclusive prefix sum of
// ceil(len_u / chunk); thread (q, c) finds its row by binary search), then segmented_reduce_merge adds
// each row's chunk partials. Threads past the real chunk count (the launch uses an upper bound) return.
__device__ __forceinline__ long long upper_row(const long long* chunk_start_u, long long n_unique, long long q) {
  long long lo = 0, hi = n_unique;  // last u with chunk_start_u[u] <= q
  while (hi - lo > 1) {
    const long long mid = (lo + hi) >> 1;
    if (chunk_start_u[mid] <= q) lo = mid; else hi = mid;
  }
  return lo;
}

template <typename T>
__global__ void segmented_reduce_chunks(const T* top_grad_sv, const long long* seg_j, const T* scale_j,
                                        const long long* starts_u, const long long* chunk_start_u,
                                        long long n_unique, long long max_chunks, long long chunk, long long v,
                                        T* partial_qv) {
  const long long n_chunks = chunk_start_u[n_unique];
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < max_chunks * v;
       i += (long long)blockDim.x * gridDim.x) {
    const long long q = i / v, c = i % v;
    if (q >= n_chunks) continue;
    const long long u = upper_row(chunk_start_u, n_unique, q);
    const long long j0 = starts_u[u] + (q - chunk_start_u[u]) * chunk;
    const long long j1 = min(j0 + chunk, starts_u[u + 1]);
    T acc = T(0);
    for (long long j = j0; j < j1; ++j) acc += top_grad_sv[seg_j[j] * v + c] * scale_j[j];
    partial_qv[q * v + c] = acc;
  }
}

template <typename T>
__global__ void segmented_reduce_merge(const T* partial_qv, const long long* chunk_start_u, long long n_unique,
                                       long long v, T* grad_uv) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_unique * v;
       i += (long long)blockDim.x * gridDim.x) {
    const long long u = i / v, c = i % v;
    T acc = T(0);
    for (long long q = chunk_start_u[u]; q < chunk_start_u[u + 1]; ++q) acc += partial_qv[q * v + c];
    grad_uv[i] = acc;
  }
}

// TG: the top gradient's element type (float or __half); partial sums are float.
template <typename TG>
__global__ void segmented_reduce_chunks_f4(const TG* top_grad_sv, const long long* seg_j, const float* scale_j,
                                           const long long* starts_u, const long long* chunk_start_u,
                                           long long n_unique, long long max_chunks, long long chunk, long long q,
                                           float4* partial_qq) {
  const long long n_chunks = chunk_start_u[n_unique];
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < max_chunks * q;
       i += (long long)blockDim.x * gridDim.x) {
    const long long p = i / q, c = i - p * q;
    if (p >= n_chunks) continue;
    const long long u = upper_row(chunk_start_u, n_unique, p);
    const long long j0 = starts_u[u] + (p - chunk_start_u[u]) * chunk;
    const long long j1 = min(j0 + chunk, starts_u[u + 1]);
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (long long j = j0; j < j1; ++j) add4(acc, load4(top_grad_sv, seg_j[j] * q + c), scale_j[j]);
    partial_qq[p * q + c] = acc;
  }
}

__global__ void segmented_reduce_merge_f4(const float4* partial_qq, const long long* chunk_start_u,
                                          long long n_unique, long long q, float4* grad_uq) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_unique * q;
       i += (long long)blockDim.x * gridDim.x) {
    const long long u = i / q, c = i - u * q;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (long long p = chunk_start_u[u]; p < chunk_start_u[u + 1]; ++p) add4(acc, partial_qq[p * q + c], 1.f);
    grad_uq[i] = acc;
  }
}

// Fused SGD on the unique rows (no grad_uv round trip): table[rows_u[u], c] -= lr_s * sum of u's chunks,
// lr_s = lr / scaler. rows_u are unique, so every element has one writer.
template <typename T>
__global__ void segmented_reduce_merge_sgd(const T* partial_qv, const long long* chunk_start_u, long long n_unique,
                                           long long v, const long long* rows_u, T* table_xv, T lr_s) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_unique * v;
       i += (long long)blockDim.x * gridDim.x) {
    const long long u = i / v, c = i % v;
    T acc = T(0);
    for (long long q = chunk_start_u[u]; q < chunk_start_u[u + 1]; ++q) acc += partial_qv[q * v + c];
    table_xv[rows_u[u] * v + c] -= lr_s * acc;
  }
}

__global__ void segmented_reduce_merge_sgd_f4(const float4* partial_qq, const long long* chunk_start_u,
                                              long long n_unique, long long q, const long long* rows_u,
                                              float4* table_xq, float lr_s) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_unique * q;
       i += (long long)blockDim.x * gridDim.x) {
    const long long u = i / q, c = i - u * q;
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    for (long long p = chunk_start_u[u]; p < chunk_start_u[u + 1]; ++p) add4(acc, partial_qq[p * q + c], 1.f);
    float4 w = table_xq[rows_u[u] * q + c];
    add4(w, acc, -lr_s);
    table_xq[rows_u[u] * q + c] = w;
  }
}

// Adam with Update_t.LazyGlobal (formats.md 3.5, HugeCTR's opt_adam_kernel_lazy), element (u, c) of the
// unique touched rows: p = stamps_xv (step of the last touch, 1 initially), k = step - p skipped steps;
// w -= lr/(1-b1) * sqrt(1-b2^p)/(1-b1^p) * (1-b1^k) * m/(sqrt(v)+eps) with the old m, v; then
// m = b1^k m + (1-b1) g, v = b2^k v + (1-b2) g^2, p = step. g = grad_uv * inv_scaler.
template <typename T>
__global__ void adam_lazy_update_rows(T* table_xv, T* m_xv, T* v_xv, long long* stamps_xv, const long long* rows_u,
                                      const T* grad_uv, long long n_unique, long long v, T lr, long long step,
                                      T beta1, T beta2, T eps, T inv_scaler) {
  HCTR_GRID_STRIDE_LOOP(i, n_unique * v) {
    const long long at = rows_u[i / v] * v + i % v;
    const long long prev = stamps_xv[at];
    const T skipped = T(step - prev);
    const T b1_skipped = pow(beta1, skipped);
    const T alpha = lr / (T(1) - beta1) * sqrt(T(1) - pow(beta2, T(prev))) / (T(1) - pow(beta1, T(prev))) *
                    (T(1) - b1_skipped);
    const T m_old = m_xv[at], v_old = v_xv[at];
    const T g = grad_uv[i] * inv_scaler;
    table_xv[at] = table_xv[at] - alpha * m_old / (sqrt(v_old) + eps);
    m_xv[at] = b1_skipped * m_old + (T(1) - beta1) * g;
    v_xv[at] = pow(beta2, skipped) * v_old + (T(1) - beta2) * g * g;
    stamps_xv[at] = step;
  }
}

// Values of the rows the last insert gave out, [*counter_before, min(*counter_after, max_rows)), from
// (seed, key, column) alone: the twin of embedding.key_uniform (splitmix64 of key * v + c xor seed,
// U(-limit, limit) computed in double, stored as float). The bounds are read on the device, so the
// insert needs no host sync; the grid strides over the new rows only (none in a steady state).
// limit_per_slot (nullable): HugeCTR's per-slot bound, indexed by row_slot_x[row].
__global__ void init_new_rows(const long long* row_keys_x, const unsigned long long* counter_before,
                              const unsigned long long* counter_after, long long max_rows, long long v,
                              unsigned long long seed, double limit, const double* limit_per_slot,
                              const long long* row_slot_x, float* table_xv) {
  const long long before = (long long)*counter_before;
  const long long after_raw = (long long)*counter_after;
  const long long after = after_raw < max_rows ? after_raw : max_rows;
  const long long n_new = after > before ? after - before : 0;
  HCTR_GRID_STRIDE_LOOP(i, n_new * v) {
    const long long row = before + i / v, c = i % v;
    unsigned long long x = (unsigned long long)row_keys_x[row] * (unsigned long long)v + (unsigned long long)c;
    x = (x ^ seed) + 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    x = x ^ (x >> 31);
    const double unit = (double)(x >> 11) * (1.0 / 9007199254740992.0);
    const double bound = limit_per_slot != nullptr ? limit_per_slot[row_slot_x[row]] : limit;
    table_xv[row * v + c] = (float)((2.0 * unit - 1.0) * bound);
  }
}
