// Kernels of hugectr-embeddings-collection (device code only; launchers: kernels.py, twins: reference.py).
// The sum/mean lookup, the gradient reduction and the optimizer updates are the sparse plugin's kernels.
//
// Launch contract: 1-D grid-stride loop (HCTR_GRID_STRIDE_LOOP from the prelude), any grid/block size.
// Axis letters: b = samples, p = key position within a sample (< hotness), e = embedding vector element,
// k = key occurrences (CSR values), x = table rows. No atomics: one thread per output element.

// out_bpe[b, p, e] = table_xe[rows_k[offsets_b[b] + p], e] when p < the sample's key count and the row is
// >= 0, else 0 (combiner "concat": the output is (B, 1, hotness * ev)).
template <typename T>
__global__ void gather_concat(const T* table_xe, const long long* rows_k, const long long* offsets_b,
                              long long n_samples, long long hotness, long long ev, T* out_bpe) {
  HCTR_GRID_STRIDE_LOOP(i, n_samples * hotness * ev) {
    const long long e = i % ev, p = (i / ev) % hotness, b = i / (ev * hotness);
    const long long k = offsets_b[b] + p;
    T value = T(0);
    if (k < offsets_b[b + 1]) {
      const long long r = rows_k[k];
      if (r >= 0) value = table_xe[r * ev + e];
    }
    out_bpe[i] = value;
  }
}
