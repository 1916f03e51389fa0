"""HugeCTR's graph JSON (formats.md 2.7): ``Model.graph_to_json`` and ``Model.construct_from_json``.

Writing asks each layer for its extra keys (``Layer.json_params``); reading maps HugeCTR's keys back to
``DenseLayer`` keywords through one table here. A third-party layer whose extra keys are plain
DenseLayer keyword names round-trips with no entry in that table. Unlike HugeCTR we also write the
keys it forgets (MultiCross ``projection_dim``, Reshape ``shape``), so every graph rebuilds exactly.
"""
from __future__ import annotations

import json

from .enums import Activation_t, Initializer_t, Regularizer_t, type_string
from .errors import ConfigError, HugeCTRError
from .layers_api import DENSE_LAYER_DEFAULTS, DataReaderSparseParam, DenseLayer, Input, SparseEmbedding
from .params import OptParamsPy

_OPT_BLOCKS = {"Adam": ("adam_hparam", ("beta1", "beta2", "epsilon")),
               "AdaGrad": ("adagrad_hparam", ("initial_accu_value", "epsilon")),
               "MomentumSGD": ("momentum_sgd_hparam", ("momentum_factor",)),
               "Nesterov": ("nesterov_hparam", ("momentum_factor",)),
               "SGD": ("sgd_hparam", ("atomic_update",)),
               "Ftrl": ("ftrl_hparam", ("beta", "lambda1", "lambda2"))}
_INIT_KEYS = {"weight_init": "weight_init_type", "bias_init": "bias_init_type",
              "gamma_init": "gamma_init_type", "beta_init": "beta_init_type"}
# block name -> {json key: DenseLayer keyword}
_BLOCKS = {
    "fc_param": {"num_output": "num_output"},
    "mlp_param": {"num_outputs": "num_outputs", "use_bias": "use_bias", "biases": "biases",
                  "activations": "activations"},
    "bn_param": {"factor": "factor", "eps": "eps"},
    "ln_param": {"eps": "eps"},
    "elu_param": {"alpha": "elu_alpha"},
    "mc_param": {"num_layers": "num_layers", "projection_dim": "projection_dim"},
    "gru_param": {"num_output": "num_output", "batchsize": "batchsize", "SeqLength": "SeqLength",
                  "vector_size": "vector_size"},
    "prelu_dice_param": {"alpha": "elu_alpha", "eps": "eps"},
    "scale_param": {"axis": "axis", "factor": "factor"},
}
_TOP_LEVEL = {"rate": "dropout_rate", "target_weight": "target_weight_vec",
              "position": "pos_type", "activation": "act_type"}  # the last two: HugeCTR's FusedInnerProduct
_STRUCTURE = {"type", "bottom", "top", "name"}


def _listify(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _one_or_list(names):
    return names[0] if len(names) == 1 else list(names)


# -- writing -------------------------------------------------------------------------------------
def optimizer_json(opt: OptParamsPy) -> dict:
    kind = opt.type_name
    out = {"type": kind, "update_type": opt.update_name}
    if kind in _OPT_BLOCKS:
        block, keys = _OPT_BLOCKS[kind]
        out[block] = {k: getattr(opt, k) for k in keys}
    return out


def _data_json(inp: Input) -> dict:
    label = ({"top": inp.label_names[0], "label_dim": inp.label_dims[0]} if len(inp.label_names) == 1
             else {"top": inp.label_names, "label_dim": inp.label_dims})
    return {"type": "Data", "label": label, "dense": {"top": inp.dense_name, "dense_dim": inp.dense_dim},
            "sparse": [{"top": p.top_name, "nnz_per_slot": list(p.max_nnz), "is_fixed_length": p.is_fixed_length,
                        "slot_num": p.slot_num} for p in inp.sparse_params]}


def _embedding_json(spec: SparseEmbedding, emb, model_opt) -> dict:
    hparam = {"workspace_size_per_gpu_in_mb": spec.workspace_size_per_gpu_in_mb,
              "max_vocabulary_size_global": int(getattr(emb, "capacity", 0) or 0) if emb is not None else 0,
              "embedding_vec_size": spec.embedding_vec_size, "combiner": spec.combiner}
    if spec.slot_size_array:
        hparam["slot_size_array"] = list(spec.slot_size_array)
    return {"type": spec.type_name, "bottom": spec.bottom_name, "top": spec.sparse_embedding_name,
            "sparse_embedding_hparam": hparam, "optimizer": optimizer_json(spec.optimizer or model_opt)}


def graph_json(model) -> dict:
    rt = model._rt()
    embs = {e.name: e for e in rt.embeddings}
    layers = [_data_json(model.input_layer)]
    layers += [_embedding_json(s, embs.get(s.sparse_embedding_name), model.opt_params) for s in model.sparse_embeddings]
    by_top = {n.layer.config.top_names: n.layer for n in rt.graph.nodes if n.user_index >= 0}
    for dl in model.dense_layers:
        layer = by_top[tuple(dl.top_names)]
        entry = {"type": dl.type_name, "bottom": _one_or_list(dl.bottom_names), "top": _one_or_list(dl.top_names)}
        entry.update(layer.json_params())
        layers.append(entry)
    return {"layers": layers, "model_name": model.solver.model_name}


def write(model, path: str) -> None:
    with open(path, "w") as f:
        json.dump(graph_json(model), f, indent=2)


# -- reading -------------------------------------------------------------------------------------
def _require(entry: dict, key: str, where: str):
    if key not in entry:
        raise ConfigError(f"graph JSON: {where} has no '{key}' key")
    return entry[key]


def _input_from(entry: dict) -> Input:
    label, dense = _require(entry, "label", "the Data layer"), entry.get("dense", {"top": "dense", "dense_dim": 0})
    sparse = []
    for i, sp in enumerate(entry.get("sparse", [])):
        slots = int(_require(sp, "slot_num", f"sparse input {i}"))
        nnz = _require(sp, "nnz_per_slot", f"sparse input {i}")
        nnz = nnz * slots if isinstance(nnz, list) and len(nnz) == 1 else nnz  # older files: one value
        sparse.append(DataReaderSparseParam(_require(sp, "top", f"sparse input {i}"), nnz,
                                            bool(sp.get("is_fixed_length", True)), slots))
    if isinstance(label.get("top"), list):
        return Input(label_dims=label["label_dim"], label_names=label["top"], dense_dim=dense["dense_dim"],
                     dense_name=dense["top"], data_reader_sparse_param_array=sparse)
    return Input(label_dim=label["label_dim"], label_name=label["top"], dense_dim=dense["dense_dim"],
                 dense_name=dense["top"], data_reader_sparse_param_array=sparse)


def _optimizer_from(entry: dict | None):
    if not entry:
        return None
    kind = _require(entry, "type", "an embedding's optimizer")
    kw = {"optimizer_type": kind, "update_type": entry.get("update_type", "Global")}
    if kind in _OPT_BLOCKS:
        block, _ = _OPT_BLOCKS[kind]
        kw.update(entry.get(block, {}))
    return OptParamsPy(**kw)


def _embedding_from(entry: dict) -> SparseEmbedding:
    where = f"embedding '{entry.get('top')}'"
    hp = _require(entry, "sparse_embedding_hparam", where)
    return SparseEmbedding(embedding_type=entry["type"],
                           workspace_size_per_gpu_in_mb=_require(hp, "workspace_size_per_gpu_in_mb", where),
                           embedding_vec_size=_require(hp, "embedding_vec_size", where), combiner=hp.get("combiner", "sum"),
                           sparse_embedding_name=_require(entry, "top", "an embedding"),
                           bottom_name=_require(entry, "bottom", "an embedding"),
                           slot_size_array=hp.get("slot_size_array", []), optimizer=_optimizer_from(entry.get("optimizer")))


def _dense_kwargs(entry: dict) -> dict:
    kw = {}
    for key, value in entry.items():
        if key in _STRUCTURE:
            continue
        if key in _BLOCKS:
            kw.update(_block_kwargs(key, value))
        elif key in _TOP_LEVEL:
            kw[_TOP_LEVEL[key]] = value
        elif key == "selected":
            kw.update(selected=True, selected_slots=list(value))
        elif key == "regularizer":
            kw.update(use_regularizer=True, regularizer_type=Regularizer_t[value])
        elif key in _INIT_KEYS:
            kw[_INIT_KEYS[key]] = Initializer_t[value]
        elif key in DENSE_LAYER_DEFAULTS:
            kw[key] = value
        else:
            raise ConfigError(f"graph JSON: layer '{entry.get('top')}' ({entry.get('type')}) has unknown key '{key}'")
    return kw


def _block_kwargs(block: str, value: dict) -> dict:
    kw = {}
    for key, v in value.items():
        if key in _INIT_KEYS:
            kw[_INIT_KEYS[key]] = Initializer_t[v]
        elif key == "activation":
            kw["act_type"] = Activation_t.Relu if v == "Relu" else Activation_t.Non
        elif key == "num_output" and block == "mlp_param":
            continue  # the last of num_outputs
        elif key in _BLOCKS[block]:
            kw[_BLOCKS[block][key]] = v
        else:
            raise ConfigError(f"graph JSON: unknown key '{key}' in '{block}'")
    return kw


def read(model, path: str, include_dense_network: bool) -> None:
    """Add the Data layer, the embeddings and (optionally) the dense layers of a graph JSON to ``model``."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as exc:
        raise ConfigError(f"graph JSON '{path}' cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"graph JSON '{path}' is not valid JSON: {exc}") from exc
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"graph JSON '{path}' is not valid JSON: {exc}") from exc
    try:
        _add_layers(model, path, doc, include_dense_network)
    except HugeCTRError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as exc:
        # a malformed entry (a list where a dict belongs, a string for a number, an unknown enum name)
        raise ConfigError(f"graph JSON '{path}' is malformed ({type(exc).__name__}: {exc}); compare it with a file "
                          f"written by Model.graph_to_json") from exc


def _add_layers(model, path: str, doc, include_dense_network: bool) -> None:
    if not isinstance(doc, dict):
        raise ConfigError(f"graph JSON '{path}' must be an object with a 'layers' list")
    layers = _require(doc, "layers", f"'{path}'")
    if not isinstance(layers, list) or not all(isinstance(e, dict) for e in layers):
        raise ConfigError(f"graph JSON '{path}': 'layers' must be a list of objects")
    if not layers or layers[0].get("type") != "Data":
        raise ConfigError(f"graph JSON '{path}': the first layer must be of type 'Data'")
    model.add(_input_from(layers[0]))
    for entry in layers[1:]:
        kind = _require(entry, "type", f"a layer of '{path}'")
        if "sparse_embedding_hparam" in entry:
            model.add(_embedding_from(entry))
        elif include_dense_network:
            model.add(DenseLayer(kind, _listify(_require(entry, "bottom", kind)), _listify(_require(entry, "top", kind)),
                                 **_dense_kwargs(entry)))


__all__ = ["read", "write", "graph_json", "optimizer_json", "type_string"]
