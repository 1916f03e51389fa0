"""An Embedding Collection over several devices: the shard plan of ``EmbeddingCollectionConfig.shard``.

Every worker sees the keys of the whole global batch; the plan says who stores and answers for a table
(``CollectionTable.place``; rows start from (table seed, key), so where a row lives does not change it):

* ``dp`` (data parallel, on every device): every worker looks up and updates its own replica with the
  whole global batch, so the replicas stay equal, and takes its own rows of the output from it.
* ``mp`` on one device (table-wise): that worker looks up and updates the table; the others skip it.
* ``mp`` on several devices (row-wise): key ``k`` belongs to owner ``k % n`` of the n devices listing
  the table; a sum is the sum of the owners' partial sums, a mean rescales each partial mean by
  ``keys here / keys in the sample`` (concat is refused: a key's position would depend on its owner).

Each worker computes its share of the lookup for the global batch. One all-to-all then sends every
worker its rows of the columns this worker answers for (a table-wise table's owner, every owner of a
row-wise one); the receiver sums what arrives in rank order (one sender per table-wise column, so those
are exact). A dp table's columns need no exchange: every worker looked up the whole batch. Backward is
the same all-to-all the other way (each owner gets the gradient of its columns for every row), plus an
all-gather of the dp columns, whose replicas all take the whole batch's gradient. Without a plan every
table is ``dp``. Results equal one device's.

Example:
    >>> sorted(placements(None, ["t1", "t2"], 2).items())
    [('t1', ('dp', (0, 1))), ('t2', ('dp', (0, 1)))]
"""
from __future__ import annotations

import numpy as np

from hugectr_core.backend import to_host
from hugectr_core.errors import ConfigError
from hugectr_core.sharding import WrappedEmbedding, filter_csr


def placements(ebc_config, table_names, workers: int) -> dict:
    """table name -> (strategy, worker ranks that hold it), from the collection's shard plan."""
    if ebc_config is None or ebc_config.shard_matrix is None:
        return {name: ("dp", tuple(range(workers))) for name in table_names}
    out = {}
    for name in table_names:
        ranks = tuple(r for r, row in enumerate(ebc_config.shard_matrix) if name in row)
        out[name] = (ebc_config.shard_strategy[name], ranks)
    return out


class ShardedLookup(WrappedEmbedding):
    """This worker's part of one Embedding Collection lookup (the runtime's view of it); ``inner`` is the
    lookup itself, over this worker's storage of every table.

    Args:
        lookup: the EmbeddingCollectionLookup (its tables are this worker's storage).
        plan: ``placements(...)`` of the collection.
        comm: this worker's Comm.
    """

    collection = True

    def __init__(self, lookup, plan: dict, comm):
        # no Embedding.__init__: a lookup may concat, which the base's combiner check refuses
        self.inner, self.comm = lookup, comm
        self.config, self.name, self.parts, self.owns = lookup.config, lookup.name, lookup.parts, lookup.owns
        self.optimizer = lookup.optimizer
        self.plan = plan
        self.rules = {}
        for part in self.parts:
            rule = plan[part.table.name]
            if rule[0] == "mp" and len(rule[1]) > 1 and part.combiner == "concat":
                raise ConfigError(f"lookup '{self.name}': table '{part.table.name}' is sharded row-wise over GPUs "
                                  f"{list(rule[1])} but combined by concat; place it on one GPU or make it dp")
            if self.rules.setdefault(part.bottom, rule) != rule:
                raise ConfigError(f"lookup '{self.name}': input '{part.bottom}' feeds tables with different "
                                  f"placements; give each table its own input")
        self._ratios = None
        for part in self.parts:
            self._place(part.table)
        self._columns = self._exchange_columns()

    def _exchange_columns(self) -> dict:
        """Output columns: "dp" (no exchange) and, per worker, those it sends (it answers for them)."""
        dp, sends = [], [[] for _ in range(self.comm.size)]
        for part in self.parts:
            cols = list(range(part.column, part.column + part.width))
            kind, ranks = self.rules[part.bottom]
            if kind == "dp":
                dp += cols
            else:
                for r in ranks:
                    sends[r] += cols
        return {"dp": np.asarray(dp, np.int64), "sends": [np.asarray(c, np.int64) for c in sends]}

    def _column_indices(self):
        """``_columns`` as index arrays of this worker's backend (made once: no upload per step)."""
        cached = self.__dict__.get("_device_columns")
        if cached is None:
            xp = self.xp
            cached = self._device_columns = (xp.asarray(self._columns["dp"]),
                                             [xp.asarray(c) for c in self._columns["sends"]])
        return cached

    def _place(self, table) -> None:
        """Storage as the plan says: dp all of it, row-wise the keys of this worker's share, table-wise all
        of it on its device and nothing elsewhere."""
        kind, ranks = self.plan[table.name]
        if kind == "dp":
            table.place(0, 1)
        elif self.comm.rank not in ranks:
            table.place(0, 1, stored=False)
        else:
            table.place(ranks.index(self.comm.rank), len(ranks))

    def output_shape(self, batch_size: int) -> tuple:
        return self.inner.output_shape(batch_size)

    # -- who answers for what --------------------------------------------------------------------
    def _keep(self, rule, keys):
        """True where this worker looks a key up (None: all of them)."""
        kind, ranks = rule
        rank, xp = self.comm.rank, self.xp
        if kind == "dp":
            return None
        if rank not in ranks:
            return xp.zeros(keys.shape, bool)
        if len(ranks) == 1:
            return None
        return (keys.astype(xp.int64) % len(ranks)) == ranks.index(rank)

    # -- forward / backward ----------------------------------------------------------------------
    def forward(self, ctx, row_offsets, keys, out) -> None:
        xp, w = self.xp, self.comm.size
        global_rows = out.shape[0] * w
        offsets_in, keys_in, ratios = {}, {}, {}
        for bottom, (offs, ks) in self.inner._inputs(row_offsets, keys).items():
            host = np.asarray(to_host(offs), np.int64)
            keep = self._keep(self.rules[bottom], ks[:int(host[-1])])
            if keep is None:
                offsets_in[bottom], keys_in[bottom] = host, ks
                continue
            offsets_in[bottom], keys_in[bottom] = filter_csr(xp, host, ks, keep)
            ratios[bottom] = self._mean_ratio(host, offsets_in[bottom])
        full = self.scratch("train" if ctx.training else "eval", (global_rows,) + tuple(out.shape[1:]))
        if len(self.config.extra["bottom_names"]) == 1:
            bottom = self.config.extra["bottom_names"][0]
            self.inner.forward(ctx, offsets_in[bottom], keys_in[bottom], full)
        else:
            self.inner.forward(ctx, offsets_in, keys_in, full)
        self._rescale_means(full.reshape(global_rows, -1), ratios)
        result = out if out.dtype == np.float32 and out.flags.c_contiguous else xp.empty(out.shape, xp.float32)
        self._exchange_forward(full.reshape(global_rows, -1), result.reshape(out.shape[0], -1))
        if result is not out:
            out[...] = result
        if ctx.training:
            self._ratios = ratios

    def _exchange_forward(self, full_2d, mine_2d) -> None:
        """My rows of every column: dp ones from my own lookup, the others summed in rank order from what
        each worker that answers for them sent (one all-to-all)."""
        xp, w, rank, local = self.xp, self.comm.size, self.comm.rank, mine_2d.shape[0]
        dp, sends = self._column_indices()
        mine = slice(rank * local, (rank + 1) * local)
        mine_2d[...] = 0
        if dp.size:
            mine_2d[:, dp] = full_2d[mine][:, dp]
        mine_cols = sends[rank]
        parts = [xp.ascontiguousarray(full_2d[d * local:(d + 1) * local][:, mine_cols]) for d in range(w)]
        received = self.comm.alltoall(parts, [(local, sends[s].size) for s in range(w)])
        for s in range(w):
            if sends[s].size:
                mine_2d[:, sends[s]] += received[s]

    def _mean_ratio(self, host_offsets, kept_offsets):
        """keys looked up here / keys in the sample, per global row (rescales a row-wise partial mean)."""
        total = np.diff(host_offsets).astype(np.float32)
        here = to_host(self.xp.diff(self.xp.asarray(kept_offsets))).astype(np.float32)
        return self.xp.asarray(np.where(total > 0, here / np.maximum(total, 1), 0.0).astype(np.float32))

    def _rescale_means(self, flat, ratios) -> None:
        """Row-wise partial means rescaled to the whole sample's key count (the owners' parts then sum)."""
        for part in self.parts:
            kind, ranks = self.rules[part.bottom]
            if part.combiner == "mean" and part.bottom in ratios and len(ranks) > 1:
                flat[:, part.column:part.column + part.width] *= ratios[part.bottom][:, None]

    def backward(self, ctx, top_grad, lr: float) -> None:
        if self.frozen:
            return
        xp = self.xp
        grad = xp.ascontiguousarray(top_grad, dtype=xp.float32)
        local = grad.shape[0]
        full = self.scratch("grad", (local * self.comm.size,) + tuple(grad.shape[1:]))
        self._exchange_backward(grad.reshape(local, -1), full.reshape(full.shape[0], -1))
        if self._ratios:
            self._rescale_means(full.reshape(full.shape[0], -1), self._ratios)
        self.inner.backward(ctx, full, lr)

    def _exchange_backward(self, grad_2d, full_2d) -> None:
        """Every row's gradient of the columns I answer for (one all-to-all), and of the dp columns (an
        all-gather: every replica takes the whole batch's gradient); other columns stay zero."""
        xp, w, rank, local = self.xp, self.comm.size, self.comm.rank, grad_2d.shape[0]
        dp, sends = self._column_indices()
        full_2d[...] = 0
        if dp.size:
            full_2d[:, dp] = self.comm.allgather(xp.ascontiguousarray(grad_2d[:, dp]))
        parts = [xp.ascontiguousarray(grad_2d[:, sends[s]]) for s in range(w)]
        received = self.comm.alltoall(parts, [(local, sends[rank].size)] * w)
        if sends[rank].size:
            for d in range(w):
                full_2d[d * local:(d + 1) * local, sends[rank]] = received[d]

    # -- checkpoints ------------------------------------------------------------------------------
    def owned_rows(self, table):
        """(keys, rows) of ``table`` this worker answers for (dp: worker 0 answers for all)."""
        kind, ranks = self.plan[table.name]
        keys = np.asarray(table.keys_in_row_order()).astype(np.int64)
        rows = to_host(table.rows[: keys.size]).astype(np.float32)
        if kind == "dp":
            mine = np.full(keys.size, self.comm.rank == 0)
        elif self.comm.rank not in ranks:
            mine = np.zeros(keys.size, bool)
        else:
            mine = keys % len(ranks) == ranks.index(self.comm.rank)
        return keys[mine], rows[mine]

    def dump(self) -> dict:
        vec = self.parts[0].table.ev
        return {"key": np.zeros(0, np.int64), "emb_vector": np.zeros((0, vec), np.float32), "slot_id": None}

    def load(self, key, emb_vector, slot_id=None) -> None:
        self.inner.load(key, emb_vector, slot_id)

    def dump_optimizer_states(self) -> list:
        return []

    def load_optimizer_states(self, key, states) -> None:
        self.inner.load_optimizer_states(key, states)


def gather_tables(embeddings) -> dict:
    """{table name: (keys, rows)} of every sharded collection table, gathered from every worker (a
    collective: every worker calls it) and sorted by key."""
    sharded = [e for e in embeddings if isinstance(e, ShardedLookup)]
    if not sharded:
        return {}
    tables = {}
    for emb in sharded:
        for part in emb.parts:
            tables.setdefault(part.table.name, (emb, part.table))
    mine = {name: emb.owned_rows(table) for name, (emb, table) in tables.items()}
    parts = sharded[0].comm.allgather_object(mine)
    out = {}
    for name in tables:
        keys = np.concatenate([p[name][0] for p in parts])
        order = np.argsort(keys, kind="stable")
        out[name] = (keys[order], np.concatenate([p[name][1] for p in parts])[order])
    return out
