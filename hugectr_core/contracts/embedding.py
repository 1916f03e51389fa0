"""The embedding contract.

An embedding owns its table (key -> row), its rows and its optimizer state. It reads the CSR
sparse input of one ``DataReaderSparseParam`` (``row_offsets`` of length ``B*slot_num + 1``,
sample-major, and ``keys``) and writes a ``(B, slot_num, embedding_vec_size)`` output.

Training forward inserts unseen keys (rows initialised U(-0.05, 0.05), or per slot
U(+-sqrt(1/size)) with ``slot_size_array`` where the type says so); evaluation forward gives
zeros for unseen keys. ``backward`` aggregates the output gradient per unique key and applies
the optimizer (``update_type`` Local / Global / LazyGlobal as formats.md 3.5).

Example:
    >>> emb = registry("embeddings").load("DistributedSlotSparseEmbeddingHash")(config, optimizer)  # doctest: +SKIP
    >>> emb.allocate(numpy, numpy.random.default_rng(0))                   # doctest: +SKIP
    >>> emb.forward(ctx, row_offsets, keys, out_bse)                       # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError


@dataclass(frozen=True)
class EmbeddingConfig:
    """A ``hugectr.SparseEmbedding`` resolved against its sparse input."""

    type_name: str
    name: str                       # sparse_embedding_name
    bottom_name: str
    embedding_vec_size: int
    combiner: str                   # "sum" or "mean"
    workspace_size_per_gpu_in_mb: float
    slot_num: int                   # from the DataReaderSparseParam named by bottom_name
    max_nnz_per_slot: tuple         # one per slot
    slot_size_array: tuple = ()
    key_dtype: str = "uint32"       # "int64" when Solver(i64_input_key=True)
    device_count: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def top_name(self) -> str:
        return self.name


class Embedding:
    """Base class of embedding plugins."""

    def __init__(self, config: EmbeddingConfig, optimizer):
        self.config = config
        self.name = config.name
        self.optimizer = optimizer
        self.frozen = False
        if config.combiner not in ("sum", "mean"):
            raise ConfigError(f"embedding '{config.name}': combiner must be 'sum' or 'mean', got '{config.combiner}'")
        if config.embedding_vec_size < 1:
            raise ConfigError(f"embedding '{config.name}': embedding_vec_size must be >= 1")

    def output_shape(self, batch_size: int) -> tuple:
        return (batch_size, self.config.slot_num, self.config.embedding_vec_size)

    def allocate(self, xp, rng) -> None:
        """Create the table, rows and optimizer state on the backend of ``xp``."""
        raise NotImplementedError

    def memory_bytes(self) -> dict:
        """Bytes by purpose (``rows``, ``optimizer_states``, ``hash_table``) for summary()."""
        return {}

    def forward(self, ctx, row_offsets, keys, out_bse) -> None:
        raise NotImplementedError

    def backward(self, ctx, top_grad_bse, lr: float) -> None:
        """Aggregate the gradient per unique key of the last training forward and update rows."""
        raise NotImplementedError

    def dump(self) -> dict:
        """Host arrays ``key`` (int64), ``emb_vector`` (float32 [n, vec]) and ``slot_id`` (uint64 or None)."""
        raise NotImplementedError

    def load(self, key, emb_vector, slot_id=None) -> None:
        raise NotImplementedError

    def dump_optimizer_states(self) -> list:
        """One float32 ``[n, vec]`` host array per optimizer state, rows aligned with ``dump()["key"]``."""
        raise NotImplementedError

    def load_optimizer_states(self, key, states: list) -> None:
        """Set the optimizer state of the rows of ``key`` (the keys must already be in the table)."""
        raise NotImplementedError
