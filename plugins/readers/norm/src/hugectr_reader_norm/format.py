"""The Norm file format (formats.md 2.3): header, variable-hotness records, ``Check_t.Sum`` framing.

Axis letters: N records, L label_dim, D dense_dim, S slots (all sparse inputs together), K keys.

A data file is a 64-byte header of 8 little-endian int64 ``{error_check, number_of_records,
label_dim, dense_dim, slot_num, reserved[3]}`` followed by N records ``float32 label[L],
float32 dense[D]``, then per slot ``int32 nnz`` and ``nnz`` keys (uint32, or int64 with
``i64_input_key``). With ``Check_t.Sum`` the header and every record are framed as
``int32 payload_len | payload | uint8 checksum`` where checksum = sum of the payload bytes mod 256.

Example:
    >>> layout = NormLayout(label_dim=1, dense_dim=2, max_nnz=(2, 1), key_dtype="<u4", checksum=True)
    >>> data = encode_file(layout, np.zeros((1, 1)), np.ones((1, 2)), np.array([[2, 1]]), np.array([7, 8, 9]))
    >>> samples = parse_file(data, "f.data", layout)
    >>> samples.nnz.tolist(), samples.keys.tolist()
    ([[2, 1]], [7, 8, 9])
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from hugectr_core.contracts.reader import static_row_offsets
from hugectr_core.errors import DataError

HEADER_BYTES = 64
HEADER_FIELDS = ("error_check", "number_of_records", "label_dim", "dense_dim", "slot_num")
KEY_DTYPES = {"uint32": "<u4", "int64": "<i8"}
_BLOCK = 4096   # records per block of the vectorised decoder (about 1 MB: stays in cache)


@dataclass(frozen=True)
class NormLayout:
    """What the model expects of a Norm file.

    Args:
        label_dim: L.
        dense_dim: D.
        max_nnz: most keys per slot, one entry per slot of all sparse inputs (S entries).
        key_dtype: "<u4" or "<i8".
        checksum: files are framed (``Check_t.Sum``).
        slot_names: optional S descriptions (e.g. "sparse input 'data1' slot 0") for error messages.
    """

    label_dim: int
    dense_dim: int
    max_nnz: tuple
    key_dtype: str
    checksum: bool
    slot_names: tuple = ()

    @property
    def slot_num(self) -> int:
        return len(self.max_nnz)

    @property
    def key_bytes(self) -> int:
        return np.dtype(self.key_dtype).itemsize

    def slot_name(self, s: int) -> str:
        return self.slot_names[s] if s < len(self.slot_names) else f"slot {s}"


@dataclass
class Samples:
    """Decoded records: float32 label/dense, keys per (sample, slot) in sample-major CSR order.

    ``hotness`` is set when every record has the same nnz per slot (then ``nnz`` is a read-only
    broadcast of it and row offsets come from the shared ``static_row_offsets``).
    """

    label: np.ndarray   # (N, L) float32
    dense: np.ndarray   # (N, D) float32
    nnz: np.ndarray     # (N, S) int64
    keys: np.ndarray    # (K,) uint32 or int64, sample 0 slot 0, sample 0 slot 1, ...
    hotness: tuple | None = None

    @property
    def num_rows(self) -> int:
        return self.label.shape[0]

    def key_starts(self) -> np.ndarray:
        """(N+1,) offset of each sample's first key (computed once per Samples)."""
        starts = getattr(self, "_starts", None)
        if starts is None:
            if self.hotness is not None:
                starts = np.arange(self.num_rows + 1, dtype=np.int64) * sum(self.hotness)
            else:
                starts = np.zeros(self.num_rows + 1, dtype=np.int64)
                np.cumsum(self.nnz.sum(axis=1), out=starts[1:])
            self._starts = starts
        return starts

    def rows(self, start: int, stop: int) -> "Samples":
        starts = self.key_starts()
        return Samples(self.label[start:stop], self.dense[start:stop], self.nnz[start:stop],
                       self.keys[starts[start]:starts[stop]], self.hotness)

    @staticmethod
    def concat(parts: list) -> "Samples":
        if len(parts) == 1:
            return parts[0]
        hotness = parts[0].hotness if all(p.hotness == parts[0].hotness for p in parts) else None
        label, dense, keys = (np.concatenate([getattr(p, f) for p in parts]) for f in ("label", "dense", "keys"))
        if hotness is not None:
            return Samples(label, dense, _static_nnz(hotness, len(label)), keys, hotness)
        return Samples(label, dense, np.concatenate([p.nnz for p in parts]), keys)

    def slot_range(self, first: int, stop: int) -> tuple:
        """CSR (row_offsets, keys) of slots ``[first, stop)`` only (one sparse input)."""
        n, slots = self.nnz.shape
        if self.hotness is not None:
            hot = self.hotness
            row_offsets = static_row_offsets(hot[first:stop], n)
            if first == 0 and stop == slots:
                return row_offsets, self.keys
            per_sample = self.keys.reshape(n, sum(hot))
            return row_offsets, per_sample[:, sum(hot[:first]):sum(hot[:stop])].reshape(-1)
        counts = self.nnz[:, first:stop]
        row_offsets = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts.reshape(-1), out=row_offsets[1:])
        if first == 0 and stop == slots:
            return row_offsets, self.keys
        slot_of_key = np.repeat(np.tile(np.arange(slots), n), self.nnz.reshape(-1))
        keep = (slot_of_key >= first) & (slot_of_key < stop)
        return row_offsets, self.keys[keep]


def _static_nnz(hotness: tuple, n: int) -> np.ndarray:
    """(n, S) int64 nnz of n records of the same hotness, as a read-only broadcast (no memory)."""
    return np.broadcast_to(np.asarray(hotness, dtype=np.int64), (n, len(hotness)))


# ----- writing (tests and tools; hugectr_core.datagen has its own vectorised writer) ----------------
def frame(payload: bytes) -> bytes:
    """``int32 len | payload | uint8 sum(payload) % 256``."""
    checksum = int(np.frombuffer(payload, dtype=np.uint8).sum(dtype=np.uint64) % 256)
    return struct.pack("<i", len(payload)) + payload + bytes([checksum])


def encode_header(layout: NormLayout, num_records: int) -> bytes:
    fields = [int(layout.checksum), num_records, layout.label_dim, layout.dense_dim, layout.slot_num, 0, 0, 0]
    payload = np.asarray(fields, dtype="<i8").tobytes()
    return frame(payload) if layout.checksum else payload


def encode_record(layout: NormLayout, label, dense, nnz, keys) -> bytes:
    """One record's bytes; ``keys`` holds the record's keys slot after slot."""
    parts = [np.asarray(label, "<f4").tobytes(), np.asarray(dense, "<f4").tobytes()]
    keys = np.asarray(keys)
    start = 0
    for count in nnz:
        parts.append(struct.pack("<i", int(count)))
        parts.append(keys[start:start + int(count)].astype(layout.key_dtype).tobytes())
        start += int(count)
    payload = b"".join(parts)
    return frame(payload) if layout.checksum else payload


def encode_file(layout: NormLayout, label, dense, nnz, keys) -> bytes:
    """A whole file: header and N records (``nnz`` (N, S), ``keys`` flat sample-major)."""
    label, dense, nnz = np.asarray(label), np.asarray(dense), np.asarray(nnz)
    starts = np.concatenate([[0], np.cumsum(nnz.sum(axis=1))])
    records = [encode_record(layout, label[i], dense[i], nnz[i], keys[starts[i]:starts[i + 1]])
               for i in range(len(label))]
    return encode_header(layout, len(label)) + b"".join(records)


# ----- reading ---------------------------------------------------------------------------------
def parse_file(data: bytes, path: str, layout: NormLayout) -> Samples:
    """Decode a whole Norm file; every inconsistency is a DataError naming ``path`` (and record, slot)."""
    num_records, pos = _parse_header(data, path, layout)
    if num_records == 0:
        return _check_end(_empty(layout), data, pos, path, num_records)
    first = _RecordScanner(data, path, layout).scan_one(pos, 0)
    fixed = _parse_fixed(data, pos, path, layout, num_records, first.nnz)
    if fixed is not None:
        return fixed
    return _RecordScanner(data, path, layout).scan_all(pos, num_records)


def _parse_header(data: bytes, path: str, layout: NormLayout) -> tuple:
    pos = 0
    if layout.checksum:
        if len(data) < 4 + HEADER_BYTES + 1 or struct.unpack_from("<i", data, 0)[0] != HEADER_BYTES:
            raise DataError(f"Norm: '{path}' does not start with a checksum-framed header (int32 64, 64 bytes, "
                            f"uint8 checksum) although check_type=Check_t.Sum; if the file was written without "
                            f"checksums set DataReaderParams(check_type=Check_t.Non)")
        _verify(data, 4, HEADER_BYTES, path, "the header")
        pos = 4
    elif len(data) < HEADER_BYTES:
        raise DataError(f"Norm: '{path}' is {len(data)} bytes, shorter than the 64-byte header")
    values = np.frombuffer(data, dtype="<i8", count=8, offset=pos)
    header = dict(zip(HEADER_FIELDS, (int(v) for v in values)))
    pos += HEADER_BYTES + (1 if layout.checksum else 0)
    if header["error_check"] != int(layout.checksum):
        raise DataError(f"Norm: '{path}' header says error_check={header['error_check']} but check_type="
                        f"{'Sum' if layout.checksum else 'Non'} expects {int(layout.checksum)}; set "
                        f"DataReaderParams(check_type=Check_t.{'Non' if layout.checksum else 'Sum'}) to match the file")
    expected = {"label_dim": layout.label_dim, "dense_dim": layout.dense_dim, "slot_num": layout.slot_num}
    wrong = [f"{k}={header[k]} (Input has {v})" for k, v in expected.items() if header[k] != v]
    if wrong:
        raise DataError(f"Norm: '{path}' header disagrees with the model's Input: {', '.join(wrong)}; "
                        f"slot_num is the total over all DataReaderSparseParams. Fix the Input or the data")
    count = header["number_of_records"]
    if count < 0:
        raise DataError(f"Norm: '{path}' header says number_of_records={count}")
    # Every record takes at least its label/dense floats and one nnz per slot: a corrupt count must not
    # make us allocate arrays for records the file cannot hold.
    smallest = 4 * (layout.label_dim + layout.dense_dim + layout.slot_num) + (5 if layout.checksum else 0)
    if count * max(smallest, 1) > len(data) - pos:
        raise DataError(f"Norm: '{path}' header says number_of_records={count}, but its {len(data) - pos} bytes "
                        f"of records can hold at most {(len(data) - pos) // max(smallest, 1)}; the file is "
                        f"truncated or its header is corrupt")
    return count, pos


def _verify(data: bytes, start: int, length: int, path: str, what: str) -> None:
    payload = np.frombuffer(data, dtype=np.uint8, count=length, offset=start)
    computed = int(payload.sum(dtype=np.uint64) % 256)
    stored = data[start + length]
    if computed != stored:
        raise DataError(f"Norm: '{path}': checksum of {what} fails (stored {stored}, computed {computed}); "
                        f"the file is corrupt or was not written with Check_t.Sum")


def _empty(layout: NormLayout) -> Samples:
    return Samples(np.zeros((0, layout.label_dim), np.float32), np.zeros((0, layout.dense_dim), np.float32),
                   np.zeros((0, layout.slot_num), np.int64), np.zeros(0, layout.key_dtype))


def _check_end(samples: Samples, data: bytes, end: int, path: str, num_records: int) -> Samples:
    if end != len(data):
        raise DataError(f"Norm: '{path}' has {len(data) - end} bytes after its {num_records} records (header "
                        f"number_of_records={num_records}); the header count or the file is wrong")
    return samples


def _record_dtype(layout: NormLayout, nnz) -> np.dtype:
    fields = [("len", "<i4")] if layout.checksum else []
    fields += [("label", "<f4", (layout.label_dim,)), ("dense", "<f4", (layout.dense_dim,))]
    for s, count in enumerate(nnz):
        fields += [(f"n{s}", "<i4"), (f"k{s}", layout.key_dtype, (int(count),))]
    if layout.checksum:
        fields.append(("sum", "u1"))
    return np.dtype(fields)


def _parse_fixed(data, pos, path, layout, num_records, nnz) -> Samples | None:
    """Vectorised path when every record has the first record's hotness; None when they differ.

    Records are processed in blocks that stay in cache: each block is checked (nnz, payload length,
    checksum) and copied out field by field while it is hot.
    """
    dtype = _record_dtype(layout, nnz)
    if len(data) - pos != num_records * dtype.itemsize:
        return None
    n, hotness = num_records, tuple(int(c) for c in nnz)
    rec = np.frombuffer(data, dtype=dtype, count=n, offset=pos)
    raw = np.frombuffer(data, dtype=np.uint8, count=n * dtype.itemsize, offset=pos).reshape(n, dtype.itemsize)
    label = np.empty((n, layout.label_dim), np.float32)
    dense = np.empty((n, layout.dense_dim), np.float32)
    keys = np.empty((n, sum(hotness)), layout.key_dtype)
    columns = np.concatenate([[0], np.cumsum(hotness)])
    nnz_view = _evenly_spaced(data, pos, dtype, n, [f"n{s}" for s in range(len(hotness))])
    bad, first_bad = 0, None
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        block = rec[lo:hi]
        if nnz_view is not None:
            if (nnz_view[lo:hi] != np.asarray(hotness)).any():
                return None
        elif any((block[f"n{s}"] != count).any() for s, count in enumerate(hotness)):
            return None
        if layout.checksum:
            if (block["len"] != dtype.itemsize - 5).any():
                return None
            sums = (raw[lo:hi, 4:-1].sum(axis=1, dtype=np.uint64) % 256).astype(np.uint8)
            wrong = np.flatnonzero(sums != block["sum"])
            if wrong.size and first_bad is None:
                first_bad = (lo + int(wrong[0]), int(block["sum"][wrong[0]]), int(sums[wrong[0]]))
            bad += wrong.size
        label[lo:hi] = block["label"].reshape(hi - lo, layout.label_dim)
        dense[lo:hi] = block["dense"].reshape(hi - lo, layout.dense_dim)
        for s, count in enumerate(hotness):
            keys[lo:hi, columns[s]:columns[s + 1]] = block[f"k{s}"].reshape(hi - lo, count)
    if first_bad is not None:
        i, stored, computed = first_bad
        raise DataError(f"Norm: '{path}' record {i}: checksum fails (stored {stored}, computed "
                        f"{computed}); {bad} record(s) of the file are corrupt")
    return Samples(label, dense, _static_nnz(hotness, n), keys.reshape(-1), hotness)


def _evenly_spaced(data, pos: int, dtype: np.dtype, n: int, names: list):
    """One (n, len(names)) strided view of same-typed record fields at evenly spaced offsets, else None.

    One comparison over it replaces one per field (one-hot files: every ``nnz`` 8 bytes apart).
    """
    offsets = [dtype.fields[name][1] for name in names]
    steps = {b - a for a, b in zip(offsets, offsets[1:])}
    if len(steps) > 1 or not offsets:
        return None
    field = dtype.fields[names[0]][0]
    return np.ndarray((n, len(names)), field, buffer=data, offset=pos + offsets[0],
                      strides=(dtype.itemsize, steps.pop() if steps else field.itemsize))


@dataclass
class _Record:
    label: np.ndarray
    dense: np.ndarray
    nnz: list
    keys: list
    end: int


class _RecordScanner:
    """Record-by-record decoding for files of variable hotness (and to find the first bad record)."""

    def __init__(self, data: bytes, path: str, layout: NormLayout):
        self.data, self.path, self.layout = data, path, layout

    def _fail(self, index: int, message: str):
        raise DataError(f"Norm: '{self.path}' record {index}: {message}")

    def _need(self, index: int, pos: int, count: int, what: str) -> None:
        if pos + count > len(self.data):
            self._fail(index, f"the file ends inside the {what} (needs bytes up to {pos + count}, file has "
                              f"{len(self.data)}); the file is truncated or the header's number_of_records is wrong")

    def scan_one(self, pos: int, index: int) -> _Record:
        lay, data = self.layout, self.data
        end = None
        if lay.checksum:
            self._need(index, pos, 4, "record length")
            length = struct.unpack_from("<i", data, pos)[0]
            self._need(index, pos + 4, max(length, 0) + 1, "record")
            if length < 0:
                self._fail(index, f"negative payload length {length}")
            pos += 4
            start, end = pos, pos + length
            computed = int(np.frombuffer(data, np.uint8, count=length, offset=pos).sum(dtype=np.uint64) % 256)
            if computed != data[end]:
                self._fail(index, f"checksum fails (stored {data[end]}, computed {computed}); the file is corrupt")
        width = 4 * (lay.label_dim + lay.dense_dim)
        self._need(index, pos, width, "label/dense values")
        values = np.frombuffer(data, "<f4", count=lay.label_dim + lay.dense_dim, offset=pos)
        pos += width
        nnz, keys = [], []
        for s, limit in enumerate(lay.max_nnz):
            self._need(index, pos, 4, f"nnz of slot {s}")
            count = struct.unpack_from("<i", data, pos)[0]
            if count < 0 or count > limit:
                self._fail(index, f"slot {s} ({lay.slot_name(s)}) has nnz={count}, but the Input allows 0..{limit} "
                                  f"keys (nnz_per_slot); raise nnz_per_slot or fix the data")
            pos += 4
            self._need(index, pos, count * lay.key_bytes, f"keys of slot {s}")
            keys.append(np.frombuffer(data, lay.key_dtype, count=count, offset=pos))
            nnz.append(count)
            pos += count * lay.key_bytes
        if end is not None:
            if pos != end:
                self._fail(index, f"payload_len is {end - start} bytes but the fields take {pos - start}; the "
                                  f"record does not match label_dim/dense_dim/slot_num or the key type (i64_input_key)")
            pos = end + 1
        return _Record(values[:lay.label_dim], values[lay.label_dim:], nnz, keys, pos)

    def scan_all(self, pos: int, num_records: int) -> Samples:
        lay = self.layout
        label = np.empty((num_records, lay.label_dim), np.float32)
        dense = np.empty((num_records, lay.dense_dim), np.float32)
        nnz = np.empty((num_records, lay.slot_num), np.int64)
        keys = []
        for i in range(num_records):
            rec = self.scan_one(pos, i)
            label[i], dense[i], nnz[i] = rec.label, rec.dense, rec.nnz
            keys.extend(rec.keys)
            pos = rec.end
        flat = np.concatenate(keys).astype(lay.key_dtype) if keys else np.zeros(0, lay.key_dtype)
        return _check_end(Samples(label, dense, nnz, flat), self.data, pos, self.path, num_records)
