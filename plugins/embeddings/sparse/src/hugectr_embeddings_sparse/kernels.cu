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
// gather_combine and segmented_reduce use no atomics: one thread per output element.

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

// grad_uv[u, c] = sum over j in [starts_u[u], starts_u[u+1]) of top_grad_sv[seg_j[j], c] * scale_j[j]
// (j runs over key occurrences sorted by row, so each unique row owns one contiguous run).
template <typename T>
__global__ void segmented_reduce(const T* top_grad_sv, const long long* seg_j, const T* scale_j,
                                 const long long* starts_u, long long n_unique, long long v, T* grad_uv) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_unique * v;
       i += (long long)blockDim.x * gridDim.x) {
    const long long u = i / v, c = i % v;
    T acc = T(0);
    for (long long j = starts_u[u]; j < starts_u[u + 1]; ++j) acc += top_grad_sv[seg_j[j] * v + c] * scale_j[j];
    grad_uv[i] = acc;
  }
}
