"""One error hierarchy for the whole project.

Every message says what was wrong, where (file, row, slot, layer) and what to do.
"""


class HugeCTRError(Exception):
    """Base class of every error the project raises on purpose.

    Example:
        >>> import hugectr
        >>> issubclass(hugectr.ConfigError, hugectr.HugeCTRError)   # catch them all with HugeCTRError
        True
    """


class ConfigError(HugeCTRError, ValueError):
    """A model, solver or layer configuration that cannot work.

    Example:
        >>> import hugectr
        >>> try:
        ...     hugectr.CreateSolver(batchsize=0)
        ... except hugectr.ConfigError as exc:
        ...     print(exc)
        CreateSolver: batchsize must be >= 1, got 0
    """


class LayerError(ConfigError):
    """A layer's configuration or shapes are invalid; the message names the layer.

    Example:
        >>> str(LayerError("fc1", "InnerProduct", "num_output must be >= 1"))
        "layer 'fc1' (InnerProduct): num_output must be >= 1"
    """

    def __init__(self, layer_name: str, layer_type: str, message: str):
        self.layer_name = layer_name
        self.layer_type = layer_type
        super().__init__(f"layer '{layer_name}' ({layer_type}): {message}")


class GraphError(ConfigError):
    """The graph cannot be built: missing tensors, cycles, duplicate names.

    Example:
        >>> issubclass(GraphError, ConfigError)
        True
    """


class DataError(HugeCTRError, ValueError):
    """Input data is malformed; the message names the file and record.

    Example:
        >>> raise DataError("train.bin: 100 bytes is not a whole number of 36-byte records")
        Traceback (most recent call last):
        hugectr_core.errors.DataError: train.bin: 100 bytes is not a whole number of 36-byte records
    """


class CheckpointError(HugeCTRError, ValueError):
    """A checkpoint cannot be written or does not match the model.

    Example:
        >>> issubclass(CheckpointError, ValueError)
        True
    """


class PluginError(HugeCTRError, LookupError):
    """A type name has no installed plugin, or two plugins claim the same name.

    Example:
        >>> import hugectr
        >>> try:
        ...     hugectr.Layer_t.NoSuchLayer
        ... except hugectr.PluginError:
        ...     print("not installed")
        not installed
    """


class BackendError(HugeCTRError, RuntimeError):
    """An argument or feature cannot be honoured on the current backend.

    Example:
        >>> issubclass(BackendError, RuntimeError)
        True
    """


class TrainingError(HugeCTRError, RuntimeError):
    """Training cannot continue (for example the loss became NaN).

    Example:
        >>> issubclass(TrainingError, HugeCTRError)
        True
    """


Error = HugeCTRError  # ``hugectr.Error``: the short name scripts catch (docs/errors.md)
