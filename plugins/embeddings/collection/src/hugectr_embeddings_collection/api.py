"""User-facing Embedding Collection objects (formats.md 1.8): table configs, the collection config with
``embedding_lookup`` and ``shard``, and the two strategy enums.

Example:
    >>> t1 = EmbeddingTableConfig(name="t1", max_vocabulary_size=1000, ev_size=16)
    >>> t2 = EmbeddingTableConfig(name="t2", max_vocabulary_size=-1, ev_size=8)
    >>> ebc = EmbeddingCollectionConfig()
    >>> ebc.embedding_lookup(t1, "data1", "emb1", "sum")
    >>> ebc.embedding_lookup([t1, t2], ["data1", "data2"], "emb12", ["mean", "concat"])
    >>> ebc.shard(shard_matrix=[["t1", "t2"]], shard_strategy=[("mp", ["t1", "t2"])])
    >>> [lk.top_name for lk in ebc.lookups], sorted(ebc.tables)
    (['emb1', 'emb12'], ['t1', 't2'])
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from hugectr_core.errors import ConfigError

COMBINERS = ("sum", "mean", "concat")
MAX_EV_SIZE = 256


class CommunicationStrategy(str, Enum):
    """How a collection exchanges embeddings between GPUs (a no-op on one device)."""

    Uniform = "Uniform"
    Hierarchical = "Hierarchical"


class CompressionStrategy(str, Enum):
    """How keys are compressed before the lookup (a hint; results are identical)."""

    Reduction = "Reduction"
    Unique = "Unique"


@dataclass
class EmbeddingTableConfig:
    """One embedding table: ``max_vocabulary_size`` table-local keys ``0..n-1`` (static, direct index) or
    ``-1`` for a dynamic table that grows as keys arrive.

    ``opt_params_or_empty`` (alias ``opt_params``): a ``CreateOptimizer(...)`` for this table, else the
    model's. ``init_param_or_empty``: None (static tables U(+-sqrt(1/max_vocabulary_size)), dynamic
    U(-0.05, 0.05)), a float ``limit`` for U(-limit, limit) or a ``(low, high)`` pair.

    Example:
        >>> EmbeddingTableConfig(name="user", max_vocabulary_size=-1, ev_size=32).is_dynamic
        True
    """

    name: str
    max_vocabulary_size: int
    ev_size: int
    opt_params_or_empty: object = None
    init_param_or_empty: object = None

    def __init__(self, name, max_vocabulary_size, ev_size, opt_params_or_empty=None, init_param_or_empty=None,
                 opt_params=None):
        self.name = name
        self.max_vocabulary_size = int(max_vocabulary_size)
        self.ev_size = int(ev_size)
        self.opt_params_or_empty = opt_params_or_empty if opt_params_or_empty is not None else opt_params
        self.init_param_or_empty = init_param_or_empty
        if not isinstance(name, str) or not name:
            raise ConfigError(f"EmbeddingTableConfig: name must be a non-empty string, got {name!r}")
        if self.max_vocabulary_size == 0 or self.max_vocabulary_size < -1:
            raise ConfigError(f"EmbeddingTableConfig '{name}': max_vocabulary_size must be >= 1 (static table) or "
                              f"-1 (dynamic table), got {max_vocabulary_size}")
        if not 1 <= self.ev_size <= MAX_EV_SIZE:
            raise ConfigError(f"EmbeddingTableConfig '{name}': ev_size must be in [1, {MAX_EV_SIZE}], got {ev_size}")
        self.init_range()  # validates init_param_or_empty

    @property
    def is_dynamic(self) -> bool:
        return self.max_vocabulary_size == -1

    def init_range(self) -> tuple:
        """(low, high) of the uniform initialisation of the rows."""
        p = self.init_param_or_empty
        if p is None:
            limit = 0.05 if self.is_dynamic else (1.0 / self.max_vocabulary_size) ** 0.5
            return (-limit, limit)
        if isinstance(p, (int, float)) and p > 0:
            return (-float(p), float(p))
        if isinstance(p, (tuple, list)) and len(p) == 2 and float(p[0]) < float(p[1]):
            return (float(p[0]), float(p[1]))
        raise ConfigError(f"EmbeddingTableConfig '{self.name}': init_param_or_empty must be None, a positive limit "
                          f"or a (low, high) pair, got {p!r}")


@dataclass
class Lookup:
    """One ``embedding_lookup``: tables i read bottoms i and combine with combiners i into ``top_name``."""

    tables: list
    bottom_names: list
    top_name: str
    combiners: list
    fused: bool  # list form: batch-major (B, sum of widths) output


class EmbeddingCollectionConfig:
    """An Embedding Collection ("3G" embedding): lookups over tables, and a sharding plan.

    Example:
        >>> t = EmbeddingTableConfig("t", 100, 4)
        >>> ebc = EmbeddingCollectionConfig(use_exclusive_keys=False, comm_strategy=CommunicationStrategy.Uniform)
        >>> ebc.embedding_lookup(table_config=t, bottom_name="d", top_name="e", combiner="mean")
        >>> ebc.shard_matrix is None      # no plan: on one device every table is local
        True
    """

    def __init__(self, use_exclusive_keys: bool = False, comm_strategy=CommunicationStrategy.Uniform):
        self.use_exclusive_keys = bool(use_exclusive_keys)
        try:
            self.comm_strategy = CommunicationStrategy(getattr(comm_strategy, "value", comm_strategy))
        except ValueError:
            raise ConfigError(f"EmbeddingCollectionConfig: comm_strategy must be CommunicationStrategy.Uniform or "
                              f"Hierarchical, got {comm_strategy!r}") from None
        self.lookups: list[Lookup] = []
        self.tables: dict[str, EmbeddingTableConfig] = {}
        self.shard_matrix = None
        self.shard_strategy = None
        self.compression_strategy = None

    def _add_table(self, table) -> None:
        if not isinstance(table, EmbeddingTableConfig):
            raise ConfigError(f"embedding_lookup: tables must be EmbeddingTableConfig, got {type(table).__name__}")
        known = self.tables.get(table.name)
        if known is not None and known is not table and (known.max_vocabulary_size, known.ev_size) != (
                table.max_vocabulary_size, table.ev_size):
            raise ConfigError(f"embedding_lookup: two different tables are named '{table.name}'")
        self.tables.setdefault(table.name, table)

    def embedding_lookup(self, table_config, bottom_name, top_name: str, combiner) -> None:
        """Add a lookup: one table (output ``(B, 1, ev)``, ``(B, 1, hotness*ev)`` for concat) or lists of
        tables, bottoms and combiners fused into one batch-major ``(B, sum of widths)`` output."""
        fused = isinstance(table_config, (list, tuple))
        tables = list(table_config) if fused else [table_config]
        bottoms = list(bottom_name) if isinstance(bottom_name, (list, tuple)) else [bottom_name]
        combiners = list(combiner) if isinstance(combiner, (list, tuple)) else [combiner] * len(tables)
        where = f"embedding_lookup(top_name='{top_name}')"
        if not tables or len(bottoms) != len(tables) or len(combiners) != len(tables):
            raise ConfigError(f"{where}: {len(tables)} tables, {len(bottoms)} bottom names and {len(combiners)} "
                              f"combiners; give one bottom name and one combiner per table")
        if not isinstance(top_name, str) or not top_name or any(lk.top_name == top_name for lk in self.lookups):
            raise ConfigError(f"{where}: top_name must be a new non-empty name")
        for c in combiners:
            if c not in COMBINERS:
                raise ConfigError(f"{where}: combiner must be one of {COMBINERS}, got {c!r}")
        for t in tables:
            self._add_table(t)
        self.lookups.append(Lookup([self.tables[t.name] for t in tables], bottoms, top_name, combiners, fused))

    def shard(self, shard_matrix, shard_strategy, compression_strategy=None) -> None:
        """Place tables: ``shard_matrix[gpu]`` lists the tables on that GPU, ``shard_strategy`` is
        ``[("mp", [names]), ("dp", [names])]``; dp tables must be on every GPU, every table placed once
        by a strategy. ``compression_strategy``: ``{CompressionStrategy.X: [names]}``."""
        names = set(self.tables)
        matrix = [list(row) for row in shard_matrix]
        if not matrix:
            raise ConfigError("shard: shard_matrix needs one row (list of table names) per GPU")
        for gpu, row in enumerate(matrix):
            for n in row:
                if n not in names:
                    raise ConfigError(f"shard: shard_matrix[{gpu}] names table '{n}', which no embedding_lookup "
                                      f"uses (tables: {sorted(names)})")
        placed = {n for row in matrix for n in row}
        if names - placed:
            raise ConfigError(f"shard: tables {sorted(names - placed)} are on no GPU; add them to shard_matrix")
        strategy_of = {}
        for entry in shard_strategy:
            kind, listed = entry
            if kind not in ("mp", "dp"):
                raise ConfigError(f"shard: shard_strategy kinds are 'mp' and 'dp', got {kind!r}")
            for n in listed:
                if n not in names:
                    raise ConfigError(f"shard: shard_strategy names table '{n}', which no embedding_lookup uses")
                if n in strategy_of:
                    raise ConfigError(f"shard: table '{n}' appears twice in shard_strategy")
                strategy_of[n] = kind
        if names - set(strategy_of):
            raise ConfigError(f"shard: tables {sorted(names - set(strategy_of))} have no strategy; list them under "
                              f"'mp' or 'dp' in shard_strategy")
        for n, kind in strategy_of.items():
            if kind == "dp" and any(n not in row for row in matrix):
                missing = [g for g, row in enumerate(matrix) if n not in row]
                raise ConfigError(f"shard: dp table '{n}' must be on every GPU; it is missing from GPUs {missing}")
        compression = {}
        for key, listed in dict(compression_strategy or {}).items():
            try:
                kind = CompressionStrategy(getattr(key, "value", key))
            except ValueError:
                raise ConfigError(f"shard: unknown compression strategy {key!r}") from None
            for n in listed:
                if n not in names:
                    raise ConfigError(f"shard: compression_strategy names table '{n}', which no lookup uses")
            compression[kind] = list(listed)
        self.shard_matrix, self.shard_strategy, self.compression_strategy = matrix, strategy_of, compression

    def check_devices(self, device_count: int) -> None:
        """The plan must have one shard_matrix row per device (no plan: everything local)."""
        if self.shard_matrix is not None and len(self.shard_matrix) != device_count:
            raise ConfigError(f"EmbeddingCollectionConfig.shard: shard_matrix has {len(self.shard_matrix)} rows but "
                              f"the solver has {device_count} device(s); give one row per GPU")

    def table_order(self) -> list:
        """Table names in first-use order: the table ids of embedding_dump files."""
        return list(self.tables)
