"""``hugectr.tools.DataGeneratorParams`` (formats.md 3.9) and the key sampler the generator uses."""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field

import numpy as np

from .enums import Check_t, Distribution_t, PowerLaw_t, type_string
from .arg_types import check_field_types, check_int_list
from .errors import ConfigError

FORMATS = ("Raw", "RawAsync", "Parquet", "Norm")
POWER_LAW_ALPHA = {"Long": 0.9, "Medium": 1.1, "Short": 1.3}
LABEL_MODELS = ("random", "learnable")


@dataclass
class DataGeneratorParams:
    """What to generate (positional order and defaults as HugeCTR's ``DataGeneratorParams``).

    Keyword-only extras: ``seed`` (None = fresh entropy, like HugeCTR) and ``label_model``
    (``"random"`` or ``"learnable"``).

    Example:
        >>> p = DataGeneratorParams("RawAsync", 1, 13, 3, False, "train.bin", "val.bin", [10, 20, 30],
        ...                         num_samples=1024, eval_num_samples=256, seed=1)
        >>> p.hotness, p.key_offsets.tolist()
        ((1, 1, 1), [0, 10, 30])
    """

    format: object
    label_dim: int
    dense_dim: int
    num_slot: int
    i64_input_key: bool
    source: str
    eval_source: str
    slot_size_array: list
    nnz_array: list = field(default_factory=list)
    check_type: object = Check_t.Sum
    dist_type: object = Distribution_t.PowerLaw
    power_law_type: object = PowerLaw_t.Specific
    alpha: float = 1.2
    num_files: int = 128
    eval_num_files: int = 32
    num_samples_per_file: int = 40960
    num_samples: int = 5242880
    eval_num_samples: int = 1310720
    float_label_dense: bool = False
    num_threads: int = 1
    _: KW_ONLY
    seed: int | None = None
    label_model: str = "random"

    def __post_init__(self):
        check_field_types(self, "DataGeneratorParams")
        self.slot_size_array = check_int_list(self.slot_size_array, "slot_size_array", "DataGeneratorParams", 1)
        self.nnz_array = check_int_list(self.nnz_array, "nnz_array", "DataGeneratorParams", 1)
        self._check_shape()
        self._check_distribution()
        self._check_counts()

    def _fail(self, message: str):
        raise ConfigError(f"DataGeneratorParams: {message}")

    def _check_shape(self):
        if self.format_name not in FORMATS:
            self._fail(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.label_dim < 1 or self.dense_dim < 0 or self.num_slot < 1:
            self._fail(f"need label_dim >= 1, dense_dim >= 0, num_slot >= 1; got {self.label_dim}, "
                       f"{self.dense_dim}, {self.num_slot}")
        if len(self.slot_size_array) != self.num_slot or min(self.slot_size_array) < 1:
            self._fail(f"slot_size_array needs num_slot={self.num_slot} entries >= 1, got {self.slot_size_array}")
        if self.nnz_array and (len(self.nnz_array) != self.num_slot or min(self.nnz_array) < 1):
            self._fail(f"nnz_array needs num_slot={self.num_slot} entries >= 1 (or [] for one-hot), "
                       f"got {self.nnz_array}")
        if not self.source or not self.eval_source:
            self._fail("source and eval_source must be file names")
        if self.label_model not in LABEL_MODELS:
            self._fail(f"label_model must be one of {LABEL_MODELS}, got {self.label_model!r}")
        key_limit = 2 ** 63 if self.i64_input_key else 2 ** 32
        with_offsets = self.format_name in ("Raw", "RawAsync", "Norm")
        space = sum(self.slot_size_array) if with_offsets else max(self.slot_size_array)
        if space > key_limit:
            self._fail(f"keys up to {space - 1} do not fit {'int64' if self.i64_input_key else 'uint32'} keys "
                       f"(Raw/RawAsync/Norm keys include slot offsets); set i64_input_key=True or shrink slot_size_array")

    def _check_distribution(self):
        dist = type_string(self.dist_type)
        if dist not in Distribution_t.__members__:
            self._fail(f"dist_type must be Uniform or PowerLaw, got {self.dist_type!r}")
        law = type_string(self.power_law_type)
        if law not in PowerLaw_t.__members__:
            self._fail(f"power_law_type must be Long, Medium, Short or Specific, got {self.power_law_type!r}")
        if dist == "PowerLaw" and law == "Specific" and (not self.alpha > 0 or self.alpha == 1.0):
            self._fail(f"alpha must be > 0 and != 1 for PowerLaw_t.Specific, got {self.alpha}")

    def _check_counts(self):
        if self.num_threads < 1:
            self._fail(f"num_threads must be >= 1, got {self.num_threads}")
        if self.format_name in ("Parquet", "Norm"):
            if self.num_files < 1 or self.eval_num_files < 1 or self.num_samples_per_file < 1:
                self._fail(f"num_files, eval_num_files and num_samples_per_file must be >= 1 for {self.format_name}")
        elif self.num_samples < 1 or self.eval_num_samples < 1:
            self._fail("num_samples and eval_num_samples must be >= 1 for Raw/RawAsync")

    @property
    def format_name(self) -> str:
        return type_string(self.format)

    @property
    def hotness(self) -> tuple:
        """nnz per slot (one-hot when nnz_array is empty)."""
        return tuple(self.nnz_array) if self.nnz_array else (1,) * self.num_slot

    @property
    def alpha_value(self) -> float:
        law = type_string(self.power_law_type)
        return POWER_LAW_ALPHA.get(law, float(self.alpha))

    @property
    def key_offsets(self) -> np.ndarray:
        """Exclusive prefix sums of slot_size_array (int64)."""
        return np.concatenate([[0], np.cumsum(self.slot_size_array)[:-1]]).astype(np.int64)


def sample_keys(rng: np.random.Generator, slot_size: int, count: int, dist: str, alpha: float) -> np.ndarray:
    """``count`` slot-local keys in [0, slot_size): power law (key 0 hottest) or uniform; int64."""
    if dist == "Uniform":
        return rng.integers(0, slot_size, size=count, dtype=np.int64)
    u = rng.random(count)
    e = 1.0 - alpha
    y = ((float(slot_size) ** e - 1.0) * u + 1.0) ** (1.0 / e)    # inverse CDF on [1, S]
    keys = np.floor(y + 0.5).astype(np.int64) - 1                   # C's round(): half away from zero
    return np.clip(keys, 0, slot_size - 1)
