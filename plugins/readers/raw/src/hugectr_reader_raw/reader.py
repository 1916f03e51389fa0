"""The RawAsync reader (formats.md 2.1, multi-hot and legacy one-hot) and the legacy Raw reader (2.2).

Batch b covers records ``[b*B, (b+1)*B)``. Worker threads read whole batches with one large read
each and decode them; results come back in batch order whatever the thread count.
"""
from __future__ import annotations

import threading

import numpy as np
from hugectr_core.contracts.reader import Batch, Reader
from hugectr_core.enums import type_string
from hugectr_core.errors import ConfigError, DataError
from hugectr_core.localfs import LocalFileSystem

from .layout import KEY_DTYPES, RecordLayout
from hugectr_core.data_checks import check_finite
from hugectr_core.prefetch import END, OrderedPrefetcher


class RawAsync(Reader):
    """Reads one binary file of fixed-size records (no header).

    Multi-hot (``async_param.multi_hot_reader=True``): label int32, dense float32
    (``is_dense_float``) or int32 -> ``log(x+1)``, keys uint32/int64 with the static hotness of
    each slot (``DataReaderSparseParam.nnz_per_slot``). Legacy one-hot (``multi_hot_reader=False``):
    label int32, dense uint32 -> ``log(x+1)``, one key per slot. Keys are returned verbatim (no slot
    offsets).

    Args:
        params, input_layer, batch_size, source, repeat, key_dtype, seed, filesystem: see
            ``hugectr_core.contracts.Reader``.
        num_samples: records to read from ``source`` (``params.num_samples`` for training,
            ``params.eval_num_samples`` for evaluation); 0 means "as many as the file holds".

    Example:
        >>> reader = RawAsync(params, inp, batch_size=1024, source="train.bin",
        ...                   num_samples=params.num_samples)              # doctest: +SKIP
        >>> batch = reader.next_batch(); batch.sparse["data1"].keys        # doctest: +SKIP
        >>> reader.close()                                                 # doctest: +SKIP
    """

    def __init__(self, params, input_layer, *, batch_size: int, source, repeat: bool = True,
                 key_dtype: str = "uint32", seed: int = 0, filesystem=None, num_samples: int = 0):
        super().__init__(params, input_layer, batch_size=batch_size, source=_single_path(source), repeat=repeat,
                         key_dtype=key_dtype, seed=seed, filesystem=filesystem or LocalFileSystem())
        if batch_size < 1:
            raise ConfigError(f"{type(self).__name__}: batch_size must be >= 1, got {batch_size}")
        if key_dtype not in KEY_DTYPES:
            raise ConfigError(f"{type(self).__name__}: key_dtype must be 'uint32' or 'int64', got {key_dtype!r}")
        self.requested_samples = int(num_samples)
        self.layout = self._layout()
        async_param = params.async_param
        self.num_threads = int(async_param.num_threads)
        self.depth = int(async_param.num_batches_per_thread)
        self.shuffle = bool(async_param.shuffle)
        # Our extension: Raw files carry no checksums, so check_type=Check_t.Sum checks the values instead.
        self.check_values = type_string(getattr(params, "check_type", "Non")) == "Sum"
        self._generation = 0   # bumped by set_source: a new pass gets its own shuffle orders
        self._prefetcher: OrderedPrefetcher | None = None
        self._eof = False
        self._handed = 0       # batches handed out in this pass
        self._handles = threading.local()
        self._opened: list = []
        self._lock = threading.Lock()
        self._perm_cache: dict = {}
        self._open_source(self.source)

    # ----- layout and file checks -------------------------------------------------------------
    def _layout(self) -> RecordLayout:
        ap = self.params.async_param
        hotness = {p.top_name: (p.max_nnz if ap.multi_hot_reader else (1,) * p.slot_num)
                   for p in self.input_layer.sparse_params}
        if ap.multi_hot_reader:
            dense_dtype, dense_log = ("<f4", False) if ap.is_dense_float else ("<i4", True)
        else:
            dense_dtype, dense_log = "<u4", True
        return RecordLayout(self.input_layer.label_dim, "<i4", self.input_layer.dense_dim, dense_dtype,
                            dense_log, KEY_DTYPES[self.key_dtype], hotness)

    def _open_source(self, path: str) -> None:
        if not self.filesystem.exists(path):
            raise DataError(f"{type(self).__name__}: data file '{path}' does not exist; check "
                            f"DataReaderParams source/eval_source")
        self.num_samples = count_records(path, self.filesystem.size(path), self.layout.record_size,
                                         self.requested_samples)
        full, rest = divmod(self.num_samples, self.batch_size)
        if self.repeat and full == 0:
            raise DataError(f"{type(self).__name__}: '{path}' holds {self.num_samples} samples, fewer than one "
                            f"batch of {self.batch_size}; use a smaller batch size or more data")
        # Repeat mode skips the last incomplete batch, so a batch never straddles the end of the file.
        self.num_batches = full if self.repeat else full + (rest > 0)
        self.source = path

    # ----- the batch sequence -----------------------------------------------------------------
    def _batch_index(self, k: int) -> int | None:
        """Batch number read at position k of the sequence, None past the end (epoch mode)."""
        if self.num_batches == 0:  # an empty file in epoch mode: the pass ends at once
            return None
        epoch, pos = divmod(k, self.num_batches)
        if epoch > 0 and not self.repeat:
            return None
        if not self.shuffle:
            return pos
        return int(self._permutation(epoch)[pos])

    def _permutation(self, epoch: int) -> np.ndarray:
        key = (self._generation, epoch)
        with self._lock:
            if key not in self._perm_cache:
                if len(self._perm_cache) > 4:
                    self._perm_cache.pop(next(iter(self._perm_cache)))
                rng = np.random.default_rng([self.seed, self._generation, epoch])
                self._perm_cache[key] = rng.permutation(self.num_batches)
            return self._perm_cache[key]

    def _produce(self, k: int):
        b = self._batch_index(k)
        if b is None:
            return END
        start = b * self.batch_size
        count = min(self.batch_size, self.num_samples - start)
        batch = self.layout.decode(self._read_records(start, count))
        if self.check_values:
            check_finite(batch.label, batch.dense, f"{type(self).__name__}: '{self.source}'", start)
        return batch

    def _read_records(self, start: int, count: int) -> np.ndarray:
        handle = getattr(self._handles, "file", None)
        if handle is None or getattr(self._handles, "path", None) != self.source:
            handle = self.filesystem.open(self.source, "rb")
            self._handles.file, self._handles.path = handle, self.source
            with self._lock:
                self._opened.append(handle)
        size = self.layout.record_size
        handle.seek(start * size)
        data = handle.read(count * size)
        if len(data) != count * size:
            raise DataError(f"{type(self).__name__}: '{self.source}' ended early: records {start}..{start + count - 1} "
                            f"need bytes up to {(start + count) * size}, got {start * size + len(data)}; "
                            f"the file was truncated or replaced while reading")
        return np.frombuffer(data, dtype=self.layout.dtype)

    # ----- Reader API -------------------------------------------------------------------------
    def next_batch(self) -> Batch | None:
        """The next batch; None at the end of an epoch-mode pass. Re-raises a worker's error."""
        if self._eof:
            return None
        if self._prefetcher is None:
            self._prefetcher = OrderedPrefetcher(self._produce, self.num_threads, self.depth,
                                                 name=f"{type(self).__name__}")
        item = self._prefetcher.get()
        if item is END:
            self._eof = True
            return None
        self._handed += 1
        # Epoch mode: is_eof() turns True as soon as the pass's last (possibly short) batch is handed out.
        self._eof = not self.repeat and self._handed >= self.num_batches
        return item

    def is_eof(self) -> bool:
        return self._eof

    def set_source(self, file_name: str = "") -> None:
        """Read ``file_name`` from its start next; ``''`` rewinds the current file."""
        self._stop_workers()
        self._open_source(_single_path(file_name) if file_name else self.source)
        self._generation += 1
        self._eof = False
        self._handed = 0

    def _stop_workers(self) -> None:
        super()._stop_workers()
        with self._lock:
            for handle in self._opened:
                handle.close()
            self._opened.clear()
        self._handles = threading.local()


class Raw(RawAsync):
    """The legacy (deprecated) Raw reader, formats.md 2.2.

    Record: label and dense as float32 when ``params.float_label_dense`` else integers of the key
    width (int32 with uint32 keys, int64 with int64 keys; dense -> ``log(x+1)``), then the keys with
    the static hotness of each slot (one-hot in HugeCTR's files). This is what
    ``DataGenerator(format=Raw)`` writes.

    Example:
        >>> reader = Raw(params, inp, batch_size=512, source="train.bin", num_samples=0)  # doctest: +SKIP
    """

    def _layout(self) -> RecordLayout:
        key = KEY_DTYPES[self.key_dtype]
        if self.params.float_label_dense:
            value_dtype, dense_log = "<f4", False
        else:
            value_dtype, dense_log = ("<i4" if key == "<u4" else "<i8"), True
        hotness = {p.top_name: p.max_nnz for p in self.input_layer.sparse_params}
        return RecordLayout(self.input_layer.label_dim, value_dtype, self.input_layer.dense_dim, value_dtype,
                            dense_log, key, hotness)


def count_records(path: str, file_size: int, record_size: int, expected: int) -> int:
    """Number of records to read: ``expected``, or all of them when ``expected`` is 0.

    Raises DataError when the file is not a whole number of records or is too small.
    """
    if file_size % record_size:
        raise DataError(f"'{path}' is {file_size} bytes, not a multiple of the record size {record_size} "
                        f"(expected {expected or 'any number of'} records); the file is truncated or the Input "
                        f"(label_dim, dense_dim, nnz_per_slot, i64_input_key, is_dense_float) does not match it")
    available = file_size // record_size
    if expected > available:
        raise DataError(f"'{path}' is {file_size} bytes = {available} records of {record_size} bytes, but "
                        f"{expected} records are expected (num_samples/eval_num_samples); fix the count or the file")
    return expected or available


def _single_path(source) -> str:
    if isinstance(source, (list, tuple)):
        if len(source) != 1:
            raise ConfigError(f"Raw readers read exactly one file, got source={list(source)!r}")
        source = source[0]
    if not isinstance(source, str) or not source:
        raise ConfigError(f"Raw readers need a file name as source, got {source!r}")
    return source
