"""The Parquet data set: file lists, ``_metadata.json`` and decoding one file into columns (formats.md 2.4).

Axis letters: N rows, L label columns, D dense columns, C categorical columns.

Example:
    >>> slot_offsets([10, 0, 0, 5, 7]).tolist(), slot_bounds([10, 0, 0, 5, 7]).tolist()
    ([0, 10, 10, 10, 15], [10, 5, 5, 5, 7])
"""
from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass

import numpy as np
from hugectr_core.data_checks import check_finite_columns
from hugectr_core.filelist import read_file_list as _read_file_list
from hugectr_core.errors import DataError

METADATA_NAME = "_metadata.json"
UINT32_LIMIT = 2 ** 32


def read_file_list(fs, list_path: str) -> list:
    """The data files of a Parquet file list (see ``hugectr_core.filelist``)."""
    return _read_file_list(fs, list_path, "Parquet")


def slot_offsets(slot_size_array) -> np.ndarray:
    """key' = key + exclusive prefix sum of slot_size_array (int64, one per categorical column)."""
    sizes = np.asarray(slot_size_array, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def slot_bounds(slot_size_array) -> np.ndarray:
    """Upper key bound per column: its own size, or for a run of zeros the size that closes the group (0 = none)."""
    sizes = np.asarray(slot_size_array, dtype=np.int64)
    bounds = sizes.copy()
    closing = 0
    for i in range(len(sizes) - 1, -1, -1):  # zeros share the key space of the next non-zero entry
        closing = sizes[i] if sizes[i] else closing
        bounds[i] = closing
    return bounds


@dataclass
class Metadata:
    """The parts of ``_metadata.json`` the reader uses."""

    path: str
    num_rows: dict   # data-file basename -> rows
    labels: list     # column names, in metadata order
    conts: list
    cats: list

    @classmethod
    def load(cls, fs, first_file: str) -> "Metadata":
        path = posixpath.join(posixpath.dirname(first_file), METADATA_NAME)
        if not fs.exists(path):
            raise DataError(f"Parquet: '{path}' not found: {METADATA_NAME} must sit in the folder of the first data "
                            f"file '{first_file}'; generate it with NVTabular or hugectr.tools.DataGenerator")
        try:
            with fs.open(path, "rb") as f:
                raw = json.loads(f.read().decode("utf-8"))
            stats = {_safe_name(path, s["file_name"]): _num_rows(path, s["num_rows"]) for s in raw["file_stats"]}
            columns = {k: [_col_name(path, c["col_name"]) for c in raw.get(k, [])] for k in ("labels", "conts", "cats")}
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError, OSError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"Parquet: '{path}' is not a valid {METADATA_NAME} ({type(exc).__name__}: {exc}); it needs "
                            f"file_stats [{{file_name, num_rows}}] and labels/conts/cats [{{col_name, index}}]") from exc
        return cls(path, stats, columns["labels"], columns["conts"], columns["cats"])

    def rows_of(self, data_file: str) -> int:
        name = posixpath.basename(data_file)
        if name not in self.num_rows:
            raise DataError(f"Parquet: data file '{data_file}' has no file_stats entry in '{self.path}'; "
                            f"add {{\"file_name\": \"{name}\", \"num_rows\": ...}}")
        return self.num_rows[name]


def _num_rows(meta_path: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataError(f"Parquet: '{meta_path}': num_rows must be an integer >= 0, got {value!r}")
    return value


def _col_name(meta_path: str, value) -> str:
    if not isinstance(value, str):
        raise DataError(f"Parquet: '{meta_path}': col_name must be a string, got {value!r}")
    return value


def _safe_name(meta_path: str, file_name) -> str:
    """A file_stats name reduced to its basename; one that climbs out of the json's folder is refused."""
    if not isinstance(file_name, str) or not file_name:
        raise DataError(f"Parquet: '{meta_path}': file_name must be a non-empty string, got {file_name!r}")
    parts = file_name.replace("\\", "/").split("/")
    if ".." in parts:
        raise DataError(f"Parquet: '{meta_path}': file_name '{file_name}' leaves the metadata folder; data files "
                        f"are resolved by basename against the folder of {METADATA_NAME}")
    return parts[-1]


@dataclass
class ScalarKeys:
    """A sparse input whose slots are all scalar (one-hot) columns in this file.

    ``keys`` is ``(N, S)`` in the output key dtype with slot offsets applied: row i is sample i's
    CSR values, so rows ``[a, b)`` of it are a batch's keys as they are.
    """

    keys: np.ndarray


@dataclass
class ListKeys:
    """A sparse input with a list (multi-hot) column in this file: per slot, CSR over the rows.

    ``offsets[s]`` has N+1 int64 entries, ``values[s]`` the int64 keys (slot offsets applied).
    """

    offsets: list
    values: list

    def rows(self, start: int, stop: int) -> "ListKeys":
        return ListKeys([o[start:stop + 1] - o[start] for o in self.offsets],
                        [v[o[start]:o[stop]] for v, o in zip(self.values, self.offsets)])

    @staticmethod
    def of(keys) -> "ListKeys":
        """The list form of any input's keys (ScalarKeys: one key per row and slot)."""
        if isinstance(keys, ListKeys):
            return keys
        n, slots = keys.keys.shape
        ones = np.arange(n + 1, dtype=np.int64)
        return ListKeys([ones] * slots, [keys.keys[:, s].astype(np.int64) for s in range(slots)])


@dataclass
class Columns:
    """One decoded file: float32 labels/dense and the keys of each sparse input (ScalarKeys or ListKeys)."""

    label: np.ndarray   # (N, L) float32
    dense: np.ndarray   # (N, D) float32
    inputs: list        # one per sparse input, in the Input's order

    @property
    def num_rows(self) -> int:
        return self.label.shape[0]


class FileDecoder:
    """Reads one Parquet file's listed columns and checks them against the metadata and the reader's config.

    Args:
        fs: filesystem.
        metadata: the ``Metadata``.
        key_dtype: "int64" (columns must be int64) or "uint32" (uint32 or int32 columns).
        slot_size_array: per categorical column; [] for no offsets.
        check_values: refuse NaN/Inf label and dense values (``Check_t.Sum``).
        slot_groups: categorical columns per sparse input, in order (default: one input takes all).
    """

    def __init__(self, fs, metadata: Metadata, key_dtype: str, slot_size_array, check_values: bool = False,
                 slot_groups=None):
        self.fs, self.metadata, self.key_dtype = fs, metadata, key_dtype
        self.check_values = check_values
        self.offsets = slot_offsets(slot_size_array) if len(slot_size_array) else None
        self.bounds = slot_bounds(slot_size_array) if len(slot_size_array) else None
        self.slot_groups = list(slot_groups) if slot_groups is not None else [len(metadata.cats)]
        self.out_dtype = np.dtype(np.int64 if key_dtype == "int64" else np.uint32)

    def decode(self, path: str) -> Columns:
        import pyarrow as pa  # noqa: PLC0415 - imported where used, plugin import stays light

        try:
            return self._decode(path)
        except (pa.ArrowException, OSError, ValueError, IndexError, KeyError) as exc:
            if isinstance(exc, DataError):
                raise
            # pyarrow reports a corrupt file (bad magic, footer, page, thrift) with its own exception types
            raise DataError(f"Parquet: '{path}' cannot be decoded ({type(exc).__name__}: {exc}); the file is "
                            f"corrupt or not Parquet") from exc

    def _decode(self, path: str) -> Columns:
        import pyarrow.parquet as pq  # noqa: PLC0415

        expected = self.metadata.rows_of(path)
        md = self.metadata
        with self._open(path) as source:
            pf = pq.ParquetFile(source)
            if pf.metadata.num_rows != expected:
                raise DataError(f"Parquet: '{path}' has {pf.metadata.num_rows} rows but '{md.path}' says "
                                f"num_rows={expected}; regenerate {METADATA_NAME}")
            present = set(pf.schema_arrow.names)
            wanted = md.labels + md.conts + md.cats
            missing = [c for c in wanted if c not in present]
            if missing:
                raise DataError(f"Parquet: '{path}' has no column(s) {missing} listed in '{md.path}'; "
                                f"columns present: {sorted(present)}")
            # One thread per file: the reader's workers already run one file (or batch) each.
            table = pf.read(columns=list(dict.fromkeys(wanted)), use_threads=False)
        n = table.num_rows
        label = self._floats(path, table, md.labels, n)
        dense = self._floats(path, table, md.conts, n)
        inputs, first = [], 0
        for slots in self.slot_groups:
            inputs.append(self._input_keys(path, table, first, first + slots, n))
            first += slots
        return Columns(label, dense, inputs)

    def _open(self, path: str):
        if not self.fs.exists(path):
            raise DataError(f"Parquet: data file '{path}' (from the file list) does not exist")
        return self.fs.open(path, "rb")

    def _floats(self, path: str, table, names: list, n: int) -> np.ndarray:
        import pyarrow.types as pt  # noqa: PLC0415

        out = np.empty((n, len(names)), dtype=np.float32)
        for j, name in enumerate(names):
            col = table.column(name)
            if not pt.is_floating(col.type):
                raise DataError(f"Parquet: '{path}' column '{name}' is {col.type}; label and dense columns "
                                f"must be float32")
            _no_nulls(path, name, col)
            out[:, j] = _numpy(col)
        if self.check_values:  # check_type=Check_t.Sum: our extension refuses NaN/Inf label and dense values
            check_finite_columns(out, names, f"Parquet: '{path}'")
        return out

    def _input_keys(self, path: str, table, first: int, stop: int, n: int):
        """Categorical columns ``[first, stop)`` of the metadata: ScalarKeys when none is a list column."""
        import pyarrow.types as pt  # noqa: PLC0415

        names = self.metadata.cats[first:stop]
        columns = [table.column(name) for name in names]
        if any(pt.is_list(c.type) or pt.is_large_list(c.type) for c in columns):
            pairs = [self._category(path, name, col, first + s) for s, (name, col) in enumerate(zip(names, columns))]
            return ListKeys([o for o, _ in pairs], [v for _, v in pairs])
        keys = np.empty((n, len(names)), dtype=self.out_dtype)
        for s, (name, col) in enumerate(zip(names, columns)):
            _no_nulls(path, name, col)
            self._check_key_type(path, name, col.type)
            self._scalar_keys(path, name, first + s, _numpy(col), keys[:, s])
        return ScalarKeys(keys)

    def _scalar_keys(self, path: str, name: str, index: int, column: np.ndarray, out: np.ndarray) -> None:
        """``out = column + slot offset`` after the checks of ``_offset_keys`` (same errors, no int64 detour)."""
        if not column.size:
            return
        low, high = int(column.min()), int(column.max())
        offset = int(self.offsets[index]) if self.offsets is not None else 0
        self._check_range(path, name, index, low, high, offset)
        if offset:
            np.add(column, self.out_dtype.type(offset), out=out, casting="unsafe")
        else:
            out[:] = column

    def _check_range(self, path: str, name: str, index: int, low: int, high: int, offset: int) -> None:
        if low < 0:
            raise DataError(f"Parquet: '{path}' column '{name}' holds negative key {low}")
        if self.offsets is not None:
            bound = int(self.bounds[index])
            if bound and high >= bound:
                raise DataError(f"Parquet: '{path}' column '{name}' holds key {high} >= slot_size_array "
                                f"bound {bound} of categorical column {index}; raise slot_size_array[{index}] or "
                                f"re-encode the column")
        if self.key_dtype == "uint32" and high + offset >= UINT32_LIMIT:
            raise DataError(f"Parquet: '{path}' column '{name}': key {high + offset} (after slot offsets) does not "
                            f"fit uint32; use Solver(i64_input_key=True)")

    def _category(self, path: str, name: str, col, index: int):
        import pyarrow.compute as pc  # noqa: PLC0415
        import pyarrow.types as pt  # noqa: PLC0415

        _no_nulls(path, name, col)
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if pt.is_list(arr.type) or pt.is_large_list(arr.type):
            value_type = arr.type.value_type
            lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False).astype(np.int64)
            flat = arr.flatten()
            _no_nulls(path, name, flat)
        else:
            value_type, lengths, flat = arr.type, np.ones(len(arr), dtype=np.int64), arr
        self._check_key_type(path, name, value_type)
        keys = flat.to_numpy(zero_copy_only=False).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return offsets, self._offset_keys(path, name, index, keys)

    def _check_key_type(self, path: str, name: str, value_type) -> None:
        import pyarrow as pa  # noqa: PLC0415

        allowed = (pa.int64(),) if self.key_dtype == "int64" else (pa.uint32(), pa.int32())
        if value_type not in allowed:
            raise DataError(f"Parquet: Dense KeyType and Parquet column type don't match: '{path}' column '{name}' "
                            f"holds {value_type}, but i64_input_key={self.key_dtype == 'int64'} needs "
                            f"{' or '.join(str(t) for t in allowed)} (scalar or list) categorical columns")

    def _offset_keys(self, path: str, name: str, index: int, keys: np.ndarray) -> np.ndarray:
        if not keys.size:
            return keys
        offset = int(self.offsets[index]) if self.offsets is not None else 0
        self._check_range(path, name, index, int(keys.min()), int(keys.max()), offset)
        return keys + self.offsets[index] if self.offsets is not None else keys


def _numpy(col) -> np.ndarray:
    """A null-free primitive ChunkedArray as NumPy: zero-copy (read-only) for one chunk."""
    if col.num_chunks == 1:
        return col.chunk(0).to_numpy(zero_copy_only=False)
    return col.to_numpy()


def _no_nulls(path: str, name: str, col) -> None:
    if col.null_count:
        raise DataError(f"Parquet: '{path}' column '{name}' has {col.null_count} null value(s); "
                        f"missing values are not allowed, fill them before training")
