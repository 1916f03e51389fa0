"""The contracts every plugin implements: one base class per kind, one module each."""
from .embedding import Embedding, EmbeddingConfig
from .filesystem import FileSystem
from .layer import Layer, LayerConfig, LossLayer, ParamSpec, StepContext, WorkspaceSpec
from .optimizer import Optimizer
from .reader import Batch, Reader, SparseBatch

__all__ = ["Batch", "Embedding", "EmbeddingConfig", "FileSystem", "Layer", "LayerConfig", "LossLayer",
           "Optimizer", "ParamSpec", "Reader", "SparseBatch", "StepContext", "WorkspaceSpec"]
