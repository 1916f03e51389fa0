"""Saving and loading parameters in HugeCTR's file layout (formats.md 2.5, 2.6).

Every file is written under a temporary name and renamed when complete, so a crash never
leaves a half-written file under a good name and never destroys the previous snapshot. Paths may be
remote (``s3://``, ``hdfs://``, ``gs://`` or the model's ``DataSourceParams``): all I/O goes through the
FileSystem plugins.

Differences from HugeCTR, on purpose:
* ``<prefix><k>_opt_sparse_<it>.model`` holds the embedding's optimizer states *by key*
  (int64 header ``[n, vec, n_states]``, int64 keys, then each state as float32 ``[n, vec]``), so it
  reloads on any device count; HugeCTR dumps raw per-GPU buffers that only reload on the same topology.
* ``<prefix>_opt_dense_<it>.model.step`` (JSON) keeps the iteration count Adam's bias correction uses,
  so resuming is exact.
"""
from __future__ import annotations

import json
import os
import posixpath

import numpy as np

from . import backend
from .errors import CheckpointError
from .filesystems import filesystem_kind, filesystem_for_path


def _fs(model, path: str):
    return filesystem_for_path(path, getattr(model.reader_params, "data_source_params", None))


def _join(folder: str, name: str) -> str:
    return posixpath.join(folder, name) if filesystem_kind(folder) else os.path.join(folder, name)


def _write_atomic(fs, path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with fs.open(tmp, "wb") as f:
        f.write(data)
        if filesystem_kind(path) is None:  # a local file: on disk before the rename makes it the good one
            f.flush()
            os.fsync(f.fileno())
    fs.rename(tmp, path)


def _read_bytes(fs, path: str, what: str) -> bytes:
    if not fs.exists(path):
        raise CheckpointError(f"{what} file '{path}' does not exist")
    with fs.open(path, "rb") as f:
        return f.read()


def _check_folder(prefix: str) -> None:
    if filesystem_kind(prefix):
        return  # object stores have no folders to check
    folder = os.path.dirname(prefix) or "."
    if not os.path.isdir(folder):
        raise CheckpointError(f"snapshot prefix '{prefix}': folder '{folder}' does not exist; create it first")


def _host_f32(array) -> bytes:
    return backend.to_host(array).astype("<f4").tobytes()


def _sparse_dumps(rt) -> list:
    """(dump, optimizer states) of every legacy embedding, sorted by key so that the files do not
    depend on the device count or insertion order; with several workers a collective that gathers
    every shard, so every worker must run it."""
    out = []
    for emb in (e for e in rt.embeddings if not getattr(e, "collection", False)):
        dump, states = emb.dump(), emb.dump_optimizer_states()
        order = np.argsort(dump["key"], kind="stable")
        dump = {name: (None if value is None else np.asarray(value)[order]) for name, value in dump.items()}
        out.append((dump, [np.asarray(s)[order] for s in states]))
    return out


def save_params(model, prefix: str, iteration: int) -> None:
    """The HugeCTR file set: dense, opt_dense (+ .step), .ntp.json, sparse folders, opt_sparse files.
    Every process gathers; the one holding worker 0 writes (the dense replicas are identical)."""
    rt = model._rt()
    _check_folder(prefix)
    dumps = model._each(_sparse_dumps)[0]
    if not model.is_lead_process:
        return
    fs, dense = _fs(model, prefix), rt.dense
    _write_atomic(fs, f"{prefix}_dense_{iteration}.model", _host_f32(dense.master) if dense.size else b"")
    _write_atomic(fs, f"{prefix}_opt_dense_{iteration}.model", b"".join(_host_f32(s) for s in dense.opt_states))
    _write_atomic(fs, f"{prefix}_opt_dense_{iteration}.model.step", json.dumps({"step": rt.step}).encode())
    ntp = _non_trainable_json(rt)
    if ntp["layers"]:
        _write_atomic(fs, f"{prefix}_dense_{iteration}.model.ntp.json", json.dumps(ntp).encode())
    vec_sizes = [e.config.embedding_vec_size for e in rt.embeddings if not getattr(e, "collection", False)]
    for k, ((dump, states), vec) in enumerate(zip(dumps, vec_sizes)):
        _save_sparse_folder(fs, f"{prefix}{k}_sparse_{iteration}.model", dump)
        _write_atomic(fs, f"{prefix}{k}_opt_sparse_{iteration}.model", _sparse_states_bytes(dump["key"], states, vec))


def _non_trainable_json(rt) -> dict:
    """``{"layers": [{"type": "BatchNorm", "mean": [...], "var": [...]}, ...]}`` in add() order."""
    layers = []
    for node in sorted(rt.graph.nodes, key=lambda n: n.user_index):
        specs = [s for n, s in rt.dense.state if n == node.layer.name]
        if not specs:
            continue
        entry = {"type": node.layer.type_name}
        for spec, value in zip(specs, rt.dense.state_of(node.layer.name)):
            entry[spec.name.removeprefix("running_")] = backend.to_host(value).astype(float).ravel().tolist()
        layers.append(entry)
    return {"layers": layers}


def _sparse_states_bytes(keys, states, vec: int) -> bytes:
    header = np.array([len(keys), vec, len(states)], dtype="<i8")
    return header.tobytes() + np.asarray(keys, "<i8").tobytes() + b"".join(s.astype("<f4").tobytes() for s in states)


def _save_sparse_folder(fs, path: str, dump: dict) -> None:
    """Write ``key``, ``emb_vector`` (and ``slot_id``) into a temporary folder, then rename it into place."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fs.remove(tmp)
    fs.makedirs(tmp)
    files = {"key": np.asarray(dump["key"], dtype="<i8"), "emb_vector": np.asarray(dump["emb_vector"], dtype="<f4")}
    if dump.get("slot_id") is not None:
        files["slot_id"] = np.asarray(dump["slot_id"], dtype="<u8")
    for name, array in files.items():
        with fs.open(_join(tmp, name), "wb") as f:
            f.write(array.tobytes())
    fs.rename(tmp, path)


# -- loading -------------------------------------------------------------------------------------
def _read_f32(fs, path: str, expected: int, what: str) -> np.ndarray:
    if not fs.exists(path):
        raise CheckpointError(f"{what} file '{path}' does not exist")
    found = fs.size(path)
    if found != 4 * expected:
        raise CheckpointError(f"{what} file '{path}' has {found} bytes; this model needs {4 * expected} bytes "
                              f"({expected} float32)")
    return np.frombuffer(_read_bytes(fs, path, what), dtype="<f4")


def load_dense(model, path: str) -> None:
    rt, fs = model._rt(), _fs(model, path)
    values = _read_f32(fs, path, rt.dense.size, "dense model")
    ntp = f"{path}.ntp.json"
    doc = _read_json(fs, ntp, "layer-state") if fs.exists(ntp) else None

    def load(worker):
        if worker.dense.size:
            worker.dense.master[...] = worker.xp.asarray(values)
            worker.dense.sync_working()
        if doc is not None:
            _load_ntp(worker, ntp, doc)

    model._each(load)


def _read_json(fs, path: str, what: str):
    """A JSON side file; a corrupt one is a CheckpointError naming it."""
    try:
        return json.loads(_read_bytes(fs, path, what).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{what} file '{path}' is not valid JSON ({exc}); the file is corrupt") from exc


def _load_ntp(rt, path: str, doc: dict) -> None:
    layers = doc.get("layers", []) if isinstance(doc, dict) else None
    if not isinstance(layers, list) or not all(isinstance(e, dict) for e in layers):
        raise CheckpointError(f"'{path}' must be {{\"layers\": [{{...}}, ...]}}; the file is corrupt")
    owners = [node for node in sorted(rt.graph.nodes, key=lambda n: n.user_index)
              if any(n == node.layer.name for n, _ in rt.dense.state)]
    if len(layers) != len(owners):
        raise CheckpointError(f"'{path}' has state for {len(layers)} layers; this model has {len(owners)}")
    for entry, node in zip(layers, owners):
        specs = [s for n, s in rt.dense.state if n == node.layer.name]
        for spec, view in zip(specs, rt.dense.state_of(node.layer.name)):
            try:
                values = np.asarray(entry.get(spec.name.removeprefix("running_"), []), dtype=np.float32)
            except (TypeError, ValueError, OverflowError) as exc:
                raise CheckpointError(f"'{path}': {node.layer.type_name} '{node.layer.name}' {spec.name} is not a "
                                      f"list of numbers ({exc})") from exc
            if values.size != view.size:
                raise CheckpointError(f"'{path}': {node.layer.type_name} '{node.layer.name}' {spec.name} has "
                                      f"{values.size} values, expected {view.size}")
            view[...] = rt.xp.asarray(values.reshape(view.shape))


def load_dense_optimizer_states(model, path: str) -> None:
    rt, fs = model._rt(), _fs(model, path)
    n_states, size = len(rt.dense.opt_states), rt.dense.size
    values = _read_f32(fs, path, n_states * size, "dense optimizer-state")
    step = None
    if fs.exists(f"{path}.step"):
        doc = _read_json(fs, f"{path}.step", "step")
        step = doc.get("step") if isinstance(doc, dict) else None
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise CheckpointError(f"step file '{path}.step' must be {{\"step\": <int >= 0>}}, got {doc!r:.80}")

    def load(worker):
        for k, state in enumerate(worker.dense.opt_states):
            state[...] = worker.xp.asarray(values[k * size:(k + 1) * size])
        if step is not None:
            worker.step = step

    model._each(load)


def _pairs(rt, files, what: str) -> list:
    by_name = {e.name: e for e in rt.embeddings}
    if isinstance(files, dict):
        for name in files:
            if name not in by_name:
                raise CheckpointError(f"{what}: no embedding named '{name}'; embeddings: {sorted(by_name)}")
        return [(by_name[n], f) for n, f in files.items()]
    files = [files] if isinstance(files, str) else list(files)
    if len(files) != len(rt.embeddings):
        raise CheckpointError(f"{what} got {len(files)} paths for {len(rt.embeddings)} embeddings")
    return list(zip(rt.embeddings, files))


def load_sparse(model, files) -> None:
    """Read each folder once; every worker loads the keys it owns."""
    loaded = []
    for emb, folder in _pairs(model._rt(), files, "load_sparse_weights"):
        fs = _fs(model, folder)
        keys = _read(fs, folder, "key", "<i8")
        vectors = _read(fs, folder, "emb_vector", "<f4")
        vec = emb.config.embedding_vec_size
        if vectors.size != keys.size * vec:
            raise CheckpointError(f"sparse folder '{folder}': {keys.size} keys but {vectors.size} floats in emb_vector; "
                                  f"embedding '{emb.name}' expects {vec} floats per key")
        if np.unique(keys).size != keys.size:  # two rows for one key: which one would win is arbitrary
            raise CheckpointError(f"sparse folder '{folder}': its key file lists {keys.size - np.unique(keys).size} "
                                  "key(s) more than once; the checkpoint is corrupt")
        slot = _read(fs, folder, "slot_id", "<u8") if fs.exists(_join(folder, "slot_id")) else None
        loaded.append((emb.name, (keys, vectors.reshape(keys.size, vec), slot)))
    _load_into_embeddings(model, loaded, "load")


def _load_into_embeddings(model, loaded: list, method: str) -> None:
    """``emb.<method>(*args)`` for (embedding name, args) on every worker."""
    def load(worker):
        by_name = {e.name: e for e in worker.embeddings}
        for name, args in loaded:
            getattr(by_name[name], method)(*args)

    model._each(load)


def load_sparse_optimizer_states(model, files) -> None:
    loaded = []
    for emb, path in _pairs(model._rt(), files, "load_sparse_optimizer_states"):
        raw = np.frombuffer(_read_bytes(_fs(model, path), path, "sparse optimizer-state"), dtype="<u1")
        if raw.size < 24:
            raise CheckpointError(f"'{path}' is {raw.size} bytes: too short for its 24-byte header")
        n, vec, n_states = (int(v) for v in raw[:24].view("<i8"))
        expected = 24 + 8 * n + 4 * n_states * n * vec
        if n < 0 or n_states < 0 or vec != emb.config.embedding_vec_size or raw.size != expected:
            raise CheckpointError(f"'{path}': header says {n} keys x {vec} x {n_states} states ({expected} bytes); "
                                  f"the file has {raw.size} bytes and embedding '{emb.name}' has vectors of "
                                  f"{emb.config.embedding_vec_size}")
        keys = raw[24:24 + 8 * n].view("<i8")
        states = raw[24 + 8 * n:].view("<f4").reshape(n_states, n, vec)
        loaded.append((emb.name, (keys, list(states))))
    _load_into_embeddings(model, loaded, "load_optimizer_states")


def _read(fs, folder: str, name: str, dtype: str) -> np.ndarray:
    path = _join(folder, name)
    if not fs.exists(path):
        raise CheckpointError(f"sparse model folder '{folder}' has no '{name}' file")
    size = fs.size(path)
    if size % np.dtype(dtype).itemsize:
        raise CheckpointError(f"'{path}' has {size} bytes, not a multiple of {np.dtype(dtype).itemsize}")
    return np.frombuffer(_read_bytes(fs, path, "sparse model"), dtype=dtype)


# -- public helpers for other tools (inference, ONNX export) -------------------------------------
def read_sparse_array(folder: str, name: str, dtype: str, data_source_params=None) -> np.ndarray:
    """One file of a sparse model folder (``key``, ``emb_vector``, ``slot_id``), size-checked."""
    return _read(filesystem_for_path(folder, data_source_params), folder, name, dtype)


def load_layer_state(model, path: str) -> None:
    """Load a ``.ntp.json`` file (BatchNorm running statistics) into a compiled model."""
    doc = _read_json(_fs(model, path), path, "layer-state")
    model._each(lambda worker: _load_ntp(worker, path, doc))
