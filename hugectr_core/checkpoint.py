"""Saving and loading parameters in HugeCTR's file layout (formats.md 2.5, 2.6).

Every file is written under a temporary name and renamed when complete, so a crash never
leaves a half-written file under a good name and never destroys the previous snapshot.
"""
from __future__ import annotations

import os
import shutil

import numpy as np

from . import backend
from .errors import CheckpointError


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _check_folder(prefix: str) -> None:
    folder = os.path.dirname(prefix) or "."
    if not os.path.isdir(folder):
        raise CheckpointError(f"snapshot prefix '{prefix}': folder '{folder}' does not exist; create it first")


def save_params(model, prefix: str, iteration: int) -> None:
    """``<prefix>_dense_<it>.model``, ``<prefix>_opt_dense_<it>.model``, ``<prefix><k>_sparse_<it>.model/``."""
    rt = model._rt()
    _check_folder(prefix)
    weights = backend.to_host(rt.weights_flat) if rt.weights_flat is not None else np.zeros(0, np.float32)
    _write_atomic(f"{prefix}_dense_{iteration}.model", weights.astype("<f4").tobytes())
    states = [backend.to_host(s).astype("<f4") for s in rt.opt_states]
    _write_atomic(f"{prefix}_opt_dense_{iteration}.model", b"".join(s.tobytes() for s in states))
    for k, emb in enumerate(rt.embeddings):
        _save_sparse_folder(f"{prefix}{k}_sparse_{iteration}.model", emb.dump())


def _save_sparse_folder(path: str, dump: dict) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    np.asarray(dump["key"], dtype="<i8").tofile(os.path.join(tmp, "key"))
    np.asarray(dump["emb_vector"], dtype="<f4").tofile(os.path.join(tmp, "emb_vector"))
    if dump.get("slot_id") is not None:
        np.asarray(dump["slot_id"], dtype="<u8").tofile(os.path.join(tmp, "slot_id"))
    old = f"{path}.old-{os.getpid()}"
    if os.path.isdir(path):
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def load_dense(model, path: str) -> None:
    rt = model._rt()
    if not os.path.isfile(path):
        raise CheckpointError(f"dense model file '{path}' does not exist")
    expected = 0 if rt.weights_flat is None else rt.weights_flat.size
    found = os.path.getsize(path)
    if found != 4 * expected:
        raise CheckpointError(f"dense model file '{path}' has {found} bytes; this model's dense parameters need "
                              f"{4 * expected} bytes ({expected} float32)")
    if expected:
        rt.weights_flat[...] = rt.xp.asarray(np.fromfile(path, dtype="<f4"))
        rt.dense.sync_working()


def load_sparse(model, files) -> None:
    rt = model._rt()
    by_name = {e.name: e for e in rt.embeddings}
    if isinstance(files, dict):
        pairs = list(files.items())
    else:
        files = list(files)
        if len(files) != len(rt.embeddings):
            raise CheckpointError(f"load_sparse_weights got {len(files)} folders for {len(rt.embeddings)} embeddings")
        pairs = [(e.name, f) for e, f in zip(rt.embeddings, files)]
    for name, folder in pairs:
        if name not in by_name:
            raise CheckpointError(f"load_sparse_weights: no embedding named '{name}'; embeddings: {sorted(by_name)}")
        emb = by_name[name]
        keys = _read(folder, "key", "<i8")
        vectors = _read(folder, "emb_vector", "<f4")
        vec = emb.config.embedding_vec_size
        if vectors.size != keys.size * vec:
            raise CheckpointError(f"sparse folder '{folder}': {keys.size} keys but {vectors.size} floats in emb_vector; "
                                  f"embedding '{name}' expects {vec} floats per key")
        slot = _read(folder, "slot_id", "<u8") if os.path.exists(os.path.join(folder, "slot_id")) else None
        emb.load(keys, vectors.reshape(keys.size, vec), slot)


def _read(folder: str, name: str, dtype: str) -> np.ndarray:
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise CheckpointError(f"sparse model folder '{folder}' has no '{name}' file")
    size = os.path.getsize(path)
    if size % np.dtype(dtype).itemsize:
        raise CheckpointError(f"'{path}' has {size} bytes, not a multiple of {np.dtype(dtype).itemsize}")
    return np.fromfile(path, dtype=dtype)
