"""What users ``model.add(...)``: Input, SparseEmbedding, DenseLayer (formats.md 1.6, 1.7, 1.9)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .enums import Activation_t, FcPosition_t, Initializer_t, Regularizer_t, type_string
from .arg_types import check_field_types, check_int_list, is_int
from .errors import ConfigError


def tensor_names(value, argument: str, where: str) -> list:
    """A name or a list of names, as a non-empty list of non-empty strings (a ConfigError otherwise).

    Example:
        >>> tensor_names("fc1", "top_names", "DenseLayer(ReLU)")
        ['fc1']
    """
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{where}: {argument} must be a tensor name or a list of them (non-empty strings), "
                          f"got {value!r}")
    return names


@dataclass
class DataReaderSparseParam:
    """One sparse input: ``slot_num`` slots of up to ``nnz_per_slot`` keys each, named ``top_name``.

    Example:
        >>> DataReaderSparseParam("data1", 1, True, 26).max_nnz
        (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    """

    top_name: str
    nnz_per_slot: object
    is_fixed_length: bool
    slot_num: int

    def __post_init__(self):
        check_field_types(self, f"DataReaderSparseParam '{self.top_name}'")
        if not self.top_name:
            raise ConfigError("DataReaderSparseParam: top_name must be a non-empty tensor name")
        if self.slot_num < 1:
            raise ConfigError(f"DataReaderSparseParam '{self.top_name}': slot_num must be >= 1")
        nnz_ok = is_int(self.nnz_per_slot) or (isinstance(self.nnz_per_slot, (list, tuple)) and
                                               all(is_int(n) for n in self.nnz_per_slot))
        nnz = self.max_nnz if nnz_ok else ()
        if len(nnz) != self.slot_num or min(nnz) < 1:
            raise ConfigError(f"DataReaderSparseParam '{self.top_name}': nnz_per_slot must be an int >= 1 or "
                              f"a list of {self.slot_num} ints >= 1, got {self.nnz_per_slot!r}")

    @property
    def max_nnz(self) -> tuple:
        if isinstance(self.nnz_per_slot, int):
            return (self.nnz_per_slot,) * self.slot_num
        return tuple(int(n) for n in self.nnz_per_slot)


class Input:
    """The data layer: label(s), dense features and sparse inputs.

    Example:
        >>> inp = Input(label_dim=1, label_name="label", dense_dim=13, dense_name="dense",
        ...             data_reader_sparse_param_array=[DataReaderSparseParam("data1", 1, True, 26)])
        >>> inp.label_dim
        1
    """

    def __init__(self, label_dim=None, label_name=None, dense_dim=0, dense_name="dense",
                 data_reader_sparse_param_array=(), *, label_dims=None, label_names=None, label_weights=None):
        if label_dims is not None or label_names is not None:
            if label_dim is not None or label_name is not None:
                raise ConfigError("Input: give either label_dim/label_name or label_dims/label_names, not both")
            label_dims, label_names = list(label_dims or []), list(label_names or [])
        else:
            label_dims, label_names = [label_dim], [label_name]
        if len(label_dims) != len(label_names) or not label_dims:
            raise ConfigError("Input: label_dims and label_names must have the same non-zero length")
        if not all(is_int(d) and d >= 1 for d in label_dims) or not all(isinstance(n, str) and n for n in label_names):
            raise ConfigError(f"Input: every label needs a dim (an int >= 1) and a name (a string), got {label_dims}, "
                              f"{label_names}")
        if label_weights is not None and len(label_weights) != len(label_names):
            raise ConfigError("Input: label_weights must have one weight per label")
        if not is_int(dense_dim) or dense_dim < 0:
            raise ConfigError(f"Input: dense_dim must be an int >= 0, got {dense_dim!r}")
        if not isinstance(dense_name, str) or not dense_name:
            raise ConfigError(f"Input: dense_name must be a non-empty tensor name, got {dense_name!r}")
        if not isinstance(data_reader_sparse_param_array, (list, tuple)) or not all(
                isinstance(p, DataReaderSparseParam) for p in data_reader_sparse_param_array):
            raise ConfigError("Input: data_reader_sparse_param_array must be a list of hugectr.DataReaderSparseParam, "
                              f"got {data_reader_sparse_param_array!r}")
        self.label_dims = [int(d) for d in label_dims]
        self.label_names = list(label_names)
        self.label_weights = list(label_weights) if label_weights is not None else [1.0] * len(label_names)
        self.dense_dim = int(dense_dim)
        self.dense_name = dense_name
        self.sparse_params = list(data_reader_sparse_param_array)
        names = self.label_names + [dense_name] + [p.top_name for p in self.sparse_params]
        if len(set(names)) != len(names):
            raise ConfigError(f"Input: tensor names must be unique, got {names}")

    @property
    def label_dim(self) -> int:
        return sum(self.label_dims)

    @property
    def label_name(self) -> str:
        return self.label_names[0] if len(self.label_names) == 1 else "combined_multi_label"


@dataclass
class SparseEmbedding:
    """A legacy ("2G") sparse embedding.

    Example:
        >>> SparseEmbedding(embedding_type="DistributedSlotSparseEmbeddingHash",
        ...                 workspace_size_per_gpu_in_mb=75, embedding_vec_size=16, combiner="sum",
        ...                 sparse_embedding_name="sparse_embedding1", bottom_name="data1").combiner
        'sum'
    """

    embedding_type: object
    workspace_size_per_gpu_in_mb: float = 0
    embedding_vec_size: int = 1
    combiner: str = "sum"
    sparse_embedding_name: str = ""
    bottom_name: str = ""
    slot_size_array: list = field(default_factory=list)
    optimizer: object = None
    hybrid_embedding_param: object = None

    def __post_init__(self):
        check_field_types(self, f"SparseEmbedding '{self.sparse_embedding_name}'")
        self.slot_size_array = check_int_list(self.slot_size_array, "slot_size_array",
                                              f"SparseEmbedding '{self.sparse_embedding_name}'", 1)
        if self.optimizer is not None and type(self.optimizer).__name__ != "OptParamsPy":
            raise ConfigError(f"SparseEmbedding '{self.sparse_embedding_name}': optimizer must be a "
                              f"hugectr.CreateOptimizer(...) result or None, got {self.optimizer!r}")
        if self.combiner not in ("sum", "mean"):
            raise ConfigError(f"SparseEmbedding '{self.sparse_embedding_name}': combiner must be 'sum' or 'mean'")
        if not self.sparse_embedding_name or not self.bottom_name:
            raise ConfigError("SparseEmbedding: sparse_embedding_name and bottom_name are required")
        if self.embedding_vec_size < 1 or self.workspace_size_per_gpu_in_mb < 0:
            raise ConfigError(f"SparseEmbedding '{self.sparse_embedding_name}': embedding_vec_size must be >= 1 "
                              "and workspace_size_per_gpu_in_mb >= 0")

    @property
    def type_name(self) -> str:
        return type_string(self.embedding_type)


@dataclass
class DenseLayerComputeConfig:
    """HugeCTR's per-layer compute switches (accepted; the eager step computes the same result without them).

    Example:
        >>> DenseLayerComputeConfig(async_wgrad=True).fuse_wb
        False
    """

    async_wgrad: bool = False
    fuse_wb: bool = False


DENSE_LAYER_DEFAULTS = {
    "factor": 1.0, "eps": 1e-5, "gamma_init_type": Initializer_t.Default, "beta_init_type": Initializer_t.Default,
    "dropout_rate": 0.5, "elu_alpha": 1.0, "num_output": 1, "weight_init_type": Initializer_t.Default,
    "bias_init_type": Initializer_t.Default, "num_layers": 0, "leading_dim": 0, "time_step": 0, "batchsize": 1,
    "SeqLength": 1, "vector_size": 1, "selected": False, "selected_slots": [], "ranges": [], "indices": [],
    "weight_dims": [], "projection_dim": 0, "out_dim": 0, "axis": 1, "max_sequence_len_from": 1,
    "max_sequence_len_to": 1, "num_attention_heads": 1, "transpose_b": False, "target_weight_vec": [],
    "use_regularizer": False, "regularizer_type": Regularizer_t.L1, "lambda": 0.0, "pos_type": FcPosition_t.Non,
    "act_type": Activation_t.Relu, "num_outputs": [], "use_bias": True, "activations": [], "biases": [],
    "compute_config": None, "shape": [], "dim": 0, "index": [],
}


class DenseLayer:
    """A dense layer by HugeCTR type name; every keyword of HugeCTR's DenseLayer, with its default.

    Example:
        >>> fc = DenseLayer(layer_type="InnerProduct", bottom_names=["concat1"], top_names=["fc1"],
        ...                 num_output=1024)
        >>> fc.args["num_output"]
        1024
    """

    def __init__(self, layer_type, bottom_names, top_names, **kwargs):
        unknown = set(kwargs) - set(DENSE_LAYER_DEFAULTS)
        if unknown:
            raise TypeError(f"DenseLayer({type_string(layer_type)}) got unknown argument(s): {', '.join(sorted(unknown))}")
        self.layer_type = layer_type
        where = f"DenseLayer({type_string(layer_type)})"
        self.bottom_names = tensor_names(bottom_names, "bottom_names", where)
        self.top_names = tensor_names(top_names, "top_names", where)
        self.args = {**DENSE_LAYER_DEFAULTS, **kwargs}
        if self.args["compute_config"] is None:
            self.args["compute_config"] = DenseLayerComputeConfig()
        self.explicit_args = set(kwargs)

    @property
    def type_name(self) -> str:
        return type_string(self.layer_type)
