"""An Embedding Collection over several devices: the shard plan of ``EmbeddingCollectionConfig.shard``.

Every worker sees the keys of the whole global batch; the plan says who stores and answers for a table
(``CollectionTable.place``; rows start from (table seed, key), so where a row lives does not change it):

* ``dp`` (data parallel, on every device): every worker looks up and updates its own replica with the
  whole global batch, so the replicas stay equal; worker 0 supplies the output.
* ``mp`` on one device (table-wise): that worker looks up and updates the table; the others skip it.
* ``mp`` on several devices (row-wise): key ``k`` belongs to owner ``k % n`` of the n devices listing
  the table; a sum is the sum of the owners' partial sums, a mean rescales each partial mean by
  ``keys here / keys in the sample`` (concat is refused: a key's position would depend on its owner).

Each worker computes its share of the lookup for the global batch; a reduce-scatter over the batch
gives every worker its rows (a table's columns come from exactly one worker per key, so the sum is
exact). Backward all-gathers the output gradient and every worker applies it to what it answers for.
Without a plan every table is ``dp``. Results equal one device's.

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
        self._share(full.reshape(global_rows, -1), ratios)
        result = out if out.dtype == np.float32 and out.flags.c_contiguous else xp.empty(out.shape, xp.float32)
        self.comm.reduce_scatter_sum(full, result)
        if result is not out:
            out[...] = result
        if ctx.training:
            self._ratios = ratios

    def _mean_ratio(self, host_offsets, kept_offsets):
        """keys looked up here / keys in the sample, per global row (rescales a row-wise partial mean)."""
        total = np.diff(host_offsets).astype(np.float32)
        here = to_host(self.xp.diff(self.xp.asarray(kept_offsets))).astype(np.float32)
        return self.xp.asarray(np.where(total > 0, here / np.maximum(total, 1), 0.0).astype(np.float32))

    def _share(self, flat, ratios) -> None:
        """This worker's contribution to the reduce-scatter: dp columns from worker 0 only; row-wise means
        rescaled to the whole sample's key count."""
        for part in self.parts:
            cols = slice(part.column, part.column + part.width)
            kind, ranks = self.rules[part.bottom]
            if kind == "dp" and self.comm.rank != 0:
                flat[:, cols] = 0
            elif part.combiner == "mean" and part.bottom in ratios and len(ranks) > 1:
                flat[:, cols] *= ratios[part.bottom][:, None]

    def backward(self, ctx, top_grad, lr: float) -> None:
        if self.frozen:
            return
        xp = self.xp
        full = self.comm.allgather(xp.ascontiguousarray(top_grad, dtype=xp.float32))
        flat = full.reshape(full.shape[0], -1)
        for part in self.parts:
            kind, ranks = self.rules[part.bottom]
            if part.combiner == "mean" and kind == "mp" and len(ranks) > 1 and part.bottom in (self._ratios or {}):
                cols = slice(part.column, part.column + part.width)
                flat[:, cols] *= self._ratios[part.bottom][:, None]
        self.inner.backward(ctx, full, lr)

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
