"""Tables of an Embedding Collection: static (direct index of table-local keys) and dynamic (a hash
table that grows). Each table owns its rows, optimizer states and optimizer; lookups share tables.

The key -> row machinery of the dynamic table is the sparse plugin's (``HostHashTable`` on NumPy,
``DeviceHashTable`` on CuPy); growing rebuilds it larger and carries every key's row over.
"""
from __future__ import annotations

import numpy as np

from hugectr_core.backend import is_numpy, to_host
from hugectr_core.errors import CheckpointError, ConfigError, DataError
from hugectr_embeddings_sparse.hash_table import make_hash_table

INITIAL_DYNAMIC_CAPACITY = 1024
MAX_LOAD = 0.75      # grow a dynamic table before a batch could fill it past this fraction
GROWTH = 2
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

    def _where(self) -> str:
        return f"embedding table '{self.name}'"

    # -- storage -----------------------------------------------------------------------------------
    def _state_shapes(self, n: int) -> list:
        shape_of = getattr(self.optimizer, "state_shape", None)
        return [tuple(shape_of(s, (n, self.ev))) if shape_of else (n, self.ev) for s in self.optimizer.state_names]

    def _new_rows(self, n: int, rng):
        low, high = self.config.init_range()
        return self.xp.asarray(rng.uniform(low, high, size=(n, self.ev)).astype(np.float32))

    def _allocate_storage(self, n: int, rng) -> None:
        xp = self.xp
        self.rows = self._new_rows(n, rng)
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
        self.xp = xp
        self._allocate_storage(self.config.max_vocabulary_size, rng)

    def used_rows(self) -> int:
        return self.config.max_vocabulary_size

    def rows_of(self, keys, training: bool, lookup: str):
        xp, n = self.xp, self.config.max_vocabulary_size
        self._check_non_negative(keys, lookup)
        k = keys.astype(xp.int64, copy=False)
        if k.size and bool((k >= n).any()):
            first = int(to_host(k[k >= n][:1])[0])
            raise DataError(f"{self._where()} (lookup '{lookup}'): key {first} is outside [0, {n}) of this static "
                            f"table (max_vocabulary_size={n}); keys are table-local: fix the data or raise "
                            f"max_vocabulary_size (or use -1 for a dynamic table)")
        return k

    def keys_in_row_order(self):
        return np.arange(self.config.max_vocabulary_size, dtype=np.int64)

    def rows_for_load(self, keys):
        n = self.config.max_vocabulary_size
        if keys.size and (keys.min() < 0 or keys.max() >= n):
            raise CheckpointError(f"{self._where()}: the file has keys outside [0, {n}) of this static table")
        return self.xp.asarray(keys.astype(np.int64))


class DynamicTable(CollectionTable):
    """A table with no fixed capacity: rows are handed out as keys arrive; before a batch could push the
    fill past ``MAX_LOAD`` of the capacity, rows, states and the hash table are rebuilt ``GROWTH`` times
    larger (the hash table by re-inserting every key and moving its row)."""

    def allocate(self, xp, rng) -> None:
        if self.allocated:
            return
        self.xp, self.rng = xp, rng
        self.capacity = INITIAL_DYNAMIC_CAPACITY
        self._allocate_storage(self.capacity, rng)
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
        self._allocate_storage(new_capacity, self.rng)
        self.table = make_hash_table(xp, new_capacity, self._overflow)
        key_dtype = np.uint32 if self.key_dtype == "uint32" else np.int64
        moved = self.table.insert_or_find(xp.asarray(np.asarray(old_keys).astype(key_dtype)))
        self.rows[moved] = old_rows[:used]
        for new, old in zip(self.states, old_states):
            new[moved] = old[:used]
        if old_stamps is not None:
            self.stamps[moved] = old_stamps[:used]

    def rows_of(self, keys, training: bool, lookup: str):
        self._check_non_negative(keys, lookup)
        if not training:
            return self.table.find(keys)
        self.grow_for(keys.size)
        return self.table.insert_or_find(keys)

    def keys_in_row_order(self):
        return np.asarray(self.table.keys_in_row_order(), dtype=np.int64)

    def rows_for_load(self, keys):
        if keys.size and keys.min() < 0:
            raise CheckpointError(f"{self._where()}: the file has negative keys")
        self.grow_for(keys.size)
        key_dtype = np.uint32 if self.key_dtype == "uint32" else np.int64
        return self.table.insert_or_find(self.xp.asarray(keys.astype(key_dtype)))

    def memory_bytes(self) -> dict:
        sizes = super().memory_bytes()
        if sizes:
            sizes["hash_table"] = int(self.table.nbytes())
        return sizes


def make_table(config, optimizer, key_dtype: str, index: int) -> CollectionTable:
    cls = DynamicTable if config.is_dynamic else StaticTable
    return cls(config, optimizer, key_dtype, index)
