"""Key -> row tables of the sparse embeddings: a vectorised NumPy table and a CUDA hash table.

Both hand out rows ``0, 1, 2, ...`` to new keys and remember the key of every row (for ``dump``).
``HostHashTable`` keeps a sorted key array beside a row array (``np.searchsorted``) and gives new keys
rows in first-sight order; ``DeviceHashTable`` is the open-addressing table of ``kernels.cu``, whose
row order among the new keys of one batch depends on thread timing. Both call ``on_full(needed)``
to build the error raised when the table would exceed ``capacity`` rows.
"""
from __future__ import annotations

import numpy as np

from hugectr_core.backend import DeferredRead

from . import reference


class HostHashTable:
    """Sorted-array key -> row table (NumPy backend).

    Example:
        >>> t = HostHashTable(4, on_full=lambda n: RuntimeError(n))
        >>> t.insert_or_find(np.array([7, 3, 7, 9])).tolist(), t.find(np.array([9, 5])).tolist()
        ([0, 1, 0, 2], [2, -1])
    """

    def __init__(self, capacity: int, on_full):
        self.capacity = int(capacity)
        self.on_full = on_full
        self.sorted_keys = np.empty(0, np.int64)
        self.sorted_rows = np.empty(0, np.int64)
        self.row_keys = np.empty(0, np.int64)

    @property
    def size(self) -> int:
        return self.row_keys.size

    def _lookup(self, keys):
        keys = np.asarray(keys).astype(np.int64, copy=False)
        pos = np.searchsorted(self.sorted_keys, keys)
        found = pos < self.sorted_keys.size
        found[found] = self.sorted_keys[pos[found]] == keys[found]
        rows = np.full(keys.size, -1, np.int64)
        rows[found] = self.sorted_rows[pos[found]]
        return keys, rows, found

    def find(self, keys):
        return self._lookup(keys)[1]

    def insert_or_find(self, keys):
        keys, rows, found = self._lookup(keys)
        missing = keys[~found]
        if missing.size == 0:
            return rows
        uniq, first_seen, inverse = np.unique(missing, return_index=True, return_inverse=True)
        if self.size + uniq.size > self.capacity:
            raise self.on_full(self.size + uniq.size)
        rank = np.empty(uniq.size, np.int64)
        rank[np.argsort(first_seen, kind="stable")] = np.arange(uniq.size)  # first-sight order
        new_rows = self.size + rank
        rows[~found] = new_rows[inverse.reshape(-1)]
        at = np.searchsorted(self.sorted_keys, uniq)
        self.sorted_keys = np.insert(self.sorted_keys, at, uniq)
        self.sorted_rows = np.insert(self.sorted_rows, at, new_rows)
        row_keys = np.empty(uniq.size, np.int64)
        row_keys[rank] = uniq
        self.row_keys = np.concatenate([self.row_keys, row_keys])
        return rows

    def keys_in_row_order(self):
        return self.row_keys.copy()

    def nbytes(self) -> int:
        return self.sorted_keys.nbytes + self.sorted_rows.nbytes + self.row_keys.nbytes


def hash_slots_for(capacity: int) -> int:
    """Hash slots for ``capacity`` rows: a power of two, load factor at most 1/2."""
    return 1 << max(6, int(2 * max(capacity, 1) - 1).bit_length())


class DeviceHashTable:
    """Open-addressing GPU hash table (``kernels.cu``: hash_insert_or_find, hash_find).

    Example:
        >>> t = DeviceHashTable(cupy, 1000, on_full=RuntimeError)             # doctest: +SKIP
        >>> t.insert_or_find(cupy.asarray([7, 3, 7]))                         # doctest: +SKIP
        array([0, 1, 0])   # the rows of new keys of one batch may come in any order
    """

    def __init__(self, xp, capacity: int, on_full):
        self.xp = xp
        self.capacity = int(capacity)
        self.on_full = on_full
        n_slots = hash_slots_for(capacity)
        self.slot_keys = xp.full(n_slots, reference.EMPTY_KEY, xp.uint64)
        self.slot_rows = xp.full(n_slots, -1, xp.int64)
        self.row_keys = xp.full(max(self.capacity, 1), -1, xp.int64)
        self.counter = xp.zeros(1, xp.uint64)
        self._size = 0
        self._pending = None  # DeferredRead of the counter after the last insert

    @property
    def size(self) -> int:
        """Rows given out. Reading it after an insert waits for that insert's counter copy only."""
        if self._pending is not None:
            needed = int(self._pending.value()[0])
            self._pending = None
            if needed > self.capacity:
                raise self.on_full(needed)  # the rows past capacity were not given out: the table is now unusable
            self._size = needed
        return self._size

    def find(self, keys):
        from . import kernels  # noqa: PLC0415 - keeps CuPy out of import time

        return kernels.hash_find(self.slot_keys, self.slot_rows, keys)

    def insert_or_find(self, keys):
        from . import kernels  # noqa: PLC0415

        rows = kernels.hash_insert_or_find(self.slot_keys, self.slot_rows, self.row_keys, self.counter,
                                           keys, self.capacity)[0]
        # no host sync here: the counter is read back when ``size`` is next needed (a full table is
        # reported then, before any update uses the rows past capacity, which are -2)
        self._pending = DeferredRead(self.xp, self.counter)
        return rows

    def keys_in_row_order(self):
        return self.row_keys[: self.size].get()

    def nbytes(self) -> int:
        return self.slot_keys.nbytes + self.slot_rows.nbytes + self.row_keys.nbytes + self.counter.nbytes


def make_hash_table(xp, capacity: int, on_full):
    """The table for the backend of ``xp``."""
    return HostHashTable(capacity, on_full) if xp is np else DeviceHashTable(xp, capacity, on_full)
