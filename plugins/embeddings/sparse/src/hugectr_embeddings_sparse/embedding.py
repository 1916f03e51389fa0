"""DistributedSlotSparseEmbeddingHash and LocalizedSlotSparseEmbeddingHash (formats.md 1.7, 2.5, 3.5, 3.8).

One object is one device's shard: a key -> row hash table, a ``[capacity, vec]`` float32 row table and
one ``[capacity, vec]`` array per optimizer state. Input is the CSR of one ``DataReaderSparseParam``
(``row_offsets`` of length ``B*slot_num + 1``, sample-major); output is ``out_bse`` (B, slot, vec).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hugectr_core.backend import DeferredRead, is_numpy, to_host
from hugectr_core.contracts import Embedding
from hugectr_core.errors import CheckpointError, ConfigError, DataError

from . import reference
from .hash_table import make_hash_table

INIT_LIMIT = 0.05            # whole table U(-0.05, 0.05) (formats.md 3.6)
_DECAYING = {"Adam", "MomentumSGD", "Nesterov"}  # fallback for optimizers without the flag
IO_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))  # lookup output / top gradient used in place


def _is_adam(optimizer) -> bool:
    return type(optimizer).__name__ == "Adam" or getattr(optimizer, "supports_lazy_global", False)


def _kernels(xp):
    if is_numpy(xp):
        return reference
    from . import kernels  # noqa: PLC0415 - keeps CuPy out of import time

    return kernels


@dataclass
class BackwardPlan:
    """What the last training forward leaves for backward; occurrences j are sorted by row."""

    unique_rows: Any   # int64 [u]
    starts: Any        # int64 [u + 1]: the occurrences of unique row u are j in starts[u]:starts[u+1]
    seg_j: Any         # int64 [n]: (sample, slot) segment of occurrence j
    scale_j: Any       # float32 [n]: 1, or 1/keys-in-slot for "mean"
    chunks: Any = None  # int64 [u + 1]: the GPU reduction's chunking of the occurrences (kernels.chunk_plan)
    runs: Any = None    # DeferredRead of u while unique_rows / starts are still the untrimmed device buffers

    def settle(self, kernels) -> "BackwardPlan":
        """Trim the device buffers to the unique rows once their count is on the host; chunk them."""
        if self.runs is not None:
            u = int(self.runs.value()[0])
            self.unique_rows, self.starts, self.runs = self.unique_rows[:u], self.starts[:u + 1], None
        if self.chunks is None and kernels is not reference:
            self.chunks = kernels.chunk_plan(self.starts)
        return self


def key_uniform(xp, keys, vec: int, seed: int, limit: float):
    """U(-limit, limit) values of shape (len(keys), vec) that depend only on (seed, key, column):
    splitmix64 of ``key * vec + column`` xor the seed (wrapping uint64 arithmetic on both backends)."""
    u64 = xp.uint64
    x = keys.astype(u64)[:, None] * u64(vec) + xp.arange(vec, dtype=u64)[None, :]
    x = (x ^ u64(seed)) + u64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> u64(30))) * u64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> u64(27))) * u64(0x94D049BB133111EB)
    x = x ^ (x >> u64(31))
    unit = (x >> u64(11)).astype(xp.float64) * (1.0 / (1 << 53))
    return ((2.0 * unit - 1.0) * limit).astype(xp.float32)  # limit: a number, or one per key as (n, 1)


class SparseEmbeddingHash(Embedding):
    # Mixed precision: the lookup writes the float16 tensor and backward reads its float16 gradient
    # directly (sums in float32, one rounding), so the runtime plans no float32 staging copies for it.
    fp16_io = True
    """Shared machinery of the hash-based legacy embeddings (one device's shard)."""

    def __init__(self, config, optimizer):
        super().__init__(config, optimizer)
        self.update_type = getattr(optimizer.params, "update_name", "Local")
        if self.update_type == "LazyGlobal" and not _is_adam(optimizer):
            raise ConfigError(f"embedding '{self.name}' ({config.type_name}): Update_t.LazyGlobal is implemented "
                              f"for Adam only (as in HugeCTR), not {type(optimizer).__name__}; use "
                              f"Update_t.Global or Update_t.Local")
        self.capacity = self._capacity()
        self.xp = None
        self.rows = None
        self.states: list = []
        self.stamps = None   # LazyGlobal: int64 [capacity, vec], step of each element's last update
        self._key_ranges = None
        self.table = None
        self._plan: BackwardPlan | None = None

    # -- sizing ----------------------------------------------------------------------------------
    def _where(self) -> str:
        return f"embedding '{self.name}' ({self.config.type_name})"

    def n_states(self) -> int:
        return len(self.optimizer.state_names) + (1 if self.update_type == "LazyGlobal" else 0)

    def state_shapes(self, rows: int) -> list:
        """Shape of each optimizer state for ``rows`` rows (``Optimizer.state_shape``; default like the rows)."""
        vec = self.config.embedding_vec_size
        shape_of = getattr(self.optimizer, "state_shape", None)
        return [tuple(shape_of(n, (rows, vec))) if shape_of else (rows, vec) for n in self.optimizer.state_names]

    def bytes_per_key(self) -> int:
        """4 bytes per vector element and per state element; HugeCTR's ``(1 + n_states) * 4 * vec`` for
        optimizers whose states are shaped like the rows (LazyGlobal's stamp counts as one state, as there)."""
        vec = self.config.embedding_vec_size
        state_elems = sum(int(np.prod(shape[1:])) for shape in self.state_shapes(1))
        lazy = vec if self.update_type == "LazyGlobal" else 0
        return 4 * (vec + state_elems + lazy)

    def _capacity(self) -> int:
        """max_vocab_per_gpu = MB * 2^20 / ((1 + n_states) * 4 * vec) (model.cpp)."""
        cfg = self.config
        bytes_per_key = self.bytes_per_key()
        capacity = int(cfg.workspace_size_per_gpu_in_mb * 2**20 // bytes_per_key)
        if capacity < 1:
            raise ConfigError(f"{self._where()}: workspace_size_per_gpu_in_mb={cfg.workspace_size_per_gpu_in_mb} "
                              f"holds no key (each key needs {bytes_per_key} bytes for its vector and "
                              f"{self.n_states()} optimizer state(s)); set SparseEmbedding("
                              f"workspace_size_per_gpu_in_mb=...) to at least {math.ceil(bytes_per_key / 2**20)}, "
                              f"sized for your vocabulary")
        return capacity

    def _table_full(self, needed: int) -> Exception:
        cfg = self.config
        mb = math.ceil(needed * self.bytes_per_key() / 2**20)
        return ConfigError(f"{self._where()}: the hash table is full: it holds {self.capacity} keys "
                           f"(workspace_size_per_gpu_in_mb={cfg.workspace_size_per_gpu_in_mb}, "
                           f"embedding_vec_size={cfg.embedding_vec_size}, {self.n_states()} optimizer state(s)) "
                           f"but {needed} distinct keys arrived; raise workspace_size_per_gpu_in_mb "
                           f"to at least {mb}")

    # -- allocation ------------------------------------------------------------------------------
    def init_limits(self, rows):
        """U(-limit, limit) bound of the new ``rows``: a number, or one per row as (n, 1)."""
        return INIT_LIMIT

    def allocate(self, xp, rng) -> None:
        vec = self.config.embedding_vec_size
        self.xp = xp
        self.rows = xp.empty((self.capacity, vec), xp.float32)
        # A row gets its value when its key arrives, drawn from (seed, key) - the same on NumPy and CuPy,
        # whatever row the key lands in (GPU insertion order is not deterministic) and whatever the
        # device count, so resuming, GPU runs and sharded runs are exact.
        self.key_init = int(rng.integers(2**63))
        self.states = [xp.full(shape, self.optimizer.initial_state(n), xp.float32)
                       for n, shape in zip(self.optimizer.state_names, self.state_shapes(self.capacity))]
        # HugeCTR initialises the stamps to 1 (so the first catch-up divides by 1 - beta1^1, not 0)
        self.stamps = xp.ones((self.capacity, vec), xp.int64) if self.update_type == "LazyGlobal" else None
        self._key_ranges = self._slot_key_ranges(xp)
        self.table = make_hash_table(xp, self.capacity, self._table_full)
        self._plan = None

    def memory_bytes(self) -> dict:
        if self.rows is None:
            return {}
        stamps = int(self.stamps.nbytes) if self.stamps is not None else 0
        return {"rows": int(self.rows.nbytes), "optimizer_states": int(sum(s.nbytes for s in self.states)) + stamps,
                "hash_table": int(self.table.nbytes())}

    def _require_allocated(self):
        if self.rows is None:
            raise ConfigError(f"{self._where()}: call allocate(xp, rng) before using the embedding")

    # -- forward ---------------------------------------------------------------------------------
    def _slot_key_ranges(self, xp):
        """Per-slot ``[lo, hi)`` key ranges from ``slot_size_array`` (None without it).

        When the runtime says which offsets the reader added (``config.extra["slot_key_offsets"]``: one
        per slot; zeros when the reader adds none) slot s holds ``[off_s, off_s + size_s)``. Otherwise the
        bound is ``[0, sum(sizes[:s+1]))``: right both for offset keys and for keys counted from 0 per slot.
        """
        sizes = self.config.slot_size_array
        if not sizes:
            return None
        sizes = np.asarray(sizes, np.int64)
        offsets = self.config.extra.get("slot_key_offsets")
        if offsets is None:
            lo, hi = np.zeros_like(sizes), np.cumsum(sizes)
        else:
            lo = np.asarray(offsets, np.int64)
            if lo.shape != sizes.shape:
                raise ConfigError(f"{self._where()}: extra['slot_key_offsets'] has {lo.size} entries, expected "
                                  f"one per slot ({sizes.size})")
            hi = lo + sizes
        return xp.asarray(lo), xp.asarray(hi)

    def _check_keys(self, keys, offsets):
        """Negative keys (signed key type) and, with slot_size_array, keys outside their slot's range.

        One device reduction, then one host read of its flag (a device->host sync on CuPy, only when
        there is something to check: int64 keys or slot_size_array)."""
        xp = self.xp
        signed = np.dtype(keys.dtype).kind == "i"
        if not keys.size or (not signed and self._key_ranges is None):
            return
        k = keys.astype(xp.int64, copy=False)
        if self._key_ranges is None:
            bad = k < 0
        else:
            seg = xp.searchsorted(offsets[1:], xp.arange(k.size, dtype=xp.int64), side="right")
            slot = seg % self.config.slot_num
            lo, hi = self._key_ranges
            bad = (k < lo[slot]) | (k >= hi[slot]) | (k < 0)
        if not bool(bad.any()):
            return
        first = int(to_host(xp.flatnonzero(bad))[0])
        key = int(to_host(k[first:first + 1])[0])
        bottom = self.config.bottom_name
        if key < 0:
            raise DataError(f"{self._where()}: negative keys in input '{bottom}' (first: {key} at position {first}); "
                            f"HugeCTR keys are non-negative integers: fix the data or the reader's slot offsets")
        seg_of = int(np.searchsorted(to_host(offsets[1:]), first, side="right"))
        sample, s = divmod(seg_of, self.config.slot_num)
        lo, hi = (int(to_host(a[s:s + 1])[0]) for a in self._key_ranges)
        raise DataError(f"{self._where()}: key {key} in slot {s} of sample {sample} of input '{bottom}' is outside "
                        f"[{lo}, {hi}) given by slot_size_array[{s}]={self.config.slot_size_array[s]}; raise "
                        f"slot_size_array[{s}] or fix the data (keys of slot {s} must be below its size, plus "
                        f"the slot offset when the reader adds offsets)")

    def _nnz(self, row_offsets) -> int:
        """Keys in use: ``row_offsets[-1]``. Free when the offsets are a host (NumPy) array, which the
        runtime has anyway; a device array costs one device->host read."""
        return int(row_offsets[-1]) if isinstance(row_offsets, np.ndarray) else int(to_host(row_offsets[-1:])[0])

    def forward(self, ctx, row_offsets, keys, out_bse) -> None:
        """Look up and combine. ``keys`` may be longer than ``row_offsets[-1]`` (a reusable buffer): only
        the first ``row_offsets[-1]`` are read. ``row_offsets`` may be a host array on any backend."""
        self._require_allocated()
        xp, vec = self.xp, self.config.embedding_vec_size
        n_seg = out_bse.shape[0] * self.config.slot_num
        if row_offsets.size != n_seg + 1:
            raise DataError(f"{self._where()}: row_offsets has {row_offsets.size} entries, expected "
                            f"batch*slot_num+1 = {n_seg + 1} for output {tuple(out_bse.shape)}")
        nnz = self._nnz(row_offsets)
        if nnz > keys.size:
            raise DataError(f"{self._where()}: row_offsets end at {nnz} but input '{self.config.bottom_name}' "
                            f"has only {keys.size} keys")
        offsets = self._device_offsets(row_offsets)
        keys = keys[:nnz]
        self._check_keys(keys, offsets)
        rows = self._insert_or_find(keys, offsets) if ctx.training else self.table.find(keys)
        out_sv = out_bse.reshape(n_seg, vec)
        combined = out_sv if out_sv.dtype in IO_DTYPES and out_sv.flags.c_contiguous \
            else xp.empty((n_seg, vec), xp.float32)
        _kernels(xp).gather_combine(self.rows, rows, offsets, self.config.combiner == "mean", combined)
        if combined is not out_sv:
            out_bse[...] = combined.reshape(out_bse.shape)
        if ctx.training:
            self._plan = self._backward_plan(rows, offsets)

    def _device_offsets(self, row_offsets):
        """Offsets on the device. Readers share one read-only host array for every batch of a static
        hotness (``contracts.reader.static_row_offsets``): its device copy is kept, not re-sent each step."""
        xp = self.xp
        if isinstance(row_offsets, np.ndarray) and not row_offsets.flags.writeable and not is_numpy(xp):
            cached = getattr(self, "_offsets_cache", None)
            if cached is None or cached[0] is not row_offsets:
                self._offsets_cache = (row_offsets, xp.asarray(row_offsets).astype(xp.int64, copy=False))
            return self._offsets_cache[1]
        return xp.asarray(row_offsets).astype(xp.int64, copy=False)

    def _insert_or_find(self, keys, offsets=None):
        """Insert unseen keys and give their rows values drawn from (seed, key). ``offsets`` (the CSR of
        ``keys``) tell subclasses the slot of each key."""
        if not is_numpy(self.xp):
            return self._insert_or_find_on_device(keys, offsets)
        before = int(self.table.size)
        rows = self.table.insert_or_find(keys)
        self._note_slots(rows, offsets)
        after = int(self.table.size)
        if after > before:
            new_keys = self.xp.asarray(self.table.row_keys[before:after])
            limit = self.init_limits(self.xp.arange(before, after))
            self.rows[before:after] = key_uniform(self.xp, new_keys, self.config.embedding_vec_size,
                                                  self.key_init, limit)
        return rows

    def _insert_or_find_on_device(self, keys, offsets):
        """The same without a host sync: the new rows are the ones between a device copy of the row
        counter taken before the insert and the counter after it; a kernel fills them (``key_uniform``'s
        twin), and the table reads its counter back only when its size is next needed."""
        table = self.table
        before = table.counter.copy()
        rows = table.insert_or_find(keys)
        self._note_slots(rows, offsets)
        limit, per_slot, row_slot = self.device_init_limits()
        _kernels(self.xp).init_new_rows(self.rows, table.row_keys, before, table.counter, self.key_init, limit,
                                        per_slot, row_slot)
        return rows

    def device_init_limits(self):
        """``init_limits`` for ``init_new_rows``: (bound, per-slot bounds or None, row -> slot or None)."""
        return INIT_LIMIT, None, None

    def _note_slots(self, rows, offsets) -> None:
        """Hook: Localized records the slot of each row before the new rows get their values."""

    def _backward_plan(self, rows, offsets) -> BackwardPlan:
        xp = self.xp
        n = rows.size
        seg = xp.searchsorted(offsets[1:], xp.arange(n, dtype=xp.int64), side="right")
        if self.config.combiner == "mean":
            scale = (1.0 / xp.maximum(xp.diff(offsets), 1).astype(xp.float32))[seg]
        else:
            scale = xp.ones(n, xp.float32)
        if not is_numpy(xp) and n:
            return self._device_backward_plan(rows, seg, scale)
        order = xp.argsort(rows, kind="stable") if is_numpy(xp) else xp.argsort(rows)
        sorted_rows = rows[order]
        if n:
            first = xp.flatnonzero(xp.concatenate([xp.ones(1, bool), sorted_rows[1:] != sorted_rows[:-1]]))
        else:
            first = xp.zeros(0, xp.int64)
        starts = xp.concatenate([first, xp.asarray([n])]).astype(xp.int64)
        return BackwardPlan(sorted_rows[first], starts, seg[order].astype(xp.int64), scale[order])

    def _device_backward_plan(self, rows, seg, scale) -> BackwardPlan:
        """The plan without a host sync (the GPU would idle while the host caught up): each run's first
        occurrence scatters its position and row into buffers of n (+1) entries, and the number of runs
        comes back to the host asynchronously; ``BackwardPlan.settle`` trims the buffers in backward."""
        xp = self.xp
        n = rows.size
        order = xp.argsort(rows)
        sorted_rows = rows[order]
        first = xp.empty(n, bool)
        first[:1] = True
        xp.not_equal(sorted_rows[1:], sorted_rows[:-1], out=first[1:])
        run = xp.cumsum(first, dtype=xp.int64) - 1  # the unique row index of every occurrence
        starts = xp.full(n + 2, n, xp.int64)  # starts[u] for u < runs; starts[runs] stays n; [n + 1]: spare
        starts[xp.where(first, run, n + 1)] = xp.arange(n, dtype=xp.int64)
        unique_rows = xp.empty(n + 1, xp.int64)  # entry n: the spare the other occurrences write to
        unique_rows[xp.where(first, run, n)] = sorted_rows
        return BackwardPlan(unique_rows, starts, seg[order].astype(xp.int64), scale[order],
                            runs=DeferredRead(xp, run[-1:] + 1))

    # -- backward --------------------------------------------------------------------------------
    def _moves_untouched_rows(self) -> bool:
        flag = getattr(self.optimizer, "global_moves_untouched_rows", None)
        if flag is None:
            flag = type(self.optimizer).__name__ in _DECAYING
        return self.update_type == "Global" and flag

    def backward(self, ctx, top_grad_bse, lr: float) -> None:
        if self.frozen:
            return
        if self._plan is None:
            raise ConfigError(f"{self._where()}: backward needs a training forward first")
        self.table.size  # noqa: B018 - settles the row counter: a full table is reported before any update
        xp, vec = self.xp, self.config.embedding_vec_size
        plan = self._plan.settle(_kernels(xp))
        grad = top_grad_bse.reshape(-1, vec)
        top_grad_sv = xp.ascontiguousarray(grad, dtype=grad.dtype if grad.dtype in IO_DTYPES else xp.float32)
        step, scaler = ctx.step, ctx.scaler
        if getattr(self.optimizer, "plain_sgd", False) and self.update_type != "LazyGlobal":
            # the fast path: SGD fused into the per-row reduction (one pass over the gradient)
            _kernels(xp).reduce_and_sgd(top_grad_sv, plan.seg_j, plan.scale_j, plan.starts, plan.unique_rows,
                                        self.rows, lr / scaler, plan.chunks)
            return
        grad_uv = _kernels(xp).segmented_reduce(top_grad_sv, plan.seg_j, plan.scale_j, plan.starts, plan.chunks)
        if self.update_type == "LazyGlobal":
            self._lazy_adam(plan.unique_rows, grad_uv, lr, step, scaler)
        elif self._moves_untouched_rows():
            used = self.table.size
            dense = xp.zeros((used, vec), xp.float32)
            dense[plan.unique_rows] = grad_uv
            self.optimizer.update(xp, self.rows[:used], dense, [s[:used] for s in self.states], lr, step, scaler)
        elif plan.unique_rows.size:
            self.optimizer.update_rows(xp, self.rows, self.states, plan.unique_rows, grad_uv, lr, step, scaler)

    def _lazy_adam(self, rows, grad_uv, lr, step, scaler) -> None:
        if step < 1:
            raise ConfigError(f"{self._where()}: Adam LazyGlobal needs the 1-based step (>= 1), got {step}")
        if rows.size:
            p = self.optimizer.params
            _kernels(self.xp).adam_lazy_update_rows(self.rows, self.states[0], self.states[1], self.stamps, rows,
                                                    grad_uv, lr, step, p.beta1, p.beta2, p.epsilon, 1.0 / scaler)

    # -- checkpoint ------------------------------------------------------------------------------
    def dump(self) -> dict:
        self._require_allocated()
        n = self.table.size
        return {"key": self.table.keys_in_row_order().astype(np.int64),
                "emb_vector": to_host(self.rows[:n]).astype(np.float32), "slot_id": self._dump_slot_id(n)}

    def _dump_slot_id(self, n):
        return None

    def dump_optimizer_states(self) -> list:
        """Host copies of each optimizer state for the rows in use, aligned with ``dump()["key"]``, each
        ``[n, vec]`` float32 (a compact ``[n, 1]`` state is repeated across the vector; LazyGlobal adds the
        step stamps as a last state, exact as float32 up to step 2^24)."""
        self._require_allocated()
        n, vec = self.table.size, self.config.embedding_vec_size
        # the state's own width (vec, or 1 for a compact state) spelled out: reshape(0, -1) is ambiguous
        out = [np.broadcast_to(to_host(s[:n]).astype(np.float32).reshape(n, int(np.prod(s.shape[1:]))),
                               (n, vec)).copy() for s in self.states]
        if self.stamps is not None:
            out.append(to_host(self.stamps[:n]).astype(np.float32))
        return out

    def load_optimizer_states(self, key, states) -> None:
        """Set the optimizer state rows of ``key`` (already in the table: load the weights first)."""
        self._require_allocated()
        vec = self.config.embedding_vec_size
        expected = len(self.states) + (1 if self.stamps is not None else 0)
        if len(states) != expected:
            raise CheckpointError(f"{self._where()}: {len(states)} optimizer states in the file, the optimizer "
                                  f"{type(self.optimizer).__name__} ({self.update_type}) has {expected}")
        for st in states:
            if st.shape != (len(key), vec):
                raise CheckpointError(f"{self._where()}: optimizer state of shape {st.shape}, expected "
                                      f"({len(key)}, {vec})")
        xp = self.xp
        dtype = np.uint32 if self.config.key_dtype == "uint32" else np.int64
        rows = self.table.find(xp.asarray(np.asarray(key).astype(dtype)))
        if int((rows < 0).sum()):
            raise CheckpointError(f"{self._where()}: {int((rows < 0).sum())} keys of the optimizer-state file are "
                                  "not in the table; load the matching sparse weights first")
        for full, part in zip(self.states, states):
            part = np.asarray(part)
            full[rows] = xp.asarray(part[:, : full.shape[1]] if full.ndim == 2 else part)
        if self.stamps is not None:
            self.stamps[rows] = xp.asarray(np.rint(np.asarray(states[-1])).astype(np.int64))

    def _load_keys(self, key, emb_vector):
        vec = self.config.embedding_vec_size
        key, emb_vector = np.asarray(key), np.asarray(emb_vector)
        if emb_vector.ndim != 2 or emb_vector.shape[1] != vec:
            raise CheckpointError(f"{self._where()}: emb_vector has shape {emb_vector.shape}, expected (n, {vec}); "
                                  f"the checkpoint was written with another embedding_vec_size")
        if key.ndim != 1 or key.size != emb_vector.shape[0]:
            raise CheckpointError(f"{self._where()}: {key.size} keys but {emb_vector.shape[0]} vectors; "
                                  f"the key and emb_vector files do not belong together")
        if key.size and (key.min() < 0 or (self.config.key_dtype == "uint32" and key.max() >= 2**32)):
            raise CheckpointError(f"{self._where()}: checkpoint keys outside the range of "
                                  f"{self.config.key_dtype} keys; load it with the key type it was trained with")
        dtype = np.uint32 if self.config.key_dtype == "uint32" else np.int64
        return key.astype(dtype), emb_vector.astype(np.float32)

    def load(self, key, emb_vector, slot_id=None) -> None:
        self._require_allocated()
        key, emb_vector = self._load_keys(key, emb_vector)
        xp = self.xp
        rows = self._insert_or_find(xp.asarray(key))
        self.rows[rows] = xp.asarray(emb_vector)
        self._plan = None
        return rows


class DistributedSlotSparseEmbeddingHash(SparseEmbeddingHash):
    parallelism = "key"  # on several devices, key k lives on device k % W (hugectr_core.sharding)

    """HugeCTR's distributed-slot hash embedding: any key of any slot may live on any device.

    This object is one device's shard (the whole table on one device); keys are owned by
    ``key % device_count`` once sharding arrives.

    Example:
        >>> import numpy as np, hugectr_core.params as p
        >>> from hugectr_core.contracts import EmbeddingConfig, StepContext
        >>> from hugectr_optimizers_sgd import SGD
        >>> cfg = EmbeddingConfig("DistributedSlotSparseEmbeddingHash", "emb", "data", 4, "sum", 1, 2, (1, 2))
        >>> emb = DistributedSlotSparseEmbeddingHash(cfg, SGD(p.CreateOptimizer(optimizer_type="SGD")))
        >>> emb.allocate(np, np.random.default_rng(0))
        >>> out = np.empty((1, 2, 4), np.float32)    # B=1: slot 0 has key 5, slot 1 keys 5 and 9
        >>> emb.forward(StepContext(np, training=True), np.array([0, 1, 3]), np.array([5, 5, 9], np.uint32), out)
        >>> emb.dump()["key"].tolist()
        [5, 9]
    """


class LocalizedSlotSparseEmbeddingHash(SparseEmbeddingHash):
    parallelism = "slot"  # on several devices, slot s lives on device s % W (hugectr_core.sharding)

    """HugeCTR's localized-slot hash embedding: a slot lives on one device (``slot % device_count``).

    Rows remember the slot of their key (written as ``slot_id`` in checkpoints). With
    ``slot_size_array`` the capacity is the sum of the slot sizes and a key of slot s starts
    U(+-sqrt(1/slot_size[s])) as in HugeCTR (drawn from (seed, key), like every row here).

    Example:
        >>> import numpy as np, hugectr_core.params as p
        >>> from hugectr_core.contracts import EmbeddingConfig, StepContext
        >>> from hugectr_optimizers_sgd import SGD
        >>> cfg = EmbeddingConfig("LocalizedSlotSparseEmbeddingHash", "emb", "data", 4, "mean", 0, 2, (1, 1),
        ...                       slot_size_array=(10, 100))
        >>> emb = LocalizedSlotSparseEmbeddingHash(cfg, SGD(p.CreateOptimizer(optimizer_type="SGD")))
        >>> emb.capacity
        110
        >>> emb.allocate(np, np.random.default_rng(0))
        >>> out = np.empty((1, 2, 4), np.float32)
        >>> emb.forward(StepContext(np, training=True), np.array([0, 1, 2]), np.array([3, 17], np.uint32), out)
        >>> emb.dump()["slot_id"].tolist()
        [0, 1]
    """

    def _capacity(self) -> int:
        sizes = self.config.slot_size_array
        if not sizes:
            return super()._capacity()
        if len(sizes) != self.config.slot_num or min(sizes) < 1:
            raise ConfigError(f"{self._where()}: slot_size_array has {len(sizes)} entries {list(sizes)[:8]}, "
                              f"expected {self.config.slot_num} positive slot sizes (one per slot)")
        return int(sum(sizes))

    def init_limits(self, rows):
        """HugeCTR's per-slot bound sqrt(1/slot_size[s]) with ``slot_size_array``, else U(-0.05, 0.05)."""
        sizes = self.config.slot_size_array
        if not sizes:
            return super().init_limits(rows)
        return self._slot_limits()[self.row_slot[rows]][:, None]

    def device_init_limits(self):
        if not self.config.slot_size_array:
            return super().device_init_limits()
        return 0.0, self._slot_limits(), self.row_slot

    def _slot_limits(self):
        """sqrt(1 / slot_size[s]) per slot, float64 on the backend (made once)."""
        if getattr(self, "_slot_limit_array", None) is None:
            sizes = np.asarray(self.config.slot_size_array, np.float64)
            self._slot_limit_array = self.xp.asarray(np.sqrt(1.0 / sizes))
        return self._slot_limit_array

    def allocate(self, xp, rng) -> None:
        self.row_slot = xp.zeros(self.capacity, xp.int64)
        super().allocate(xp, rng)

    def memory_bytes(self) -> dict:
        sizes = super().memory_bytes()
        if sizes:
            sizes["hash_table"] += int(self.row_slot.nbytes)
        return sizes

    def _note_slots(self, rows, offsets) -> None:
        if offsets is None:  # loading: load() sets the slots
            return
        xp = self.xp
        # keys are unique across slots (formats.md 1.7), so every occurrence of a row names one slot
        seg = xp.searchsorted(offsets[1:], xp.arange(rows.size, dtype=xp.int64), side="right")
        self.row_slot[rows] = seg % self.config.slot_num

    def _dump_slot_id(self, n):
        return to_host(self.row_slot[:n]).astype(np.uint64)

    def load(self, key, emb_vector, slot_id=None) -> None:
        if slot_id is None:
            raise CheckpointError(f"{self._where()}: loading needs the slot_id of every key (the checkpoint "
                                  f"folder's 'slot_id' file)")
        slot_id = np.asarray(slot_id)
        if slot_id.shape != np.shape(key):
            raise CheckpointError(f"{self._where()}: {slot_id.size} slot ids for {np.size(key)} keys")
        if slot_id.size and slot_id.max() >= self.config.slot_num:
            raise CheckpointError(f"{self._where()}: slot id {int(slot_id.max())} but the embedding has "
                                  f"{self.config.slot_num} slots")
        rows = super().load(key, emb_vector)
        self.row_slot[rows] = self.xp.asarray(slot_id.astype(np.int64))
