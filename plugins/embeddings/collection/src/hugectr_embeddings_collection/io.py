"""``Model.embedding_dump`` / ``embedding_load`` files of Embedding Collections (formats.md 2.8).

``<path>/embedding_collection_<i>/meta_data``: int32[5] ``{num_tables, key_type (0 uint32, 1 int64),
value_type (0 float32), 0, max_ev_len}``, then int32 ``table_id[n]``, uint64 ``key_count[n]``, int32
``ev_len[n]``; per table ``key<table_id>`` (keys in the key type) and ``weight<table_id>`` (float32
``[key_count, ev_len]``). ``table_id`` is the table's index in the collection (first-use order).
On several devices dump writes what ``sharded.gather_tables`` collected from every device, and load
reads every key into every device's storage (each device then answers only for its share).
"""
from __future__ import annotations

import os

import numpy as np

from hugectr_core.backend import to_host
from hugectr_core.errors import CheckpointError

from .lookup import load_table

HEADER_INTS = 5


def _collections(embeddings) -> dict:
    """{collection index: {table name: table}} over the Embedding Collection lookups of ``embeddings``
    (sharded lookups expose the same ``parts`` and ``config``)."""
    out: dict = {}
    for emb in embeddings:
        if not getattr(emb, "collection", False):
            continue
        tables = out.setdefault(emb.config.extra.get("collection_index", 0), {})
        for part in emb.parts:
            tables.setdefault(part.table.name, part.table)
    return out


def _select(tables: dict, table_names, where: str) -> list:
    if table_names is None:
        return sorted(tables.values(), key=lambda t: t.index)
    unknown = [n for n in table_names if n not in tables]
    if unknown:
        raise CheckpointError(f"{where}: no table named {unknown}; tables: {sorted(tables)}")
    return sorted((tables[n] for n in table_names), key=lambda t: t.index)


def dump_collection(embeddings, path: str, table_names=None, contents=None) -> list:
    """Write ``embedding_collection_<i>`` folders under ``path``; returns the folders written.

    ``table_names``: only these tables (across collections: names absent from a collection are skipped
    there, but each name must exist in some collection). ``contents``: {table name: (keys, rows)} to
    write instead of the local tables (gathered from every device, ``sharded.gather_tables``)."""
    written, colls = [], _collections(embeddings)
    if table_names is not None:
        everywhere = {n for tables in colls.values() for n in tables}
        missing = [n for n in table_names if n not in everywhere]
        if missing:
            raise CheckpointError(f"embedding_dump: no table named {missing}; tables: {sorted(everywhere)}")
    for index, tables in sorted(colls.items()):
        names = None if table_names is None else [n for n in table_names if n in tables]
        chosen = _select(tables, names, "embedding_dump")
        if not chosen:
            continue
        folder = os.path.join(path, f"embedding_collection_{index}")
        os.makedirs(folder, exist_ok=True)
        key_type = 1 if chosen[0].key_dtype == "int64" else 0
        key_dtype = "<i8" if key_type else "<u4"
        counts = []
        for table in chosen:
            if contents is not None and table.name in contents:
                keys, weights = contents[table.name]
                weights = np.asarray(weights, "<f4")
            else:
                keys = table.keys_in_row_order()
                weights = to_host(table.rows[: keys.size]).astype("<f4")
            keys.astype(key_dtype).tofile(os.path.join(folder, f"key{table.index}"))
            weights.tofile(os.path.join(folder, f"weight{table.index}"))
            counts.append(keys.size)
        header = np.array([len(chosen), key_type, 0, 0, max(t.ev for t in chosen)], "<i4")
        with open(os.path.join(folder, "meta_data"), "wb") as f:
            f.write(header.tobytes())
            f.write(np.array([t.index for t in chosen], "<i4").tobytes())
            f.write(np.array(counts, "<u8").tobytes())
            f.write(np.array([t.ev for t in chosen], "<i4").tobytes())
        written.append(folder)
    return written


def read_meta_data(folder: str) -> dict:
    """Parse ``meta_data``: ``{"key_type", "value_type", "max_ev_len", "tables": {id: (count, ev)}}``."""
    path = os.path.join(folder, "meta_data")
    if not os.path.isfile(path):
        raise CheckpointError(f"embedding_load: '{folder}' has no meta_data file")
    raw = np.fromfile(path, dtype="<u1")
    if raw.size < 4 * HEADER_INTS:
        raise CheckpointError(f"embedding_load: '{path}' is {raw.size} bytes, shorter than its 20-byte header")
    num, key_type, value_type, _, max_ev = (int(x) for x in raw[:20].view("<i4"))
    if num < 0 or raw.size != 20 + num * (4 + 8 + 4):
        raise CheckpointError(f"embedding_load: '{path}' says {num} tables but has {raw.size} bytes "
                              f"(expected {20 + max(num, 0) * 16})")
    ids = raw[20:20 + 4 * num].view("<i4")
    counts = raw[20 + 4 * num:20 + 12 * num].view("<u8")
    evs = raw[20 + 12 * num:].view("<i4")
    if key_type not in (0, 1) or value_type != 0:
        raise CheckpointError(f"embedding_load: '{path}': key_type {key_type} / value_type {value_type} not "
                              f"supported (key_type 0 uint32 or 1 int64; value_type 0 float32)")
    return {"key_type": key_type, "value_type": value_type, "max_ev_len": max_ev,
            "tables": {int(i): (int(c), int(e)) for i, c, e in zip(ids, counts, evs)}}


def load_collection(embeddings, path: str, table_names=None) -> None:
    """Read the ``embedding_collection_<i>`` folders under ``path`` into the model's tables (all tables
    in each file, or only ``table_names``). Every check runs before any table changes."""
    jobs = []
    for index, tables in sorted(_collections(embeddings).items()):
        folder = os.path.join(path, f"embedding_collection_{index}")
        names = None if table_names is None else [n for n in table_names if n in tables]
        if names == [] or (table_names is None and not os.path.isdir(folder)):
            continue
        meta = read_meta_data(folder)
        key_dtype = "<i8" if meta["key_type"] else "<u4"
        for table in _select(tables, names, "embedding_load"):
            if table.index not in meta["tables"]:
                if table_names is None:
                    continue
                raise CheckpointError(f"embedding_load: '{folder}' has no table '{table.name}' (id {table.index})")
            count, ev = meta["tables"][table.index]
            if ev != table.ev:
                raise CheckpointError(f"embedding_load: table '{table.name}' in '{folder}' has ev_len {ev}, the "
                                      f"model's table has ev_size {table.ev}")
            keys = _read(folder, f"key{table.index}", key_dtype, count)
            weights = _read(folder, f"weight{table.index}", "<f4", count * ev).reshape(count, ev)
            jobs.append((table, keys.astype(np.int64), weights))
    for table, keys, weights in jobs:
        load_table(table, keys, weights)


def _read(folder: str, name: str, dtype: str, expected: int) -> np.ndarray:
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise CheckpointError(f"embedding_load: '{folder}' has no '{name}' file")
    data = np.fromfile(path, dtype=dtype)
    if data.size != expected:
        raise CheckpointError(f"embedding_load: '{path}' holds {data.size} values, meta_data says {expected}")
    return data
