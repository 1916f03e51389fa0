"""Model-parallel embeddings: one shard per worker, exchanges through the worker's Comm.

Every worker sees the keys of the whole global batch (each process reads the global batch) and
owns part of the table, as HugeCTR's legacy embeddings do:

* ``key`` sharding (DistributedSlotSparseEmbeddingHash): worker ``key % W`` owns a key. Each
  shard sums its keys for every sample of the global batch; a reduce-scatter over the batch gives
  each worker the full sums of its own rows. Backward all-gathers the output gradient and each
  shard updates the keys it owns.
* ``slot`` sharding (LocalizedSlotSparseEmbeddingHash): worker ``slot % W`` owns a slot. Each shard
  looks up its slots for the global batch; an all-to-all sends every worker its rows of every
  slot. Backward is the reverse all-to-all.

Shards always sum; the "mean" combiner divides here, by the key count of the whole slot. Rows are
initialised from (seed, key), so the same key has the same vector whatever the worker count, and
checkpoints (gathered, sorted by key) do not depend on it either.

Example:
    >>> # built by the runtime for vvgpu with more than one device; see tests/test_distributed.py
    >>> ShardedEmbedding.kind_of(type("E", (), {"parallelism": "key"}))
    'key'
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .backend import to_host
from .contracts.embedding import Embedding
from .contracts.reader import static_row_offsets
from .errors import BackendError


class WrappedEmbedding(Embedding):
    """An embedding that runs another one, ``inner``, on this worker's share of the work (the sharded,
    hybrid and Embedding Collection wrappers): freezing, allocation and memory go to ``inner``;
    ``scratch`` keeps one reusable buffer per purpose."""

    inner = None  # set by the subclass (Embedding.__init__ sets ``frozen`` before it exists)
    xp = None

    @property
    def frozen(self) -> bool:
        return self.inner is not None and self.inner.frozen

    @frozen.setter
    def frozen(self, value: bool) -> None:
        if self.inner is not None:
            self.inner.frozen = value

    def allocate(self, xp, rng) -> None:
        self.xp = xp
        self.inner.allocate(xp, rng)

    def memory_bytes(self) -> dict:
        return self.inner.memory_bytes()

    def scratch(self, purpose: str, shape, dtype=np.float32):
        """A buffer of ``shape`` kept for ``purpose`` (no allocation while shape and dtype stay)."""
        buffers = self.__dict__.setdefault("_scratch", {})
        buf = buffers.get(purpose)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != np.dtype(dtype):
            buf = buffers[purpose] = self.xp.empty(tuple(shape), dtype)
        return buf

    def key_dtype(self):
        return np.uint32 if self.config.key_dtype == "uint32" else np.int64


class ShardedEmbedding(WrappedEmbedding):
    """This worker's part of one embedding across W workers (the runtime's view of it); ``inner`` is
    this worker's shard (the plugin's embedding over the keys or slots it owns).

    Args:
        cls: the embedding plugin class (its ``parallelism`` says "key" or "slot").
        config: the global EmbeddingConfig (all slots).
        optimizer: the embedding's optimizer object.
        comm: this worker's Comm (rank, size and the collectives).
    """

    def __init__(self, cls, config, optimizer, comm):
        super().__init__(config, optimizer)
        self.kind = self.kind_of(cls)
        self.comm = comm
        self.owned_slots = list(range(comm.rank, config.slot_num, comm.size)) if self.kind == "slot" \
            else list(range(config.slot_num))
        self.inner = cls(self._shard_config(config), optimizer)
        self._scale = None
        # Mixed precision, slots by owner and "sum": each slot is summed whole by its owner and rounded to
        # fp16 once, so exchanging fp16 is bit-identical to one device and halves the all-to-all bytes (the
        # runtime then plans no fp32 staging). "mean" scales after the exchange: it keeps fp32.
        self.fp16_io = self.kind == "slot" and config.combiner == "sum" and bool(getattr(cls, "fp16_io", False))

    @staticmethod
    def kind_of(cls) -> str:
        kind = getattr(cls, "parallelism", None)
        if kind not in ("key", "slot"):
            raise BackendError(f"embedding type {getattr(cls, '__name__', cls)} cannot be sharded over several "
                               f"devices in this version (multi-device training supports "
                               f"DistributedSlotSparseEmbeddingHash and LocalizedSlotSparseEmbeddingHash); use "
                               f"vvgpu=[[0]] for it")
        return kind

    def _shard_config(self, config):
        extra = dict(config.extra)
        if self.kind == "key":
            return replace(config, combiner="sum", extra=extra)
        pick = self.owned_slots
        offsets = extra.get("slot_key_offsets")
        if offsets is not None:
            extra["slot_key_offsets"] = tuple(offsets[s] for s in pick)
        sizes = tuple(config.slot_size_array[s] for s in pick) if config.slot_size_array else ()
        return replace(config, combiner="sum", slot_num=len(pick),
                       max_nnz_per_slot=tuple(config.max_nnz_per_slot[s] for s in pick),
                       slot_size_array=sizes, extra=extra)

    # -- forward --------------------------------------------------------------------------------
    def forward(self, ctx, row_offsets, keys, out_bse) -> None:
        """``row_offsets``/``keys``: the CSR of the whole global batch; ``out_bse``: this worker's rows."""
        xp, w, slots = self.xp, self.comm.size, self.config.slot_num
        local, vec = out_bse.shape[0], self.config.embedding_vec_size
        global_rows = local * w
        offsets = np.asarray(to_host(row_offsets), np.int64)
        if self.kind == "key":
            sub_offsets, sub_keys = self._owned_keys(offsets, keys)
        else:
            sub_offsets, sub_keys = _select_slots(xp, offsets, keys, global_rows, slots, self.owned_slots)
        mode = "train" if ctx.training else "eval"
        dtype = out_bse.dtype if self.fp16_io and out_bse.dtype == np.float16 else np.float32
        part = self.scratch(mode, (global_rows, len(self.owned_slots), vec), dtype)
        self.inner.forward(ctx, sub_offsets, sub_keys, part)
        result = out_bse if out_bse.dtype == dtype and out_bse.flags.c_contiguous \
            else xp.empty(out_bse.shape, dtype)
        if self.kind == "key":
            self.comm.reduce_scatter_sum(part, result)
        else:
            self._slots_to_rows(part, result, local)
        scale = self._mean_scale(offsets, local, slots) if self.config.combiner == "mean" else None
        if scale is not None:
            result *= scale
        if ctx.training:
            self._scale = scale
        if result is not out_bse:
            out_bse[...] = result

    def _owned_keys(self, offsets: np.ndarray, keys):
        """The CSR of the keys this worker owns (offsets stay on the device: no host round trip)."""
        keys = keys[:int(offsets[-1])]
        return filter_csr(self.xp, offsets, keys, (keys.astype(self.xp.int64) % self.comm.size) == self.comm.rank)

    def _slots_to_rows(self, part, out, local: int) -> None:
        """All-to-all: send worker d rows [d*local, (d+1)*local) of my slots; place what arrives."""
        xp, w = self.xp, self.comm.size
        sent = [xp.ascontiguousarray(part[d * local:(d + 1) * local]) for d in range(w)]
        shapes = [(local, len(range(src, self.config.slot_num, w)), part.shape[2]) for src in range(w)]
        for src, rows in enumerate(self.comm.alltoall(sent, shapes)):
            out[:, src::w] = rows

    def _mean_scale(self, offsets: np.ndarray, local: int, slots: int):
        start = self.comm.rank * local * slots
        counts = np.diff(offsets[start:start + local * slots + 1]).reshape(local, slots, 1)
        return self.xp.asarray((1.0 / np.maximum(counts, 1)).astype(np.float32))

    # -- backward -------------------------------------------------------------------------------
    def backward(self, ctx, top_grad_bse, lr: float) -> None:
        if self.frozen:
            return
        xp, w = self.xp, self.comm.size
        half = self.fp16_io and top_grad_bse.dtype == np.float16  # exchanged as it is: exact either way
        grad = xp.ascontiguousarray(top_grad_bse, dtype=top_grad_bse.dtype if half else xp.float32)
        if self._scale is not None:
            grad = grad * self._scale
        if self.kind == "key":
            full = self.comm.allgather(grad)
        else:
            sent = [xp.ascontiguousarray(grad[:, d::w]) for d in range(w)]
            shapes = [(grad.shape[0], len(self.owned_slots), grad.shape[2])] * w
            full = xp.concatenate(self.comm.alltoall(sent, shapes), axis=0)
        self.inner.backward(ctx, full, lr)

    # -- checkpoints: gathered from every shard, sorted by key ------------------------------------
    def dump(self) -> dict:
        local = self.inner.dump()
        slot = local.get("slot_id")
        if slot is not None and self.kind == "slot":
            slot = np.asarray(self.owned_slots, np.uint64)[slot.astype(np.int64)]
        parts = self.comm.allgather_object((local["key"], local["emb_vector"], slot))
        keys = np.concatenate([p[0] for p in parts])
        order = np.argsort(keys, kind="stable")
        vectors = np.concatenate([p[1] for p in parts])[order]
        slots = None if parts[0][2] is None else np.concatenate([p[2] for p in parts])[order]
        return {"key": keys[order], "emb_vector": vectors, "slot_id": slots}

    def dump_optimizer_states(self) -> list:
        parts = self.comm.allgather_object((self.inner.dump()["key"], self.inner.dump_optimizer_states()))
        order = np.argsort(np.concatenate([p[0] for p in parts]), kind="stable")
        n_states = len(parts[0][1])
        return [np.concatenate([p[1][k] for p in parts])[order] for k in range(n_states)]

    def _owned(self, key, slot_id=None) -> np.ndarray:
        key = np.asarray(key)
        if self.kind == "key":
            return (key.astype(np.int64) % self.comm.size) == self.comm.rank
        return (np.asarray(slot_id).astype(np.int64) % self.comm.size) == self.comm.rank

    def load(self, key, emb_vector, slot_id=None) -> None:
        if self.kind == "slot" and slot_id is None:
            self.inner.load(key, emb_vector, None)  # the shard names what is missing
        mine = self._owned(key, slot_id)
        local_slot = None
        if slot_id is not None:
            local_slot = np.asarray(slot_id)[mine]
            if self.kind == "slot":
                local_slot = (local_slot.astype(np.int64) // self.comm.size).astype(np.uint64)
        self.inner.load(np.asarray(key)[mine], np.asarray(emb_vector)[mine], local_slot)

    def load_optimizer_states(self, key, states) -> None:
        key = np.asarray(key)
        present = to_host(self.inner.table.find(self.xp.asarray(key.astype(self.key_dtype())))) >= 0
        self.inner.load_optimizer_states(key[present], [np.asarray(s)[present] for s in states])



def filter_csr(xp, offsets, keys, keep):
    """The CSR of the keys where ``keep`` is True, segments unchanged (device offsets, device keys).

    Example:
        >>> filter_csr(np, np.array([0, 2, 3]), np.array([4, 5, 6]), np.array([True, False, True]))
        (array([0, 1, 2]), array([4, 6]))
    """
    keys = keys[:int(offsets[-1])]
    kept = xp.concatenate([xp.zeros(1, xp.int64), xp.cumsum(keep, dtype=xp.int64)])
    return kept[xp.asarray(offsets)], keys[keep]


def _select_slots(xp, offsets: np.ndarray, keys, rows: int, slots: int, pick: list):
    """The CSR of slots ``pick`` only (host offsets, device keys) from a (rows x slots) CSR."""
    hot = int(offsets[-1]) // max(rows * slots, 1)
    if offsets[-1] == hot * rows * slots and (offsets is static_row_offsets((hot,) * slots, rows)
                                              or np.array_equal(offsets, np.arange(offsets.size) * hot)):
        # static hotness (every slot of every sample has `hot` keys): a strided view, no index arrays
        sub = keys[:offsets[-1]].reshape(rows, slots, hot)[:, pick, :].reshape(-1)
        return static_row_offsets((hot,) * len(pick), rows), sub
    counts = np.diff(offsets).reshape(rows, slots)[:, pick]
    starts = offsets[:-1].reshape(rows, slots)[:, pick].reshape(-1)
    flat = counts.reshape(-1)
    sub_offsets = np.zeros(flat.size + 1, np.int64)
    np.cumsum(flat, out=sub_offsets[1:])
    index = np.repeat(starts - sub_offsets[:-1], flat) + np.arange(sub_offsets[-1], dtype=np.int64)
    return sub_offsets, keys[xp.asarray(index)]
