"""Tables of an Embedding Collection: static (direct index of table-local keys) and dynamic (a hash
table that grows). Each table owns its rows, optimizer states and optimizer; lookups share tables.

On several devices a table stores only this worker's part of it (``place``, from the shard plan): all of
it (dp, or model parallel on this device alone), the keys ``k % count == index`` (row-wise), or nothing
(another device holds it). A row starts from (table seed, key) alone (``initial_rows``), so its first
values do not depend on which device stores it or on the order keys arrive in.

The key -> row machinery of the dynamic table is the sparse plugin's (``HostHashTable`` on NumPy,
``DeviceHashTable`` on CuPy); growing rebuilds it larger and carries every key's row over.
"""
from __future__ import annotations

import numpy as np

from hugectr_core.backend import is_numpy, to_host
from hugectr_core.errors import CheckpointError, ConfigError, DataError
from hugectr_embeddings_sparse.embedding import key_uniform
from hugectr_embeddings_sparse.hash_table import make_hash_table

INITIAL_DYNAMIC_CAPACITY = 1024
MAX_LOAD = 0.75      # grow a dynamic table before a batch could fill it past this fraction
GROWTH = 2
INIT_CHUNK_VALUES = 1 << 24  # values initialised per pass (bounds the temporaries of a large table)
_DECAYING = {"Adam", "MomentumSGD", "Nesterov"}


def sparse_kernels(xp):
    """The sparse plugin's gather/reduce/lazy-Adam kernels (NumPy twins on NumPy)."""
    if is_numpy(xp):
        from hugectr_embeddings_sparse import reference  # noqa: PLC0415

        return reference
    from hugectr_embeddings_sparse import kernels  # noqa: PLC0415 - keeps CuPy out of import time

    return kernels


class CollectionTable:
    """Rows, optimizer states and update rule of one table (shared by the lookups that read it)."""

    def __init__(self, config, optimizer, key_dtype: str, index: int):
        self.config = config
        self.name = config.name
        self.ev = config.ev_size
        self.optimizer = optimizer
        self.key_dtype = key_dtype
        self.index = index            # table id in embedding_dump files
        self.update_type = getattr(optimizer.params, "update_name", "Local")
        if self.update_type == "LazyGlobal" and type(optimizer).__name__ != "Adam":
            raise ConfigError(f"table '{self.name}': Update_t.LazyGlobal is implemented for Adam only")
        self.xp = None
        self.rows = None
        self.states: list = []
        self.stamps = None
        self.frozen = False
        self.seed = None
        self.shard = (0, 1)       # (index, count): this worker stores the keys k with k % count == index
        self.stores_rows = True   # False: other devices store the whole table

    def place(self, index: int, count: int, stored: bool = True) -> None:
        """This worker's part of the table under the shard plan (before ``allocate``)."""
        if self.allocated:
            raise ConfigError(f"{self._where()}: placed after its storage was allocated")
        self.shard, self.stores_rows = (int(index), int(count)), bool(stored)

    def owned(self, keys: np.ndarray):
        """Host mask of the keys this worker stores (None: all of them)."""
        index, count = self.shard
        if not self.stores_rows:
            return np.zeros(keys.shape, bool)
        return None if count == 1 else keys % count == index

    def initial_rows(self, keys):
        """U(low, high) rows of ``keys`` (device int64) from (table seed, key, column) alone."""
        low, high = self.config.init_range()
        unit = key_uniform(self.xp, keys, self.ev, self.seed, 1.0)  # [-1, 1)
        return (unit + 1) * (0.5 * (high - low)) + low

    def _where(self) -> str:
        return f"embedding table '{self.name}'"

    # -- storage -----------------------------------------------------------------------------------
    def _state_shapes(self, n: int) -> list:
        shape_of = getattr(self.optimizer, "state_shape", None)
        return [tuple(shape_of(s, (n, self.ev))) if shape_of else (n, self.ev) for s in self.optimizer.state_names]

    def _allocate_storage(self, n: int) -> None:
        """Rows (zero until initialised from their keys) and optimizer states for ``n`` rows."""
        xp = self.xp
        self.rows = xp.zeros((n, self.ev), xp.float32)
        self.states = [xp.full(shape, self.optimizer.initial_state(s), xp.float32)
                       for s, shape in zip(self.optimizer.state_names, self._state_shapes(n))]
        self.stamps = xp.ones((n, self.ev), xp.int64) if self.update_type == "LazyGlobal" else None

    @property
    def allocated(self) -> bool:
        return self.rows is not None

    def memory_bytes(self) -> dict:
        if self.rows is None:
            return {}
        stamps = int(self.stamps.nbytes) if self.stamps is not None else 0
        return {"rows": int(self.rows.nbytes), "optimizer_states": int(sum(s.nbytes for s in self.states)) + stamps}

    # -- update ------------------------------------------------------------------------------------
    def _moves_untouched_rows(self) -> bool:
        flag = getattr(self.optimizer, "global_moves_untouched_rows", None)
        if flag is None:
            flag = type(self.optimizer).__name__ in _DECAYING
        return self.update_type == "Global" and flag

    def apply_gradient(self, unique_rows, grad_uv, lr, step, scaler) -> None:
        """One optimizer step for the rows of a batch (Local, Global or LazyGlobal, as the sparse plugin)."""
        if self.frozen:
            return
        xp = self.xp
        if self.update_type == "LazyGlobal":
            if unique_rows.size:
                p = self.optimizer.params
                sparse_kernels(xp).adam_lazy_update_rows(self.rows, self.states[0], self.states[1], self.stamps,
                                                         unique_rows, grad_uv, lr, step, p.beta1, p.beta2, p.epsilon,
                                                         1.0 / scaler)
        elif self._moves_untouched_rows():
            used = self.used_rows()
            dense = xp.zeros((used, self.ev), xp.float32)
            dense[unique_rows] = grad_uv
            self.optimizer.update(xp, self.rows[:used], dense, [s[:used] for s in self.states], lr, step, scaler)
        elif unique_rows.size:
            self.optimizer.update_rows(xp, self.rows, self.states, unique_rows, grad_uv, lr, step, scaler)

    def _check_non_negative(self, keys, lookup: str) -> None:
        if np.dtype(keys.dtype).kind == "i" and keys.size and bool((keys < 0).any()):
            first = int(to_host(keys[keys < 0][:1])[0])
            raise DataError(f"{self._where()} (lookup '{lookup}'): negative key {first}; keys are table-local "
                            f"non-negative integers")


class StaticTable(CollectionTable):
    """``max_vocabulary_size`` rows; key k is row k (no hash). A key outside ``[0, n)`` is a DataError."""

    def allocate(self, xp, rng) -> None:
        if self.allocated:
            return
        self.xp, self.seed = xp, int(rng.integers(0, 2**63 - 1))  # drawn alike where nothing is stored
        keys = self.keys_in_row_order()
        self._allocate_storage(keys.size)
        step = max(1, INIT_CHUNK_VALUES // self.ev)
        for start in range(0, keys.size, step):
            self.rows[start:start + step] = self.initial_rows(xp.asarray(keys[start:start + step]))

    def used_rows(self) -> int:
        return int(self.rows.shape[0])

    def rows_of(self, keys, training: bool, lookup: str):
        """Rows of ``keys``, which this worker stores (the shard plan's filter ran before)."""
        xp, n = self.xp, self.config.max_vocabulary_size
        self._check_non_negative(keys, lookup)
        k = keys.astype(xp.int64, copy=False)
        if k.size and bool((k >= n).any()):
            first = int(to_host(k[k >= n][:1])[0])
            raise DataError(f"{self._where()} (lookup '{lookup}'): key {first} is outside [0, {n}) of this static "
                            f"table (max_vocabulary_size={n}); keys are table-local: fix the data or raise "
                            f"max_vocabulary_size (or use -1 for a dynamic table)")
        return k if self.shard[1] == 1 else k // self.shard[1]

    def keys_in_row_order(self):
        index, count = self.shard
        if not self.stores_rows:
            return np.zeros(0, np.int64)
        return np.arange(index, self.config.max_vocabulary_size, count, dtype=np.int64)

    def rows_for_load(self, keys):
        """(rows, mask of the keys stored here or None) of a file's keys."""
        n = self.config.max_vocabulary_size
        if keys.size and (keys.min() < 0 or keys.max() >= n):
            raise CheckpointError(f"{self._where()}: the file has keys outside [0, {n}) of this static table")
        keep = self.owned(keys)
        mine = keys if keep is None else keys[keep]
        return self.xp.asarray(mine.astype(np.int64) // self.shard[1]), keep


class DynamicTable(CollectionTable):
    """A table with no fixed capacity: rows are handed out as keys arrive; before a batch could push the
    fill past ``MAX_LOAD`` of the capacity, rows, states and the hash table are rebuilt ``GROWTH`` times
    larger (the hash table by re-inserting every key and moving its row)."""

    def allocate(self, xp, rng) -> None:
        if self.allocated:
            return
        self.xp, self.seed = xp, int(rng.integers(0, 2**63 - 1))  # drawn alike where nothing is stored
        self.capacity = INITIAL_DYNAMIC_CAPACITY if self.stores_rows else 0
        self._allocate_storage(self.capacity)
        self.table = make_hash_table(xp, self.capacity, self._overflow)

    def _overflow(self, needed: int) -> Exception:  # growth runs first: reaching this is a bug
        return ConfigError(f"{self._where()}: dynamic table overflow ({needed} > {self.capacity} rows)")

    def used_rows(self) -> int:
        return self.table.size

    def grow_for(self, incoming: int) -> None:
        """Make room for ``incoming`` more keys (an upper bound: the batch's key count, no device sync)."""
        needed = self.table.size + int(incoming)
        if needed <= MAX_LOAD * self.capacity:
            return
        new_capacity = self.capacity
        while needed > MAX_LOAD * new_capacity:
            new_capacity *= GROWTH
        self._rebuild(new_capacity)

    def _rebuild(self, new_capacity: int) -> None:
        xp, used = self.xp, self.table.size
        old_keys = self.table.keys_in_row_order()
        old_rows, old_states, old_stamps = self.rows, self.states, self.stamps
        self.capacity = new_capacity
        self._allocate_storage(new_capacity)
        self.table = make_hash_table(xp, new_capacity, self._overflow)
        key_dtype = np.uint32 if self.key_dtype == "uint32" else np.int64
        moved = self.table.insert_or_find(xp.asarray(np.asarray(old_keys).astype(key_dtype)))
        self.rows[moved] = old_rows[:used]
        for new, old in zip(self.states, old_states):
            new[moved] = old[:used]
        if old_stamps is not None:
            self.stamps[moved] = old_stamps[:used]

    def rows_of(self, keys, training: bool, lookup: str):
        """Rows of ``keys``, which this worker stores (the shard plan's filter ran before)."""
        self._check_non_negative(keys, lookup)
        if not training:
            return self.table.find(keys)
        return self._insert(keys)

    def _insert(self, keys):
        """Rows of ``keys``, new ones handed out and initialised from their keys."""
        self.grow_for(keys.size)
        before = self.table.size
        rows = self.table.insert_or_find(keys)
        new = rows >= before
        if bool(new.any()):  # a repeated new key writes the same values twice
            self.rows[rows[new]] = self.initial_rows(keys[new].astype(self.xp.int64))
        return rows

    def keys_in_row_order(self):
        return np.asarray(self.table.keys_in_row_order(), dtype=np.int64)

    def rows_for_load(self, keys):
        """(rows, mask of the keys stored here or None) of a file's keys (inserting the new ones)."""
        if keys.size and keys.min() < 0:
            raise CheckpointError(f"{self._where()}: the file has negative keys")
        keep = self.owned(keys)
        mine = keys if keep is None else keys[keep]
        key_dtype = np.uint32 if self.key_dtype == "uint32" else np.int64
        return self._insert(self.xp.asarray(mine.astype(key_dtype))), keep

    def memory_bytes(self) -> dict:
        sizes = super().memory_bytes()
        if sizes:
            sizes["hash_table"] = int(self.table.nbytes())
        return sizes


def make_table(config, optimizer, key_dtype: str, index: int) -> CollectionTable:
    cls = DynamicTable if config.is_dynamic else StaticTable
    return cls(config, optimizer, key_dtype, index)
