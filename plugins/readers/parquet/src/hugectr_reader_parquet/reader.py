"""The Parquet reader: whole files are decoded on worker threads, batches are cut on the caller's thread.

Files are read in list order (``read_file_sequentially=True``) or in a seeded random order per
pass; rows are consumed in order within a file and batches may span files. Repeat mode drops the
incomplete batch at the end of each pass; epoch mode returns it, then None.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hugectr_core.contracts.reader import Batch, Reader, SparseBatch
from hugectr_core.enums import type_string
from hugectr_core.errors import ConfigError, DataError
from hugectr_core.localfs import LocalFileSystem

from .dataset import Columns, FileDecoder, Metadata, read_file_list
from hugectr_core.prefetch import END, OrderedPrefetcher


@dataclass
class _Loaded:
    epoch: int
    columns: Columns


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
                                   check_values=type_string(getattr(self.params, "check_type", "Non")) == "Sum")
        self.metadata = metadata
        self.source = source
        self.num_workers = max(1, min(int(self.params.num_workers), len(files)))
        self._reset_cursor()

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

    def _reset_cursor(self) -> None:
        self._columns: Columns | None = None
        self._row = 0
        self._epoch = 0
        self._pending: _Loaded | None = None
        self._eof = False
        self._rows_handed = 0   # rows handed out in this pass (epoch mode ends when all are out)

    # ----- the file sequence ------------------------------------------------------------------
    def _file_index(self, k: int) -> tuple | None:
        epoch, pos = divmod(k, len(self.files))
        if epoch > 0 and not self.repeat:
            return None
        if self.sequential or len(self.files) == 1:
            return epoch, pos
        order = np.random.default_rng([self.seed, self._generation, epoch]).permutation(len(self.files))
        return epoch, int(order[pos])

    def _produce(self, k: int):
        where = self._file_index(k)
        if where is None:
            return END
        epoch, index = where
        return _Loaded(epoch, self.decoder.decode(self.files[index]))

    # ----- batches ----------------------------------------------------------------------------
    def next_batch(self) -> Batch | None:
        """The next batch; None at the end of an epoch-mode pass. Re-raises a worker's error."""
        if self._eof:
            return None
        if self._prefetcher is None:
            self._prefetcher = OrderedPrefetcher(self._produce, self.num_workers, 1, name="Parquet")
        while True:
            parts, rows, ended = self._gather(self.batch_size)
            if rows == self.batch_size:
                self._rows_handed += rows
                # Epoch mode: is_eof() turns True as soon as the pass's last batch is handed out.
                self._eof = not self.repeat and self._rows_handed >= self.total_rows
                return self._batch(Columns.concat(parts))
            if not self.repeat:
                self._eof = True
                return self._batch(Columns.concat(parts)) if rows else None
            if ended:  # cannot happen in repeat mode; kept so a logic slip is an error, not a hang
                raise DataError(f"Parquet: '{self.source}' ran out of rows in repeat mode")
            # Repeat mode: the incomplete batch at the end of a pass is dropped.

    def _gather(self, want: int):
        """Up to ``want`` rows of the current pass; (parts, rows, sequence_ended)."""
        parts, rows, epoch = [], 0, None
        while rows < want:
            if self._columns is None or self._row >= self._columns.num_rows:
                item = self._pending or self._prefetcher.get()
                self._pending = None
                if item is END:
                    return parts, rows, True
                if epoch is not None and item.epoch != epoch:
                    self._pending = item  # the next pass starts with this file
                    return parts, rows, False
                self._columns, self._row, self._epoch = item.columns, 0, item.epoch
            epoch = self._epoch if epoch is None else epoch
            if epoch != self._epoch:
                return parts, rows, False
            take = min(want - rows, self._columns.num_rows - self._row)
            parts.append(self._columns.rows(self._row, self._row + take))
            self._row += take
            rows += take
        return parts, rows, False

    def _batch(self, cols: Columns) -> Batch:
        n = cols.num_rows
        sparse, first = {}, 0
        key_dtype = np.int64 if self.key_dtype == "int64" else np.uint32
        for param in self.input_layer.sparse_params:
            cats = range(first, first + param.slot_num)
            row_offsets, keys = to_csr([cols.cat_offsets[c] for c in cats], [cols.cat_values[c] for c in cats], n)
            sparse[param.top_name] = SparseBatch(row_offsets=row_offsets, keys=keys.astype(key_dtype, copy=False))
            first += param.slot_num
        return Batch(size=n, label=cols.label, dense=cols.dense, sparse=sparse)

    # ----- Reader API -------------------------------------------------------------------------
    def is_eof(self) -> bool:
        return self._eof

    def set_source(self, source: str = "") -> None:
        """Read ``source`` (a file list) from its start next; ``''`` rewinds the current one."""
        self._stop_workers()
        self._open_source(source or self.source)
        self._generation += 1


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
