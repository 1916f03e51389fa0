"""Graph building, shape inference, memory planning and the training step on NumPy."""
import numpy as np
import pytest

import hugectr
from hugectr_core.errors import BackendError, ConfigError, GraphError, LayerError, PluginError
from tests.helpers import DL, dense_model, random_batch, solver

FC_LOSS = [DL("InnerProduct", ["dense"], ["fc1"], num_output=3), DL("ReLU", ["fc1"], ["relu1"]),
           DL("InnerProduct", ["relu1"], ["fc2"], num_output=1),
           DL("BinaryCrossEntropyLoss", ["fc2", "label"], ["loss"])]


def test_compile_places_params_in_one_flat_buffer():
    model = dense_model(FC_LOSS)
    model.compile()
    rt = model.runtime
    assert rt.weights_flat.size == 4 * 3 + 3 + 3 * 1 + 1
    w, b = rt.params["fc1"]
    assert np.shares_memory(w, rt.weights_flat) and np.shares_memory(b, rt.weights_flat)
    assert np.shares_memory(rt.param_grads["fc2"][0], rt.grads_flat)
    assert rt.shapes["train"]["relu1"] == (8, 3)


def test_training_step_matches_finite_differences_through_fanout():
    layers = [DL("InnerProduct", ["dense"], ["fc0"], num_output=3),
              DL("InnerProduct", ["fc0"], ["fa"], num_output=1), DL("InnerProduct", ["fc0"], ["fb"], num_output=1),
              DL("Add", ["fa", "fb"], ["sum"]), DL("BinaryCrossEntropyLoss", ["sum", "label"], ["loss"])]
    model = dense_model(layers, lr=0.0)
    model.compile()
    rt = model.runtime
    assert any(n.layer.type_name == "FanOut" for n in rt.graph.nodes)
    batch = random_batch(8)
    model.set_learning_rate(0.0)
    rt.train_step(batch, 0.0)
    analytic = rt.grads_flat.copy()
    w0 = rt.weights_flat.astype(np.float64).copy()

    def loss_at(w):
        rt.weights_flat[...] = w
        return float(rt.train_step(batch, 0.0))

    eps, numeric = 1e-3, np.zeros_like(w0)
    for i in range(w0.size):
        wp, wm = w0.copy(), w0.copy()
        wp[i] += eps
        wm[i] -= eps
        numeric[i] = (loss_at(wp) - loss_at(wm)) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=2e-2, atol=2e-4)
    fc0_grad = model.check_out_tensor("fc0", hugectr.Tensor_t.Train)
    assert fc0_grad.shape == (8, 3) and np.abs(fc0_grad).sum() > 0


def test_sgd_step_moves_weights_by_lr_times_grad():
    model = dense_model(FC_LOSS)
    model.compile()
    rt = model.runtime
    before = rt.weights_flat.copy()
    rt.train_step(random_batch(8), 0.5)
    np.testing.assert_allclose(rt.weights_flat, before - 0.5 * rt.grads_flat, rtol=1e-6)
    model.freeze_dense()
    frozen = rt.weights_flat.copy()
    rt.train_step(random_batch(8, seed=1), 0.5)
    np.testing.assert_array_equal(rt.weights_flat, frozen)


def test_eval_step_returns_sigmoid_predictions():
    model = dense_model(FC_LOSS)
    model.compile()
    pred, label, loss = model.runtime.eval_step(random_batch(8))
    assert pred.shape == (8, 1) and np.all((pred > 0) & (pred < 1))
    assert label.shape == (8, 1) and loss > 0


def test_short_batch_pads_and_normalises_by_valid_rows():
    model = dense_model(FC_LOSS)
    model.compile()
    rt = model.runtime
    full = random_batch(8)
    short = random_batch(8)
    short.size, short.label, short.dense = 5, full.label[:5], full.dense[:5]
    loss = float(rt.train_step(short, 0.0))
    assert np.all(rt.networks["train"].tensors["dense"][5:] == 0)
    assert np.all(rt.networks["train"].grads["fc2"][5:] == 0)
    logits = rt.networks["train"].tensors["fc2"][:5, 0].astype(np.float64)
    y = full.label[:5, 0]
    expected = np.mean(np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits))))
    assert loss == pytest.approx(expected, rel=1e-5)


def test_regularizer_adds_l2_term():
    layers = FC_LOSS[:-1] + [DL("BinaryCrossEntropyLoss", ["fc2", "label"], ["loss"], use_regularizer=True,
                                regularizer_type=hugectr.Regularizer_t.L2, **{"lambda": 0.1})]
    plain, reg = dense_model(FC_LOSS), dense_model(layers)
    plain.compile(), reg.compile()
    batch = random_batch(8)
    lp, lr_ = float(plain.runtime.train_step(batch, 0.0)), float(reg.runtime.train_step(batch, 0.0))
    w = reg.runtime.weights_flat.astype(np.float64)
    assert lr_ - lp == pytest.approx(0.1 / (2 * 8) * (w * w).sum(), rel=1e-4)


@pytest.mark.parametrize("layers, error, match", [
    ([DL("NoSuchLayer", ["dense"], ["x"]), DL("BinaryCrossEntropyLoss", ["x", "label"], ["loss"])],
     PluginError, "unknown layer type 'NoSuchLayer'"),
    ([DL("InnerProduct", ["nowhere"], ["fc1"]), DL("BinaryCrossEntropyLoss", ["fc1", "label"], ["loss"])],
     GraphError, "layer 'fc1' .*reads tensor 'nowhere'"),
    ([DL("Add", ["a", "dense"], ["b"]), DL("Add", ["b", "dense"], ["a"]),
      DL("BinaryCrossEntropyLoss", ["a", "label"], ["loss"])], GraphError, "cycle"),
    ([DL("InnerProduct", ["dense"], ["fc1"], num_output=2),
      DL("BinaryCrossEntropyLoss", ["fc1", "label"], ["loss"])], LayerError, "loss"),
    ([DL("InnerProduct", ["dense"], ["fc1"], num_output=1)], GraphError, "no loss layer"),
    ([DL("BinaryCrossEntropyLoss", ["dense", "label"], ["loss"]), DL("ReLU", ["dense"], ["r"])],
     GraphError, "after a loss"),
    ([DL("InnerProduct", ["dense"], ["dense"]), DL("BinaryCrossEntropyLoss", ["dense", "label"], ["loss"])],
     LayerError, "both bottom and top"),
])
def test_bad_graphs_name_the_layer(layers, error, match):
    with pytest.raises(error, match=match):
        dense_model(layers).compile()


def test_compile_before_input_and_bad_solver():
    model = hugectr.Model(solver(), None, hugectr.CreateOptimizer(optimizer_type="SGD"))
    with pytest.raises(GraphError, match="before an Input"):
        model.compile()
    with pytest.raises(ConfigError, match="not divisible"):
        solver(batchsize=9, vvgpu=[[0, 1]])
    with pytest.raises(ConfigError, match="mpirun"):
        dense_model(FC_LOSS, vvgpu=[[0], [1]]).compile()
    with pytest.raises(TypeError, match="unknown argument"):
        hugectr.CreateSolver(batch_size=3)
    with pytest.raises(TypeError, match="unknown argument"):
        DL("ReLU", ["a"], ["b"], num_outputz=3)


def test_model_add_takes_hugectr_keywords():
    """pybind names each overload of Model.add: input=, sparse_embedding=, dense_layer=, group_dense_layer=."""
    model = hugectr.Model(solver(), None, hugectr.CreateOptimizer(optimizer_type="SGD"))
    model.add(input=hugectr.Input(label_dim=1, label_name="label", dense_dim=4, dense_name="dense",
                                  data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("d", 1, True, 2)]))
    model.add(sparse_embedding=hugectr.SparseEmbedding(
        embedding_type="DistributedSlotSparseEmbeddingHash", workspace_size_per_gpu_in_mb=1, embedding_vec_size=4,
        combiner="sum", sparse_embedding_name="emb", bottom_name="d"))
    model.add(group_dense_layer=hugectr.GroupDenseLayer(hugectr.GroupLayer_t.GroupFusedInnerProduct, ["dense"],
                                                        ["fc1", "fc2"], [4, 1]))
    model.add(dense_layer=DL("BinaryCrossEntropyLoss", ["fc2", "label"], ["loss"]))
    model.compile()
    assert model.runtime.shapes["train"]["fc2"] == (8, 1) and len(model.sparse_embeddings) == 1
    with pytest.raises(TypeError, match="exactly one of item, input, sparse_embedding, dense_layer"):
        model.add(DL("ReLU", ["fc1"], ["r"]), dense_layer=DL("ReLU", ["fc1"], ["r"]))


def test_summary_lists_layers_and_memory(capsys):
    model = dense_model(FC_LOSS)
    model.compile()
    text = model.summary()
    assert "InnerProduct" in text and "(8, 3)" in text and "Memory plan" in text and "params" in text


def test_summary_names_the_performance_switches_this_engine_does_not_use():
    """HugeCTR's overlap and algorithm-search switches change no result; the summary says which ones a script
    turned on and this engine does not use, rather than ignoring them silently."""
    fast = [DL("InnerProduct", ["dense"], ["fc1"], num_output=3,
               compute_config=hugectr.DenseLayerComputeConfig(async_wgrad=True)), *FC_LOSS[1:]]
    model = dense_model(fast, train_intra_iteration_overlap=True, use_algorithm_search=False)
    model.compile()
    assert ("Not used by this engine yet (no result depends on them): train_intra_iteration_overlap, "
            "async_wgrad (fc1)") in model.summary()
    plain = dense_model(FC_LOSS, use_algorithm_search=False)
    plain.compile()
    assert "Not used by this engine" not in plain.summary()
