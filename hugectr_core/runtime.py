"""What ``Model.compile()`` builds: backend, graph, embeddings, parameters, optimizer, networks.

The runtime owns every device array. ``Runtime.train_step`` and ``Runtime.eval_step`` run one batch.
"""
from __future__ import annotations

import logging

import numpy as np

from . import backend
from .arg_types import is_number
from .contracts.embedding import EmbeddingConfig
from .contracts.layer import StepContext
from .cudagraph import NetworkGraphs
from .comm import Comm, HostGroup
from .enums import type_string
from .errors import BackendError, ConfigError, DataError, GraphError
from .hybrid import HybridEmbedding
from .graph import build_graph, check_mixed_precision, infer_shapes, mark_params, tensor_dtypes
from .memory import MemoryPlan
from .network import Network
from .parameters import DenseParameters
from .plugins import registry
from .sharding import ShardedEmbedding

log = logging.getLogger("hugectr")


def make_optimizer(opt_params):
    return registry("optimizers").load(opt_params.type_name)(opt_params)


class Runtime:
    """Compiled state of a model on one device (one worker of the job: ``comm.rank`` of ``comm.size``).

    With several workers the dense layers are replicated (data parallel: this worker trains rows
    ``[rank*B/W, (rank+1)*B/W)`` of the global batch and the gradients are summed over workers) and
    the embeddings are sharded (hugectr_core.sharding).
    """

    def __init__(self, solver, input_layer, sparse_embeddings, dense_layers, opt_params,
                 loss_names=None, loss_weights=None, collections=(), comm=None):
        self.solver = solver
        self.input_layer = input_layer
        self.comm = comm or Comm(HostGroup(1), 0)
        self.xp = backend.resolve(solver.device)
        self.uploads = backend.PinnedUploads(self.xp)  # the batch inputs, without a host sync on a GPU
        self.device_count = self.comm.size
        if self.device_count != solver.device_count:
            raise ConfigError(f"vvgpu={solver.vvgpu} names {solver.device_count} devices but the job has "
                              f"{self.device_count} workers")
        self.batch_train = solver.batchsize // self.device_count
        self.batch_eval = solver.batchsize_eval // self.device_count
        self.seed = solver.seed or int(np.random.SeedSequence().entropy % (2**31))
        if not solver.seed:
            log.info("CreateSolver(seed=0): using random seed %d", self.seed)
        self.host_rng = np.random.default_rng(self.seed)
        self.device_rng = self.xp.random.default_rng(self.seed)
        self.key_dtype = "int64" if solver.i64_input_key else "uint32"
        self.embeddings = self._build_embeddings(sparse_embeddings, opt_params)
        self.embeddings += self._expand_collections(collections, opt_params)
        self.graph = build_graph(dense_layers, self._sources())
        self._apply_loss_weights(loss_names, loss_weights)
        # labels a BinaryCrossEntropyLoss reads: probabilities, checked on the host as batches load
        self._unit_labels = {node.layer.config.bottom_names[1] for node in self.graph.losses
                             if node.layer.type_name == "BinaryCrossEntropyLoss"}
        self.shapes = {"train": infer_shapes(self.graph, self._source_shapes(self.batch_train)),
                       "eval": infer_shapes(self.graph, self._source_shapes(self.batch_eval))}
        mark_params(self.graph, self.shapes["train"])
        self.compute_dtype = np.dtype(np.float16 if solver.use_mixed_precision else np.float32)
        if solver.use_mixed_precision:
            check_mixed_precision(self.graph)
        self.optimizer = make_optimizer(opt_params)
        self.memory = MemoryPlan()
        self.dense = DenseParameters(self._param_layout(), self.optimizer, self.compute_dtype)
        self.dense.plan(self.memory)
        dtypes = tensor_dtypes(self.graph, self.compute_dtype)
        self.networks = {mode: Network(self.graph, self.shapes[mode], mode, self.compute_dtype, dtypes)
                         for mode in ("train", "eval")}
        for net in self.networks.values():
            net.plan(self.memory)
        self._plan_embedding_staging()
        self._allocate()
        self.network_graphs = NetworkGraphs(self.xp, solver.use_cuda_graph, self._layers_not_graph_safe())
        self.dense_frozen = False
        self.step = 0

    # -- building ------------------------------------------------------------------------------
    def _sources(self) -> dict:
        sources = {name: "data" for name in self.input_layer.label_names}
        if self.input_layer.dense_dim:
            sources[self.input_layer.dense_name] = "data"
        for emb in self.embeddings:
            sources[emb.config.top_name] = "embedding"
        return sources

    def _source_shapes(self, batch: int) -> dict:
        inp = self.input_layer
        shapes = {name: (batch, dim) for name, dim in zip(inp.label_names, inp.label_dims)}
        if inp.dense_dim:
            shapes[inp.dense_name] = (batch, inp.dense_dim)
        for emb in self.embeddings:
            shapes[emb.config.top_name] = emb.output_shape(batch)
        return shapes

    def _build_embeddings(self, specs, model_opt) -> list:
        sparse = {p.top_name: p for p in self.input_layer.sparse_params}
        out, names = [], set()
        for spec in specs:
            if spec.bottom_name not in sparse:
                raise GraphError(f"SparseEmbedding '{spec.sparse_embedding_name}' reads '{spec.bottom_name}', which is "
                                 f"not a sparse input of Input (sparse inputs: {sorted(sparse)})")
            if spec.sparse_embedding_name in names:
                raise GraphError(f"two embeddings are named '{spec.sparse_embedding_name}'")
            names.add(spec.sparse_embedding_name)
            param = sparse[spec.bottom_name]
            if spec.slot_size_array and len(spec.slot_size_array) != param.slot_num:
                raise ConfigError(f"SparseEmbedding '{spec.sparse_embedding_name}': slot_size_array has "
                                  f"{len(spec.slot_size_array)} entries but '{param.top_name}' has {param.slot_num} slots")
            config = EmbeddingConfig(
                type_name=spec.type_name, name=spec.sparse_embedding_name, bottom_name=spec.bottom_name,
                embedding_vec_size=int(spec.embedding_vec_size), combiner=spec.combiner,
                workspace_size_per_gpu_in_mb=spec.workspace_size_per_gpu_in_mb, slot_num=param.slot_num,
                max_nnz_per_slot=param.max_nnz, slot_size_array=tuple(spec.slot_size_array),
                key_dtype=self.key_dtype, device_count=self.device_count)
            cls = registry("embeddings").load(spec.type_name)
            optimizer = make_optimizer(spec.optimizer or model_opt)
            out.append(self._place_embedding(cls, config, optimizer, spec.hybrid_embedding_param))
        return out

    def _place_embedding(self, cls, config, optimizer, hybrid_param):
        """The plugin's embedding on one device; sharded (or hybrid) over several."""
        if hybrid_param is not None:
            if getattr(cls, "parallelism", None) != "key":
                raise ConfigError(f"SparseEmbedding '{config.name}': hybrid_embedding_param needs "
                                  f"DistributedSlotSparseEmbeddingHash (its infrequent keys are placed by key), "
                                  f"not {config.type_name}")
            return HybridEmbedding(cls, config, optimizer, self.comm, hybrid_param, self.solver)
        if self.comm.size == 1:
            return cls(config, optimizer)
        return ShardedEmbedding(cls, config, optimizer, self.comm)

    def _expand_collections(self, collections, model_opt) -> list:
        """Embedding Collection lookups, each an ordinary Embedding (plugin hugectr-embeddings-collection)."""
        if not collections:
            return []
        if not self.solver.use_embedding_collection:
            raise ConfigError("the model has an EmbeddingCollectionConfig: create the solver with "
                              "CreateSolver(use_embedding_collection=True)")
        factory = registry("embeddings").load("EmbeddingCollection")
        out = []
        for index, ebc in enumerate(collections):
            out += factory.expand(ebc, self.input_layer, self.solver, model_opt, collection_index=index,
                                  comm=self.comm)
        names = [e.config.top_name for e in self.embeddings + out]
        if len(set(names)) != len(names):
            raise GraphError(f"embedding output names must be unique, got {names}")
        return out

    def _apply_loss_weights(self, loss_names, loss_weights) -> None:
        losses = self.graph.losses
        if loss_names is None and loss_weights is None:
            return
        if not isinstance(loss_names or [], (list, tuple)) or not isinstance(loss_weights or [], (list, tuple)):
            raise ConfigError(f"compile: loss_names and loss_weights must be lists, got {loss_names!r} and "
                              f"{loss_weights!r}")
        loss_names, loss_weights = list(loss_names or []), list(loss_weights or [])
        if not all(is_number(w) for w in loss_weights):
            raise ConfigError(f"compile: loss_weights must be finite numbers, got {loss_weights}")
        if len(loss_names) != len(loss_weights):
            raise ConfigError("compile(loss_names, loss_weights): both lists need the same length")
        by_label = {}
        for node in losses:
            label = node.layer.config.bottom_names[1]
            by_label[label] = node
        for name, weight in zip(loss_names, loss_weights):
            if name not in by_label:
                raise ConfigError(f"compile: loss_names entry '{name}' is not the label of any loss layer "
                                  f"(labels: {sorted(by_label)})")
            by_label[name].layer.weight = float(weight)

    def _param_layout(self) -> list:
        """(layer name, ParamSpec) in add() order: the dense model file order."""
        shapes = self.shapes["train"]
        return [(node.layer.name, spec) for node in sorted(self.graph.nodes, key=lambda n: n.user_index)
                for spec in node.layer.param_specs([shapes[b] for b in node.bottoms])]

    def _plan_embedding_staging(self) -> None:
        """Under mixed precision embeddings still compute in fp32 (fp32 tables, formats.md 3.7): their
        output and its gradient go through fp32 staging buffers cast to and from the fp16 tensors,
        unless the embedding reads and writes fp16 itself (``fp16_io``: sums in fp32, rounded once)."""
        self.staging = {}
        if self.compute_dtype == np.float32:
            return
        for mode in ("train", "eval"):
            for emb in self.embeddings:
                if getattr(emb, "fp16_io", False):
                    continue
                shape = self.shapes[mode][emb.config.top_name]
                self.memory.request(f"{mode}/embedding_fp32", f"stage/{mode}/{emb.name}", shape, np.float32)
                if mode == "train":
                    self.memory.request("train/embedding_fp32", f"stage/grad/{emb.name}", shape, np.float32)

    def _allocate(self) -> None:
        try:
            self._allocate_buffers()
        except MemoryError as exc:  # NumPy's; CuPy's OutOfMemoryError is one too
            planned = sum(self.memory.bytes_by_pool().values()) / 2**30
            where = "host" if backend.is_numpy(self.xp) else "device"
            raise BackendError(
                f"the model does not fit in {where} memory ({exc}); the dense plan alone is {planned:.1f} GiB "
                "(model.summary() shows every pool): lower the batch size, the layer widths or "
                "workspace_size_per_gpu_in_mb") from exc

    def _allocate_buffers(self) -> None:
        xp = self.xp
        _set_tf32(xp, self.solver.enable_tf32_compute)
        views = self.memory.allocate(xp)
        self.dense.bind(self.memory, views, xp, self.host_rng)
        self.staging = {k[len("stage/"):]: v for k, v in views.items() if k.startswith("stage/")}
        for net in self.networks.values():
            net.bind(views)
        for emb in self.embeddings:
            emb.allocate(xp, self.host_rng)

    # views kept for callers that think in flat buffers (checkpoints, tests)
    @property
    def params(self) -> dict:
        return self.dense.by_layer

    @property
    def param_grads(self) -> dict:
        return self.dense.grads_by_layer

    @property
    def param_layout(self) -> list:
        return self.dense.layout

    @property
    def weights_flat(self):
        return self.dense.master

    @property
    def grads_flat(self):
        return self.dense.grads32

    @property
    def opt_states(self) -> list:
        return self.dense.opt_states

    # -- running -------------------------------------------------------------------------------
    def context(self, training: bool, batch: int, valid: int) -> StepContext:
        """``batch``: this worker's rows; ``valid``: valid rows of the whole global batch."""
        first = self.comm.rank * batch
        return StepContext(xp=self.xp, training=training, rng=self.device_rng, batch_size=batch,
                           current_batchsize=min(max(valid - first, 0), batch), device_count=self.device_count,
                           scaler=float(self.solver.scaler), step=self.step, row_offset=first,
                           global_batchsize=valid)

    def _load_batch(self, net: Network, batch, size: int) -> None:
        """Copy this worker's rows of a global host batch into the network's input tensors (rows past
        ``batch.size`` are zero); the embeddings get the keys of the whole global batch."""
        inp = self.input_layer
        first = self.comm.rank * size
        rows = slice(first, first + size)
        valid = min(max(batch.size - first, 0), size)
        start = 0
        for name, dim in zip(inp.label_names, inp.label_dims):
            labels = batch.label[rows, start:start + dim]
            if name in self._unit_labels:
                _check_unit_labels(labels[:valid], name)
            self._copy_rows(net.tensors[name], labels, valid, name)
            start += dim
        if inp.dense_dim:
            self._copy_rows(net.tensors[inp.dense_name], batch.dense[rows], valid, inp.dense_name)
        self._csr = {}
        for emb in self.embeddings:
            bottoms = emb.config.extra.get("bottom_names", [emb.config.bottom_name])
            slots = 1 if "bottom_names" in emb.config.extra else emb.config.slot_num
            csr = {b: self._padded_csr(batch.sparse[b], size * self.comm.size, slots, b) for b in bottoms}
            if len(bottoms) == 1:
                self._csr[emb.name] = csr[bottoms[0]]
            else:  # a fused Embedding Collection lookup reads several inputs
                self._csr[emb.name] = ({b: c[0] for b, c in csr.items()}, {b: c[1] for b, c in csr.items()})

    def _padded_csr(self, sparse_batch, batch_size: int, slots: int, name: str):
        """(host row_offsets, device keys); a short last batch gets empty slots for its padded samples.
        Row offsets stay on the host: embeddings read their last entry without a device sync."""
        offsets = np.asarray(sparse_batch.row_offsets, dtype=np.int64)
        pad = batch_size * slots + 1 - offsets.size
        if pad > 0:
            offsets = np.concatenate([offsets, np.full(pad, offsets[-1], dtype=np.int64)])
        return offsets, self.uploads.to_device(f"keys/{name}", sparse_batch.keys)

    def _copy_rows(self, dst, src, size: int, name: str) -> None:
        """The first ``size`` rows of ``dst`` from the host rows ``src`` (asynchronously on a GPU); the rest 0."""
        self.uploads.to_device(name, np.asarray(src[:size], dtype=dst.dtype), out=dst[:size])
        if size < dst.shape[0]:
            dst[size:] = 0

    def _embed(self, net: Network, ctx) -> None:
        for emb in self.embeddings:
            offsets, keys = self._csr[emb.name]
            top = net.tensors[emb.config.top_name]
            out = self.staging.get(f"{net.mode}/{emb.name}", top)
            emb.forward(ctx, offsets, keys, out)
            if out is not top:
                top[...] = out

    def _embedding_grad(self, net: Network, emb):
        """The gradient of an embedding's output as it reads it (through its fp32 staging buffer, if any)."""
        grad = net.grads[emb.config.top_name]
        staged = self.staging.get(f"grad/{emb.name}")
        if staged is None:
            return grad
        staged[...] = grad
        return staged

    def _embedding_backward(self, net: Network, ctx, lr: float) -> None:
        for emb in self.embeddings:
            emb.backward(ctx, self._embedding_grad(net, emb), lr)

    def _allreduce_gradients(self, net: Network, ctx) -> None:
        """The one all-reduce of the flat dense gradient. With ``grouped_all_reduce`` the gradients an
        embedding would all-reduce in its own backward (a hybrid embedding's frequent categories) travel
        in the same call, as HugeCTR groups them."""
        buffers = [self.dense.grads32]
        if self.solver.grouped_all_reduce:
            for emb in self.embeddings:
                early = getattr(emb, "grouped_gradient", None)  # reads the tensor in any dtype: no staging copy
                part = early(ctx, net.grads[emb.config.top_name]) if early is not None else None
                if part is not None:
                    buffers.append(part)
        self.comm.allreduce_sum_many(buffers)

    def train_step(self, batch, lr: float):
        """One iteration: forward, backward, dense update, embedding update. Returns the loss (device)."""
        self.step += 1
        net = self.networks["train"]
        ctx = self.context(True, self.batch_train, batch.size)
        self._load_batch(net, batch, self.batch_train)
        self._embed(net, ctx)
        # the graph key: the host values a layer may read that change between steps
        key = (ctx.current_batchsize, ctx.global_batchsize, ctx.scaler)
        self.network_graphs.run(key, lambda: self._network_step(net, ctx))
        loss = net.loss_value(self.xp)
        self.dense.gradients_fp32()
        loss = self._regularize(loss, ctx)
        if self.comm.size > 1:
            self._allreduce_gradients(net, ctx)
            loss = self._mean_over_workers(loss, ctx)
        if not self.dense_frozen:
            self.dense.update(lr, self.step, ctx.scaler)
        self._embedding_backward(net, ctx, lr)
        return loss

    def _network_step(self, net: Network, ctx) -> None:
        net.forward(ctx, self.params)
        net.backward(ctx, self.params, self.param_grads)

    def _layers_not_graph_safe(self) -> list:
        """The layers that run and cannot be recorded in a CUDA graph, as 'name (type)'."""
        return [f"{node.layer.name} ({node.layer.type_name})" for node in self.graph.nodes
                if not node.layer.aliases_bottom and not node.layer.cuda_graph_safe]

    def _regularize(self, loss, ctx):
        """L1/L2 on every dense weight (formats.md 3.3), requested by a loss layer's use_regularizer."""
        for node in self.graph.losses:
            reg = node.layer.regularizer() if hasattr(node.layer, "regularizer") else None
            if reg is None or self.dense.master is None:
                continue
            kind, lam = reg
            w, g, b = self.dense.master, self.dense.grads32, ctx.batch_size * ctx.device_count
            # every worker reports the term in its loss; one adds its gradient (the gradients are summed)
            add_grad = self.comm.rank == 0
            if kind == "L1":
                loss = loss + lam / b * self.xp.abs(w).sum()
                if add_grad:
                    g += (ctx.scaler * lam / b) * self.xp.sign(w)
            else:
                loss = loss + lam / (2 * b) * (w * w).sum()
                if add_grad:
                    g += (ctx.scaler * lam / b) * w
        return loss

    def eval_step(self, batch):
        """Forward one evaluation batch; returns (predictions, labels, loss) on the host, valid rows only."""
        net = self.networks["eval"]
        ctx = self.context(False, self.batch_eval, batch.size)
        self._load_batch(net, batch, self.batch_eval)
        self._embed(net, ctx)
        net.forward(ctx, self.params)
        pred, label = net.predictions(self.xp)
        valid = ctx.current_batchsize
        pred, label = backend.to_host(pred[:valid]), backend.to_host(label[:valid])
        loss = float(backend.to_host(net.loss_value(self.xp)))
        if self.comm.size > 1:  # every worker returns the metrics input of the whole global batch
            parts = self.comm.allgather_object((pred, label, loss))
            pred, label = (np.concatenate([p[i] for p in parts]) for i in (0, 1))
            loss = float(sum(p[2] * len(p[0]) for p in parts) / max(len(pred), 1))
        return pred, label, loss

    def _mean_over_workers(self, loss, ctx):
        """The displayed loss over the global batch: each worker's mean weighted by its valid rows (for
        full batches the mean over workers, as HugeCTR shows it; for a short last batch still the
        one-device value)."""
        weight = ctx.current_batchsize / max(ctx.global_batchsize, 1)
        total = (self.xp.asarray(loss, dtype=self.xp.float32) * weight).reshape(1)
        self.comm.allreduce_sum(total)
        return total.reshape(())

    def memory_bytes(self) -> dict:
        out = dict(self.memory.bytes_by_pool())
        for emb in self.embeddings:
            for purpose, nbytes in emb.memory_bytes().items():
                out[f"embedding {emb.name} {purpose}"] = nbytes
        return out


def _set_tf32(xp, enabled: bool) -> None:
    """TF32 GEMMs for float32 (``enable_tf32_compute``); NumPy has no TF32, so asking for it there is an error."""
    if backend.is_numpy(xp):
        if enabled:
            raise BackendError("enable_tf32_compute=True needs the CuPy backend on an NVIDIA GPU (NumPy has no "
                               "TF32); leave it False on the CPU")
        return
    from cupy._core import _routines_linalg as linalg  # noqa: PLC0415 - GPU only

    linalg.set_compute_type(xp.float32, linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT)


def _check_unit_labels(labels, name: str) -> None:
    """A BinaryCrossEntropyLoss label outside [0, 1] trains to a negative loss and a meaningless AUC (HugeCTR
    does not check); host batches only, so resident device batches cost no sync."""
    if not isinstance(labels, np.ndarray) or labels.size == 0:
        return
    low, high = float(labels.min()), float(labels.max())
    if low < 0.0 or high > 1.0:
        raise DataError(f"label '{name}' of a BinaryCrossEntropyLoss holds {low if low < 0 else high} in this batch; "
                        "its labels must lie in [0, 1] (check the label column of the data, and label_dim)")


__all__ = ["Runtime", "type_string"]
