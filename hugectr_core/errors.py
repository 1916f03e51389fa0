"""One error hierarchy for the whole project.

Every message says what was wrong, where (file, row, slot, layer) and what to do.
"""


class HugeCTRError(Exception):
    """Base class of every error the project raises on purpose."""


class ConfigError(HugeCTRError, ValueError):
    """A model, solver or layer configuration that cannot work."""


class LayerError(ConfigError):
    """A layer's configuration or shapes are invalid; the message names the layer."""

    def __init__(self, layer_name: str, layer_type: str, message: str):
        self.layer_name = layer_name
        self.layer_type = layer_type
        super().__init__(f"layer '{layer_name}' ({layer_type}): {message}")


class GraphError(ConfigError):
    """The graph cannot be built: missing tensors, cycles, duplicate names."""


class DataError(HugeCTRError, ValueError):
    """Input data is malformed; the message names the file and record."""


class CheckpointError(HugeCTRError, ValueError):
    """A checkpoint cannot be written or does not match the model."""


class PluginError(HugeCTRError, LookupError):
    """A type name has no installed plugin, or two plugins claim the same name."""


class BackendError(HugeCTRError, RuntimeError):
    """An argument or feature cannot be honoured on the current backend."""


class TrainingError(HugeCTRError, RuntimeError):
    """Training cannot continue (for example the loss became NaN)."""
