"""An Embedding Collection expands into ordinary Embedding-contract objects, one per lookup.

Runtime interface (what differs from ``SparseEmbedding`` objects):

* ``config.extra["bottom_names"]``: the sparse inputs the lookup reads (several for a fused lookup).
  ``forward(ctx, row_offsets, keys, out)`` takes plain arrays for a one-bottom lookup, or dicts
  ``{bottom_name: array}`` (row_offsets and keys) covering every bottom name. Each input has
  ``slot_num=1``: ``row_offsets`` has ``B + 1`` entries; ``keys`` may be longer than ``row_offsets[-1]``.
* ``output_shape(B)``: ``(B, 1, ev)`` for sum/mean, ``(B, 1, hotness*ev)`` for concat, ``(B, sum of
  widths)`` for a fused lookup (batch-major, tables in lookup order).
* Tables are shared between the lookups of one collection; ``memory_bytes`` reports a table once
  (on the first lookup that uses it). ``frozen`` on a lookup freezes the tables it reads.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hugectr_core.backend import is_numpy, to_host
from hugectr_core.contracts import Embedding, EmbeddingConfig
from hugectr_core.errors import CheckpointError, ConfigError, DataError, GraphError
from hugectr_core.plugins import registry

from . import reference
from .tables import make_table, sparse_kernels

TYPE_NAME = "EmbeddingCollection"


def _kernels(xp):
    if is_numpy(xp):
        return reference
    from . import kernels  # noqa: PLC0415 - keeps CuPy out of import time

    return kernels


@dataclass
class Part:
    """One table of a lookup: where it reads, how it combines, which output columns it writes."""

    table: Any
    bottom: str
    combiner: str
    hotness: int
    column: int      # first output column (batch-major 2-D view)

    @property
    def width(self) -> int:
        return self.table.ev * (self.hotness if self.combiner == "concat" else 1)


@dataclass
class PartPlan:
    unique_rows: Any
    starts: Any
    seg_j: Any
    scale_j: Any


class EmbeddingCollectionLookup(Embedding):
    """One ``embedding_lookup`` of an Embedding Collection, usable by the runtime like a SparseEmbedding.

    Example:
        >>> import numpy as np, hugectr_core.params as p
        >>> from hugectr_core.contracts import StepContext
        >>> from hugectr_core.layers_api import DataReaderSparseParam, Input
        >>> from hugectr_core.solver import CreateSolver
        >>> from hugectr_embeddings_collection import (EmbeddingCollection, EmbeddingCollectionConfig,
        ...                                            EmbeddingTableConfig)
        >>> ebc = EmbeddingCollectionConfig()
        >>> ebc.embedding_lookup(EmbeddingTableConfig("t", 10, 4), "d", "e", "sum")
        >>> inp = Input(label_dim=1, label_name="label", dense_dim=0, dense_name="dense",
        ...             data_reader_sparse_param_array=[DataReaderSparseParam("d", 2, False, 1)])
        >>> [emb] = EmbeddingCollection.expand(ebc, inp, CreateSolver(batchsize=2, batchsize_eval=2),
        ...                                    p.CreateOptimizer(optimizer_type="SGD"))
        >>> emb.allocate(np, np.random.default_rng(0))
        >>> out = np.empty(emb.output_shape(2), np.float32)
        >>> emb.forward(StepContext(np, training=True), np.array([0, 2, 3]), np.array([1, 7, 7]), out)
        >>> out.shape
        (2, 1, 4)
    """

    collection = True

    def __init__(self, config: EmbeddingConfig, parts: list, owns: list):
        # the base checks a sum/mean combiner; a lookup may concat, so set its fields directly
        self.config = config
        self.name = config.name
        self.parts = parts
        self.owns = owns                 # tables this lookup reports in memory_bytes / checkpoints
        self.optimizer = parts[0].table.optimizer
        self._frozen = False
        self._plans = None
        self.xp = None

    @property
    def frozen(self) -> bool:
        return self._frozen

    @frozen.setter
    def frozen(self, value: bool) -> None:
        self._frozen = bool(value)
        for part in self.parts:
            part.table.frozen = bool(value)

    @property
    def fused(self) -> bool:
        return bool(self.config.extra.get("fused"))

    @property
    def width(self) -> int:
        return sum(p.width for p in self.parts)

    def output_shape(self, batch_size: int) -> tuple:
        return (batch_size, self.width) if self.fused else (batch_size, 1, self.width)

    def allocate(self, xp, rng) -> None:
        self.xp = xp
        for part in self.parts:
            part.table.allocate(xp, rng)

    def memory_bytes(self) -> dict:
        out = {}
        for table in self.owns:
            for purpose, nbytes in table.memory_bytes().items():
                out[f"{table.name} {purpose}"] = nbytes
        return out

    # -- forward -----------------------------------------------------------------------------------
    def _inputs(self, row_offsets, keys) -> dict:
        bottoms = self.config.extra["bottom_names"]
        if isinstance(row_offsets, dict) or isinstance(keys, dict):
            missing = [b for b in bottoms if b not in row_offsets or b not in keys]
            if missing:
                raise DataError(f"lookup '{self.name}': no CSR given for input(s) {missing}")
            return {b: (row_offsets[b], keys[b]) for b in bottoms}
        if len(set(bottoms)) != 1:
            raise DataError(f"lookup '{self.name}' reads {bottoms}: pass dicts {{bottom_name: array}} of "
                            f"row_offsets and keys")
        return {bottoms[0]: (row_offsets, keys)}

    def _csr(self, part, batch, row_offsets, keys):
        xp = self.xp
        if row_offsets.size != batch + 1:
            raise DataError(f"lookup '{self.name}': input '{part.bottom}' has {row_offsets.size} row offsets, "
                            f"expected batch+1 = {batch + 1} (one slot per table)")
        host = row_offsets if isinstance(row_offsets, np.ndarray) else None
        nnz = int(host[-1]) if host is not None else int(to_host(row_offsets[-1:])[0])
        if nnz > keys.size:
            raise DataError(f"lookup '{self.name}': row_offsets of '{part.bottom}' end at {nnz} but it has "
                            f"{keys.size} keys")
        offsets = xp.asarray(row_offsets).astype(xp.int64, copy=False)
        if part.combiner == "concat":
            most = int(np.diff(host).max()) if host is not None else int(to_host(xp.diff(offsets).max()))
            if most > part.hotness:
                raise DataError(f"lookup '{self.name}': a sample of '{part.bottom}' has {most} keys, more than "
                                f"the hotness {part.hotness} that sizes the concat output")
        return offsets, keys[:nnz]

    def forward(self, ctx, row_offsets, keys, out) -> None:
        xp, batch = self.xp, out.shape[0]
        if xp is None:
            raise ConfigError(f"lookup '{self.name}': call allocate(xp, rng) first")
        out_2d = out.reshape(batch, self.width)
        plans = []
        inputs = self._inputs(row_offsets, keys)
        for part in self.parts:
            offs, ks = inputs[part.bottom]
            offsets, ks = self._csr(part, batch, offs, ks)
            if not part.table.stores_rows:  # another device holds the table: its columns are zero here
                out_2d[:, part.column:part.column + part.width] = 0
                plans.append(None)
                continue
            rows = part.table.rows_of(ks, ctx.training, self.name)
            combined = xp.empty((batch, part.width), xp.float32)
            if part.combiner == "concat":
                _kernels(xp).gather_concat(part.table.rows, rows, offsets, part.hotness, combined)
            else:
                sparse_kernels(xp).gather_combine(part.table.rows, rows, offsets, part.combiner == "mean", combined)
            out_2d[:, part.column:part.column + part.width] = combined
            if ctx.training:
                plans.append(self._plan(part, rows, offsets))
        self._plans = plans if ctx.training else self._plans

    def _plan(self, part, rows, offsets) -> PartPlan:
        """Occurrences sorted by row; seg_j indexes the (B*hotness, ev) gradient view for concat."""
        xp, n = self.xp, rows.size
        sample = xp.searchsorted(offsets[1:], xp.arange(n, dtype=xp.int64), side="right")
        if part.combiner == "concat":
            seg = sample * part.hotness + (xp.arange(n, dtype=xp.int64) - offsets[sample])
            scale = xp.ones(n, xp.float32)
        elif part.combiner == "mean":
            seg = sample
            scale = (1.0 / xp.maximum(xp.diff(offsets), 1).astype(xp.float32))[sample]
        else:
            seg, scale = sample, xp.ones(n, xp.float32)
        order = xp.argsort(rows, kind="stable") if is_numpy(xp) else xp.argsort(rows)
        sorted_rows = rows[order]
        first = (xp.flatnonzero(xp.concatenate([xp.ones(1, bool), sorted_rows[1:] != sorted_rows[:-1]])) if n
                 else xp.zeros(0, xp.int64))
        starts = xp.concatenate([first, xp.asarray([n])]).astype(xp.int64)
        return PartPlan(sorted_rows[first].astype(xp.int64), starts, seg[order].astype(xp.int64), scale[order])

    # -- backward ----------------------------------------------------------------------------------
    def backward(self, ctx, top_grad, lr: float) -> None:
        if self.frozen:
            return
        if self._plans is None:
            raise ConfigError(f"lookup '{self.name}': backward needs a training forward first")
        xp = self.xp
        grad_2d = top_grad.reshape(top_grad.shape[0], self.width)
        for part, plan in zip(self.parts, self._plans):
            if plan is None:  # a table other devices hold
                continue
            g = xp.ascontiguousarray(grad_2d[:, part.column:part.column + part.width], dtype=xp.float32)
            grad_uv = sparse_kernels(xp).segmented_reduce(g.reshape(-1, part.table.ev), plan.seg_j, plan.scale_j,
                                                          plan.starts)
            part.table.apply_gradient(plan.unique_rows, grad_uv, lr, ctx.step, ctx.scaler)

    # -- sparse-folder checkpoints (formats.md 2.5): the one table this lookup owns, if exactly one --------
    def _own_table(self):
        return self.owns[0] if len(self.owns) == 1 else None

    def dump(self) -> dict:
        table = self._own_table()
        if table is None:
            return {"key": np.zeros(0, np.int64), "emb_vector": np.zeros((0, self.parts[0].table.ev), np.float32),
                    "slot_id": None}
        keys = table.keys_in_row_order()
        return {"key": keys, "emb_vector": to_host(table.rows[: keys.size]).astype(np.float32), "slot_id": None}

    def load(self, key, emb_vector, slot_id=None) -> None:
        table = self._own_table()
        if table is None:
            if np.size(key):
                raise CheckpointError(f"lookup '{self.name}' owns {len(self.owns)} tables; load them with "
                                      f"Model.embedding_load")
            return
        load_table(table, np.asarray(key), np.asarray(emb_vector))

    def dump_optimizer_states(self) -> list:
        table = self._own_table()
        if table is None:
            return []
        n = table.keys_in_row_order().size
        out = [np.broadcast_to(to_host(s[:n]).astype(np.float32).reshape(n, -1), (n, table.ev)).copy()
               for s in table.states]
        if table.stamps is not None:
            out.append(to_host(table.stamps[:n]).astype(np.float32))
        return out

    def load_optimizer_states(self, key, states) -> None:
        table = self._own_table()
        if table is None:
            return
        expected = len(table.states) + (table.stamps is not None)
        if len(states) != expected:
            raise CheckpointError(f"table '{table.name}': {len(states)} optimizer states in the file, expected "
                                  f"{expected}")
        rows, keep = table.rows_for_load(np.asarray(key))
        here = slice(None) if keep is None else keep  # a sharded table keeps its own keys only
        for full, part in zip(table.states, states):
            full[rows] = table.xp.asarray(np.asarray(part)[here, : full.shape[1]])
        if table.stamps is not None:
            table.stamps[rows] = table.xp.asarray(np.rint(np.asarray(states[-1])[here]).astype(np.int64))


def load_table(table, key, emb_vector) -> None:
    """Write vectors of ``key`` into ``table`` (inserting into a dynamic table); shapes checked first."""
    if emb_vector.ndim != 2 or emb_vector.shape[1] != table.ev:
        raise CheckpointError(f"table '{table.name}': vectors of shape {emb_vector.shape}, expected (n, {table.ev}); "
                              f"the file was written with another ev_size")
    if key.ndim != 1 or key.size != emb_vector.shape[0]:
        raise CheckpointError(f"table '{table.name}': {key.size} keys but {emb_vector.shape[0]} vectors")
    rows, keep = table.rows_for_load(key.astype(np.int64))
    here = slice(None) if keep is None else keep  # a sharded table keeps its own keys only
    table.rows[rows] = table.xp.asarray(emb_vector[here].astype(np.float32))


class EmbeddingCollection:
    """Entry point ``EmbeddingCollection`` (group ``hugectr.embeddings``): ``expand`` turns a collection into
    one Embedding object per lookup, sharing the collection's tables."""

    @classmethod
    def expand(cls, ebc_config, input_layer, solver, model_opt_params, collection_index: int = 0,
               comm=None) -> list:
        """Embedding objects of ``ebc_config``'s lookups, in lookup order.

        ``collection_index``: the collection's position among the model's collections (its dump folder
        ``embedding_collection_<index>``). ``comm``: this worker's Comm when the model runs on several
        devices (the lookups then follow the collection's shard plan, see ``sharded``).
        """
        if not ebc_config.lookups:
            raise ConfigError("EmbeddingCollectionConfig: no embedding_lookup was added")
        device_count = getattr(solver, "device_count", 1)
        ebc_config.check_devices(device_count)
        key_dtype = "int64" if getattr(solver, "i64_input_key", False) else "uint32"
        sparse = {p.top_name: p for p in input_layer.sparse_params}
        tables = {}
        for index, (name, tcfg) in enumerate(ebc_config.tables.items()):
            opt_params = tcfg.opt_params_or_empty or model_opt_params
            optimizer = registry("optimizers").load(opt_params.type_name)(opt_params)
            tables[name] = make_table(tcfg, optimizer, key_dtype, index)
        owned, out = set(), []
        for lk in ebc_config.lookups:
            parts, column = [], 0
            for tcfg, bottom, combiner in zip(lk.tables, lk.bottom_names, lk.combiners):
                if bottom not in sparse:
                    raise GraphError(f"embedding_lookup '{lk.top_name}' reads '{bottom}', which is not a sparse "
                                     f"input of Input (sparse inputs: {sorted(sparse)})")
                param = sparse[bottom]
                if param.slot_num != 1:
                    raise ConfigError(f"embedding_lookup '{lk.top_name}': input '{bottom}' has slot_num="
                                      f"{param.slot_num}; Embedding Collection inputs have one slot per table "
                                      f"(DataReaderSparseParam(..., slot_num=1))")
                part = Part(tables[tcfg.name], bottom, combiner, int(param.max_nnz[0]), column)
                parts.append(part)
                column += part.width
            owns = [p.table for p in parts if p.table.name not in owned and not owned.add(p.table.name)]
            config = EmbeddingConfig(
                type_name=TYPE_NAME, name=lk.top_name, bottom_name=lk.bottom_names[0], embedding_vec_size=column,
                combiner=lk.combiners[0], workspace_size_per_gpu_in_mb=0, slot_num=1,
                max_nnz_per_slot=tuple(p.hotness for p in parts), key_dtype=key_dtype, device_count=device_count,
                extra={"bottom_names": list(lk.bottom_names), "table_names": [t.name for t in lk.tables],
                       "combiners": list(lk.combiners), "fused": lk.fused, "collection_index": collection_index})
            out.append(EmbeddingCollectionLookup(config, parts, owns))
        if comm is not None and comm.size > 1:
            from .sharded import ShardedLookup, placements  # noqa: PLC0415 - only for several devices

            plan = placements(ebc_config, list(tables), comm.size)
            out = [ShardedLookup(lookup, plan, comm) for lookup in out]
        return out
