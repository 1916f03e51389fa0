"""Hybrid embedding (``SparseEmbedding(hybrid_embedding_param=...)``): frequent categories data parallel,
the rest model parallel, chosen from the first ``num_iterations_statistics`` training batches.

One-hot data and SGD only (as in HugeCTR). Every worker sees the keys of the whole global batch.

* **Statistics** (``plan``): category counts over the first batches; a category is *frequent* by the
  rule of ``communication_type`` (below), at most ``max_num_frequent_categories`` x global batch of them,
  most frequent first.
* **Frequent** categories: a replica on every worker (rows indexed by the sorted frequent keys). Forward
  reads the replica for this worker's rows; backward sums the gradient per frequent category locally,
  all-reduces that (n_frequent, vec) gradient and every replica applies the same SGD step.
* **Infrequent** categories live on worker ``key % W`` (the plugin's embedding, one key per segment).
  Forward: the owner looks up, for every other worker's rows, the infrequent keys it owns and sends just
  those vectors (a variable-size all-to-all); backward sends those rows' gradients back to the owner.
  Only infrequent lookups cross workers: that is the traffic hybrid embedding saves.

Frequency rules (``HybridEmbeddingParam.communication_type``):
  * ``NVLink_SingleNode``: frequent when the probability that the category occurs more than once in a
    device's batch exceeds ``p_dup_max`` (per-sample probability p = count / samples seen; a batch of b
    rows: ``1 - (1-p)^b - b p (1-p)^(b-1)``).
  * ``IB_NVLink`` / ``IB_NVLink_Hier``: frequent when sending its lookups costs more than all-reducing
    its row: ``lookups_per_batch * (W-1)/W / max_all_to_all_bandwidth > efficiency_bandwidth_ratio /
    max_all_reduce_bandwidth`` (our reading of HugeCTR's bandwidth model; the row size cancels).

Results equal the one-device embedding's (same (seed, key) initialisation, SGD on the summed gradient).

Example:
    >>> frequent_by_duplicates(np.array([10, 11]), np.array([500, 2]), samples=1000, rows=64, p_dup_max=0.01)
    array([10])
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .backend import DeferredRead, is_numpy, to_host
from .contracts.layer import StepContext
from .enums import type_string
from .errors import ConfigError, DataError
from .sharding import WrappedEmbedding


def frequent_by_duplicates(keys, counts, samples: int, rows: int, p_dup_max: float) -> np.ndarray:
    """Keys whose chance of occurring twice or more in a batch of ``rows`` samples exceeds ``p_dup_max``."""
    p = np.asarray(counts, np.float64) / max(samples, 1)
    once_or_less = (1 - p) ** rows + rows * p * (1 - p) ** max(rows - 1, 0)
    return np.asarray(keys)[(1 - once_or_less) > p_dup_max]


def frequent_by_bandwidth(keys, counts, batches: int, workers: int, param) -> np.ndarray:
    """Keys whose all-to-all traffic per batch costs more than all-reducing their row."""
    lookups = np.asarray(counts, np.float64) / max(batches, 1)
    a2a_cost = lookups * (workers - 1) / workers / param.max_all_to_all_bandwidth
    return np.asarray(keys)[a2a_cost > param.efficiency_bandwidth_ratio / param.max_all_reduce_bandwidth]


class HybridEmbedding(WrappedEmbedding):
    """This worker's part of a hybrid embedding (the runtime's view of it); ``inner`` is the plugin's
    embedding holding the infrequent categories this worker owns (one key per segment).

    Args:
        cls: the embedding plugin class that stores the infrequent categories (DistributedSlot).
        config: the global EmbeddingConfig.
        optimizer: the embedding's optimizer (SGD).
        comm: this worker's Comm.
        param: the ``hugectr.HybridEmbeddingParam``.
        solver: for ``num_iterations_statistics`` and the batch size.
    """

    needs_statistics = True
    SPILL_ROWS = 64  # rows past the frequent ones that collect the rare positions' gradient (discarded)

    def __init__(self, cls, config, optimizer, comm, param, solver):
        super().__init__(config, optimizer)
        where = f"SparseEmbedding '{config.name}' with hybrid_embedding_param"
        if not getattr(optimizer, "plain_sgd", False):
            raise ConfigError(f"{where}: hybrid embedding trains with SGD only (as in HugeCTR), not "
                              f"{type(optimizer).__name__}; use CreateOptimizer(optimizer_type=SGD)")
        if any(int(h) != 1 for h in config.max_nnz_per_slot):
            raise ConfigError(f"{where}: hybrid embedding needs one-hot slots (max_nnz 1), got "
                              f"{list(config.max_nnz_per_slot)}")
        if type_string(param.hybrid_embedding_type) != "Distributed":
            raise ConfigError(f"{where}: only HybridEmbeddingType.Distributed exists")
        self.where, self.comm, self.param = where, comm, param
        self.statistics_batches = int(solver.num_iterations_statistics)
        if self.statistics_batches < 1:
            raise ConfigError(f"{where}: CreateSolver(num_iterations_statistics=...) must be >= 1")
        # the infrequent store: one key per segment, the plugin's hash table, rows and fused SGD
        self.inner = cls(replace(config, combiner="sum", slot_num=1, max_nnz_per_slot=(1,), slot_size_array=()),
                        optimizer)
        self.hot_keys = None   # sorted frequent keys (device), None before plan()
        self.hot_rows = None   # (n_frequent, vec) float32 replica
        self._saved = None
        self._grouped = None   # this step's frequent gradient, already all-reduced with the dense one
        self._spill = (None, None)  # ((positions, frequent rows), spill row of every position)

    # -- storage ---------------------------------------------------------------------------------
    def allocate(self, xp, rng) -> None:
        super().allocate(xp, rng)
        self.hot_keys = None
        self.hot_rows = None

    def memory_bytes(self) -> dict:
        out = dict(super().memory_bytes())
        if self.hot_rows is not None:
            out["frequent_replica"] = int(self.hot_rows.nbytes + self.hot_keys.nbytes)
        return out

    # -- statistics -------------------------------------------------------------------------------
    def plan(self, batches) -> None:
        """Choose the frequent categories from these host batches (identical on every worker)."""
        keys = np.concatenate([np.asarray(b.sparse[self.config.bottom_name].keys).reshape(-1) for b in batches])
        samples = sum(b.size for b in batches)
        uniq, counts = np.unique(keys.astype(np.int64), return_counts=True)
        order = np.lexsort((uniq, -counts))           # most frequent first, ties by key
        uniq, counts = uniq[order], counts[order]
        kind = type_string(self.param.communication_type)
        rows = max(samples // max(len(batches), 1) // self.comm.size, 1)
        if kind == "NVLink_SingleNode":
            chosen = frequent_by_duplicates(uniq, counts, samples, rows, self.param.p_dup_max)
        else:
            chosen = frequent_by_bandwidth(uniq, counts, len(batches), self.comm.size, self.param)
        limit = int(self.param.max_num_frequent_categories) * max(samples // max(len(batches), 1), 1)
        self._install_frequent(np.sort(chosen[:max(limit, 0)]))

    def _install_frequent(self, frequent: np.ndarray) -> None:
        """Build the replica from the current values (loaded, trained or (seed, key)-initialised)."""
        xp, vec, w = self.xp, self.config.embedding_vec_size, self.comm.size
        mine = frequent[frequent % w == self.comm.rank]
        values = self._rare_values(mine)
        parts = self.comm.allgather_object((mine, values))
        keys = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        rows = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, vec), np.float32)
        order = np.argsort(keys)
        self.hot_keys = xp.asarray(keys[order].astype(np.int64))
        self.hot_rows = xp.asarray(rows[order].reshape(-1, vec).astype(np.float32))

    def _rare_values(self, keys: np.ndarray) -> np.ndarray:
        """Current vectors of keys this worker owns (inserting unseen ones: (seed, key) values)."""
        vec = self.config.embedding_vec_size
        if keys.size == 0:
            return np.zeros((0, vec), np.float32)
        out = self.xp.empty((keys.size, 1, vec), self.xp.float32)
        self.inner.forward(StepContext(self.xp, training=True), np.arange(keys.size + 1, dtype=np.int64),
                          self.xp.asarray(keys.astype(self.key_dtype())), out)
        return to_host(out).reshape(keys.size, vec)

    # -- which keys go where ----------------------------------------------------------------------
    def _is_frequent(self, keys64):
        """(frequent?, row in the replica) of every key; the row is clipped to a valid one for the others."""
        xp = self.xp
        if self.hot_keys is None or self.hot_keys.size == 0:
            return xp.zeros(keys64.shape, bool), xp.zeros(keys64.shape, xp.int64)
        pos = xp.minimum(xp.searchsorted(self.hot_keys, keys64), self.hot_keys.size - 1)
        return self.hot_keys[pos] == keys64, pos

    def _sort_by_block_and_class(self, keys64, hot):
        """The lookups of every worker's block listed class after class (owner 0..W-1, then frequent),
        row-major within one: (flat order, the class bounds on their way to the host). One stable sort of a
        small 1-D key: CuPy radix-sorts that, where sorting a 2-D array along an axis is a comparison sort
        (the step's largest cost on 4 GPUs). The bounds are the forward's one host read."""
        xp, w = self.xp, self.comm.size
        classes = w + 1
        dtype = xp.int8 if w * classes + w < 128 else xp.int16 if w * classes + w < 32768 else xp.int32
        cls = xp.where(hot, w, keys64 % w).astype(dtype)
        composite = (cls + (xp.arange(w, dtype=dtype) * classes)[:, None]).ravel()
        order = xp.argsort(composite, kind="stable") if is_numpy(xp) else xp.argsort(composite)
        # the class sizes from the sorted key's boundaries: a bincount's atomic adds would all queue on the
        # few counters (98 % of the lookups are frequent on the benchmark's power law)
        bounds = xp.searchsorted(composite[order], xp.arange(w * classes + 1, dtype=dtype))
        return order, DeferredRead(xp, bounds)

    # -- forward ------------------------------------------------------------------------------------
    def forward(self, ctx, row_offsets, keys, out_bse) -> None:
        xp, w, rank = self.xp, self.comm.size, self.comm.rank
        local, slots, vec = out_bse.shape
        n, global_rows = local * slots, local * w
        offsets = np.asarray(to_host(row_offsets), np.int64)
        if int(offsets[-1]) != global_rows * slots:
            raise DataError(f"{self.where}: every slot of every sample must hold exactly one key (one-hot); the "
                            f"batch has {int(offsets[-1])} keys for {global_rows} samples x {slots} slots")
        keys64 = keys[:global_rows * slots].reshape(w, n).astype(xp.int64)
        hot, pos = self._is_frequent(keys64)       # (W, n): every worker's block, as every worker knows it
        order, bounds = self._sort_by_block_and_class(keys64, hot)
        # the replica's rows into every position before the host waits for the class sizes: the GPU has
        # this gather to do while the host launches the small steps after the read
        flat = self._gather_frequent(out_bse, pos[rank])
        sizes = np.diff(np.asarray(bounds.value(), np.int64)).reshape(w, w + 1)  # [d, o]: block d, class o
        starts = np.concatenate([np.zeros((w, 1), np.int64), np.cumsum(sizes, axis=1)], axis=1)
        self._check_infrequent(int(sizes[:, :w].sum()), global_rows)
        # what I own of every worker's block, in row-major order, concatenated by destination
        wanted = [order[d * n + starts[d, rank]:d * n + starts[d, rank + 1]] for d in range(w)]
        vectors = self._rare_lookup(ctx, keys64.ravel()[xp.concatenate(wanted) if w > 1 else wanted[0]])
        counts = [int(c) for c in sizes[:, rank]]
        sent = xp.split(vectors, np.cumsum(counts)[:-1].tolist()) if w > 1 else [vectors]
        # every worker knows every key, so what arrives from each owner is known here: no shape exchange
        received = self.comm.alltoall([xp.ascontiguousarray(s) for s in sent],
                                      [(int(sizes[rank, o]), vec) for o in range(w)])
        mine = order[rank * n:(rank + 1) * n] - rank * n    # my block's positions, rare by owner, then frequent
        n_rare = int(starts[rank, w])
        self._write_rare(out_bse, flat, mine[:n_rare], received)
        if ctx.training:
            mine_rare = [mine[starts[rank, o]:starts[rank, o + 1]] for o in range(w)]
            self._saved = (mine_rare, self._gradient_rows(hot[rank], pos[rank]), counts)

    def _gather_frequent(self, out_bse, my_pos):
        """Every position's row from the replica, gathered straight into the output (or a contiguous stand-in
        for it, returned); a rare position gets a valid row that ``_write_rare`` overwrites."""
        xp, (local, slots, vec) = self.xp, out_bse.shape
        flat = out_bse.reshape(local * slots, vec) if out_bse.flags.c_contiguous \
            else xp.empty((local * slots, vec), out_bse.dtype)
        if self.hot_rows is not None and self.hot_rows.size:
            # an fp16 output (mixed precision) gathers from an fp16 copy of the replica: the same rounding
            # as casting the gathered rows, on the replica (far fewer rows than lookups)
            xp.take(self.hot_rows.astype(flat.dtype, copy=False), my_pos, axis=0, out=flat)
        # (without frequent categories every position is rare and written by _write_rare)
        return flat

    def _write_rare(self, out_bse, flat, rare_at, received) -> None:
        """The rare positions from what their owners sent (by owner, in the order of ``rare_at``)."""
        vec = out_bse.shape[2]
        if rare_at.size:
            flat[rare_at] = self.xp.concatenate([r.reshape(-1, vec) for r in received]) if len(received) > 1 \
                else received[0].reshape(-1, vec)
        if not out_bse.flags.c_contiguous:  # flat is _gather_frequent's stand-in
            out_bse[...] = flat.reshape(out_bse.shape)

    def _gradient_rows(self, my_hot, my_pos):
        """Where each of my positions' gradient goes in the frequent gradient: its replica row, or one of
        ``SPILL_ROWS`` rows past the end for a rare position (spread out, so their atomic adds do not queue
        on one row). None without frequent categories."""
        xp = self.xp
        if self.hot_rows is None or self.hot_rows.size == 0:
            return None
        key = (my_pos.size, self.hot_rows.shape[0])
        if self._spill[0] != key:  # the same every step: made once per shape
            self._spill = (key, key[1] + xp.arange(key[0], dtype=xp.int64) % self.SPILL_ROWS)
        return xp.where(my_hot, my_pos, self._spill[1])

    def _check_infrequent(self, found: int, rows: int) -> None:
        """At most ``max_num_infrequent_samples`` x global batch infrequent lookups per batch (-1: no limit)."""
        limit = int(self.param.max_num_infrequent_samples)
        if limit >= 0 and found > limit * rows:
            raise DataError(f"{self.where}: {found} infrequent lookups in a global batch of {rows} exceed "
                            f"max_num_infrequent_samples={limit} x {rows}; raise it (or -1 for no limit)")

    def _rare_lookup(self, ctx, my_keys):
        vec, n = self.config.embedding_vec_size, int(my_keys.size)
        out = self.xp.empty((n, 1, vec), self.xp.float32)
        self.inner.forward(ctx, np.arange(n + 1, dtype=np.int64), my_keys, out)
        return out.reshape(n, vec)

    # -- backward -----------------------------------------------------------------------------------
    def backward(self, ctx, top_grad_bse, lr: float) -> None:
        if self.frozen:
            return
        if self._saved is None:
            raise ConfigError(f"{self.where}: backward needs a training forward first")
        xp, w, vec = self.xp, self.comm.size, self.config.embedding_vec_size
        mine_rare, grad_rows, counts = self._saved
        grad = top_grad_bse.reshape(-1, vec)
        back = self.comm.alltoall([grad[mine_rare[o]].astype(xp.float32, copy=False) for o in range(w)],
                                  [(c, vec) for c in counts])
        rare_grad = xp.concatenate([b.reshape(-1, vec) for b in back]) if w > 1 else back[0].reshape(-1, vec)
        if rare_grad.shape[0]:
            self.inner.backward(ctx, rare_grad.reshape(-1, 1, vec), lr)
        total, self._grouped = self._grouped, None
        if total is None:
            total = self._frequent_gradient(grad, grad_rows)
            if total is not None:
                self.comm.allreduce_sum(total)
        if total is not None:  # the same SGD step on every replica
            self.hot_rows -= (lr / ctx.scaler) * total

    def grouped_gradient(self, ctx, top_grad_bse):
        """This worker's frequent-category gradient, for the runtime to all-reduce together with the dense
        gradients (``grouped_all_reduce``); backward then applies the reduced sum without a call of its
        own. None when there is nothing to reduce."""
        if self.frozen or self._saved is None:
            return None
        # any dtype (the fp16 tensor itself under mixed precision)
        self._grouped = self._frequent_gradient(top_grad_bse.reshape(-1, self.config.embedding_vec_size),
                                                self._saved[1])
        return self._grouped

    def _frequent_gradient(self, grad, grad_rows):
        """The gradient summed per frequent category on this worker (None without frequent categories):
        every position adds straight into its row (rare ones into spill rows past the end), no gather."""
        xp = self.xp
        if grad_rows is None:
            return None
        n_hot, vec = self.hot_rows.shape
        total = xp.zeros((n_hot + self.SPILL_ROWS, vec), xp.float32)
        rows = grad.astype(xp.float32, copy=False)
        xp.add.at(total, grad_rows, rows)
        return total[:n_hot]

    # -- checkpoints --------------------------------------------------------------------------------
    def dump(self) -> dict:
        local = self.inner.dump()
        keys, vectors = local["key"], local["emb_vector"]
        hot = to_host(self.hot_keys) if self.hot_keys is not None else np.zeros(0, np.int64)
        stale = np.isin(keys, hot)  # frequent keys keep an old copy in their owner's store: not theirs now
        keys, vectors = keys[~stale], vectors[~stale]
        if self.comm.rank == 0 and hot.size:
            keys = np.concatenate([keys, hot])
            vectors = np.concatenate([vectors, to_host(self.hot_rows)])
        parts = self.comm.allgather_object((keys, vectors))
        keys = np.concatenate([p[0] for p in parts])
        order = np.argsort(keys, kind="stable")
        return {"key": keys[order], "emb_vector": np.concatenate([p[1] for p in parts])[order], "slot_id": None}

    def dump_optimizer_states(self) -> list:
        return []  # SGD keeps no state

    def load(self, key, emb_vector, slot_id=None) -> None:
        key = np.asarray(key).astype(np.int64)
        emb_vector = np.asarray(emb_vector, np.float32)
        if self.hot_keys is not None and self.hot_keys.size:
            hot = to_host(self.hot_keys)
            at = np.searchsorted(hot, key).clip(0, hot.size - 1)
            is_hot = hot[at] == key
            if is_hot.any():
                self.hot_rows[self.xp.asarray(at[is_hot])] = self.xp.asarray(emb_vector[is_hot])
            key, emb_vector = key[~is_hot], emb_vector[~is_hot]
        mine = key % self.comm.size == self.comm.rank
        self.inner.load(key[mine], emb_vector[mine])

    def load_optimizer_states(self, key, states) -> None:
        if len(states):
            raise ConfigError(f"{self.where}: SGD keeps no optimizer state, the file has {len(states)}")
