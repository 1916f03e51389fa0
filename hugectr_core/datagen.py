"""Synthetic data sets: ``hugectr.tools.DataGeneratorParams`` and ``DataGenerator`` (formats.md 3.9).

Formats:

* ``Parquet``: ``<dir of source>/train/gen_<k>.parquet`` and ``<dir of eval_source>/val/gen_<k>.parquet``,
  the file lists at ``source``/``eval_source`` and a ``_metadata.json`` beside the data. Columns
  ``label<i>`` (float32), then ``C<index>`` dense (float32) and categorical (uint32, or int64 with
  ``i64_input_key``; a list column when the slot's nnz > 1, hotness per row ``1 + r % nnz``). Keys are
  slot-local, in ``[0, slot_size)``: the Parquet reader adds the slot offsets.
* ``Raw`` (legacy, formats.md 2.2): one file per split; label and dense float32 when
  ``float_label_dense`` else integers of the key width; keys with the fixed hotness of ``nnz_array``.
* ``RawAsync`` (formats.md 2.1, what the RawAsync multi-hot reader reads with
  ``is_dense_float=True``): int32 labels, float32 dense, keys with the fixed hotness of ``nnz_array``.
* ``Norm`` (formats.md 2.3): ``<dir of source>/train/gen_<k>.data`` and ``<dir of eval_source>/val/gen_<k>.data``
  (``num_files``/``eval_num_files`` files of ``num_samples_per_file`` records) and the file lists at
  ``source``/``eval_source``. Each file: the 64-byte header, then records of float32 label/dense and, per
  slot, int32 nnz (fixed, from ``nnz_array``) + keys (uint32, or int64 with ``i64_input_key``); with
  ``check_type=Sum`` the header and every record are framed ``int32 len | payload | uint8 sum % 256``.

Raw, RawAsync and Norm keys are written WITH slot offsets (``key + sum(slot_size_array[:slot])``, i.e. drawn
from the slot's own offset range, as HugeCTR's Norm generator does) because those readers add none: one
hash embedding then sees distinct keys per slot.

Label models (our keyword-only extra ``label_model``):

* ``"random"`` (HugeCTR's semantics): Raw labels alternate ``i % 2`` and dense value j is the
  constant j; Parquet and Norm labels and dense are U[0,1) floats; RawAsync (not a HugeCTR generator
  format) labels are fair coin flips and dense U[0,1).
* ``"learnable"``: 0/1 labels drawn from a hidden model (``hugectr_core.learnable``), dense U[0,1)
  floats (small non-negative ints for integer Raw). ``generate()`` reports the hidden model's AUC on
  the eval set, ``ceiling_auc``, which is what a perfect learner would reach.

Keys: power law by inverse CDF on [1, S] (``key = round(y) - 1``, key 0 hottest) or uniform on [0, S).
``seed`` (keyword-only) makes everything reproducible; HugeCTR's generator is never reproducible.

Example:
    >>> from hugectr.tools import DataGenerator, DataGeneratorParams          # doctest: +SKIP
    >>> p = DataGeneratorParams("Parquet", 1, 13, 26, False, "./data/file_list.txt",
    ...                         "./data/file_list_test.txt", [1000] * 26, num_files=4,
    ...                         eval_num_files=1, num_samples_per_file=8192, seed=0,
    ...                         label_model="learnable")                    # doctest: +SKIP
    >>> DataGenerator(p).generate()["ceiling_auc"]                           # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .datagen_params import DataGeneratorParams, sample_keys
from .enums import type_string
from .errors import ConfigError
from .learnable import HiddenModel
from .metrics import auc as roc_auc

CHUNK_SAMPLES = 65536       # Raw/RawAsync files are generated in chunks of this many samples
CALIBRATION_SAMPLES = 16384
INT_DENSE_MAX = 10          # learnable integer dense values are in [0, INT_DENSE_MAX)


@dataclass
class _Block:
    """n generated samples: on-disk label/dense values, slot-local keys, true probabilities."""

    label: np.ndarray      # (n, L)
    dense: np.ndarray      # (n, D)
    slots: list            # per slot: (lengths (n,) int64, keys int64)
    prob: np.ndarray | None  # (n,) probability of label 0 under the hidden model


class DataGenerator:
    """Writes the synthetic training and evaluation data described by a DataGeneratorParams.

    Example:
        >>> gen = DataGenerator(DataGeneratorParams("RawAsync", 1, 2, 2, False, "/tmp/dg_t.bin",
        ...                     "/tmp/dg_v.bin", [5, 5], num_samples=64, eval_num_samples=32,
        ...                     seed=0))                                     # doctest: +SKIP
        >>> gen.generate()["train"]                                          # doctest: +SKIP
        ['/tmp/dg_t.bin']
    """

    def __init__(self, data_generator_params: DataGeneratorParams):
        self.params = data_generator_params
        p = self.params
        self.seed = int(p.seed) if p.seed is not None else int(np.random.SeedSequence().entropy)
        self.dist = type_string(p.dist_type)
        self.model = None
        if p.label_model == "learnable":
            self.model = HiddenModel(self.seed, p.num_slot, p.dense_dim, p.label_dim)
            calib = self._block(np.random.default_rng([self.seed, 99]), CALIBRATION_SAMPLES, 0, calibrate=True)
            self.model.calibrate(self._features(calib.dense), calib.slots)

    # ----- sampling ---------------------------------------------------------------------------
    @property
    def _int_dense(self) -> bool:
        return self.params.format_name == "Raw" and not self.params.float_label_dense

    def _features(self, dense: np.ndarray) -> np.ndarray:
        """What the reader hands to the model: log(x+1) of integer dense, float dense as is."""
        return np.log1p(dense.astype(np.float64)) if self._int_dense else dense.astype(np.float64)

    def _slots(self, rng, n: int) -> list:
        p = self.params
        out = []
        for size, nnz in zip(p.slot_size_array, p.hotness):
            if p.format_name == "Parquet" and nnz > 1:
                lengths = 1 + rng.integers(0, nnz, size=n, dtype=np.int64)
            else:
                lengths = np.full(n, nnz, dtype=np.int64)
            out.append((lengths, sample_keys(rng, size, int(lengths.sum()), self.dist, p.alpha_value)))
        return out

    def _block(self, rng, n: int, first_index: int, calibrate: bool = False) -> _Block:
        p, fmt = self.params, self.params.format_name
        slots = self._slots(rng, n)
        if self.model is None and fmt == "Raw":
            label = (np.arange(first_index, first_index + n) % 2)[:, None].repeat(p.label_dim, axis=1)
            dense = np.broadcast_to(np.arange(p.dense_dim), (n, p.dense_dim))
            return _Block(label, dense, slots, None)
        if self._int_dense:
            dense = rng.integers(0, INT_DENSE_MAX, size=(n, p.dense_dim))
        else:
            dense = rng.random((n, p.dense_dim), dtype=np.float32)
        if calibrate:
            return _Block(np.zeros((n, p.label_dim)), dense, slots, None)
        if self.model is None:
            uniform = fmt in ("Parquet", "Norm")
            label = rng.random((n, p.label_dim)) if uniform else rng.integers(0, 2, size=(n, p.label_dim))
            return _Block(label, dense, slots, None)
        prob = self.model.probabilities(self._features(dense), slots)
        label = (rng.random(prob.shape) < prob).astype(np.int64)
        return _Block(label, dense, slots, prob[:, 0])

    # ----- writing ----------------------------------------------------------------------------
    def generate(self) -> dict:
        """Write both splits; return ``{"train": [paths], "eval": [paths], "ceiling_auc": float | None}``."""
        fmt = self.params.format_name
        writer = {"Parquet": self._generate_parquet, "Norm": self._generate_norm}.get(fmt, self._generate_raw)
        train, _ = writer("train")
        evals, (prob, label) = writer("eval")
        ceiling = roc_auc(prob, label) if self.model is not None else None
        result = {"train": train, "eval": evals, "ceiling_auc": ceiling}
        if fmt in ("Parquet", "Norm"):
            result.update(train_list=self.params.source, eval_list=self.params.eval_source)
        if ceiling is not None:
            print(f"DataGenerator: ceiling AUC of the hidden label model on the eval set = {ceiling:.4f}", flush=True)
        return result

    def _map(self, fn, items):
        """``map(fn, items)`` in order, on ``num_threads`` threads with a bounded look-ahead."""
        threads = self.params.num_threads
        if threads == 1:
            yield from map(fn, items)
            return
        with ThreadPoolExecutor(threads) as pool:
            pending = deque()
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def _generate_raw(self, split: str):
        p = self.params
        path = p.source if split == "train" else p.eval_source
        total = p.num_samples if split == "train" else p.eval_num_samples
        split_id = 0 if split == "train" else 1
        starts = list(range(0, total, CHUNK_SAMPLES))
        dtype = self._raw_record_dtype()

        def make(start):
            rng = np.random.default_rng([self.seed, split_id, start // CHUNK_SAMPLES])
            return self._block(rng, min(CHUNK_SAMPLES, total - start), start)

        _makedirs_for(path)
        probs, labels = [], []
        with open(path, "wb") as f:
            for block in self._map(make, starts):
                f.write(self._raw_records(block, dtype).tobytes())
                if block.prob is not None:
                    probs.append(block.prob)
                    labels.append(block.label[:, 0])
        print(f"DataGenerator: wrote {path} ({total} samples, {dtype.itemsize} bytes each)", flush=True)
        return [path], (_cat(probs), _cat(labels))

    def _raw_record_dtype(self) -> np.dtype:
        p = self.params
        key = "<i8" if p.i64_input_key else "<u4"
        if p.format_name == "RawAsync":
            label, dense = "<i4", "<f4"
        elif p.float_label_dense:
            label = dense = "<f4"
        else:  # HugeCTR writes integer label/dense with the width of the key type
            label = dense = "<i8" if p.i64_input_key else "<i4"
        return np.dtype([("label", label, (p.label_dim,)), ("dense", dense, (p.dense_dim,)),
                         ("keys", key, (sum(p.hotness),))])

    def _raw_records(self, block: _Block, dtype: np.dtype) -> np.ndarray:
        n = block.label.shape[0]
        rec = np.empty(n, dtype=dtype)
        rec["label"] = block.label.reshape(n, -1)
        rec["dense"] = block.dense.reshape(n, -1)
        keys = rec["keys"].reshape(n, -1)
        col = 0
        for (lengths, values), offset, nnz in zip(block.slots, self.params.key_offsets, self.params.hotness):
            keys[:, col:col + nnz] = (values + offset).reshape(n, nnz)
            col += nnz
        return rec

    def _generate_parquet(self, split: str):
        pa, pq = _pyarrow()
        p = self.params
        list_path = p.source if split == "train" else p.eval_source
        directory = os.path.join(os.path.dirname(list_path), "train" if split == "train" else "val")
        count = p.num_files if split == "train" else p.eval_num_files
        split_id = 0 if split == "train" else 1
        os.makedirs(directory, exist_ok=True)
        paths = [os.path.join(directory, f"gen_{k}.parquet") for k in range(count)]

        def make(k):
            block = self._block(np.random.default_rng([self.seed, split_id, k]), p.num_samples_per_file,
                                k * p.num_samples_per_file)
            pq.write_table(self._parquet_table(pa, block), paths[k])
            print(f"DataGenerator: wrote {paths[k]} ({p.num_samples_per_file} samples)", flush=True)
            return block.prob, (block.label[:, 0] if block.prob is not None else None)

        results = list(self._map(make, range(count)))
        self._write_metadata(directory, paths)
        _makedirs_for(list_path)
        with open(list_path, "w") as f:
            f.write(f"{count}\n" + "".join(f"{path}\n" for path in paths))
        probs = [r[0] for r in results if r[0] is not None]
        labels = [r[1] for r in results if r[1] is not None]
        return paths, (_cat(probs), _cat(labels))

    def _generate_norm(self, split: str):
        p = self.params
        list_path = p.source if split == "train" else p.eval_source
        directory = os.path.join(os.path.dirname(list_path), "train" if split == "train" else "val")
        count = p.num_files if split == "train" else p.eval_num_files
        split_id = 0 if split == "train" else 1
        os.makedirs(directory, exist_ok=True)
        paths = [os.path.join(directory, f"gen_{k}.data") for k in range(count)]

        def make(k):
            block = self._block(np.random.default_rng([self.seed, split_id, k]), p.num_samples_per_file,
                                k * p.num_samples_per_file)
            with open(paths[k], "wb") as f:
                f.write(self._norm_header(p.num_samples_per_file))
                f.write(self._norm_records(block).tobytes())
            print(f"DataGenerator: wrote {paths[k]} ({p.num_samples_per_file} samples)", flush=True)
            return block.prob, (block.label[:, 0] if block.prob is not None else None)

        results = list(self._map(make, range(count)))
        _makedirs_for(list_path)
        with open(list_path, "w") as f:
            f.write(f"{count}\n" + "".join(f"{path}\n" for path in paths))
        probs = [r[0] for r in results if r[0] is not None]
        labels = [r[1] for r in results if r[1] is not None]
        return paths, (_cat(probs), _cat(labels))

    @property
    def _norm_checksum(self) -> bool:
        return type_string(self.params.check_type) == "Sum"

    def _norm_header(self, num_records: int) -> bytes:
        """8 int64 {error_check, records, label_dim, dense_dim, slot_num, 0, 0, 0}, framed when Check_t.Sum."""
        p = self.params
        payload = np.array([int(self._norm_checksum), num_records, p.label_dim, p.dense_dim, p.num_slot, 0, 0, 0],
                           dtype="<i8").tobytes()
        return _frame(payload) if self._norm_checksum else payload

    def _norm_records(self, block: _Block) -> np.ndarray:
        """All records of a block as one structured array (fixed hotness makes every record the same size)."""
        p = self.params
        key = "<i8" if p.i64_input_key else "<u4"
        fields = [("len", "<i4")] if self._norm_checksum else []
        fields += [("label", "<f4", (p.label_dim,)), ("dense", "<f4", (p.dense_dim,))]
        for s, nnz in enumerate(p.hotness):
            fields += [(f"n{s}", "<i4"), (f"k{s}", key, (nnz,))]
        if self._norm_checksum:
            fields.append(("sum", "u1"))
        dtype = np.dtype(fields)
        n = block.label.shape[0]
        rec = np.zeros(n, dtype=dtype)
        rec["label"] = block.label.reshape(n, -1)
        rec["dense"] = block.dense.reshape(n, -1)
        for s, ((_, values), offset, nnz) in enumerate(zip(block.slots, p.key_offsets, p.hotness)):
            rec[f"n{s}"] = nnz
            rec[f"k{s}"] = (values + offset).reshape(n, nnz)
        if self._norm_checksum:
            rec["len"] = dtype.itemsize - 5
            raw = rec.view(np.uint8).reshape(n, dtype.itemsize)
            rec["sum"] = raw[:, 4:-1].sum(axis=1, dtype=np.uint64) % 256
        return rec

    def _column_names(self) -> tuple:
        p = self.params
        labels = [f"label{i}" for i in range(p.label_dim)]
        conts = [f"C{p.label_dim + j}" for j in range(p.dense_dim)]
        cats = [f"C{p.label_dim + p.dense_dim + s}" for s in range(p.num_slot)]
        return labels, conts, cats

    def _parquet_table(self, pa, block: _Block):
        p = self.params
        labels, conts, cats = self._column_names()
        key_type = pa.int64() if p.i64_input_key else pa.uint32()
        columns = [pa.array(block.label[:, i].astype(np.float32)) for i in range(p.label_dim)]
        columns += [pa.array(np.ascontiguousarray(block.dense[:, j], dtype=np.float32)) for j in range(p.dense_dim)]
        for (lengths, keys), nnz in zip(block.slots, p.hotness):
            values = pa.array(keys.astype(np.int64 if p.i64_input_key else np.uint32), type=key_type)
            if nnz == 1:
                columns.append(values)
            else:
                offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
                columns.append(pa.ListArray.from_arrays(pa.array(offsets), values))
        return pa.Table.from_arrays(columns, names=labels + conts + cats)

    def _write_metadata(self, directory: str, paths: list) -> None:
        labels, conts, cats = self._column_names()
        index = iter(range(len(labels) + len(conts) + len(cats)))
        meta = {
            "file_stats": [{"file_name": os.path.basename(path), "num_rows": self.params.num_samples_per_file}
                           for path in paths],
            "labels": [{"col_name": c, "index": next(index)} for c in labels],
            "conts": [{"col_name": c, "index": next(index)} for c in conts],
            "cats": [{"col_name": c, "index": next(index)} for c in cats],
        }
        with open(os.path.join(directory, "_metadata.json"), "w") as f:
            json.dump(meta, f, indent=1)


def _pyarrow():
    try:
        import pyarrow as pa  # noqa: PLC0415 - optional dependency, only for Parquet
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError("DataGenerator: Parquet output needs pyarrow; run `pip install pyarrow`") from exc
    return pa, pq


def _frame(payload: bytes) -> bytes:
    """Check_t.Sum framing: ``int32 len | payload | uint8 sum(payload) % 256``."""
    checksum = int(np.frombuffer(payload, dtype=np.uint8).sum(dtype=np.uint64) % 256)
    return np.int32(len(payload)).astype("<i4").tobytes() + payload + bytes([checksum])


def _makedirs_for(path: str) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)


def _cat(arrays: list) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0)
