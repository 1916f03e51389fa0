"""``import hugectr``: HugeCTR's Python API, running on NumPy (any machine) or CuPy (NVIDIA GPUs).

Example:
    >>> import hugectr
    >>> solver = hugectr.CreateSolver(batchsize=1024, batchsize_eval=1024, lr=0.001)
    >>> optimizer = hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam)  # doctest: +SKIP
"""
from hugectr_core.enums import (Activation_t, AllReduceAlgo, Alignment_t, Check_t, CommunicationType,
                                DataReaderType_t, DeviceLayout, Distribution_t, Embedding_t, FcPosition_t,
                                FileSystemType_t, GroupLayer_t, HybridEmbeddingType, Initializer_t, Layer_t,
                                LrPolicy_t, MetricsType, Optimizer_t, PowerLaw_t, Regularizer_t, Tensor_t,
                                Update_t)
from hugectr_core.errors import (BackendError, CheckpointError, ConfigError, DataError, GraphError, HugeCTRError, LayerError,
                                 PluginError, TrainingError)
from hugectr_core.layers_api import (DataReaderSparseParam, DenseLayer, DenseLayerComputeConfig, Input,
                                     SparseEmbedding)
from hugectr_core.contracts.reader import Reader as _Reader
from hugectr_core.fused_path import GroupDenseLayer
from hugectr_core.lr_scheduler import LearningRateScheduler
from hugectr_core.model import Model
from hugectr_core.params import (AsyncParam, CreateOptimizer, DataReaderParams, DataSourceParams,
                                 HybridEmbeddingParam, OptParamsPy)
from hugectr_core.plugins import list_plugins
from hugectr_core.callbacks import TrainingCallback
from hugectr_core.solver import CreateSolver, Solver

Error = HugeCTRError
# HugeCTR's names for the readers Model.get_data_reader_train/eval return (32- and 64-bit keys); every reader
# plugin subclasses this contract, so isinstance checks and help() work on them
DataReader32 = DataReader64 = _Reader

_COLLECTION_NAMES = ("EmbeddingTableConfig", "EmbeddingCollectionConfig", "CommunicationStrategy",
                     "CompressionStrategy")


def __getattr__(name):
    """Embedding Collection objects come from their plugin, imported only when used."""
    if name in _COLLECTION_NAMES:
        try:
            import hugectr_embeddings_collection as ec
        except ImportError:
            raise PluginError(f"hugectr.{name} needs the Embedding Collection plugin: "
                              "pip install hugectr-embeddings-collection") from None
        return getattr(ec, name)
    raise AttributeError(f"module 'hugectr' has no attribute '{name}'")


__all__ = [n for n in dir() if n.isidentifier() and not n.startswith("_")]  # pytest may inject "@pytest_ar"
