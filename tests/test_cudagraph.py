"""use_cuda_graph: the network's forward+backward recorded once per key and replayed (hugectr_core.cudagraph).

CPU: the recording policy on a stand-in CUDA module (warm-up, record, replay, keys, failures), and what the
model summary says. GPU: a replayed network trains exactly like the eager one.
"""
import logging

import numpy as np
import pytest

import hugectr
from hugectr_core import cudagraph
from hugectr_core.backend import one_of_several_device_threads
from hugectr_core.cudagraph import NetworkGraphs
from hugectr_core.errors import BackendError
from hugectr_core.plugins import registry
from tests.helpers import DL, dense_model, random_batch


class FakeGraph:
    def __init__(self):
        self.launches = 0

    def launch(self, stream=None):
        self.launches += 1


class FakeStream:
    """Records whether it captures; ``end_error`` stands for an invalidated capture."""

    def __init__(self, end_error=None):
        self.capturing, self.end_error = False, end_error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def begin_capture(self):
        self.capturing = True

    def end_capture(self):
        self.capturing = False
        if self.end_error is not None:
            raise self.end_error
        return FakeGraph()


class FakeCuda:
    def __init__(self, stream):
        self.stream = stream
        self.Stream = lambda non_blocking=False: stream
        self.MemoryPool = lambda: type("Pool", (), {"malloc": None})()

    @staticmethod
    def using_allocator(_malloc):
        import contextlib

        return contextlib.nullcontext()

    @staticmethod
    def get_current_stream():
        return "caller"


class FakeXp:
    """Enough of CuPy's module for the recorder (not NumPy, so graphs are on)."""

    def __init__(self, end_error=None):
        self.cuda = FakeCuda(FakeStream(end_error))


@pytest.fixture(autouse=True)
def no_cublas_on_the_cpu(monkeypatch):
    """The recorder binds CuPy's cuBLAS handle to its stream; the stand-in has none."""
    monkeypatch.setattr(cudagraph.cublas, "prepare_recording", lambda: None)


def recorder(end_error=None, **kw):
    xp = FakeXp(end_error)
    return NetworkGraphs(xp, enabled=kw.get("enabled", True), unsafe_layers=kw.get("unsafe", [])), xp.cuda.stream


def test_a_key_runs_eagerly_first_then_is_recorded_then_replayed():
    graphs, stream = recorder()
    ran = []
    step = lambda: ran.append(stream.capturing)  # noqa: E731
    assert [graphs.run("full", step) for _ in range(4)] == ["eager", "recorded", "replayed", "replayed"]
    assert ran == [False, True]  # once eagerly, once while recording; replays run no Python
    assert graphs.graphs["full"].launches == 3  # recorded then launched at once, then twice more
    assert graphs.replays == 2 and graphs.why_eager is None
    assert "1 recorded, 2 replays" in graphs.describe()


def test_each_key_gets_its_own_graph_up_to_a_limit(monkeypatch):
    monkeypatch.setattr(cudagraph, "MAX_GRAPHS", 2)
    graphs, _ = recorder()
    for key in ("full", "short", "other"):
        graphs.run(key, lambda: None)
        graphs.run(key, lambda: None)
    assert sorted(graphs.graphs) == ["full", "short"]
    assert graphs.run("other", lambda: None) == "eager"  # past the limit: eager, not more graph memory


def test_a_recording_that_raises_turns_graphs_off_and_runs_the_step_eagerly(caplog):
    graphs, stream = recorder()
    calls = []

    def step():
        calls.append(stream.capturing)
        if stream.capturing:
            raise RuntimeError("cuBLAS refused during capture")

    graphs.run("full", step)
    with caplog.at_level(logging.WARNING, logger="hugectr"):
        assert graphs.run("full", step) == "eager"
    assert calls == [False, True, False] and not stream.capturing  # the capture was ended, then eager
    assert "cuBLAS refused during capture" in caplog.text and "runs eagerly" in caplog.text
    assert graphs.why_eager.startswith("recording failed: RuntimeError")
    assert graphs.run("full", step) == "eager" and not graphs.graphs


def test_an_invalidated_capture_is_a_failed_recording_too():
    graphs, _ = recorder(end_error=RuntimeError("cudaErrorStreamCaptureInvalidated"))
    graphs.run("full", lambda: None)
    assert graphs.run("full", lambda: None) == "eager"
    assert "cudaErrorStreamCaptureInvalidated" in graphs.why_eager


def test_a_cublas_that_cannot_be_readied_means_no_capture_and_an_eager_step(monkeypatch, caplog):
    """Two copies of libcublas, say: the handle is not bound, nothing records, the step runs eagerly."""
    def refuse():
        raise BackendError("use_cuda_graph: found 2 copies of libcublas 13 in this process")

    monkeypatch.setattr(cudagraph.cublas, "prepare_recording", refuse)
    graphs, stream = recorder()
    began = []
    stream.begin_capture = lambda: began.append(True)
    ran = []
    graphs.run("full", lambda: ran.append("eager"))
    with caplog.at_level(logging.WARNING, logger="hugectr"):
        assert graphs.run("full", lambda: ran.append("second")) == "eager"
    assert ran == ["eager", "second"] and not began
    assert "found 2 copies of libcublas" in graphs.why_eager and "runs eagerly" in caplog.text


def test_an_error_of_the_step_itself_still_reaches_the_caller():
    graphs, _ = recorder()
    graphs.run("full", lambda: None)

    def bad():
        raise ValueError("bad shapes")

    with pytest.raises(ValueError, match="bad shapes"):  # the eager rerun raises it for real
        graphs.run("full", bad)


@pytest.mark.parametrize("kw, reason", [({"enabled": False}, "use_cuda_graph=False"),
                                        ({"unsafe": ["mm (MatrixMultiply)"]}, "mm (MatrixMultiply)")])
def test_switched_off_or_unsafe_layers_run_eagerly_and_say_why(kw, reason):
    graphs, stream = recorder(**kw)
    assert [graphs.run("full", lambda: None) for _ in range(3)] == ["eager"] * 3
    assert reason in graphs.describe()


def test_threads_driving_several_gpus_run_eagerly():
    graphs, _ = recorder()
    with one_of_several_device_threads():
        assert [graphs.run("full", lambda: None) for _ in range(3)] == ["eager"] * 3
    assert "several GPUs from threads" in graphs.why_eager


def test_every_builtin_layer_says_whether_it_can_be_recorded():
    """The recordable layers are a deliberate list: a new layer starts as not recordable (the contract's
    default) until its forward and backward are checked for host reads and per-step host values."""
    layers = registry("layers")
    classes = {name: layers.load(name) for name in layers.names()}
    not_recordable = sorted(n for n, cls in classes.items() if not cls.cuda_graph_safe)
    assert not_recordable == ["GRU", "MatrixMultiply", "MultiHeadAttention"]


LAYERS = [DL("Reshape", ["emb"], ["flat"], leading_dim=4 * 8), DL("Concat", ["flat", "dense"], ["x0"]),
          DL("MultiCross", ["x0"], ["cross"], num_layers=2), DL("MLP", ["x0"], ["mlp"], num_outputs=[32, 16]),
          DL("Dropout", ["mlp"], ["drop"], dropout_rate=0.3), DL("Concat", ["drop", "cross"], ["x1"]),
          DL("BatchNorm", ["x1"], ["bn"]), DL("InnerProduct", ["bn"], ["logit"], num_output=1),
          DL("BinaryCrossEntropyLoss", ["logit", "label"], ["loss"])]


def build(device, use_cuda_graph, layers=LAYERS, **solver_kw):
    emb = hugectr.SparseEmbedding(embedding_type="DistributedSlotSparseEmbeddingHash",
                                  workspace_size_per_gpu_in_mb=1, embedding_vec_size=8, combiner="sum",
                                  sparse_embedding_name="emb", bottom_name="data1")
    model = dense_model(layers, sparse=[hugectr.DataReaderSparseParam("data1", 1, True, 4)], embeddings=[emb],
                        optimizer="Adam", device=device, batchsize=256, batchsize_eval=256,
                        use_cuda_graph=use_cuda_graph, **solver_kw)
    model.compile()
    return model


def test_the_summary_says_how_the_network_runs_on_the_cpu():
    assert "network runs eagerly: the NumPy backend has no CUDA graphs" in build("cpu", True).summary()
    mm = [DL("Reshape", ["dense"], ["d3"], shape=[-1, 2, 2]), DL("MatrixMultiply", ["d3", "d3"], ["mm"]),
          DL("Reshape", ["mm"], ["flat"], leading_dim=4), DL("InnerProduct", ["flat"], ["logit"], num_output=1),
          DL("BinaryCrossEntropyLoss", ["logit", "label"], ["loss"])]
    graphs = NetworkGraphs(object(), True, build("cpu", True, layers=mm).runtime._layers_not_graph_safe())
    assert graphs.why_eager == "layers that cannot be recorded in a CUDA graph: mm (MatrixMultiply)"


def train(model, batches):
    losses = [float(model.runtime.train_step(b, 1e-3)) for b in batches]
    return np.array(losses), model.runtime.weights_flat.get()


BATCHES = [random_batch(256, sparse={"data1": (4, 500)}, seed=s) for s in range(6)] + \
          [random_batch(100, sparse={"data1": (4, 500)}, seed=9)] * 3  # a short last batch: its own graph


@pytest.mark.gpu
@pytest.mark.parametrize("solver_kw", [{}, {"use_mixed_precision": True, "scaler": 1024.0},
                                       {"enable_tf32_compute": True}], ids=["fp32", "mixed", "tf32"])
def test_gpu_replayed_network_trains_like_the_eager_one(solver_kw):
    eager = build("gpu", False, **solver_kw)
    graphed = build("gpu", True, **solver_kw)
    loss_e, w_e = train(eager, BATCHES)
    loss_g, w_g = train(graphed, BATCHES)
    graphs = graphed.runtime.network_graphs
    assert graphs.why_eager is None, graphs.why_eager
    assert len(graphs.graphs) == 2 and graphs.replays == 5  # full: 1 eager, 1 recorded, 4 replays; short: 1
    # the same kernels with the same arguments in the same order: the same numbers (dropout masks included,
    # as the generator's state lives on the device and advances in the replay)
    np.testing.assert_allclose(loss_g, loss_e, rtol=1e-6, atol=0)
    np.testing.assert_allclose(w_g, w_e, rtol=1e-6, atol=1e-7)
    assert "network replayed from CUDA graphs" in graphed.summary()
