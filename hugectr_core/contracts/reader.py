"""The data-reader contract.

A reader turns one data source (a RawAsync file, a Parquet file list, ...) into fixed-layout
host batches: label ``(n, label_dim)`` float32, dense ``(n, dense_dim)`` float32 and, for each
``DataReaderSparseParam``, its keys in CSR form (``row_offsets`` of length ``n*slot_num + 1``,
sample-major: sample 0 slot 0, sample 0 slot 1, ...). ``n`` is the batch size except for a short
last batch in epoch mode. In iteration mode (``repeat_dataset=True``) a reader wraps around
forever; in epoch mode ``next_batch`` returns None at the end and ``is_eof()`` turns True.

Example:
    >>> reader = registry("readers").load("RawAsync")(params, input_layer, batch_size=1024,
    ...                                               source="train.bin", repeat=True)  # doctest: +SKIP
    >>> batch = reader.next_batch()                                                      # doctest: +SKIP
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np


@dataclass
class SparseBatch:
    """One sparse input of a batch in CSR form.

    Attributes:
        row_offsets: int64, length ``n*slot_num + 1``.
        keys: uint32 or int64, length ``row_offsets[-1]``.
        static_hotness: set by a reader when every sample has the same keys per slot (one entry per
            slot, e.g. ``(1,) * 26`` for one-hot); ``row_offsets`` is then ``static_row_offsets(
            static_hotness, n)``, a shared read-only array, so the runtime may keep it on the device
            instead of copying it every step. None when the hotness varies.

    Example:
        >>> sb = SparseBatch(static_row_offsets((1, 2), 2), np.arange(6, dtype=np.uint32), (1, 2))
        >>> sb.row_offsets.tolist()
        [0, 1, 3, 4, 6]
    """

    row_offsets: np.ndarray
    keys: np.ndarray
    static_hotness: tuple | None = None


_STATIC_OFFSETS: dict = {}          # (hotness, n) -> read-only row offsets, shared by all readers
_STATIC_OFFSETS_LOCK = threading.Lock()
_STATIC_OFFSETS_KEPT = 32           # batch sizes seen are few (train, eval, short last batches)


def static_row_offsets(hotness: tuple, n: int) -> np.ndarray:
    """CSR row offsets (length ``n*len(hotness) + 1``, int64) of n samples with static per-slot hotness.

    The array is cached per ``(hotness, n)`` and read-only: every batch of that shape shares it
    (building it costs more than decoding a one-hot batch). Thread-safe.

    Example:
        >>> static_row_offsets((2, 1), 2).tolist()
        [0, 2, 3, 5, 6]
    """
    key = (tuple(int(h) for h in hotness), int(n))
    with _STATIC_OFFSETS_LOCK:
        offsets = _STATIC_OFFSETS.get(key)
    if offsets is None:
        counts = np.tile(np.asarray(key[0], dtype=np.int64), key[1])
        offsets = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        offsets.flags.writeable = False
        with _STATIC_OFFSETS_LOCK:
            if len(_STATIC_OFFSETS) >= _STATIC_OFFSETS_KEPT:
                _STATIC_OFFSETS.pop(next(iter(_STATIC_OFFSETS)))
            offsets = _STATIC_OFFSETS.setdefault(key, offsets)
    return offsets


@dataclass
class Batch:
    size: int
    label: np.ndarray         # (size, label_dim) float32
    dense: np.ndarray         # (size, dense_dim) float32
    sparse: dict = field(default_factory=dict)  # top_name -> SparseBatch


class Reader:
    """Base class of reader plugins.

    Args:
        params: the ``hugectr.DataReaderParams``.
        input_layer: the model's ``hugectr.Input`` (label/dense dims, sparse params).
        batch_size: rows per batch on this process.
        source: the file (Raw) or file list (Parquet/Norm) to read.
        repeat: wrap around at the end (iteration mode) instead of stopping (epoch mode).
        key_dtype: "uint32" or "int64" (``Solver(i64_input_key=...)``).
        seed: for shuffling.
        filesystem: a ``FileSystem`` for remote sources (Local when None).
        num_samples: samples in the source when the format needs it told (Raw: ``num_samples`` or
            ``eval_num_samples`` of DataReaderParams); 0 means "derive it from the file".

    ``hugectr.DataReader32`` and ``hugectr.DataReader64`` (HugeCTR's names) are this class.

    Example (epoch mode, the low-level API):
        >>> import hugectr
        >>> hugectr.DataReader32 is hugectr.DataReader64 is Reader
        True
        >>> # reader = model.get_data_reader_train()
        >>> # while model.train(): ...
        >>> # reader.is_eof() -> True; reader.set_source(file_name="next.bin") reads the next file
    """

    def __init__(self, params, input_layer, *, batch_size: int, source: str, repeat: bool = True,
                 key_dtype: str = "uint32", seed: int = 0, filesystem=None, num_samples: int = 0):
        self.params = params
        self.input_layer = input_layer
        self.batch_size = batch_size
        self.source = source
        self.repeat = repeat
        self.key_dtype = key_dtype
        self.seed = seed
        self.filesystem = filesystem
        self.num_samples = num_samples

    def next_batch(self) -> Batch | None:
        raise NotImplementedError

    def is_eof(self) -> bool:
        raise NotImplementedError

    def set_source(self, file_name: str = "") -> None:
        """Read ``file_name`` from its start next ('' rewinds the current source); HugeCTR's argument name."""
        raise NotImplementedError

    _prefetcher = None  # an OrderedPrefetcher (hugectr_core.prefetch) while workers run

    def close(self) -> None:
        """Stop worker threads; safe to call twice."""
        self._stop_workers()

    def _stop_workers(self) -> None:
        """Stop the prefetching workers; readers holding more (open files) extend it."""
        if self._prefetcher is not None:
            self._prefetcher.close()
            self._prefetcher = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to report to
            pass
