"""HugeCTR's enums.

Closed enums (``MetricsType``, ``Update_t``, ...) are plain ``Enum``s whose values are the strings
HugeCTR's graph JSON uses. ``Layer_t``, ``Embedding_t``, ``DataReaderType_t``, ``Optimizer_t`` and
``FileSystemType_t`` are views over the plugin registries: installing a layer package adds
``Layer_t.<Name>`` with no change here.

Example:
    >>> from hugectr_core.enums import Update_t
    >>> Update_t.Global.value
    'Global'
"""
from __future__ import annotations

from enum import Enum

from .errors import PluginError
from .plugins import registry


def _enum(name: str, members: str, doc: str = "") -> type[Enum]:
    enum = Enum(name, {m: m for m in members.split()}, type=str)
    first = members.split()[0]
    enum.__doc__ = (f"{doc or 'HugeCTR enum'}: {', '.join(members.split())}.\n\n"
                    f"Members are strings equal to their names (the graph JSON spelling).\n\n"
                    f"Example:\n    >>> import hugectr\n    >>> hugectr.{name}.{first}.value\n    '{first}'\n")
    return enum


MetricsType = _enum("MetricsType", "AUC AverageLoss HitRate NDCG SMAPE", "Evaluation metrics for CreateSolver(metrics_spec=...)")
AllReduceAlgo = _enum("AllReduceAlgo", "OneShot NCCL", "All-reduce algorithm for CreateSolver(all_reduce_algo=...)")
Tensor_t = _enum("Tensor_t", "Train Evaluate", "Which network check_out_tensor reads")
Initializer_t = _enum("Initializer_t", "Default Uniform XavierNorm XavierUniform Zero", "Weight initialisers of DenseLayer(weight_init_type=..., bias_init_type=...)")
Activation_t = _enum("Activation_t", "Relu Non", "Activation of fused layers (FusedInnerProduct, MLP)")
Regularizer_t = _enum("Regularizer_t", "L1 L2", "Regularizer of CreateSolver/Model (L1 or L2)")
FcPosition_t = _enum("FcPosition_t", "Non Head Body Tail Isolated", "Position of a FusedInnerProduct in a fused chain")
Check_t = _enum("Check_t", "Sum Non", "Data reader checksum mode")
Distribution_t = _enum("Distribution_t", "Uniform PowerLaw", "Key distribution of DataGeneratorParams")
PowerLaw_t = _enum("PowerLaw_t", "Long Medium Short Specific", "Power-law preset of DataGeneratorParams (alpha 0.9 / 1.1 / 1.3 or Specific)")
Alignment_t = _enum("Alignment_t", "Auto Non", "Hybrid embedding alignment")
Update_t = _enum("Update_t", "Local Global LazyGlobal", "Embedding update type of CreateOptimizer")
LrPolicy_t = _enum("LrPolicy_t", "fixed", "Learning-rate policy of CreateSolver")
DeviceLayout = _enum("DeviceLayout", "LocalFirst DataParallel", "Device layout of CreateSolver")
CommunicationType = _enum("CommunicationType", "IB_NVLink IB_NVLink_Hier NVLink_SingleNode", "Hybrid embedding communication type")
HybridEmbeddingType = _enum("HybridEmbeddingType", "Distributed", "Hybrid embedding type")
GroupLayer_t = _enum("GroupLayer_t", "GroupFusedInnerProduct", "Grouped layer type")


class TypeName(str):
    """A registered type name (a ``str``), remembering which registry it came from."""

    kind: str

    def __new__(cls, value: str, kind: str):
        obj = super().__new__(cls, value)
        obj.kind = kind
        return obj

    @property
    def name(self) -> str:
        return str(self)

    @property
    def value(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"<{self.kind}: {str(self)}>"


class RegistryView:
    """``Layer_t``-style namespace whose members are the names installed in one registry.

    Example:
        >>> import hugectr
        >>> hugectr.Layer_t.InnerProduct == "InnerProduct"
        True
    """

    def __init__(self, enum_name: str, kind: str, builtins: tuple = ()):
        self._enum_name = enum_name
        self._kind = kind
        self._builtins = builtins
        self.__doc__ = (f"{enum_name}: every {kind[:-1]} type installed (entry-point group hugectr.{kind}); "
                        f"a new plugin package adds {enum_name}.<Name>. Members are str subclasses equal to the "
                        f"HugeCTR type name.\n\nExample:\n    >>> import hugectr\n"
                        f"    >>> sorted(hugectr.{enum_name}) == sorted(map(str, hugectr.{enum_name}))\n    True\n")

    def _names(self) -> list[str]:
        return sorted(set(registry(self._kind).names()) | set(self._builtins))

    def __getattr__(self, name: str) -> TypeName:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._builtins or name in registry(self._kind):
            return TypeName(name, self._kind)
        raise PluginError(f"{self._enum_name}.{name}: " + registry(self._kind).missing_message(name))

    def __iter__(self):
        return iter(TypeName(n, self._kind) for n in self._names())

    def __contains__(self, name) -> bool:
        return str(name) in self._names()

    def __dir__(self):
        return self._names()

    def __repr__(self) -> str:
        return f"<{self._enum_name}: {', '.join(self._names())}>"


Layer_t = RegistryView("Layer_t", "layers", builtins=("FusedInnerProduct",))  # rewritten by Model.add (fused_path)
Embedding_t = RegistryView("Embedding_t", "embeddings")
DataReaderType_t = RegistryView("DataReaderType_t", "readers")
Optimizer_t = RegistryView("Optimizer_t", "optimizers")
FileSystemType_t = RegistryView("FileSystemType_t", "filesystems", builtins=("Local",))


def type_string(value) -> str:
    """The HugeCTR string of an enum member, a registry name or a plain string."""
    return value.value if isinstance(value, Enum) else str(value)
