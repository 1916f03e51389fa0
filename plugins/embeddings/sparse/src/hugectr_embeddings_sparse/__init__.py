"""HugeCTR's legacy hash embeddings for hugectr-core (formats.md 1.7, 2.5, 3.5, 3.8)."""
from .embedding import DistributedSlotSparseEmbeddingHash, LocalizedSlotSparseEmbeddingHash, SparseEmbeddingHash

__all__ = ["DistributedSlotSparseEmbeddingHash", "LocalizedSlotSparseEmbeddingHash", "SparseEmbeddingHash"]
