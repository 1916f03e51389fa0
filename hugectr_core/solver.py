"""``hugectr.CreateSolver``: training resources and hyper-parameters (formats.md 1.1)."""
from __future__ import annotations

import inspect
from dataclasses import MISSING, dataclass, field, fields

from .arg_types import check_field_types, is_int, is_number
from .enums import AllReduceAlgo, DeviceLayout, LrPolicy_t, MetricsType, type_string
from .errors import ConfigError


@dataclass
class Solver:
    """What ``CreateSolver`` returns. Every argument of HugeCTR's ``CreateSolver`` with its default.

    ``device`` is ours: 'auto' (GPU when CuPy sees one, else NumPy), 'cpu' or 'gpu'.

    Example:
        >>> solver = CreateSolver(batchsize=1024, batchsize_eval=1024, lr=0.001, vvgpu=[[0]])
        >>> solver.batchsize
        1024
    """

    model_name: str = ""
    seed: int = 0
    lr_policy: object = LrPolicy_t.fixed
    lr: float = 0.001
    warmup_steps: int = 1
    decay_start: int = 0
    decay_steps: int = 1
    decay_power: float = 2.0
    end_lr: float = 0.0
    max_eval_batches: int = 100
    batchsize_eval: int = 2048
    batchsize: int = 2048
    vvgpu: list = field(default_factory=lambda: [[0]])
    repeat_dataset: bool = True
    use_mixed_precision: bool = False
    enable_tf32_compute: bool = False
    scaler: float = 1.0
    metrics_spec: dict = field(default_factory=lambda: {MetricsType.AUC: 1.0})
    i64_input_key: bool = False
    use_algorithm_search: bool = True
    use_cuda_graph: bool = True
    gen_loss_summary: bool = True
    train_intra_iteration_overlap: bool = False
    train_inter_iteration_overlap: bool = False
    eval_intra_iteration_overlap: bool = False
    eval_inter_iteration_overlap: bool = False
    device_layout: object = DeviceLayout.LocalFirst
    use_embedding_collection: bool = False
    all_reduce_algo: object = AllReduceAlgo.NCCL
    grouped_all_reduce: bool = False
    num_iterations_statistics: int = 20
    perf_logging: bool = False
    drop_incomplete_batch: bool = True
    kafka_brockers: str = ""
    training_callbacks: list = field(default_factory=list)
    device: str = "auto"

    def __post_init__(self):
        self.validate()

    @property
    def device_count(self) -> int:
        return sum(len(ids) for ids in self.vvgpu)

    def validate(self) -> None:
        check_field_types(self, "CreateSolver")
        if not isinstance(self.vvgpu, (list, tuple)) or not self.vvgpu or not all(
                isinstance(ids, (list, tuple)) and ids for ids in self.vvgpu):
            raise ConfigError(f"vvgpu must be a non-empty list of non-empty GPU id lists, e.g. [[0]]; got {self.vvgpu!r}")
        ids = [gpu for host in self.vvgpu for gpu in host]
        if not all(is_int(gpu) and gpu >= 0 for gpu in ids) or any(len(set(host)) != len(host) for host in self.vvgpu):
            raise ConfigError(f"CreateSolver: vvgpu must list distinct GPU ids (ints >= 0) per host, got {self.vvgpu!r}")
        for name, enum in (("lr_policy", LrPolicy_t), ("device_layout", DeviceLayout), ("all_reduce_algo", AllReduceAlgo)):
            if type_string(getattr(self, name)) not in enum.__members__:
                raise ConfigError(f"CreateSolver: unknown {name} {getattr(self, name)!r}; use hugectr.{enum.__name__} "
                                  f"members ({', '.join(enum.__members__)})")
        self._validate_training_extras()
        for name in ("batchsize", "batchsize_eval", "max_eval_batches", "warmup_steps", "decay_steps"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"CreateSolver: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("batchsize", "batchsize_eval"):
            if getattr(self, name) % self.device_count:
                raise ConfigError(f"CreateSolver: {name}={getattr(self, name)} is not divisible by the "
                                  f"{self.device_count} devices of vvgpu={self.vvgpu}; the global batch is split evenly")
        if self.lr < 0 or self.end_lr < 0:
            raise ConfigError("CreateSolver: lr and end_lr must be >= 0")
        if self.decay_power < 1:
            raise ConfigError(f"CreateSolver: decay_power must be >= 1, got {self.decay_power}")
        if self.decay_start < 0:
            raise ConfigError("CreateSolver: decay_start must be >= 0")
        if self.use_mixed_precision and self.enable_tf32_compute:
            raise ConfigError("CreateSolver: use_mixed_precision and enable_tf32_compute are mutually exclusive")
        if self.scaler <= 0:
            raise ConfigError(f"CreateSolver: scaler must be > 0, got {self.scaler}")
        if self.device not in ("auto", "cpu", "gpu"):
            raise ConfigError(f"CreateSolver: device must be 'auto', 'cpu' or 'gpu', got {self.device!r}")
        for metric in self.metrics_spec:
            if str(getattr(metric, "value", metric)) not in MetricsType.__members__:
                raise ConfigError(f"CreateSolver: unknown metric {metric!r}; use hugectr.MetricsType members")

    def _validate_training_extras(self) -> None:
        """metrics_spec thresholds and training_callbacks, which fit() reads much later."""
        if not all(is_number(v) for v in self.metrics_spec.values()):
            raise ConfigError(f"CreateSolver: metrics_spec maps each hugectr.MetricsType to a number (its stopping "
                              f"threshold), got {self.metrics_spec!r}")
        from .callbacks import TrainingCallback  # noqa: PLC0415 - callbacks imports the solver's module

        bad = [cb for cb in self.training_callbacks if not isinstance(cb, TrainingCallback)]
        if bad:
            raise ConfigError(f"CreateSolver: training_callbacks must be hugectr.TrainingCallback instances, got {bad!r}")


# Performance switches of HugeCTR's that change no result and that this engine's step does not use yet
# (docs/performance.md); the summary names those a script turned on, so none is ignored silently.
UNUSED_SOLVER_SWITCHES = ("use_algorithm_search", "train_intra_iteration_overlap", "train_inter_iteration_overlap",
                          "eval_intra_iteration_overlap", "eval_inter_iteration_overlap")
UNUSED_LAYER_SWITCHES = ("async_wgrad", "fuse_wb")  # DenseLayerComputeConfig


def unused_switches(solver: Solver, dense_layers) -> list[str]:
    """The switches of ``UNUSED_SOLVER_SWITCHES`` and ``UNUSED_LAYER_SWITCHES`` that are on, by name.

    Example:
        >>> unused_switches(CreateSolver(train_inter_iteration_overlap=True), [])
        ['use_algorithm_search', 'train_inter_iteration_overlap']
    """
    names = [name for name in UNUSED_SOLVER_SWITCHES if getattr(solver, name)]
    for layer in dense_layers:
        config = layer.args.get("compute_config")
        names += [f"{name} ({layer.top_names[0]})" for name in UNUSED_LAYER_SWITCHES
                  if config is not None and getattr(config, name)]
    return names


_SOLVER_ARGS = {f.name for f in fields(Solver)}


def CreateSolver(**kwargs) -> Solver:  # noqa: N802 - HugeCTR's spelling
    """Create a ``Solver``; unknown arguments are an error, never ignored.

    Example:
        >>> solver = CreateSolver(max_eval_batches=300, batchsize_eval=16384, batchsize=16384,
        ...                       lr=0.001, vvgpu=[[0]], repeat_dataset=True, i64_input_key=True)
    """
    unknown = set(kwargs) - _SOLVER_ARGS
    if unknown:
        raise TypeError(f"CreateSolver got unknown argument(s): {', '.join(sorted(unknown))}")
    return Solver(**kwargs)


def document_keywords(func, cls) -> None:
    """Give a ``**kwargs`` factory of a dataclass the dataclass's signature and an argument list in its doc,
    so ``help(hugectr.CreateSolver)`` shows every argument with its default."""
    params, lines = [], []
    for f in fields(cls):
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else inspect.Parameter.empty)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default))
        lines.append(f"        {f.name}: default {default!r}" if default is not inspect.Parameter.empty
                     else f"        {f.name}: required")
    func.__signature__ = inspect.Signature(params, return_annotation=cls.__name__)
    func.__doc__ = (func.__doc__ or "").rstrip() + "\n\n    Args (keyword only):\n" + "\n".join(lines) + "\n"


document_keywords(CreateSolver, Solver)
