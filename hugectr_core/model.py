"""``hugectr.Model``: build, compile, train, evaluate (formats.md 1.4, 3.1)."""
from __future__ import annotations

import logging
import os
from collections import deque

import numpy as np

from . import backend
from .arg_types import is_int, is_number
from .enums import Tensor_t, type_string
from .data_checks import first_non_finite
from .errors import ConfigError, DataError, GraphError, TrainingError
from .filesystems import filesystem_kind
from .fused_path import GroupDenseLayer
from .layers_api import DenseLayer, Input, SparseEmbedding
from .lr_scheduler import LearningRateScheduler
from .metrics import MetricAccumulator
from .model_checks import TensorNames, check_model_args, one_of
from .plugins import plugin_manager, registry
from .runtime import Runtime
from .workers import Workers

log = logging.getLogger("hugectr")


class Model:
    """A HugeCTR model: one Input, sparse embeddings, dense layers ending in a loss.

    Example:
        >>> import hugectr
        >>> model = hugectr.Model(hugectr.CreateSolver(batchsize=64, batchsize_eval=64, device="cpu"),
        ...                       hugectr.DataReaderParams("RawAsync", ["train.bin"], "val.bin"),
        ...                       hugectr.CreateOptimizer(optimizer_type="Adam"))
        >>> model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=13, dense_name="dense"))
        >>> model.add(hugectr.DenseLayer("InnerProduct", ["dense"], ["fc1"], num_output=1))
        >>> model.add(hugectr.DenseLayer("BinaryCrossEntropyLoss", ["fc1", "label"], ["loss"]))
        >>> model.compile()
        >>> model.runtime.shapes["train"]["fc1"]
        (64, 1)
    """

    def __init__(self, solver, reader_params, opt_params):
        check_model_args(solver, reader_params, opt_params)
        self.solver, self.reader_params, self.opt_params = solver, reader_params, opt_params
        self.input_layer: Input | None = None
        self.sparse_embeddings: list[SparseEmbedding] = []
        self.dense_layers: list[DenseLayer] = []
        self.collections: list = []  # EmbeddingCollectionConfig objects (plugin hugectr-embeddings-collection)
        self._names = TensorNames()  # who names which tensor, and HugeCTR's fused-path aliases
        self.runtime: Runtime | None = None  # this process's first worker (all workers: self.workers.items)
        self.workers: Workers | None = None
        self.lr_scheduler = LearningRateScheduler(solver.lr, solver.warmup_steps, solver.decay_start,
                                                  solver.decay_steps, solver.decay_power, solver.end_lr)
        self.learning_rate = solver.lr
        self.current_loss = None
        self._readers = {}
        self._replay = deque()   # training batches read ahead for hybrid-embedding statistics
        self._statistics_done = False
        self._metrics = MetricAccumulator([type_string(m) for m in solver.metrics_spec])
        self._eval_tensors_ready = False

    # -- building ------------------------------------------------------------------------------
    def add(self, item=None, *, input=None, sparse_embedding=None, dense_layer=None,  # noqa: A002 - HugeCTR's
            group_dense_layer=None) -> None:
        """Add an Input, a SparseEmbedding, a DenseLayer or a GroupDenseLayer (in HugeCTR's order), positionally
        or by HugeCTR's keyword for it. The fp16 fused-path spellings (FusedInnerProduct, GroupDenseLayer, an
        Interaction's gradient top) become the plain layers they compute (``fused_path``)."""
        item = one_of("add", item=item, input=input, sparse_embedding=sparse_embedding, dense_layer=dense_layer,
                       group_dense_layer=group_dense_layer)
        if self.runtime is not None:
            raise GraphError("Model.add after compile(): build the whole graph before compiling")
        if isinstance(item, Input):
            if self.input_layer is not None:
                raise GraphError("the model already has an Input; a model has exactly one")
            self._names.reserve(item.label_names + ([item.dense_name] if item.dense_dim else []) +
                                [p.top_name for p in item.sparse_params], "the Input")
            self.input_layer = item
        elif isinstance(item, SparseEmbedding):
            self._names.reserve([item.sparse_embedding_name], f"SparseEmbedding '{item.sparse_embedding_name}'")
            self.sparse_embeddings.append(item)
        elif isinstance(item, DenseLayer):
            self.dense_layers += self._names.add_dense(item)
        elif isinstance(item, GroupDenseLayer):
            for layer in item.layers():
                self.dense_layers += self._names.add_dense(layer)
        elif type(item).__name__ == "EmbeddingCollectionConfig":
            self.collections.append(item)
        else:
            raise ConfigError(f"Model.add takes Input, SparseEmbedding, EmbeddingCollectionConfig, DenseLayer or "
                              f"GroupDenseLayer, got {type(item).__name__}")

    def compile(self, loss_names=None, loss_weights=None) -> None:
        """Build the graph, infer every shape, place every buffer and initialise parameters."""
        if self.input_layer is None:
            raise GraphError("compile() before an Input was added: model.add(hugectr.Input(...)) first")
        from .comm import World
        from .distributed import check_same_model

        world = World(self.solver.vvgpu, backend.is_numpy(backend.resolve(self.solver.device)),
                      type_string(self.solver.all_reduce_algo))
        workers = Workers(world.devices, backend.resolve(self.solver.device), world.group)
        workers.start(lambda i: Runtime(self.solver, self.input_layer, self.sparse_embeddings, self.dense_layers,
                                        self.opt_params, loss_names, loss_weights, self.collections,
                                        comm=world.comms[i]))
        workers.run(check_same_model)
        self.world, self.workers, self.runtime = world, workers, workers.items[0]
        plugin_manager().hook.hugectr_configure(model=self)

    def _each(self, fn) -> list:
        """``fn(runtime)`` on every worker of this process (at once: they may meet in collectives)."""
        self._rt()
        return self.workers.run(fn)

    @property
    def is_lead_process(self) -> bool:
        """True on the process that holds worker 0: it writes checkpoints and reports progress (under
        mpirun the other processes train silently)."""
        return self.workers is None or self.world.first_rank == 0

    def _rt(self) -> Runtime:
        if self.runtime is None:
            raise GraphError("the model is not compiled: call model.compile() first")
        return self.runtime

    def summary(self) -> str:
        """Print (and return) each layer's tops, shapes and parameters, then the memory plan."""
        from .summary import render_summary

        text = render_summary(self)
        print(text)
        return text

    # -- data ----------------------------------------------------------------------------------
    def _reader(self, which: str):
        if which not in self._readers:
            from .filesystems import filesystem_for_path

            rt, p = self._rt(), self.reader_params
            is_train = which == "train"
            source = p.source[0] if is_train else p.eval_source
            cls = registry("readers").load(p.type_name)
            per_device = rt.batch_train if is_train else rt.batch_eval
            self._readers[which] = cls(  # every process reads the whole global batch
                p, self.input_layer, batch_size=per_device * rt.device_count, source=source,
                repeat=self.solver.repeat_dataset or not is_train, key_dtype=rt.key_dtype,
                seed=rt.seed + (0 if is_train else 1), filesystem=filesystem_for_path(source, p.data_source_params),
                num_samples=p.num_samples if is_train else p.eval_num_samples)
        return self._readers[which]

    def start_data_reading(self) -> None:
        self._reader("train")
        self._reader("eval")

    def get_data_reader_train(self):
        return self._reader("train")

    def get_data_reader_eval(self):
        return self._reader("eval")

    def set_source(self, source="", eval_source=None) -> None:
        """Epoch mode: read ``source`` (train) and ``eval_source`` next."""
        if self.solver.repeat_dataset:
            raise ConfigError("set_source is only valid in epoch mode (CreateSolver(repeat_dataset=False))")
        src = source[0] if isinstance(source, (list, tuple)) and source else source
        if not isinstance(src, str) or not (eval_source is None or isinstance(eval_source, str)):
            raise ConfigError(f"set_source: source and eval_source must be file names, got {source!r} and "
                              f"{eval_source!r}")
        self._replay.clear()  # read-ahead batches belong to the old source
        self._reader("train").set_source(src)
        if eval_source is not None:
            self._reader("eval").set_source(eval_source)

    def close(self) -> None:
        """Stop and join the reader threads and close their files; safe to call twice.

        The model stays usable: the next read starts fresh readers from the start of their sources.
        ``with hugectr.Model(...) as model:`` calls it on leaving the block; ``fit`` calls it on Ctrl-C.
        """
        readers, self._readers = self._readers, {}
        for reader in readers.values():
            reader.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- learning rate ---------------------------------------------------------------------------
    def get_learning_rate_scheduler(self) -> LearningRateScheduler:
        return self.lr_scheduler

    def set_learning_rate(self, lr: float) -> None:
        if not is_number(lr) or lr < 0:
            raise ConfigError(f"set_learning_rate: lr must be a finite number >= 0, got {lr!r}")
        self.learning_rate = float(lr)

    def reset_learning_rate_scheduler(self, base_lr, warmup_steps=1, decay_start=0, decay_steps=1,
                                      decay_power=2.0, end_lr=0.0) -> None:
        self.lr_scheduler = LearningRateScheduler(base_lr, warmup_steps, decay_start, decay_steps, decay_power, end_lr)

    # -- low-level training --------------------------------------------------------------------
    def train(self) -> bool:
        """One iteration on the next training batch; False when an epoch-mode source is exhausted."""
        rt = self._rt()
        self._gather_statistics()
        batch = self._replay.popleft() if self._replay else self._reader("train").next_batch()
        if batch is None:
            return False
        if batch.size < rt.batch_train * rt.device_count and self.solver.drop_incomplete_batch:
            return False
        lr = self.learning_rate
        loss = self._each(lambda worker: worker.train_step(batch, lr))[0]
        self.current_loss = loss if self.solver.gen_loss_summary else None
        return True

    def _gather_statistics(self) -> None:
        """Hybrid embeddings choose their frequent categories from the first ``num_iterations_statistics``
        training batches (read ahead once, then trained on in order)."""
        if self._statistics_done:
            return
        self._statistics_done = True
        if not any(getattr(e, "needs_statistics", False) for e in self._rt().embeddings):
            return
        reader = self._reader("train")
        for _ in range(self.solver.num_iterations_statistics):
            batch = reader.next_batch()
            if batch is None:
                break
            self._replay.append(batch)
        batches = list(self._replay)
        if not batches:
            raise ConfigError("hybrid embedding: the training source gave no batch to gather statistics from")
        self._each(lambda rt: [e.plan(batches) for e in rt.embeddings if getattr(e, "needs_statistics", False)])

    def get_current_loss(self) -> float:
        """Loss of the last training iteration (0 when gen_loss_summary=False). Reading it syncs the device."""
        if self.current_loss is None:
            return 0.0
        value = float(backend.to_host(self.current_loss))
        if value != value or value in (float("inf"), float("-inf")):
            raise TrainingError(f"the training loss is {value} at iteration {self._rt().step}; lower the learning "
                                "rate or check the data for NaN/Inf")
        return value

    def eval(self) -> bool:
        """Evaluate one batch and accumulate it into the metrics; False when none was left to read."""
        reader = self._reader("eval")
        batch = reader.next_batch()
        if batch is None:  # the eval source rewinds when exhausted (formats.md 3.1)
            reader.set_source("")
            batch = reader.next_batch()
            if batch is None:
                return False
        self._check_eval_batch(batch)
        pred, label, loss = self._each(lambda worker: worker.eval_step(batch))[0]
        if not np.isfinite(pred).all():
            raise DataError(f"evaluation: the predictions of an eval batch of '{self.reader_params.eval_source}' "
                            "hold NaN/Inf; check the eval data and the dense weights")
        self._metrics.add(pred, label, loss)
        self._eval_tensors_ready = True
        return True

    def _check_eval_batch(self, batch) -> None:
        """NaN/Inf in the eval data: training finds them through its loss, evaluation would not (a ReLU turns
        NaN into 0), so an AUC would be reported from garbage. One host pass over the batch's dense values."""
        if batch.dense is None or np.size(batch.dense) == 0:
            return
        found = first_non_finite(backend.to_host(batch.dense).reshape(batch.size, -1))
        if found is not None:
            row, col, count = found
            raise DataError(f"evaluation data '{self.reader_params.eval_source}': dense[{col}] of a record is not "
                            f"finite ({count} NaN/Inf value(s) in this eval batch, the first in its row {row}); "
                            "fix the eval data")

    def get_eval_metrics(self) -> list:
        """[(name, value)] over the batches evaluated since the last call."""
        values = self._metrics.compute()
        self._metrics.reset()
        return list(values.items())

    def check_out_tensor(self, tensor_name: str, tensor_type=Tensor_t.Evaluate):
        """Train: the gradient of the tensor in the last iteration; Evaluate: its value in the last eval."""
        rt = self._rt()
        kind = type_string(tensor_type)
        if kind not in Tensor_t.__members__:
            raise ConfigError(f"check_out_tensor: unknown tensor_type {tensor_type!r}; use hugectr.Tensor_t.Train or "
                              "Tensor_t.Evaluate")
        net = rt.networks["train" if kind == "Train" else "eval"]
        store = net.grads if kind == "Train" else net.tensors
        if tensor_name not in net.tensors:
            raise ConfigError(f"check_out_tensor: no tensor named '{tensor_name}'; tensors: {sorted(net.tensors)}")
        if tensor_name not in store:
            raise ConfigError(f"check_out_tensor: tensor '{tensor_name}' has no gradient (it does not depend on "
                              "trainable weights)")
        return backend.to_host(store[tensor_name]).astype("float32")

    # -- freezing ------------------------------------------------------------------------------
    def freeze_dense(self) -> None:
        self._each(lambda rt: setattr(rt, "dense_frozen", True))

    def unfreeze_dense(self) -> None:
        self._each(lambda rt: setattr(rt, "dense_frozen", False))

    @staticmethod
    def _embeddings_named(rt, name):
        embs = rt.embeddings
        if name is None:
            return embs
        found = [e for e in embs if e.name == name]
        if not found:
            raise ConfigError(f"no embedding named '{name}'; embeddings: {[e.name for e in embs]}")
        return found

    def _set_embedding_frozen(self, name, frozen: bool) -> None:
        self._rt()
        for rt in self.workers.items:
            for emb in self._embeddings_named(rt, name):
                emb.frozen = frozen

    def freeze_embedding(self, embedding_name=None) -> None:
        self._set_embedding_frozen(embedding_name, True)

    def unfreeze_embedding(self, embedding_name=None) -> None:
        self._set_embedding_frozen(embedding_name, False)

    # -- high level ----------------------------------------------------------------------------
    def fit(self, num_epochs=0, max_iter=2000, display=200, eval_interval=1000, snapshot=10000, snapshot_prefix="",
            metrics_log=None):
        """Train in iteration mode (repeat_dataset=True, ``max_iter``) or epoch mode (``num_epochs``).

        ``metrics_log`` (ours): a path to write JSON lines of loss, lr, metrics and samples/s to
        (``hugectr plot`` draws them); the environment variable ``HUGECTR_METRICS_LOG`` does the same.
        Returns the metrics of the last evaluation.
        """
        from .fit import run_fit

        if metrics_log is not None:
            self.metrics_log_path = metrics_log
        return run_fit(self, num_epochs, max_iter, display, eval_interval, snapshot, snapshot_prefix)

    def evaluate(self, max_batches=None) -> dict:
        """Run ``max_eval_batches`` evaluation batches and return the metrics as a dict."""
        if max_batches is not None and (not is_int(max_batches) or max_batches < 1):
            raise ConfigError(f"evaluate: max_batches must be an int >= 1, got {max_batches!r}")
        batches = max_batches or self.solver.max_eval_batches
        hook = plugin_manager().hook
        hook.hugectr_eval_start(model=self, iteration=self.runtime.step if self.runtime else 0, batches=batches)
        for k in range(batches):
            if not self.eval():
                break
            hook.hugectr_eval_batch_end(model=self, batch=k + 1)
        return dict(self.get_eval_metrics())

    # -- Embedding Collection ------------------------------------------------------------------
    def _collection_io(self):
        try:
            import hugectr_embeddings_collection as ec  # noqa: PLC0415 - optional plugin
        except ImportError as exc:
            raise ConfigError("embedding_dump/embedding_load need the Embedding Collection plugin: "
                              "pip install hugectr-embeddings-collection") from exc
        lookups = [e for e in self._rt().embeddings if getattr(e, "collection", False)]
        if not lookups:
            raise ConfigError("embedding_dump/embedding_load: the model has no EmbeddingCollectionConfig")
        return ec, lookups

    def embedding_dump(self, path: str, table_names=None) -> None:
        """Write the Embedding Collection tables (formats.md 2.8) under ``path`` (on several devices: gathered
        from every device, written by the lead process)."""
        ec, lookups = self._collection_io()
        contents = self._each(lambda rt: ec.gather_tables(rt.embeddings))[0] if self.runtime.device_count > 1 \
            else None
        if self.is_lead_process:
            ec.dump_collection(lookups, path, table_names or None, contents)

    def embedding_load(self, path: str, table_names=None) -> None:
        """Load Embedding Collection tables written by ``embedding_dump`` (into every device)."""
        ec, _ = self._collection_io()
        self._each(lambda rt: ec.load_collection([e for e in rt.embeddings if getattr(e, "collection", False)],
                                                 path, table_names or None))

    # -- graph JSON ----------------------------------------------------------------------------
    def graph_to_json(self, graph_config_file: str) -> None:
        """Write the graph in HugeCTR's JSON schema (formats.md 2.7)."""
        from . import graph_json

        folder = os.path.dirname(graph_config_file) if isinstance(graph_config_file, str) else None
        if not isinstance(graph_config_file, str) or (folder and filesystem_kind(folder) is None
                                                      and not os.path.isdir(folder)):
            raise ConfigError(f"graph_to_json: {graph_config_file!r} is not a file name in an existing folder")
        graph_json.write(self, graph_config_file)

    def construct_from_json(self, graph_config_file: str, include_dense_network: bool) -> None:
        """Add the graph of a saved JSON; with ``include_dense_network=False`` only Input and embeddings,
        so a new dense head can be added and trained on loaded sparse weights."""
        from . import graph_json

        if self.runtime is not None:
            raise GraphError("construct_from_json after compile(): construct first, then compile")
        graph_json.read(self, graph_config_file, include_dense_network)

    # -- checkpoints ---------------------------------------------------------------------------
    def save_params_to_files(self, prefix: str, iter: int = 0) -> None:  # noqa: A002 - HugeCTR's name
        from .checkpoint import save_params

        save_params(self, prefix, iter)

    def load_dense_weights(self, dense_model_file: str) -> None:
        from .checkpoint import load_dense

        load_dense(self, dense_model_file)

    def load_dense_optimizer_states(self, dense_opt_states_file: str) -> None:
        """Load the dense optimizer states (and, from our ``.step`` side file, the iteration count)."""
        from .checkpoint import load_dense_optimizer_states

        load_dense_optimizer_states(self, dense_opt_states_file)

    def load_sparse_weights(self, sparse_embedding_files=None, *, sparse_embedding_files_map=None) -> None:
        """Load sparse folders: a list (one per embedding, add() order) or {embedding name: folder}, the
        latter also by HugeCTR's keyword ``sparse_embedding_files_map``."""
        from .checkpoint import load_sparse

        load_sparse(self, one_of("load_sparse_weights", sparse_embedding_files=sparse_embedding_files,
                                  sparse_embedding_files_map=sparse_embedding_files_map))

    def load_sparse_optimizer_states(self, sparse_opt_states_files=None, *, sparse_opt_states_files_map=None) -> None:
        """Load ``opt_sparse`` files: a list (one per embedding) or {embedding name: file}, the latter also by
        HugeCTR's keyword ``sparse_opt_states_files_map``."""
        from .checkpoint import load_sparse_optimizer_states

        load_sparse_optimizer_states(self, one_of("load_sparse_optimizer_states",
                                                   sparse_opt_states_files=sparse_opt_states_files,
                                                   sparse_opt_states_files_map=sparse_opt_states_files_map))
