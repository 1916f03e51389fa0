"""The Norm reader: whole files are decoded on worker threads, batches are cut on the caller's thread.

Files are read in list order; rows are consumed in order and batches may span files. Repeat mode
drops the incomplete batch at the end of each pass (like the Parquet and RawAsync readers); epoch
mode returns it, then None.
"""
from __future__ import annotations

from dataclasses import dataclass

from hugectr_core.data_checks import check_finite
from hugectr_core.filelist import read_file_list as _read_file_list
from hugectr_core.contracts.reader import Batch, Reader, SparseBatch
from hugectr_core.enums import type_string
from hugectr_core.errors import ConfigError, DataError
from hugectr_core.localfs import LocalFileSystem
from hugectr_core.prefetch import END, OrderedPrefetcher

from .format import KEY_DTYPES, NormLayout, Samples, parse_file


@dataclass
class _Loaded:
    epoch: int
    samples: Samples


def read_file_list(fs, list_path: str) -> list:
    """The data files of a Norm file list (see ``hugectr_core.filelist``)."""
    return _read_file_list(fs, list_path, "Norm")


class Norm(Reader):
    """Reads HugeCTR's Norm data set: a file list of Norm files (formats.md 2.3, deprecated in 23.12).

    Records carry float32 label/dense and, per slot, ``nnz`` keys (variable hotness up to the
    Input's ``nnz_per_slot``); keys are returned verbatim (Norm applies no slot offsets). The
    header must agree with the Input (label_dim, dense_dim, total slot_num). With
    ``check_type=Check_t.Sum`` every header and record checksum is verified.

    Args:
        params, input_layer, batch_size, source, repeat, key_dtype, seed, filesystem: see
            ``hugectr_core.contracts.Reader``. ``source`` is a file list (or a list of them).
        num_samples: ignored (record counts come from the headers).

    Example:
        >>> reader = Norm(params, inp, batch_size=1024, source="file_list.txt", repeat=False)  # doctest: +SKIP
        >>> while (batch := reader.next_batch()) is not None: ...                                # doctest: +SKIP
        >>> reader.close()                                                                       # doctest: +SKIP
    """

    def __init__(self, params, input_layer, *, batch_size: int, source, repeat: bool = True,
                 key_dtype: str = "uint32", seed: int = 0, filesystem=None, num_samples: int = 0):
        super().__init__(params, input_layer, batch_size=batch_size, source=source, repeat=repeat,
                         key_dtype=key_dtype, seed=seed, filesystem=filesystem or LocalFileSystem())
        if batch_size < 1:
            raise ConfigError(f"Norm: batch_size must be >= 1, got {batch_size}")
        if key_dtype not in KEY_DTYPES:
            raise ConfigError(f"Norm: key_dtype must be 'uint32' or 'int64', got {key_dtype!r}")
        self.layout = self._layout()
        self._prefetcher: OrderedPrefetcher | None = None
        self._open_source(source)

    def _layout(self) -> NormLayout:
        inp = self.input_layer
        max_nnz, names = [], []
        for p in inp.sparse_params:
            max_nnz += list(p.max_nnz)
            names += [f"sparse input '{p.top_name}' slot {s}" for s in range(p.slot_num)]
        check = type_string(self.params.check_type)
        if check not in ("Sum", "Non"):
            raise ConfigError(f"Norm: check_type must be Check_t.Sum or Check_t.Non, got {self.params.check_type!r}")
        return NormLayout(inp.label_dim, inp.dense_dim, tuple(max_nnz), KEY_DTYPES[self.key_dtype],
                          check == "Sum", tuple(names))

    # ----- the file sequence ------------------------------------------------------------------
    def _open_source(self, source) -> None:
        lists = [source] if isinstance(source, str) else list(source)
        if not lists or not all(isinstance(s, str) and s for s in lists):
            raise ConfigError(f"Norm: source must be a file list or a list of them, got {source!r}")
        self.files = [path for lst in lists for path in read_file_list(self.filesystem, lst)]
        self.source = source
        self.num_workers = max(1, min(int(self.params.num_workers), len(self.files)))
        self._columns: Samples | None = None
        self._row = 0
        self._epoch = 0
        self._pending: _Loaded | None = None
        self._eof = False
        self._rows_in_pass = 0

    def _produce(self, k: int):
        epoch, pos = divmod(k, len(self.files))
        if epoch > 0 and not self.repeat:
            return END
        return _Loaded(epoch, self._decode(self.files[pos]))

    def _decode(self, path: str) -> Samples:
        if not self.filesystem.exists(path):
            raise DataError(f"Norm: data file '{path}' (from the file list) does not exist")
        try:
            with self.filesystem.open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise DataError(f"Norm: data file '{path}' (from the file list) cannot be read ({exc})") from exc
        samples = parse_file(data, path, self.layout)
        if self.layout.checksum:  # Check_t.Sum: our extension also refuses NaN/Inf label and dense values
            check_finite(samples.label, samples.dense, f"Norm: '{path}'")
        return samples

    # ----- batches ----------------------------------------------------------------------------
    def next_batch(self) -> Batch | None:
        """The next batch; None at the end of an epoch-mode pass. Re-raises a worker's error."""
        if self._eof:
            return None
        if self._prefetcher is None:
            self._prefetcher = OrderedPrefetcher(self._produce, self.num_workers, 1, name="Norm")
        while True:
            parts, rows, ended = self._gather(self.batch_size)
            if rows == self.batch_size:
                # Epoch mode: is_eof() turns True as soon as the pass's last batch is handed out.
                self._eof = not self.repeat and not self._more_rows()
                return self._batch(Samples.concat(parts))
            if not self.repeat:
                self._eof = True
                return self._batch(Samples.concat(parts)) if rows else None
            if ended:  # a repeat-mode sequence never ends; an empty data set lands here
                raise DataError(f"Norm: '{self.source}' ran out of records in repeat mode")
            if self._rows_in_pass < self.batch_size:
                raise DataError(f"Norm: '{self.source}' holds {self._rows_in_pass} records, fewer than one batch "
                                f"of {self.batch_size}; use a smaller batch size or more data")
            # Repeat mode: the incomplete batch at the end of a pass is dropped.

    def _more_rows(self) -> bool:
        """Epoch mode: does the pass hold another row? Peeks at the next decoded file (kept as pending)."""
        if self._columns is not None and self._row < self._columns.num_rows:
            return True
        while True:
            try:
                item = self._pending or self._prefetcher.get()
            except Exception:  # noqa: BLE001 - the prefetcher keeps the error and raises it at the next call
                return True
            self._pending = None
            if item is END:
                return False
            if item.samples.num_rows:
                self._pending = item
                return True

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
                if item.epoch != self._epoch:
                    self._rows_in_pass = 0
                self._columns, self._row, self._epoch = item.samples, 0, item.epoch
                self._rows_in_pass += item.samples.num_rows
            epoch = self._epoch if epoch is None else epoch
            if epoch != self._epoch:
                return parts, rows, False
            take = min(want - rows, self._columns.num_rows - self._row)
            if take:
                parts.append(self._columns.rows(self._row, self._row + take))
            self._row += take
            rows += take
        return parts, rows, False

    def _batch(self, samples: Samples) -> Batch:
        sparse, first = {}, 0
        for param in self.input_layer.sparse_params:
            row_offsets, keys = samples.slot_range(first, first + param.slot_num)
            hotness = samples.hotness[first:first + param.slot_num] if samples.hotness is not None else None
            sparse[param.top_name] = SparseBatch(row_offsets=row_offsets, keys=keys, static_hotness=hotness)
            first += param.slot_num
        return Batch(size=samples.num_rows, label=samples.label, dense=samples.dense, sparse=sparse)

    # ----- Reader API -------------------------------------------------------------------------
    def is_eof(self) -> bool:
        return self._eof

    def set_source(self, file_name: str = "") -> None:
        """Read ``file_name`` (a file list) from its start next; ``''`` rewinds the current one."""
        self._stop_workers()
        self._open_source(file_name or self.source)

