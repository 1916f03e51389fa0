"""Reader, data-source and optimizer parameter objects of the spec (formats.md 1.2, 1.3)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .enums import Alignment_t, Check_t, CommunicationType, HybridEmbeddingType, Update_t, type_string
from .arg_types import check_field_types, check_int_list
from .errors import ConfigError
from .solver import document_keywords


@dataclass
class DataSourceParams:
    """Where data and checkpoints live: ``source`` is a ``FileSystemType_t`` (Local, HDFS, S3, GCS, Other).

    Example:
        >>> DataSourceParams().port
        9000
    """

    source: object = "Local"
    server: str = "localhost"
    port: int = 9000

    def __post_init__(self):
        check_field_types(self, "DataSourceParams")


@dataclass
class AsyncParam:
    """Parameters of the RawAsync reader. Positional order follows HugeCTR.

    Example:
        >>> AsyncParam(num_threads=1, num_batches_per_thread=16, shuffle=False,
        ...            multi_hot_reader=True, is_dense_float=True).multi_hot_reader
        True
    """

    num_threads: int = 16
    num_batches_per_thread: int = 4
    max_num_requests_per_thread: int = 512000
    io_depth: int = 4
    io_alignment: int = 512
    shuffle: bool = False
    aligned_type: object = Alignment_t.Non
    multi_hot_reader: bool = True
    is_dense_float: bool = True

    def __post_init__(self):
        check_field_types(self, "AsyncParam")
        if type_string(self.aligned_type) not in Alignment_t.__members__:
            raise ConfigError(f"AsyncParam: unknown aligned_type {self.aligned_type!r}; use hugectr.Alignment_t members")
        if self.io_depth < 1 or self.io_alignment < 1 or self.max_num_requests_per_thread < 1:
            raise ConfigError("AsyncParam: max_num_requests_per_thread, io_depth and io_alignment must be >= 1")
        if self.num_threads < 1 or self.num_batches_per_thread < 1:
            raise ConfigError("AsyncParam: num_threads and num_batches_per_thread must be >= 1")
        if not self.multi_hot_reader and self.is_dense_float:
            raise ConfigError("AsyncParam: multi_hot_reader=False (one-hot legacy reader) requires is_dense_float=False")


# HugeCTR's DataReaderParams default: the legacy one-hot reader (formats.md 1.2).
def _default_async_param() -> AsyncParam:
    return AsyncParam(16, 4, 512000, 4, 512, False, Alignment_t.Non, False, False)


@dataclass
class HybridEmbeddingParam:
    """Hybrid embedding parameters (what they do: hugectr_core/hybrid.py, docs/scaleout.md).

    Example:
        >>> p = HybridEmbeddingParam(2, -1, 0.01, 1.3e11, 1.9e11, 1.0,
        ...                          CommunicationType.IB_NVLink_Hier, HybridEmbeddingType.Distributed)
    """

    max_num_frequent_categories: int
    max_num_infrequent_samples: int
    p_dup_max: float
    max_all_reduce_bandwidth: float
    max_all_to_all_bandwidth: float
    efficiency_bandwidth_ratio: float
    communication_type: object = CommunicationType.IB_NVLink
    hybrid_embedding_type: object = HybridEmbeddingType.Distributed

    def __post_init__(self):
        check_field_types(self, "HybridEmbeddingParam")
        if not 0.0 <= self.p_dup_max <= 1.0:
            raise ConfigError(f"HybridEmbeddingParam: p_dup_max must be in [0, 1], got {self.p_dup_max}")
        for name in ("max_all_reduce_bandwidth", "max_all_to_all_bandwidth", "efficiency_bandwidth_ratio"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"HybridEmbeddingParam: {name} must be > 0")
        if type_string(self.communication_type) not in CommunicationType.__members__:
            raise ConfigError(f"HybridEmbeddingParam: unknown communication_type {self.communication_type!r}")


@dataclass
class DataReaderParams:
    """How to read training and evaluation data.

    Example:
        >>> r = DataReaderParams(data_reader_type="RawAsync", source=["./train.bin"],
        ...                      eval_source="./val.bin", check_type=Check_t.Non,
        ...                      async_param=AsyncParam(multi_hot_reader=True, is_dense_float=True))
        >>> r.source
        ['./train.bin']
    """

    data_reader_type: object
    source: object
    eval_source: str
    check_type: object = Check_t.Non
    keyset: object = ""
    cache_eval_data: int = 0
    num_samples: int = 0
    eval_num_samples: int = 0
    float_label_dense: bool = False
    read_file_sequentially: bool = False
    num_workers: int = 12
    slot_size_array: list = field(default_factory=list)
    data_source_params: DataSourceParams = field(default_factory=DataSourceParams)
    async_param: AsyncParam = field(default_factory=_default_async_param)

    def __post_init__(self):
        if isinstance(self.source, str):
            self.source = [self.source]
        if isinstance(self.source, tuple):
            self.source = list(self.source)
        self._check_types()
        if not self.source or not all(isinstance(s, str) and s for s in self.source):
            raise ConfigError(f"DataReaderParams: source must be a file name or a list of them, got {self.source!r}")
        if not isinstance(self.eval_source, str) or not self.eval_source:
            raise ConfigError(f"DataReaderParams: eval_source must be a file name, got {self.eval_source!r}")
        if self.num_workers < 1:
            raise ConfigError("DataReaderParams: num_workers must be >= 1")
        if self.keyset not in ("", [], None):
            raise ConfigError("DataReaderParams: keyset belongs to the embedding training cache, which HugeCTR "
                              "removed (deprecated); drop the keyset argument")
        self.slot_size_array = check_int_list(self.slot_size_array, "slot_size_array", "DataReaderParams", 0)
        if self.num_samples < 0 or self.eval_num_samples < 0 or self.cache_eval_data < 0:
            raise ConfigError("DataReaderParams: num_samples, eval_num_samples and cache_eval_data must be >= 0")

    def _check_types(self) -> None:
        check_field_types(self, "DataReaderParams")
        for name, cls in (("async_param", AsyncParam), ("data_source_params", DataSourceParams)):
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f"DataReaderParams: {name} must be a hugectr.{cls.__name__}(...), "
                                  f"got {getattr(self, name)!r}")
        if type_string(self.check_type) not in Check_t.__members__:
            raise ConfigError(f"DataReaderParams: unknown check_type {self.check_type!r}; use hugectr.Check_t.Non "
                              "or Check_t.Sum")

    @property
    def type_name(self) -> str:
        return type_string(self.data_reader_type)


@dataclass
class OptParamsPy:
    """What ``CreateOptimizer`` returns (formats.md 1.3); the learning rate comes from the Solver.

    Example:
        >>> OptParamsPy(optimizer_type="SGD").update_name
        'Global'
    """

    optimizer_type: object = "Adam"
    update_type: object = Update_t.Global
    beta: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    initial_accu_value: float = 0.0
    momentum_factor: float = 0.0
    atomic_update: bool = True
    lambda1: float = 0.0
    lambda2: float = 0.0

    def __post_init__(self):
        check_field_types(self, "CreateOptimizer")
        if type_string(self.update_type) not in Update_t.__members__:
            raise ConfigError(f"CreateOptimizer: unknown update_type {self.update_type!r}")
        if type_string(self.update_type) == "LazyGlobal" and self.type_name != "Adam":
            raise ConfigError("CreateOptimizer: update_type LazyGlobal is only defined for Adam")
        if not (0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0):
            raise ConfigError("CreateOptimizer: beta1 and beta2 must be in [0, 1)")
        if self.epsilon < 0 or self.initial_accu_value < 0:
            raise ConfigError("CreateOptimizer: epsilon and initial_accu_value must be >= 0")
        negative = [n for n in ("momentum_factor", "beta", "lambda1", "lambda2") if getattr(self, n) < 0]
        if negative:
            raise ConfigError(f"CreateOptimizer: {', '.join(negative)} must be >= 0")

    @property
    def type_name(self) -> str:
        return type_string(self.optimizer_type)

    @property
    def update_name(self) -> str:
        return type_string(self.update_type)


def CreateOptimizer(**kwargs) -> OptParamsPy:  # noqa: N802 - HugeCTR's spelling
    """Create optimizer parameters.

    Example:
        >>> opt = CreateOptimizer(optimizer_type="Adam", update_type=Update_t.Global,
        ...                       beta1=0.9, beta2=0.999, epsilon=0.0000001)
    """
    unknown = set(kwargs) - set(OptParamsPy.__dataclass_fields__)
    if unknown:
        raise TypeError(f"CreateOptimizer got unknown argument(s): {', '.join(sorted(unknown))}")
    return OptParamsPy(**kwargs)


document_keywords(CreateOptimizer, OptParamsPy)
