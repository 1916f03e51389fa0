"""The dense-layer contract.

A layer is stateless apart from its configuration: the engine owns every array. At ``compile()``
the engine asks each layer for its output shapes (``infer_shapes``), its trainable parameters
(``param_specs``) and scratch buffers (``workspace_specs``), places all of them in preplanned
buffers, then calls ``forward``/``backward`` with views into those buffers. A layer writes its
outputs in place (``tops[i][...] = ...`` or ``out=``) and allocates nothing it could have declared.

Shapes include the per-device batch dimension (HugeCTR's Reshape may fold it), and are passed in
explicitly because the same layer serves the train graph and the eval graph (two batch sizes).

Axis letters in names: b batch, s slot, e embedding vector, k input width, n output width.

Example:
    >>> class Double(Layer):
    ...     def infer_shapes(self, bottom_shapes):
    ...         return [bottom_shapes[0]]
    ...     def forward(self, ctx, bottoms, tops, params, ws):
    ...         ctx.xp.multiply(bottoms[0], 2, out=tops[0])
    ...     def backward(self, ctx, bottoms, tops, top_grads, bottom_grads, params, param_grads, ws):
    ...         if bottom_grads[0] is not None:
    ...             ctx.xp.multiply(top_grads[0], 2, out=bottom_grads[0])
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import HugeCTRError, LayerError

Shape = tuple  # of ints


@dataclass(frozen=True)
class LayerConfig:
    """What the user wrote: ``DenseLayer(layer_type, bottom_names, top_names, **args)``.

    ``args`` holds every DenseLayer keyword with its HugeCTR default filled in.
    """

    type_name: str
    bottom_names: tuple
    top_names: tuple
    args: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.top_names[0] if self.top_names else self.type_name


@dataclass(frozen=True)
class ParamSpec:
    """A parameter. ``init(rng, shape) -> np.ndarray`` draws its initial value (float64 ok).

    Trainable parameters are laid out in the dense model file in the order layers return them.
    ``trainable=False`` marks layer state the optimizer never touches (BatchNorm running stats):
    it lives in its own float32 buffer and is saved to the ``.ntp.json`` file. A layer receives
    ``params`` = trainable ones in order, then non-trainable ones in order; ``param_grads`` only
    for the trainable ones.
    """

    name: str
    shape: Shape
    init: Callable[[np.random.Generator, Shape], np.ndarray]
    trainable: bool = True


@dataclass(frozen=True)
class WorkspaceSpec:
    """A scratch buffer kept from forward to backward (e.g. a dropout mask)."""

    name: str
    shape: Shape
    dtype: Any = None  # None: the graph's compute dtype


@dataclass
class StepContext:
    """What a layer may know about the step being run."""

    xp: Any                        # numpy or cupy
    training: bool
    rng: Any = None                # xp.random.Generator, seeded from the solver
    batch_size: int = 0            # per-device batch (rows of the batch axis)
    current_batchsize: int = 0     # valid rows in this batch (< batch_size for a short last batch)
    device_count: int = 1          # devices across all hosts
    scaler: float = 1.0            # static loss scale (mixed precision)
    step: int = 0                  # 1-based training iteration
    row_offset: int = 0            # global batch row of this device's first row (several devices)
    global_batchsize: int = 0      # valid rows of the whole global batch (0: current_batchsize * device_count)

    @property
    def grad_scale(self) -> float:
        """Factor a loss applies to dL/dlogit: the scaled mean over the global batch (formats.md 3.1)."""
        rows = self.global_batchsize or max(self.current_batchsize, 1) * self.device_count
        return self.scaler / max(rows, 1)


class Layer:
    """Base class of every dense layer plugin.

    Class attributes describe the arity (``None`` for any number from ``min_bottoms`` on) and
    whether the top is a pure view of the bottom (``aliases_bottom``: no memory, no backward).
    """

    num_bottoms: int | None = 1
    min_bottoms: int = 1
    num_tops: int | None = 1
    aliases_bottom: bool = False
    supports_fp16: bool = True  # False for layers HugeCTR does not allow under use_mixed_precision
    # True when forward and backward can be recorded in a CUDA graph and replayed (use_cuda_graph):
    # device work on the current stream only, no host read of device data, no cupy.matmul (use
    # hugectr_core.cublas.matmul), and no host value that changes between steps other than the
    # context's row counts and loss scale. Off unless a layer says so: a replay re-runs the recorded
    # kernels with their recorded arguments.
    cuda_graph_safe: bool = False

    def __init__(self, config: LayerConfig):
        self.config = config
        self.name = config.name
        self.type_name = config.type_name
        self.args = config.args
        self._check_arity()
        try:
            self.validate_args()
        except (TypeError, ValueError) as exc:  # int("a"), list(5): an argument of the wrong type
            if isinstance(exc, HugeCTRError):
                raise
            raise self.error(f"an argument has the wrong type or value ({type(exc).__name__}: {exc}); compare "
                             f"the arguments with HugeCTR's layer book") from exc

    # -- configuration ---------------------------------------------------------------------
    def error(self, message: str) -> LayerError:
        return LayerError(self.name, self.type_name, message)

    def _check_arity(self) -> None:
        nb, nt = len(self.config.bottom_names), len(self.config.top_names)
        if self.num_bottoms is not None and nb != self.num_bottoms:
            raise self.error(f"needs {self.num_bottoms} bottom tensor(s), got {nb}: {list(self.config.bottom_names)}")
        if self.num_bottoms is None and nb < self.min_bottoms:
            raise self.error(f"needs at least {self.min_bottoms} bottom tensors, got {nb}")
        if self.num_tops is not None and nt != self.num_tops:
            raise self.error(f"needs {self.num_tops} top tensor(s), got {nt}: {list(self.config.top_names)}")
        clash = set(self.config.bottom_names) & set(self.config.top_names)
        if clash:
            raise self.error(f"a tensor cannot be both bottom and top: {sorted(clash)}")

    def validate_args(self) -> None:
        """Check hyper-parameters; raise ``self.error(...)`` naming the bad one."""

    def infer_shapes(self, bottom_shapes: list[Shape]) -> list[Shape]:
        raise NotImplementedError

    def param_specs(self, bottom_shapes: list[Shape]) -> list[ParamSpec]:
        return []

    def workspace_specs(self, bottom_shapes: list[Shape]) -> list[WorkspaceSpec]:
        return []

    def bottom_needs_grad(self, index: int) -> bool:
        """False for inputs that are never differentiated (labels of a loss)."""
        return True

    def top_dtypes(self, compute_dtype) -> list:
        """dtype of each top; the compute dtype (float16 under mixed precision) unless a layer says otherwise."""
        return [compute_dtype] * len(self.config.top_names)

    def json_params(self) -> dict:
        """The layer's extra keys in HugeCTR's graph JSON (formats.md 2.7)."""
        return {}

    # -- computation -------------------------------------------------------------------------
    def forward(self, ctx: StepContext, bottoms: list, tops: list, params: list, ws: dict) -> None:
        raise NotImplementedError

    def backward(self, ctx: StepContext, bottoms: list, tops: list, top_grads: list,
                 bottom_grads: list, params: list, param_grads: list, ws: dict) -> None:
        """Write ``bottom_grads`` (entries may be None: skip them) and overwrite ``param_grads``."""
        raise NotImplementedError


class LossLayer(Layer):
    """A loss: bottoms (logits, label), one top of shape (1, 1) holding the loss value.

    ``backward`` writes dL/dlogits already multiplied by ``ctx.grad_scale * self.weight``; it
    receives no top gradient. ``predict`` maps logits to the predictions metrics see.
    """

    num_bottoms = 2
    is_loss = True
    weight: float = 1.0  # set by compile(loss_names, loss_weights)

    def infer_shapes(self, bottom_shapes):
        if tuple(bottom_shapes[0]) != tuple(bottom_shapes[1]):
            raise self.error(f"logits {tuple(bottom_shapes[0])} and label {tuple(bottom_shapes[1])} "
                             "must have the same shape")
        return [(1, 1)]

    def bottom_needs_grad(self, index: int) -> bool:
        return index == 0

    def top_dtypes(self, compute_dtype) -> list:
        return [np.float32]  # the loss value is accumulated and reported in fp32, also under mixed precision

    def predict(self, xp, logits):
        raise NotImplementedError
