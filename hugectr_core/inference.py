"""Offline inference in the shape of HugeCTR 23.x's ``hugectr.inference`` module.

``InferenceModel`` rebuilds a model from its graph JSON, loads the dense file (and the ``.ntp.json``
layer state beside it) and the sparse folders, and runs the model's *evaluation* path
(``Runtime.eval_step``) batch by batch, so its predictions equal ``Model.eval`` predictions exactly.
Keys never seen in training give zero vectors, as in training's evaluation.

``load_graph_structure`` gives the graph of a JSON file without compiling a model: layers
instantiated through the registry, tensor shapes and the dense-file parameter layout. The ONNX
converter (``hugectr2onnx``) builds on it.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import backend, graph_json
from .contracts.reader import Batch, SparseBatch
from .errors import BackendError, CheckpointError, ConfigError, DataError
from .graph import build_graph, infer_shapes
from .layers_api import DenseLayer, Input, SparseEmbedding
from .metrics import auc
from .params import AsyncParam, CreateOptimizer, DataReaderParams, DataSourceParams
from .plugins import registry
from .solver import CreateSolver

from .inference_params import IRRELEVANT_ARGS, InferenceParams  # noqa: F401 - public here too


# -- graph structure without a compiled model ----------------------------------------------------
class _Collector:
    """Receives what ``graph_json.read`` adds, like a Model would."""

    def __init__(self):
        self.input_layer: Input | None = None
        self.embeddings: list[SparseEmbedding] = []
        self.dense_layers: list[DenseLayer] = []

    def add(self, item) -> None:
        if isinstance(item, Input):
            self.input_layer = item
        elif isinstance(item, SparseEmbedding):
            self.embeddings.append(item)
        else:
            self.dense_layers.append(item)


@dataclass
class GraphStructure:
    """A graph JSON resolved: Input, embedding specs, scheduled graph, shapes, dense-file layout.

    ``shapes`` are at batch 2 and ``shapes_b3`` at batch 3: a dimension that differs between them
    scales with the batch (possibly folded, e.g. B*S after a Reshape).
    """

    input_layer: Input
    embeddings: list
    dense_layers: list
    graph: object
    shapes: dict
    shapes_b3: dict
    layout: list  # [(layer name, ParamSpec)] trainable then non-trainable interleaved, add() order

    @property
    def trainable(self) -> list:
        return [(n, s) for n, s in self.layout if s.trainable]

    @property
    def non_trainable(self) -> list:
        return [(n, s) for n, s in self.layout if not s.trainable]

    def embedding_shape(self, spec, batch: int) -> tuple:
        sparse = {p.top_name: p for p in self.input_layer.sparse_params}
        return (batch, sparse[spec.bottom_name].slot_num, int(spec.embedding_vec_size))


def _source_shapes(inp: Input, embeddings: list, batch: int) -> dict:
    shapes = {name: (batch, dim) for name, dim in zip(inp.label_names, inp.label_dims)}
    if inp.dense_dim:
        shapes[inp.dense_name] = (batch, inp.dense_dim)
    sparse = {p.top_name: p for p in inp.sparse_params}
    for spec in embeddings:
        if spec.bottom_name not in sparse:
            raise ConfigError(f"embedding '{spec.sparse_embedding_name}' reads '{spec.bottom_name}', which is not a "
                              f"sparse input of the Data layer ({sorted(sparse)})")
        shapes[spec.sparse_embedding_name] = (batch, sparse[spec.bottom_name].slot_num, int(spec.embedding_vec_size))
    return shapes


def load_graph_structure(graph_config: str) -> GraphStructure:
    """Read a graph JSON and resolve it with the layer registry (no buffers, no embeddings allocated)."""
    collected = _Collector()
    graph_json.read(collected, graph_config, include_dense_network=True)
    if collected.input_layer is None:
        raise ConfigError(f"graph JSON '{graph_config}' has no Data layer")
    inp, embs = collected.input_layer, collected.embeddings
    sources = {name: "data" for name in inp.label_names}
    if inp.dense_dim:
        sources[inp.dense_name] = "data"
    for spec in embs:
        sources[spec.sparse_embedding_name] = "embedding"
    graph = build_graph(collected.dense_layers, sources)
    shapes = infer_shapes(graph, _source_shapes(inp, embs, 2))
    shapes_b3 = infer_shapes(graph, _source_shapes(inp, embs, 3))
    layout = [(node.layer.name, spec) for node in sorted(graph.nodes, key=lambda n: n.user_index)
              for spec in node.layer.param_specs([shapes[b] for b in node.bottoms])]
    return GraphStructure(inp, embs, collected.dense_layers, graph, shapes, shapes_b3, layout)


# -- the inference model -------------------------------------------------------------------------
def _keys_to_csr(keys, slot_num: int, n: int, name: str) -> SparseBatch:
    """Fixed-hotness keys ``(n, slot_num*H)`` (negative = no key) or a ``(row_offsets, keys)`` pair -> CSR."""
    if isinstance(keys, tuple):
        offsets, flat = (np.asarray(a) for a in keys)
        if offsets.size != n * slot_num + 1:
            raise DataError(f"sparse input '{name}': row_offsets has {offsets.size} entries, expected "
                            f"n*slot_num+1 = {n * slot_num + 1}")
        return SparseBatch(offsets.astype(np.int64), flat)
    keys = np.asarray(keys)
    if keys.ndim != 2 or keys.shape[0] != n or keys.shape[1] % slot_num:
        raise DataError(f"sparse input '{name}': keys of shape {keys.shape} must be (n={n}, slot_num*H) with "
                        f"slot_num={slot_num}; pad absent keys with -1")
    per_slot = keys.reshape(n * slot_num, -1)
    present = per_slot >= 0
    offsets = np.concatenate([[0], np.cumsum(present.sum(axis=1))]).astype(np.int64)
    return SparseBatch(offsets, per_slot[present])


class InferenceModel:
    """HugeCTR 23.x ``hugectr.inference.InferenceModel``: batched offline prediction.

    Args:
        model_config: the graph JSON written by ``Model.graph_to_json``.
        inference_params: an ``InferenceParams``.

    Example:
        >>> params = InferenceParams(model_name="dcn", max_batchsize=2048, hit_rate_threshold=1.0,
        ...                          dense_model_file="dcn_dense_400.model",
        ...                          sparse_model_files=["dcn0_sparse_400.model"])          # doctest: +SKIP
        >>> model = InferenceModel("dcn.json", params)                                     # doctest: +SKIP
        >>> pred = model.predict(16, "./val.bin", hugectr.DataReaderType_t.RawAsync,
        ...                      hugectr.Check_t.Non)                                      # doctest: +SKIP
        >>> pred.shape                                                                     # doctest: +SKIP
        (32768, 1)
    """

    def __init__(self, model_config: str, inference_params: InferenceParams):
        self.params = p = inference_params
        if not isinstance(p, InferenceParams):
            raise ConfigError(f"InferenceModel: inference_params must be hugectr.inference.InferenceParams, got "
                              f"{type(p).__name__}")
        self._check_files(p)
        self.model_config = model_config
        # one full replica per deployed device (inference is data parallel); batches go round robin
        self.replicas = [self._build(device) for device in self._devices(p)]
        self.model, self.device_id = self.replicas[0]
        self.runtime = self.model.runtime

    @staticmethod
    def _devices(p: InferenceParams) -> list:
        devices = list(p.deployed_devices or [p.device_id])
        return devices if p.device_id in devices else [p.device_id] + devices[1:]

    def _build(self, device: int):
        from .model import Model  # noqa: PLC0415 - model imports the plugin machinery

        p = self.params
        solver = CreateSolver(model_name=p.model_name, batchsize=p.max_batchsize, batchsize_eval=p.max_batchsize,
                              max_eval_batches=1, i64_input_key=p.i64_input_key, seed=1, device=p.device,
                              use_mixed_precision=p.use_mixed_precision, vvgpu=[[device]])
        with self._on(device):
            placeholder = DataReaderParams(data_reader_type="RawAsync", source=["unset"], eval_source="unset")
            model = Model(solver, placeholder, CreateOptimizer(optimizer_type="SGD"))
            model.construct_from_json(self.model_config, include_dense_network=True)
            model.compile()
            embeddings = model.runtime.embeddings
            if len(p.sparse_model_files) != len(embeddings):
                raise CheckpointError(f"InferenceModel: {len(p.sparse_model_files)} sparse_model_files for the "
                                      f"{len(embeddings)} embeddings of '{self.model_config}' "
                                      f"({[e.name for e in embeddings]}); give one folder per embedding")
            model.load_dense_weights(p.dense_model_file)
            if p.non_trainable_params_file:
                from .checkpoint import load_layer_state  # noqa: PLC0415

                load_layer_state(model, p.non_trainable_params_file)
            if embeddings:
                model.load_sparse_weights(list(p.sparse_model_files))
        return model, device

    @staticmethod
    def _check_files(p: InferenceParams) -> None:
        if not os.path.isfile(p.dense_model_file):
            raise CheckpointError(f"InferenceParams: dense_model_file '{p.dense_model_file}' does not exist")
        for folder in p.sparse_model_files:
            if not os.path.isdir(folder):
                raise CheckpointError(f"InferenceParams: sparse model folder '{folder}' does not exist")
        if p.non_trainable_params_file and not os.path.isfile(p.non_trainable_params_file):
            raise CheckpointError(f"InferenceParams: non_trainable_params_file '{p.non_trainable_params_file}' "
                                  "does not exist")

    def _on(self, device: int):
        """The CuPy device context of ``device`` (nothing on the NumPy backend)."""
        if self.params.device == "cpu" or not backend.has_cupy_gpu():
            return contextlib.nullcontext()
        xp = backend._cupy()
        if device >= xp.cuda.runtime.getDeviceCount():
            raise BackendError(f"InferenceParams: GPU {device} is deployed but CuPy sees "
                               f"{xp.cuda.runtime.getDeviceCount()} GPU(s)")
        return xp.cuda.Device(device)

    def _eval_on(self, replica, batch):
        model, device = replica
        with self._on(device):
            return model.runtime.eval_step(batch)

    # -- data ----------------------------------------------------------------------------------
    def _reader(self, source, data_reader_type, check_type, slot_size_array, data_source_params, num_samples,
                async_param):
        reader_params = DataReaderParams(
            data_reader_type=data_reader_type, source=[source], eval_source=source, check_type=check_type,
            slot_size_array=list(slot_size_array or []), data_source_params=data_source_params or DataSourceParams(),
            eval_num_samples=num_samples,
            async_param=async_param or AsyncParam(num_threads=1, num_batches_per_thread=4, shuffle=False,
                                                  multi_hot_reader=True, is_dense_float=True))
        cls = registry("readers").load(reader_params.type_name)
        rt = self.runtime
        from .filesystems import filesystem_for_path  # noqa: PLC0415

        return cls(reader_params, self.model.input_layer, batch_size=rt.batch_eval, source=source, repeat=False,
                   key_dtype=rt.key_dtype, seed=rt.seed + 1, num_samples=num_samples,
                   filesystem=filesystem_for_path(source, reader_params.data_source_params))

    def _run(self, num_batches, source, data_reader_type, check_type, slot_size_array, data_source_params,
             num_samples, async_param):
        if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
            raise ConfigError(f"InferenceModel: num_batches must be an integer >= 1, got {num_batches!r}")
        reader = self._reader(source, data_reader_type, check_type, slot_size_array, data_source_params,
                              num_samples, async_param)
        preds, labels = [], []
        n = len(self.replicas)
        try:
            with ThreadPoolExecutor(max_workers=n) as pool:
                remaining = num_batches
                while remaining > 0:  # waves of one batch per replica, results kept in batch order
                    wave = [b for b in (reader.next_batch() for _ in range(min(n, remaining))) if b is not None]
                    remaining -= n
                    for pred, label, _loss in pool.map(self._eval_on, self.replicas, wave):
                        preds.append(pred)
                        labels.append(label)
                    if len(wave) < n:
                        break
        finally:
            reader.close()
        if not preds:
            raise DataError(f"InferenceModel: '{source}' gave no batch to predict on")
        return np.concatenate(preds).astype(np.float32), np.concatenate(labels).astype(np.float32)

    # -- public API ----------------------------------------------------------------------------
    def predict(self, num_batches, source, data_reader_type, check_type, slot_size_array=None,
                data_source_params=None, reading_file_sequentially=True, num_samples=0, async_param=None):
        """Predictions ``(rows, label_dim)`` float32 for ``num_batches`` batches of ``max_batchsize`` rows
        read from ``source`` (fewer rows when the source ends first).

        ``num_samples`` and ``async_param`` are ours, for RawAsync files (records to read; the reader
        layout, default multi-hot with float dense). ``reading_file_sequentially`` is accepted: files
        are always read in order here.
        """
        return self._run(num_batches, source, data_reader_type, check_type, slot_size_array, data_source_params,
                         num_samples, async_param)[0]

    def evaluate(self, num_batches, source, data_reader_type, check_type, slot_size_array=None,
                 data_source_params=None, reading_file_sequentially=True, num_samples=0, async_param=None) -> float:
        """AUC of the predictions of ``num_batches`` batches of ``source`` against its labels."""
        pred, label = self._run(num_batches, source, data_reader_type, check_type, slot_size_array,
                                data_source_params, num_samples, async_param)
        return auc(pred, label)

    def predict_arrays(self, dense=None, sparse=None, label=None) -> np.ndarray:
        """Predictions for in-memory rows, in chunks of ``max_batchsize``.

        Args:
            dense: ``(n, dense_dim)`` float array (omit when the model has no dense input).
            sparse: {sparse input name: keys}, keys either ``(n, slot_num*H)`` integers with -1 for
                "no key" (fixed hotness H per slot), or a ``(row_offsets, keys)`` CSR pair with
                ``n*slot_num+1`` offsets. Keys are what the embedding sees (slot offsets included).
            label: optional ``(n, label_dim)`` labels (they only feed the loss value).
        """
        inp = self.model.input_layer
        sparse = dict(sparse or {})
        params = {p.top_name: p for p in inp.sparse_params}
        missing = sorted(set(params) - set(sparse))
        if missing or set(sparse) - set(params):
            raise DataError(f"predict_arrays: sparse inputs {sorted(sparse)} do not match the model's {sorted(params)}")
        n = self._rows(dense, sparse, inp)
        dense = np.zeros((n, 0), np.float32) if dense is None else np.asarray(dense, np.float32).reshape(n, -1)
        if dense.shape[1] != inp.dense_dim:
            raise DataError(f"predict_arrays: dense has {dense.shape[1]} columns, the model's Data layer has "
                            f"dense_dim={inp.dense_dim}")
        label = np.zeros((n, inp.label_dim), np.float32) if label is None else np.asarray(label, np.float32)
        csr = {name: _keys_to_csr(keys, params[name].slot_num, n, name) for name, keys in sparse.items()}
        key_dtype = np.dtype(self.runtime.key_dtype)
        out, step = [], self.runtime.batch_eval
        for start in range(0, n, step):
            stop = min(start + step, n)
            sub = {}
            for name, sb in csr.items():
                lo, hi = int(sb.row_offsets[start * params[name].slot_num]), int(sb.row_offsets[stop * params[name].slot_num])
                offsets = sb.row_offsets[start * params[name].slot_num: stop * params[name].slot_num + 1] - lo
                sub[name] = SparseBatch(offsets, np.asarray(sb.keys[lo:hi]).astype(key_dtype))
            batch = Batch(stop - start, label[start:stop], dense[start:stop], sub)
            out.append(self.runtime.eval_step(batch)[0])
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, inp.label_dim), np.float32)

    @staticmethod
    def _rows(dense, sparse, inp) -> int:
        if dense is not None:
            return int(np.asarray(dense).shape[0])
        for name, keys in sparse.items():
            if isinstance(keys, tuple):
                slots = {p.top_name: p.slot_num for p in inp.sparse_params}[name]
                return (len(keys[0]) - 1) // slots
            return int(np.asarray(keys).shape[0])
        raise DataError("predict_arrays: give dense and/or sparse inputs")

    def check_out_tensor(self, tensor_name: str) -> np.ndarray:
        """The value of a tensor in the last predicted batch."""
        from .enums import Tensor_t  # noqa: PLC0415

        return self.model.check_out_tensor(tensor_name, Tensor_t.Evaluate)


# -- CLI hooks (hugectr_core/cli.py calls these) -------------------------------------------------
def cli_predict(graph_config: str, dense_model: str, sparse_models: list, source: str, data_reader_type: str,
                num_batches: int, batch_size: int, output: str = "", device: str = "auto",
                i64_input_key: bool = False, slot_size_array=None, num_samples: int = 0) -> np.ndarray:
    """``hugectr predict``: predictions of a saved model on a data source, optionally saved to ``output`` (.npy)."""
    params = InferenceParams(model_name=os.path.basename(graph_config), max_batchsize=batch_size,
                             dense_model_file=dense_model, sparse_model_files=list(sparse_models),
                             i64_input_key=i64_input_key, device=device)
    pred = InferenceModel(graph_config, params).predict(num_batches, source, data_reader_type, "Non",
                                                        slot_size_array=slot_size_array, num_samples=num_samples)
    if output:
        np.save(output, pred)
    return pred


def cli_export_onnx(onnx_path: str, graph_config: str, dense_model: str, sparse_models=(), ntp_file=None,
                    convert_embedding: bool = True) -> str:
    """``hugectr export-onnx``: needs the ``hugectr2onnx`` distribution (plugins/export/onnx)."""
    try:
        from hugectr2onnx.converter import convert  # noqa: PLC0415 - optional plugin
    except ImportError as exc:
        raise BackendError("ONNX export needs the hugectr2onnx plugin: pip install -e plugins/export/onnx "
                           "(it brings onnx and onnxruntime)") from exc
    convert(onnx_path, graph_config, dense_model, convert_embedding=convert_embedding,
            sparse_models=list(sparse_models), ntp_file=ntp_file)
    return onnx_path


__all__ = ["InferenceParams", "InferenceModel", "GraphStructure", "load_graph_structure", "cli_predict",
           "cli_export_onnx", "IRRELEVANT_ARGS"]
