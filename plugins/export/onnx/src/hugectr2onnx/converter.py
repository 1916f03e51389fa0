"""Convert a saved model (graph JSON, dense file, sparse folders) to ONNX, like HugeCTR's hugectr2onnx.

Graph interface (batch axis ``batch`` is dynamic):

* inputs: the dense input ``<dense name>`` float32 ``(batch, dense_dim)``; then, with
  ``convert_embedding=True``, one int64 key tensor per sparse input ``<sparse input name>`` of shape
  ``(batch, slot_num * H)``: H = the largest ``nnz_per_slot`` of that input, slot-major (slot 0's H
  keys, then slot 1's, ...), **-1 where a slot has fewer keys**. Keys are the keys the embedding sees
  (slot offsets included, as the reader produced them); ``csr_to_fixed_hotness`` converts a
  reader's CSR batch. With ``convert_embedding=False`` (HugeCTR's default) the embedding outputs
  are inputs instead: ``<embedding name>`` float32 ``(batch, slot_num, vec)``.
* output ``output``: float32 ``(batch, total label dim)``, every loss layer's prediction (sigmoid of
  its logits for BinaryCrossEntropyLoss), concatenated in graph order, as ``Model.eval`` reports.

Embeddings become initialisers: the table with one extra zero row, and the key -> row lookup runs
inside the graph, either through a dense key -> row map (``key_lookup="table"``, when keys are
small) or a binary search over the sorted keys unrolled into ONNX ops (``"search"``). Keys that the
sparse folder does not hold (never seen in training) and -1 padding read the zero row, as in
training's evaluation. Combiner ``mean`` divides by the number of present (non-negative) keys.

Layers are instantiated from the JSON through the hugectr-core registry
(``hugectr_core.inference.load_graph_structure``) and their parameter shapes come from their
``param_specs``, so the dense file is split exactly as the engine lays it out.
"""
from __future__ import annotations

import math
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hugectr_core.checkpoint import read_sparse_array as read_sparse_file
from hugectr_core.errors import CheckpointError, ConfigError, LayerError
from hugectr_core.inference import GraphStructure, load_graph_structure

OPSET = 17
TABLE_LOOKUP_LIMIT = 1 << 22  # dense key -> row maps up to 4M entries (32 MiB); larger key spaces search


class _Builder:
    """Collects nodes and initialisers with unique names."""

    def __init__(self, graph_name: str):
        self.graph_name = graph_name
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}__{self._count}"

    def const(self, value, hint: str = "c") -> str:
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def i64(self, values, hint: str = "i") -> str:
        return self.const(np.asarray(values, dtype=np.int64), hint)

    def f32(self, value, hint: str = "f") -> str:
        return self.const(np.asarray(value, dtype=np.float32), hint)

    def op(self, op_type: str, inputs: list, output: str | None = None, **attrs) -> str:
        out = output or self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=self.fresh(f"n_{op_type}"), **attrs))
        return out

    def op_multi(self, op_type: str, inputs: list, outputs: list, **attrs) -> list:
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), name=self.fresh(f"n_{op_type}"),
                                           **attrs))
        return outputs


# -- shapes ----------------------------------------------------------------------------------------
def _target_shape(struct: GraphStructure, tensor: str, layer) -> list:
    """The static shape of ``tensor`` with the batch-dependent dimension (there may be one) as -1."""
    s2, s3 = struct.shapes[tensor], struct.shapes_b3[tensor]
    varying = [i for i, (a, b) in enumerate(zip(s2, s3)) if a != b]
    if len(varying) > 1:
        raise LayerError(layer.name, layer.type_name, f"output '{tensor}' has {len(varying)} batch-dependent "
                         "dimensions; ONNX Reshape allows one -1")
    return [-1 if i in varying else d for i, d in enumerate(s2)]


# -- layer emitters: (builder, layer, node, bottoms, tops, params, struct) -------------------------
def _inner_product(b, layer, node, x, tops, params, struct):
    weight, bias = params
    b.op("Add", [b.op("MatMul", [x[0], b.const(weight, "W")]), b.const(bias.reshape(-1), "b")], tops[0])


def _mlp(b, layer, node, x, tops, params, struct):
    h, pos = x[0], 0
    for i, stage in enumerate(layer.stages):
        h = b.op("MatMul", [h, b.const(params[pos], "W")])
        pos += 1
        if stage.bias:
            h = b.op("Add", [h, b.const(params[pos].reshape(-1), "b")])
            pos += 1
        if stage.relu:
            h = b.op("Relu", [h])
    b.op("Identity", [h], tops[0])


def _unary(op_type, **attrs):
    def emit(b, layer, node, x, tops, params, struct):
        b.op(op_type, [x[0]], tops[0], **attrs)
    return emit


def _elu(b, layer, node, x, tops, params, struct):
    b.op("Elu", [x[0]], tops[0], alpha=float(layer.alpha))


def _fanout(b, layer, node, x, tops, params, struct):
    for top in tops:
        b.op("Identity", [x[0]], top)


def _concat(b, layer, node, x, tops, params, struct):
    b.op("Concat", x, tops[0], axis=int(layer.axis))


def _reshape(b, layer, node, x, tops, params, struct):
    src = x[0]
    if layer.mode == "selected":
        src = b.op("Gather", [src, b.i64(layer.selected)], axis=1)
    b.op("Reshape", [src, b.i64(_target_shape(struct, tops[0], layer))], tops[0])


def _slice(b, layer, node, x, tops, params, struct):
    for top, (start, end) in zip(tops, layer.ranges):
        b.op("Slice", [x[0], b.i64([start]), b.i64([end]), b.i64([-1])], top)


def _select(b, layer, node, x, tops, params, struct):
    b.op("Gather", [x[0], b.i64(layer.index)], tops[0], axis=int(layer.dim))


def _reduce_sum(b, layer, node, x, tops, params, struct):
    b.op("ReduceSum", [x[0], b.i64([layer.axis])], tops[0], keepdims=1)


def _reduce_mean(b, layer, node, x, tops, params, struct):
    b.op("ReduceMean", [x[0]], tops[0], axes=[int(layer.axis)], keepdims=1)


def _chain(op_type):
    def emit(b, layer, node, x, tops, params, struct):
        acc = x[0]
        for i, other in enumerate(x[1:]):
            acc = b.op(op_type, [acc, other], tops[0] if i == len(x) - 2 else None)
    return emit


def _interaction(b, layer, node, x, tops, params, struct):
    if len(tops) != 1:
        raise layer.error("the 2-output form (fp16 fused path) has no ONNX conversion; use one top")
    mlp, emb = x
    vectors = struct.shapes[node.bottoms[1]][1] + 1
    t = b.op("Concat", [b.op("Unsqueeze", [mlp, b.i64([1])]), emb], axis=1)          # (B, F+1, d)
    z = b.op("MatMul", [t, b.op("Transpose", [t], perm=[0, 2, 1])])                 # (B, F+1, F+1)
    flat = b.op("Reshape", [z, b.i64([-1, vectors * vectors])])
    rows, cols = np.tril_indices(vectors, -1)
    pairs = b.op("Gather", [flat, b.i64(rows * vectors + cols)], axis=1)
    zero = b.op("Mul", [b.op("Slice", [mlp, b.i64([0]), b.i64([1]), b.i64([1])]), b.f32(0.0)])
    b.op("Concat", [mlp, pairs, zero], tops[0], axis=1)


def _multicross(b, layer, node, x, tops, params, struct):
    x0 = xl = x[0]
    per = 3 if layer.is_v2 else 2
    for l in range(layer.num_layers):
        p = params[per * l: per * (l + 1)]
        last = tops[0] if l == layer.num_layers - 1 else None
        if layer.is_v2:
            h = b.op("MatMul", [b.op("MatMul", [xl, b.const(p[0], "U")]), b.const(p[1], "V")])
            h = b.op("Mul", [x0, b.op("Add", [h, b.const(p[2], "b")])])
        else:
            dot = b.op("MatMul", [xl, b.const(np.ascontiguousarray(p[0].T), "w")])   # (B, 1)
            h = b.op("Add", [b.op("Mul", [x0, dot]), b.const(p[1], "b")])
        xl = b.op("Add", [h, xl], last)


def _fm_order2(b, layer, node, x, tops, params, struct):
    d = layer.out_dim
    slots = struct.shapes[node.bottoms[0]][1] // d
    v = b.op("Reshape", [x[0], b.i64([-1, slots, d])])
    total = b.op("ReduceSum", [v, b.i64([1])], keepdims=0)
    squares = b.op("ReduceSum", [b.op("Mul", [v, v]), b.i64([1])], keepdims=0)
    b.op("Mul", [b.op("Sub", [b.op("Mul", [total, total]), squares]), b.f32(0.5)], tops[0])


def _weight_multiply(b, layer, node, x, tops, params, struct):
    w = params[0]
    prod = b.op("Mul", [b.op("Unsqueeze", [x[0], b.i64([2])]), b.const(w, "W")])
    b.op("Reshape", [prod, b.i64([-1, w.size])], tops[0])


def _batch_norm(b, layer, node, x, tops, params, struct):
    gamma, beta, mean, var = params
    inv_std = (1.0 / np.sqrt(var.astype(np.float64) + layer.eps)).astype(np.float32)
    xhat = b.op("Mul", [b.op("Sub", [x[0], b.f32(mean)]), b.f32(inv_std)])
    b.op("Add", [b.op("Mul", [b.f32(gamma), xhat]), b.f32(beta)], tops[0])


def _layer_norm(b, layer, node, x, tops, params, struct):
    gamma, beta = params
    centred = b.op("Sub", [x[0], b.op("ReduceMean", [x[0]], axes=[-1], keepdims=1)])
    var = b.op("ReduceMean", [b.op("Mul", [centred, centred])], axes=[-1], keepdims=1)
    inv_std = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [var, b.f32(layer.eps)])])])
    b.op("Add", [b.op("Mul", [b.f32(gamma), b.op("Mul", [centred, inv_std])]), b.f32(beta)], tops[0])


def _softmax(b, layer, node, x, tops, params, struct):
    logits = x[0]
    if layer.masked:  # x*factor - (1 - mask)*10000
        penalty = b.op("Mul", [b.op("Sub", [b.f32(1.0), x[1]]), b.f32(10000.0)])
        logits = b.op("Sub", [b.op("Mul", [logits, b.f32(layer.factor)]), penalty])
    b.op("Softmax", [logits], tops[0], axis=-1)


def _scale(b, layer, node, x, tops, params, struct):
    axis, f = layer.axis, layer.factor
    expanded = b.op("Unsqueeze", [x[0], b.i64([2 if axis == 0 else 1])])
    tiled = b.op("Tile", [expanded, b.i64([1, 1, f] if axis == 0 else [1, f, 1])])
    b.op("Reshape", [tiled, b.i64(_target_shape(struct, tops[0], layer))], tops[0])


def _matrix_multiply(b, layer, node, x, tops, params, struct):
    a, m = x
    if len(struct.shapes[node.bottoms[0]]) == 2 and len(struct.shapes[node.bottoms[1]]) == 3:
        rows = struct.shapes[node.bottoms[1]][0]
        product = b.op("MatMul", [a, b.op("Reshape", [m, b.i64([rows, -1])])])
        b.op("Reshape", [product, b.i64(_target_shape(struct, tops[0], layer))], tops[0])
    else:
        b.op("MatMul", [a, m], tops[0])


def _fused_reshape_concat(b, layer, node, x, tops, params, struct):
    slots = struct.shapes[node.bottoms[0]][1]
    cat = b.op("Concat", x, axis=2)                                                   # (B, S, Σe)
    width = struct.shapes[tops[1]][1]
    hist = b.op("Slice", [cat, b.i64([0]), b.i64([slots - 1]), b.i64([1])])
    b.op("Reshape", [hist, b.i64([-1, width])], tops[0])
    tgt = b.op("Slice", [cat, b.i64([slots - 1]), b.i64([slots]), b.i64([1])])
    b.op("Reshape", [tgt, b.i64([-1, width])], tops[1])


def _fused_reshape_concat_general(b, layer, node, x, tops, params, struct):
    cat = b.op("Concat", x, axis=2)
    b.op("Reshape", [cat, b.i64([-1, struct.shapes[tops[0]][1]])], tops[0])


def _sequence_mask(b, layer, node, x, tops, params, struct):
    """mask[b, 0, i, j] = (i < len_from[b]) & (j < len_to[b])."""
    lf, lt = layer.len_from, layer.len_to
    len_from = b.op("Reshape", [x[0], b.i64([-1, 1, 1, 1])])
    len_to = b.op("Reshape", [x[1], b.i64([-1, 1, 1, 1])])
    rows = b.op("Less", [b.f32(np.arange(lf, dtype=np.float32).reshape(1, 1, lf, 1)), len_from])
    cols = b.op("Less", [b.f32(np.arange(lt, dtype=np.float32).reshape(1, 1, 1, lt)), len_to])
    b.op("Cast", [b.op("And", [rows, cols])], tops[0], to=TensorProto.FLOAT)


def _dice(b, layer, node, x, tops, params, struct):
    """Dice with the statistics of the batch being predicted (per feature over every leading axis)."""
    width = struct.shapes[node.bottoms[0]][-1]
    rows = b.op("Reshape", [x[0], b.i64([-1, width])])
    centred = b.op("Sub", [rows, b.op("ReduceMean", [rows], axes=[0], keepdims=1)])
    var = b.op("ReduceMean", [b.op("Mul", [centred, centred])], axes=[0], keepdims=1)
    inv_std = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [var, b.f32(layer.eps)])])])
    p = b.op("Sigmoid", [b.op("Mul", [centred, inv_std])])
    rest = b.op("Mul", [b.op("Mul", [b.op("Sub", [b.f32(1.0), p]), b.f32(layer.alpha)]), rows])
    y = b.op("Add", [b.op("Mul", [p, rows]), rest])
    b.op("Reshape", [y, b.i64(_target_shape(struct, tops[0], layer))], tops[0])


EMITTERS = {
    "InnerProduct": _inner_product, "MLP": _mlp, "ReLU": _unary("Relu"), "Sigmoid": _unary("Sigmoid"),
    "ELU": _elu, "Dropout": _unary("Identity"), "Cast": _unary("Identity"), "FanOut": _fanout,
    "Concat": _concat, "Reshape": _reshape, "Slice": _slice, "Select": _select, "Gather": _select,
    "ReduceSum": _reduce_sum, "ReduceMean": _reduce_mean, "Add": _chain("Add"), "Sub": _chain("Sub"),
    "ElementwiseMultiply": _chain("Mul"), "Interaction": _interaction, "MultiCross": _multicross,
    "FmOrder2": _fm_order2, "WeightMultiply": _weight_multiply, "BatchNorm": _batch_norm,
    "LayerNorm": _layer_norm, "Softmax": _softmax, "Scale": _scale, "MatrixMultiply": _matrix_multiply,
    "FusedReshapeConcat": _fused_reshape_concat, "FusedReshapeConcatGeneral": _fused_reshape_concat_general,
    "SequenceMask": _sequence_mask, "PReLU_Dice": _dice,
}
# loss layer -> the ONNX op mapping its logits to the prediction Model.eval reports
LOSS_PREDICTIONS = {"BinaryCrossEntropyLoss": "Sigmoid", "MultiCrossEntropyLoss": "Sigmoid",
                    "CrossEntropyLoss": "Sigmoid"}


# -- parameters ------------------------------------------------------------------------------------
def _dense_params(struct: GraphStructure, dense_model: str, ntp_file: str | None) -> dict:
    """{layer name: [trainable arrays in spec order..., then non-trainable ones]} from the files."""
    specs = struct.trainable
    expected = sum(math.prod(s.shape) for _, s in specs)
    if not os.path.isfile(dense_model):
        raise CheckpointError(f"dense model file '{dense_model}' does not exist")
    found = os.path.getsize(dense_model)
    if found != 4 * expected:
        per_layer = ", ".join(f"{n}.{s.name}{tuple(s.shape)}" for n, s in specs)
        raise CheckpointError(f"dense model file '{dense_model}' has {found} bytes ({found / 4:g} float32); the graph "
                              f"needs {expected} float32 ({4 * expected} bytes): {per_layer}")
    flat, pos, out = np.fromfile(dense_model, dtype="<f4"), 0, {}
    for name, spec in specs:
        size = math.prod(spec.shape)
        out.setdefault(name, []).append(flat[pos:pos + size].reshape(spec.shape))
        pos += size
    _non_trainable(struct, dense_model, ntp_file, out)
    return out


def _non_trainable(struct, dense_model, ntp_file, out) -> None:
    owners = list(dict.fromkeys(n for n, _ in struct.non_trainable))
    if not owners:
        return
    path = ntp_file or f"{dense_model}.ntp.json"
    if not os.path.isfile(path):
        raise CheckpointError(f"layers {owners} keep running statistics, but the non-trainable parameter file "
                              f"'{path}' does not exist; pass ntp_file='<prefix>_dense_<iter>.model.ntp.json'")
    import json  # noqa: PLC0415

    with open(path) as f:
        entries = json.load(f).get("layers", [])
    if len(entries) != len(owners):
        raise CheckpointError(f"'{path}' has state for {len(entries)} layers; the graph has {len(owners)}: {owners}")
    for owner, entry in zip(owners, entries):
        for name, spec in struct.non_trainable:
            if name != owner:
                continue
            values = np.asarray(entry.get(spec.name.removeprefix("running_"), []), dtype=np.float32)
            if values.size != math.prod(spec.shape):
                raise CheckpointError(f"'{path}': layer '{owner}' {spec.name} has {values.size} values, expected "
                                      f"{math.prod(spec.shape)}")
            out.setdefault(owner, []).append(values.reshape(spec.shape))


def _sparse_table(folder: str, vec: int, name: str):
    keys = read_sparse_file(folder, "key", "<i8")
    vectors = read_sparse_file(folder, "emb_vector", "<f4")
    if vectors.size != keys.size * vec:
        raise CheckpointError(f"sparse folder '{folder}': {keys.size} keys but {vectors.size} floats in emb_vector; "
                              f"embedding '{name}' of the graph has vectors of {vec} floats "
                              f"({keys.size * vec} expected)")
    if np.unique(keys).size != keys.size:
        raise CheckpointError(f"sparse folder '{folder}': keys repeat; one vector per key is needed to export")
    if keys.size and keys.min() < 0:
        raise CheckpointError(f"sparse folder '{folder}': negative keys")
    return keys, vectors.reshape(keys.size, vec)


# -- embeddings ------------------------------------------------------------------------------------
def _lookup_rows(b: _Builder, keys_in: str, keys: np.ndarray, mode: str) -> str:
    """int64 rows of ``keys_in`` into a table whose row ``len(keys)`` is zero (absent/unseen -> that row)."""
    n = keys.size
    max_key = int(keys.max()) if n else -1
    if mode == "auto":
        mode = "table" if max_key + 2 <= max(TABLE_LOOKUP_LIMIT, 4 * n) else "search"
    if mode == "table":
        row_map = np.full(max_key + 2, n, dtype=np.int64)
        row_map[keys] = np.arange(n)
        outside = b.op("Or", [b.op("Less", [keys_in, b.i64(0)]), b.op("Greater", [keys_in, b.i64(max_key)])])
        index = b.op("Where", [outside, b.i64(max_key + 1), keys_in])
        return b.op("Gather", [b.const(row_map, "row_map"), index])
    if mode != "search":
        raise ConfigError(f"key_lookup must be 'auto', 'table' or 'search', got {mode!r}")
    order = np.argsort(keys, kind="stable")
    sorted_keys = b.const(keys[order], "sorted_keys")
    last = b.i64(max(n - 1, 0))
    lo = b.op("Mul", [keys_in, b.i64(0)])
    hi = b.op("Add", [lo, b.i64(n)])
    for _ in range(max(1, math.ceil(math.log2(n + 1)))):  # lower bound: first i with sorted[i] >= key
        mid = b.op("Div", [b.op("Add", [lo, hi]), b.i64(2)])
        right = b.op("Less", [b.op("Gather", [sorted_keys, b.op("Min", [mid, last])]), keys_in])
        lo, hi = b.op("Where", [right, b.op("Add", [mid, b.i64(1)]), lo]), b.op("Where", [right, hi, mid])
    at = b.op("Min", [lo, last])
    found = b.op("And", [b.op("Equal", [b.op("Gather", [sorted_keys, at]), keys_in]), b.op("Less", [lo, b.i64(n)])])
    return b.op("Where", [found, b.op("Gather", [b.const(order.astype(np.int64), "rows_of_sorted"), at]), b.i64(n)])


def _embedding(b: _Builder, spec, struct: GraphStructure, folder: str, key_lookup: str) -> None:
    sparse = {p.top_name: p for p in struct.input_layer.sparse_params}[spec.bottom_name]
    vec, slots, hot = int(spec.embedding_vec_size), sparse.slot_num, max(sparse.max_nnz)
    keys, vectors = _sparse_table(folder, vec, spec.sparse_embedding_name)
    table = b.const(np.concatenate([vectors, np.zeros((1, vec), np.float32)]), f"{spec.sparse_embedding_name}_table")
    keys_in = spec.bottom_name
    rows = _lookup_rows(b, keys_in, keys, key_lookup)
    gathered = b.op("Reshape", [b.op("Gather", [table, rows]), b.i64([-1, slots, hot, vec])])
    out = spec.sparse_embedding_name
    if spec.combiner == "mean":
        present = b.op("Cast", [b.op("Reshape", [b.op("Not", [b.op("Less", [keys_in, b.i64(0)])]),
                                                 b.i64([-1, slots, hot])])], to=TensorProto.FLOAT)
        count = b.op("Max", [b.op("ReduceSum", [present, b.i64([2])], keepdims=1), b.f32(1.0)])
        b.op("Div", [b.op("ReduceSum", [gathered, b.i64([2])], keepdims=0), count], out)
    else:
        b.op("ReduceSum", [gathered, b.i64([2])], out, keepdims=0)


def _declare_inputs(b: _Builder, struct: GraphStructure, convert_embedding: bool) -> None:
    inp = struct.input_layer
    if inp.dense_dim:
        b.inputs.append(helper.make_tensor_value_info(inp.dense_name, TensorProto.FLOAT, ["batch", inp.dense_dim]))
    if convert_embedding:
        used = {spec.bottom_name for spec in struct.embeddings}
        for p in inp.sparse_params:
            if p.top_name in used:
                b.inputs.append(helper.make_tensor_value_info(p.top_name, TensorProto.INT64,
                                                              ["batch", p.slot_num * max(p.max_nnz)]))
    else:
        for spec in struct.embeddings:
            shape = struct.embedding_shape(spec, 1)
            b.inputs.append(helper.make_tensor_value_info(spec.sparse_embedding_name, TensorProto.FLOAT,
                                                          ["batch", shape[1], shape[2]]))


# -- entry point -----------------------------------------------------------------------------------
def build_model(graph_config: str, dense_model: str, convert_embedding: bool = False, sparse_models=(),
                ntp_file: str | None = None, graph_name: str = "hugectr", key_lookup: str = "auto") -> onnx.ModelProto:
    """The ONNX model (not saved); see ``convert``."""
    struct = load_graph_structure(graph_config)
    params = _dense_params(struct, dense_model, ntp_file)
    b = _Builder(graph_name)
    _declare_inputs(b, struct, convert_embedding)
    if convert_embedding:
        sparse_models = list(sparse_models or [])
        if len(sparse_models) != len(struct.embeddings):
            raise CheckpointError(f"convert_embedding=True needs one sparse folder per embedding: got "
                                  f"{len(sparse_models)} for {[s.sparse_embedding_name for s in struct.embeddings]}")
        for spec, folder in zip(struct.embeddings, sparse_models):
            _embedding(b, spec, struct, folder, key_lookup)
    predictions = []
    for node in struct.graph.nodes:
        layer = node.layer
        if getattr(layer, "is_loss", False):
            op = LOSS_PREDICTIONS.get(layer.type_name)
            if op is None:
                raise layer.error(f"loss type {layer.type_name} has no ONNX prediction mapping; supported losses: "
                                  f"{sorted(LOSS_PREDICTIONS)}")
            logits = node.bottoms[0]
            if layer.type_name == "CrossEntropyLoss":  # P(class 1) = sigmoid(x1 - x0)
                logits = b.op("Sub", [b.op("Slice", [logits, b.i64([1]), b.i64([2]), b.i64([1])]),
                                      b.op("Slice", [logits, b.i64([0]), b.i64([1]), b.i64([1])])])
            predictions.append(b.op(op, [logits], b.fresh(f"pred_{layer.name}")))
            continue
        emit = EMITTERS.get(layer.type_name)
        if emit is None:
            raise layer.error(f"has no ONNX conversion in hugectr2onnx; convertible layer types: {sorted(EMITTERS)}")
        emit(b, layer, node, list(node.bottoms), list(node.tops), params.get(layer.name, []), struct)
    if not predictions:
        raise ConfigError(f"graph '{graph_config}' has no loss layer to take predictions from")
    if len(predictions) == 1:
        b.op("Identity", predictions, "output")
    else:
        b.op("Concat", predictions, "output", axis=1)
    b.outputs.append(helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", None]))
    graph = helper.make_graph(b.nodes, graph_name, b.inputs, b.outputs, initializer=b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hugectr2onnx")
    model.ir_version = min(model.ir_version, 9)
    return model


def _check_target(onnx_path: str) -> None:
    folder = os.path.dirname(os.path.abspath(onnx_path))
    if not os.path.isdir(folder):
        raise CheckpointError(f"cannot write ONNX model '{onnx_path}': folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(onnx_path) and not os.access(onnx_path, os.W_OK)):
        raise CheckpointError(f"cannot write ONNX model '{onnx_path}': '{folder}' is not writable; choose another path")


def convert(onnx_path: str, graph_config: str, dense_model: str, convert_embedding: bool = False, sparse_models=(),
            ntp_file: str | None = None, graph_name: str = "hugectr", key_lookup: str = "auto") -> onnx.ModelProto:
    """Write the ONNX model of a saved hugectr-core / HugeCTR model to ``onnx_path`` and return it.

    Args:
        onnx_path: target file.
        graph_config: graph JSON (``Model.graph_to_json``).
        dense_model: ``<prefix>_dense_<iter>.model``.
        convert_embedding: put the embeddings (and the key lookup) into the graph; needs ``sparse_models``.
        sparse_models: one ``<prefix><k>_sparse_<iter>.model`` folder per embedding, in graph order.
        ntp_file: BatchNorm running statistics (default ``<dense_model>.ntp.json``).
        graph_name: the ONNX graph's name.
        key_lookup: 'auto', 'table' (dense key -> row map) or 'search' (binary search in the graph).

    Example:
        >>> from hugectr2onnx.converter import convert
        >>> convert("dcn.onnx", "dcn.json", "dcn_dense_400.model", convert_embedding=True,
        ...         sparse_models=["dcn0_sparse_400.model"])                  # doctest: +SKIP
    """
    _check_target(onnx_path)
    model = build_model(graph_config, dense_model, convert_embedding, sparse_models, ntp_file, graph_name, key_lookup)
    onnx.checker.check_model(model)
    tmp = f"{onnx_path}.tmp-{os.getpid()}"
    try:
        if model.ByteSize() > (1 << 31) - (1 << 26):  # protobuf's 2 GiB limit: tables go to a side file
            onnx.save_model(model, tmp, save_as_external_data=True, location=os.path.basename(onnx_path) + ".data")
        else:
            onnx.save_model(model, tmp)
        os.replace(tmp, onnx_path)
    except OSError as exc:
        raise CheckpointError(f"cannot write ONNX model '{onnx_path}': {exc}") from exc
    return model


def csr_to_fixed_hotness(row_offsets, keys, batch: int, slot_num: int, hotness: int) -> np.ndarray:
    """A reader's CSR keys -> the converter's ``(batch, slot_num*hotness)`` int64 input, -1 padded."""
    offsets = np.asarray(row_offsets, dtype=np.int64)
    counts = np.diff(offsets)[: batch * slot_num]
    if counts.size != batch * slot_num or (counts > hotness).any():
        raise ConfigError(f"csr_to_fixed_hotness: need {batch * slot_num} segments of at most {hotness} keys, got "
                          f"{counts.size} segments, largest {int(counts.max()) if counts.size else 0}")
    out = np.full((batch * slot_num, hotness), -1, dtype=np.int64)
    seg = np.repeat(np.arange(counts.size), counts)
    pos = np.arange(seg.size) - offsets[seg]
    out[seg, pos] = np.asarray(keys)[: seg.size].astype(np.int64)
    return out.reshape(batch, slot_num * hotness)
