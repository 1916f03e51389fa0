"""The Parquet reader: worker threads build whole batches; ``next_batch`` only takes the next one.

Files are read in list order (``read_file_sequentially=True``) or in a seeded random order per
pass; rows are consumed in order within a file and batches may span files. Repeat mode drops the
incomplete batch at the end of each pass; epoch mode returns it, then None.

Batch k of the sequence is pass ``k // B_pass``, rows ``[j*B, (j+1)*B)`` of that pass's file order
(the row counts come from ``_metadata.json``, checked against each file). Workers share decoded
files through a cache: each file of a pass is decoded once, by the first worker that needs it, and
dropped after the last batch using it.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np
from hugectr_core.contracts.reader import Batch, Reader, SparseBatch, static_row_offsets
from hugectr_core.enums import type_string
from hugectr_core.errors import ConfigError, DataError
from hugectr_core.localfs import LocalFileSystem

from .dataset import Columns, FileDecoder, ListKeys, Metadata, ScalarKeys, read_file_list
from hugectr_core.prefetch import END, OrderedPrefetcher

BATCHES_PER_WORKER = 2   # batches each worker may hold ready ahead of the consumer


class Parquet(Reader):
    """Reads a Parquet data set described by file list(s) and ``_metadata.json`` (formats.md 2.4).

    The i-th categorical column of the metadata gets the offset ``sum(slot_size_array[:i])``; the
    columns go to the Input's sparse params in order (the first ``slot_num`` to the first param, ...).
    List columns are multi-hot.

    Args:
        params, input_layer, batch_size, source, repeat, key_dtype, seed, filesystem: see
            ``hugectr_core.contracts.Reader``. ``source`` is a file list or a list of file lists.
        num_samples: accepted for symmetry with RawAsync and ignored (row counts come from the metadata).

    Example:
        >>> reader = Parquet(params, inp, batch_size=1024, source="data/file_list.txt",
        ...                  repeat=False)                                  # doctest: +SKIP
        >>> while (batch := reader.next_batch()) is not None: ...           # doctest: +SKIP
        >>> reader.close()                                                  # doctest: +SKIP
    """

    def __init__(self, params, input_layer, *, batch_size: int, source, repeat: bool = True,
                 key_dtype: str = "uint32", seed: int = 0, filesystem=None, num_samples: int = 0):
        super().__init__(params, input_layer, batch_size=batch_size, source=source, repeat=repeat,
                         key_dtype=key_dtype, seed=seed, filesystem=filesystem or LocalFileSystem())
        if batch_size < 1:
            raise ConfigError(f"Parquet: batch_size must be >= 1, got {batch_size}")
        if key_dtype not in ("uint32", "int64"):
            raise ConfigError(f"Parquet: key_dtype must be 'uint32' or 'int64', got {key_dtype!r}")
        self.sequential = bool(params.read_file_sequentially)
        self.slot_size_array = [int(s) for s in params.slot_size_array]
        self._generation = 0
        self._prefetcher: OrderedPrefetcher | None = None
        self._lock = threading.Lock()
        self._open_source(source)

    # ----- configuration ----------------------------------------------------------------------
    def _open_source(self, source) -> None:
        lists = [source] if isinstance(source, str) else list(source)
        if not lists or not all(isinstance(s, str) and s for s in lists):
            raise ConfigError(f"Parquet: source must be a file list or a list of them, got {source!r}")
        files = [path for lst in lists for path in read_file_list(self.filesystem, lst)]
        metadata = Metadata.load(self.filesystem, files[0])
        self._check_columns(metadata, lists[0])
        self.files = files
        self.file_rows = [metadata.rows_of(f) for f in files]
        self.total_rows = sum(self.file_rows)
        if self.repeat and self.total_rows < self.batch_size:
            raise DataError(f"Parquet: '{lists[0]}' holds {self.total_rows} rows, fewer than one batch of "
                            f"{self.batch_size}; use a smaller batch size or more data")
        self.decoder = FileDecoder(self.filesystem, metadata, self.key_dtype, self.slot_size_array,
                                   check_values=type_string(getattr(self.params, "check_type", "Non")) == "Sum",
                                   slot_groups=[p.slot_num for p in self.input_layer.sparse_params])
        self.metadata = metadata
        self.source = source
        # Workers build batches, so a single file still keeps every worker busy.
        self.num_workers = max(1, int(self.params.num_workers))
        full, rest = divmod(self.total_rows, self.batch_size)
        self.batches_per_pass = full if self.repeat else full + (rest > 0)
        self._files = _FileCache(self.decoder.decode)
        self._passes: dict = {}
        self._eof = False
        self._handed = 0   # batches handed out in this pass

    def _check_columns(self, md: Metadata, list_path: str) -> None:
        inp = self.input_layer
        slots = sum(p.slot_num for p in inp.sparse_params)
        problems = []
        if len(md.labels) != inp.label_dim:
            problems.append(f"{len(md.labels)} label columns but Input label_dim={inp.label_dim}")
        if len(md.conts) != inp.dense_dim:
            problems.append(f"{len(md.conts)} conts columns but Input dense_dim={inp.dense_dim}")
        if len(md.cats) != slots:
            problems.append(f"{len(md.cats)} cats columns but the sparse params have {slots} slots in total")
        if self.slot_size_array and len(self.slot_size_array) != len(md.cats):
            problems.append(f"{len(md.cats)} cats columns but len(slot_size_array)={len(self.slot_size_array)}")
        if problems:
            raise DataError(f"Parquet: '{md.path}' (for '{list_path}') does not match the model: "
                            + "; ".join(problems) + ". Edit the json or the Input/DataReaderParams")

    # ----- the batch sequence (worker threads) ------------------------------------------------
    def _pass(self, epoch: int) -> "_PassPlan":
        with self._lock:
            plan = self._passes.get(epoch)
            if plan is None:
                if len(self._passes) > 4:
                    self._passes.pop(next(iter(self._passes)))
                plan = self._passes[epoch] = _PassPlan.build(self._file_order(epoch), self.file_rows,
                                                             self.batch_size, self.batches_per_pass)
            return plan

    def _file_order(self, epoch: int) -> np.ndarray:
        if self.sequential or len(self.files) == 1:
            return np.arange(len(self.files))
        return np.random.default_rng([self.seed, self._generation, epoch]).permutation(len(self.files))

    def _produce(self, files: "_FileCache", k: int):
        if self.batches_per_pass == 0:  # epoch mode, no rows: the files are still decoded (and checked)
            if k == 0:
                self._load(files, self._pass(0), 0, 0, len(self.files))
            return END
        epoch, j = divmod(k, self.batches_per_pass)
        if epoch > 0 and not self.repeat:
            return END
        plan = self._pass(epoch)
        lo, hi = plan.positions(j)
        return self._load(files, plan, epoch, lo, hi, j)

    def _load(self, files: "_FileCache", plan: "_PassPlan", epoch: int, lo: int, hi: int, j: int = 0):
        """Batch j of a pass from the decoded files at positions ``[lo, hi)`` of its order."""
        held, parts = [], []
        try:
            for pos in range(lo, hi):
                key = (epoch, pos)
                cols = files.acquire(key, self.files[plan.order[pos]], plan.users(pos))
                held.append(key)
                start, stop = plan.rows_in(pos, j, self.batch_size)
                if stop > start:
                    parts.append((cols, start, stop))
            return assemble(parts, self.input_layer.sparse_params, self.key_dtype) if parts else None
        finally:
            for key in held:
                files.release(key)

    # ----- batches (caller's thread) ----------------------------------------------------------
    def next_batch(self) -> Batch | None:
        """The next batch; None at the end of an epoch-mode pass. Re-raises a worker's error."""
        if self._eof:
            return None
        if self._prefetcher is None:
            self._prefetcher = OrderedPrefetcher(functools.partial(self._produce, self._files), self.num_workers,
                                                 BATCHES_PER_WORKER, name="Parquet")
        item = self._prefetcher.get()
        if item is END:
            self._eof = True
            return None
        self._handed += 1
        # Epoch mode: is_eof() turns True as soon as the pass's last (possibly short) batch is handed out.
        self._eof = not self.repeat and self._handed >= self.batches_per_pass
        return item

    # ----- Reader API -------------------------------------------------------------------------
    def is_eof(self) -> bool:
        return self._eof

    def set_source(self, file_name: str = "") -> None:
        """Read ``file_name`` (a file list) from its start next; ``''`` rewinds the current one."""
        self._stop_workers()
        self._open_source(file_name or self.source)
        self._generation += 1


@dataclass(frozen=True)
class _PassPlan:
    """Which rows of which files make each batch of one pass.

    ``order[p]`` is the file at position p, ``starts[p]`` its first row in the pass. Position p
    serves batches ``first[p]..last[p]``; a file with no rows, or only rows of the dropped tail
    (repeat mode), goes with the batch where it starts (clamped to the last one) so that it is
    still decoded and checked.
    """

    order: np.ndarray
    starts: np.ndarray   # len(order) + 1
    first: np.ndarray
    last: np.ndarray

    @classmethod
    def build(cls, order, file_rows: list, batch: int, num_batches: int) -> "_PassPlan":
        rows = np.asarray(file_rows, dtype=np.int64)[order]
        starts = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        top = max(num_batches - 1, 0)
        first = np.minimum(starts[:-1] // batch, top)
        last = np.where(rows > 0, np.minimum((starts[1:] - 1) // batch, top), first)
        return cls(np.asarray(order), starts, first, last)

    def positions(self, j: int) -> tuple:
        """``[lo, hi)``: the positions batch j needs (first and last are non-decreasing)."""
        return int(np.searchsorted(self.last, j, "left")), int(np.searchsorted(self.first, j, "right"))

    def users(self, pos: int) -> int:
        return int(self.last[pos] - self.first[pos] + 1)

    def rows_in(self, pos: int, j: int, batch: int) -> tuple:
        """Rows of the file at ``pos`` (local numbering) that batch j takes; empty when stop <= start."""
        start, stop = int(self.starts[pos]), int(self.starts[pos + 1])
        return max(start, j * batch) - start, min(stop, (j + 1) * batch) - start


class _Entry:
    def __init__(self, users: int):
        self.users = users
        self.ready = threading.Event()
        self.columns: Columns | None = None
        self.error: BaseException | None = None


class _FileCache:
    """Decoded files shared by the worker threads: each is decoded once and dropped after its last user.

    The first worker asking for a file decodes it; others wait for it. A decoder never waits on
    another file while decoding, so workers cannot deadlock.
    """

    def __init__(self, decode):
        self._decode = decode
        self._lock = threading.Lock()
        self._entries: dict = {}

    def acquire(self, key, path: str, users: int) -> Columns:
        with self._lock:
            entry = self._entries.get(key)
            owner = entry is None
            if owner:
                entry = self._entries[key] = _Entry(users)
        if owner:
            try:
                entry.columns = self._decode(path)
            except BaseException as exc:  # noqa: BLE001 - every batch using the file re-raises it
                entry.error = exc
            entry.ready.set()
        else:
            entry.ready.wait()
        if entry.error is not None:
            raise entry.error
        return entry.columns

    def release(self, key) -> None:
        with self._lock:
            entry = self._entries[key]
            entry.users -= 1
            if entry.users <= 0:
                del self._entries[key]


def assemble(parts: list, sparse_params, key_dtype: str) -> Batch:
    """One Batch from ``(Columns, start, stop)`` row ranges of consecutive files.

    A single part gives views of the file's arrays (no copy). An input whose slots are scalar in
    every part gets its keys as they are and the shared static row offsets (``static_hotness`` set).
    """
    n = sum(stop - start for _, start, stop in parts)
    sparse = {}
    for i, param in enumerate(sparse_params):
        pieces = [(cols.inputs[i], start, stop) for cols, start, stop in parts]
        if all(isinstance(keys, ScalarKeys) for keys, _, _ in pieces):
            hotness = (1,) * param.slot_num
            values = _join([keys.keys[start:stop] for keys, start, stop in pieces]).reshape(-1)
            sparse[param.top_name] = SparseBatch(static_row_offsets(hotness, n), values, hotness)
        else:
            lists = [ListKeys.of(keys).rows(start, stop) for keys, start, stop in pieces]
            row_offsets, values = to_csr(_join_offsets([k.offsets for k in lists]),
                                         [_join([k.values[s] for k in lists]) for s in range(param.slot_num)], n)
            sparse[param.top_name] = SparseBatch(row_offsets, values.astype(np.int64 if key_dtype == "int64"
                                                                             else np.uint32, copy=False))
    return Batch(size=n, label=_join([c.label[a:b] for c, a, b in parts]),
                 dense=_join([c.dense[a:b] for c, a, b in parts]), sparse=sparse)


def _join(arrays: list) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _join_offsets(per_part: list) -> list:
    """Per slot, the row offsets of consecutive parts chained into one."""
    if len(per_part) == 1:
        return per_part[0]
    joined = []
    for s in range(len(per_part[0])):
        lengths = np.concatenate([np.diff(offsets[s]) for offsets in per_part])
        joined.append(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    return joined


def to_csr(offsets: list, values: list, n: int) -> tuple:
    """Interleave S column-wise CSR arrays into one sample-major CSR (sample 0 slot 0, sample 0 slot 1, ...).

    Args:
        offsets: S arrays of n+1 row offsets.
        values: S arrays of keys.
        n: rows.

    Returns:
        (row_offsets of length n*S + 1 int64, keys).

    Example:
        >>> ro, k = to_csr([np.array([0, 1, 3]), np.array([0, 1, 2])], [np.array([5, 6, 7]), np.array([8, 9])], 2)
        >>> ro.tolist(), k.tolist()
        ([0, 1, 2, 4, 5], [5, 8, 6, 7, 9])
    """
    slots = len(offsets)
    lengths = np.stack([np.diff(o) for o in offsets], axis=1) if slots else np.zeros((n, 0), np.int64)
    row_offsets = np.zeros(n * slots + 1, dtype=np.int64)
    np.cumsum(lengths.reshape(-1), out=row_offsets[1:])
    keys = np.empty(int(row_offsets[-1]), dtype=values[0].dtype if values else np.int64)
    starts = row_offsets[:-1].reshape(n, slots)
    for s in range(slots):
        # value j of row i goes to starts[i, s] + (j - offsets[s][i])
        shift = np.repeat(starts[:, s] - offsets[s][:-1], lengths[:, s])
        keys[shift + np.arange(values[s].size)] = values[s]
    return row_offsets, keys
