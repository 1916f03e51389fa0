"""``CreateSolver(use_cuda_graph=True)``: the network's part of a training step as a replayed CUDA graph.

As in HugeCTR without a hybrid embedding and an async reader, the graph holds the network only: the
forward and backward of every dense layer, loss included. The batch upload, the embeddings, the
all-reduce and the optimizer updates stay outside (they read host values that change every step: keys,
counts, the learning rate). One replay costs one launch where the eager network costs 100-200 (about
14 us of host time each), so the host no longer paces small per-GPU batches.

What a graph bakes in, and how this stays equal to the eager step:
  * every buffer address: the network's tensors, gradients, weights and workspaces are planned at
    ``compile()`` and never move, and temporaries come from a memory pool this recorder alone uses;
  * every host scalar: layers see the same ones each step except the row counts and the loss scale,
    which key the graphs (a full batch, the epoch's short last batch);
  * kernels only: a layer records into a graph only when it says it can (``Layer.cuda_graph_safe``:
    device work on the current stream, no host read, no per-step host value, no ``cupy.matmul``).

A key runs eagerly the first time (kernels compile, GEMM plans are made, lazy buffers appear), is
recorded the second time and replayed from then on. A recording that fails turns the graphs off for the
model with one warning naming the error, and the step runs eagerly.

Example (NumPy: nothing is captured, the network runs as is):
    >>> import numpy as np
    >>> steps = NetworkGraphs(np, enabled=True, unsafe_layers=[])
    >>> steps.run(("rows", 8), lambda: None)
    'eager'
    >>> steps.why_eager
    'the NumPy backend has no CUDA graphs'
"""
from __future__ import annotations

import logging

from . import cublas
from .backend import drives_devices_from_threads, is_numpy

log = logging.getLogger("hugectr")

MAX_GRAPHS = 4  # keys beyond these (unusual row counts) run eagerly rather than hold more graph memory


class NetworkGraphs:
    """Records and replays the network's forward+backward, one CUDA graph per key.

    Args:
        xp: the runtime's array module.
        enabled: ``solver.use_cuda_graph``.
        unsafe_layers: names (type) of the layers that cannot be recorded; the network runs eagerly.
    """

    def __init__(self, xp, enabled: bool, unsafe_layers):
        self.xp = xp
        self.graphs: dict = {}
        self.seen: set = set()
        self.replays = 0
        self._stream = self._pool = None
        self.why_eager = self._why_eager(xp, enabled, list(unsafe_layers))

    @staticmethod
    def _why_eager(xp, enabled: bool, unsafe_layers: list) -> str | None:
        if not enabled:
            return "CreateSolver(use_cuda_graph=False)"
        if is_numpy(xp):
            return "the NumPy backend has no CUDA graphs"
        if unsafe_layers:
            return f"layers that cannot be recorded in a CUDA graph: {', '.join(unsafe_layers)}"
        return None

    def run(self, key, network_step) -> str:
        """Run ``network_step`` (the forward and backward) for this key; says how: 'eager', 'recorded'
        (recorded, then launched) or 'replayed'."""
        if self.why_eager is None and drives_devices_from_threads():
            # one process driving several GPUs from threads: not yet measured with graphs, so not used
            self.why_eager = "one process drives several GPUs from threads (vvgpu=[[0, 1, ...]])"
        graph = self.graphs.get(key)
        if graph is not None:
            graph.launch(stream=self.xp.cuda.get_current_stream())
            self.replays += 1
            return "replayed"
        if self.why_eager is not None or key not in self.seen or len(self.graphs) >= MAX_GRAPHS:
            self.seen.add(key)
            network_step()
            return "eager"
        graph = self._record(network_step)
        if graph is None:
            network_step()
            return "eager"
        self.graphs[key] = graph
        graph.launch(stream=self.xp.cuda.get_current_stream())
        return "recorded"

    def _record(self, network_step):
        """The graph of one ``network_step`` on a stream and memory pool of its own; None (graphs off,
        warned once) when the recording fails: nothing of the step has run then."""
        xp = self.xp
        if self._stream is None:
            self._stream = xp.cuda.Stream(non_blocking=True)
            self._pool = xp.cuda.MemoryPool()  # temporaries the graphs keep using: never handed to others
        graph, error = None, None
        with xp.cuda.using_allocator(self._pool.malloc), self._stream:
            try:
                cublas.prepare_recording()  # CuPy refuses to bind cuBLAS to a stream once it records
            except Exception as err:  # noqa: BLE001 - no GEMM can be recorded: run eagerly
                error = err
            if error is None:
                graph, error = self._capture(network_step)
        if error is not None:
            self.why_eager = f"recording failed: {type(error).__name__}: {error}"
            log.warning("use_cuda_graph: the network could not be recorded in a CUDA graph (%s: %s); "
                        "it runs eagerly", type(error).__name__, error)
            return None
        return graph

    def _capture(self, network_step):
        """(graph, None), or (None, the error) when the step could not be captured."""
        self._stream.begin_capture()
        error = None
        try:
            network_step()
        except Exception as err:  # noqa: BLE001 - any failure means: not recordable, run eagerly
            error = err
        return self._end_capture(error)

    def _end_capture(self, error):
        try:
            graph = self._stream.end_capture()
        except Exception as err:  # noqa: BLE001 - an invalidated capture says so here
            return None, error or err
        return (None, error) if error is not None else (graph, None)

    def pool_bytes(self) -> int:
        """Device memory the graphs' own pool holds (their temporaries)."""
        return int(self._pool.total_bytes()) if self._pool is not None else 0

    def describe(self) -> str:
        """One line for the model summary."""
        if self.why_eager is not None:
            return f"network runs eagerly: {self.why_eager}"
        return f"network replayed from CUDA graphs ({len(self.graphs)} recorded, {self.replays} replays)"
