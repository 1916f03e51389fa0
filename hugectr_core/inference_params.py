"""``hugectr.inference.InferenceParams``: HugeCTR 23.x's offline-inference parameters, validated."""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ConfigError

# Arguments of HugeCTR's InferenceParams that configure the GPU embedding cache, the parameter
# server (HPS) or launch details. Here the whole table is in memory (every lookup hits) and every
# size comes from the graph JSON, so they change no result: accepted and validated, then ignored.
IRRELEVANT_ARGS = ("hit_rate_threshold", "use_gpu_embedding_cache", "cache_size_percentage", "scaler",
                   "use_algorithm_search", "use_cuda_graph", "number_of_worker_buffers_in_pool",
                   "number_of_refresh_buffers_in_pool", "thread_pool_size", "cache_refresh_percentage_per_iteration",
                   "maxnum_des_feature_per_sample", "refresh_delay", "refresh_interval",
                   "maxnum_catfeature_query_per_table_per_sample", "embedding_vecsize_per_table",
                   "embedding_table_names", "label_dim", "slot_num", "use_static_table", "use_context_stream",
                   "fuse_embedding_table")


@dataclass
class InferenceParams:
    """HugeCTR 23.x ``hugectr.inference.InferenceParams``.

    Used: ``model_name``, ``max_batchsize`` (rows per forward), ``dense_model_file``,
    ``sparse_model_files`` (one folder per embedding, add() order), ``i64_input_key``,
    ``use_mixed_precision``, ``device_id`` / ``deployed_devices`` (one model replica per device, batches
    dealt round robin; ``device_id`` is the first),
    ``non_trainable_params_file`` (BatchNorm running statistics; default: ``<dense>.ntp.json``
    when it exists), ``default_value_for_each_table`` (must be 0: unseen keys give zero vectors),
    ``volatile_db`` / ``persistent_db`` / ``update_source`` (must be empty: no parameter server).
    Accepted and irrelevant (they change no result here): see ``IRRELEVANT_ARGS``: the embedding
    cache knobs (the whole table is resident, every lookup hits), HPS sizes (read from the graph)
    and launch options. ``device`` is ours: 'auto' (GPU when CuPy sees one), 'cpu' or 'gpu'.

    Example:
        >>> p = InferenceParams(model_name="dlrm", max_batchsize=1024, hit_rate_threshold=1.0,
        ...                     dense_model_file="dlrm_dense_2000.model",
        ...                     sparse_model_files=["dlrm0_sparse_2000.model"], device_id=0,
        ...                     use_gpu_embedding_cache=False, cache_size_percentage=0.2, i64_input_key=False)
        >>> p.max_batchsize
        1024
    """

    model_name: str
    max_batchsize: int
    hit_rate_threshold: float = 1.0
    dense_model_file: str = ""
    sparse_model_files: list = field(default_factory=list)
    device_id: int = 0
    use_gpu_embedding_cache: bool = False
    cache_size_percentage: float = 0.2
    i64_input_key: bool = False
    use_mixed_precision: bool = False
    scaler: float = 1.0
    use_algorithm_search: bool = True
    use_cuda_graph: bool = True
    number_of_worker_buffers_in_pool: int = 2
    number_of_refresh_buffers_in_pool: int = 1
    thread_pool_size: int = 16
    cache_refresh_percentage_per_iteration: float = 0.0
    deployed_devices: list = field(default_factory=lambda: [0])
    default_value_for_each_table: list = field(default_factory=lambda: [0.0])
    volatile_db: object = ""
    persistent_db: object = ""
    update_source: object = ""
    maxnum_des_feature_per_sample: int = 26
    refresh_delay: float = 0.0
    refresh_interval: float = 0.0
    maxnum_catfeature_query_per_table_per_sample: list = field(default_factory=list)
    embedding_vecsize_per_table: list = field(default_factory=list)
    embedding_table_names: list = field(default_factory=list)
    label_dim: int = 1
    slot_num: int = 10
    non_trainable_params_file: str = ""
    use_static_table: bool = False
    use_context_stream: bool = True
    fuse_embedding_table: bool = False
    device: str = "auto"

    def __post_init__(self):
        if isinstance(self.sparse_model_files, str):
            self.sparse_model_files = [self.sparse_model_files]
        self.validate()

    def validate(self) -> None:
        where = "InferenceParams"
        if isinstance(self.max_batchsize, bool) or not isinstance(self.max_batchsize, int) or self.max_batchsize < 1:
            raise ConfigError(f"{where}: max_batchsize must be an integer >= 1, got {self.max_batchsize!r}")
        if not isinstance(self.dense_model_file, str) or not self.dense_model_file:
            raise ConfigError(f"{where}: dense_model_file is required (the '<prefix>_dense_<iter>.model' file)")
        if not all(isinstance(f, str) and f for f in self.sparse_model_files):
            raise ConfigError(f"{where}: sparse_model_files must be folder names, got {self.sparse_model_files!r}")
        for name in ("hit_rate_threshold", "cache_size_percentage", "cache_refresh_percentage_per_iteration"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ConfigError(f"{where}: {name} must be in [0, 1], got {getattr(self, name)}")
        if self.scaler <= 0:
            raise ConfigError(f"{where}: scaler must be > 0, got {self.scaler}")
        devices = list(self.deployed_devices or [self.device_id])
        if any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in devices + [self.device_id]):
            raise ConfigError(f"{where}: device_id and deployed_devices must be GPU ids >= 0, got "
                              f"{self.device_id!r} and {self.deployed_devices!r}")
        if len(set(devices)) != len(devices):
            raise ConfigError(f"{where}: deployed_devices lists a GPU twice: {devices}")
        if any(float(v) != 0.0 for v in self.default_value_for_each_table):
            raise ConfigError(f"{where}: default_value_for_each_table={self.default_value_for_each_table}: "
                              "unseen keys give zero vectors here (as in training's evaluation); pass [0.0]")
        for name in ("volatile_db", "persistent_db", "update_source"):
            if getattr(self, name) not in ("", None):
                raise ConfigError(f"{where}: {name} configures HugeCTR's parameter server (HPS), which this "
                                  "version does not have; leave it empty and give sparse_model_files")
        if self.device not in ("auto", "cpu", "gpu"):
            raise ConfigError(f"{where}: device must be 'auto', 'cpu' or 'gpu', got {self.device!r}")
