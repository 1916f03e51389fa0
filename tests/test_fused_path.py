"""HugeCTR's fp16 fused-path spellings (hugectr_core.fused_path): FusedInnerProduct chains, GroupDenseLayer and
the Interaction gradient top of the 23.x DLRM sample train exactly like the plain layers they stand for."""
import json

import numpy as np
import pytest

import hugectr
from hugectr_core.errors import ConfigError
from tests.helpers import DL, dense_model, random_batch

FIP = "FusedInnerProduct"
BCE = DL("BinaryCrossEntropyLoss", ["fc3", "label"], ["loss"])
PLAIN_CHAIN = [DL("MLP", ["dense"], ["fc1"], num_outputs=[16], activations=["Relu"]),
               DL("MLP", ["fc1"], ["fc2"], num_outputs=[8], activations=["Relu"]),
               DL("MLP", ["fc2"], ["fc3"], num_outputs=[1], activations=["None"]), BCE]


def trained(model, steps=4, sparse=None):
    model.compile()
    batches = [random_batch(8, sparse=sparse, seed=s) for s in range(steps)]
    losses = [float(model.runtime.train_step(b, 0.05)) for b in batches]
    return np.array(losses), np.asarray(model.runtime.weights_flat).copy()


def assert_same_training(model, reference, sparse=None):
    loss, weights = trained(model, sparse=sparse)
    loss_ref, weights_ref = trained(reference, sparse=sparse)
    np.testing.assert_array_equal(loss, loss_ref)
    np.testing.assert_array_equal(weights, weights_ref)


def test_a_head_body_tail_chain_trains_like_the_mlp_layers_it_computes():
    """HugeCTR 3.x DLRM scripts: a Head names 4 tops, a Body reads and names 4, a Tail reads 4 and names 1."""
    chain = [DL(FIP, ["dense"], ["fc11", "fc12", "fc13", "fc14"], num_output=16, pos_type=hugectr.FcPosition_t.Head),
             DL(FIP, ["fc11", "fc12", "fc13", "fc14"], ["fc21", "fc22", "fc23", "fc24"], num_output=8,
                pos_type=hugectr.FcPosition_t.Body),
             DL(FIP, ["fc21", "fc22", "fc23", "fc24"], ["fc3"], num_output=1, pos_type=hugectr.FcPosition_t.Tail,
                act_type=hugectr.Activation_t.Non), BCE]
    renamed = [DL("MLP", ["dense"], ["fc11"], num_outputs=[16], activations=["Relu"]),
               DL("MLP", ["fc11"], ["fc21"], num_outputs=[8], activations=["Relu"]),
               DL("MLP", ["fc21"], ["fc3"], num_outputs=[1], activations=["None"]), BCE]
    model = dense_model(chain)
    assert [(layer.type_name, layer.bottom_names, layer.top_names) for layer in model.dense_layers[:3]] == \
        [("MLP", ["dense"], ["fc11"]), ("MLP", ["fc11"], ["fc21"]), ("MLP", ["fc21"], ["fc3"])]
    assert_same_training(model, dense_model(renamed))


def test_an_isolated_fused_inner_product_is_one_dense_relu_layer():
    model = dense_model([DL(FIP, ["dense"], ["fc1"], num_output=16, pos_type=hugectr.FcPosition_t.Isolated),
                         *PLAIN_CHAIN[1:]])
    assert_same_training(model, dense_model(PLAIN_CHAIN))


def test_group_dense_layer_names_every_top_and_trains_like_the_chain():
    group = hugectr.GroupDenseLayer(group_layer_type=hugectr.GroupLayer_t.GroupFusedInnerProduct,
                                    bottom_name_list=["dense"], top_name_list=["fc1", "fc2", "fc3"],
                                    num_outputs=[16, 8, 1], last_act_type=hugectr.Activation_t.Non)
    model = dense_model([group, BCE])
    model.compile()
    shapes = model.runtime.shapes["train"]
    assert (shapes["fc1"], shapes["fc2"], shapes["fc3"]) == ((8, 16), (8, 8), (8, 1))
    spelled_as_in_samples = hugectr.GroupDenseLayer(group_layer_type=hugectr.GroupLayer_t.GroupFusedInnerProduct,
                                                    bottom_name="dense", top_name_list=["fc1", "fc2", "fc3"],
                                                    num_outputs=[16, 8, 1], last_act_type=hugectr.Activation_t.Non)
    assert_same_training(dense_model([spelled_as_in_samples, BCE]), dense_model(PLAIN_CHAIN))


def _dlrm_head(interaction_tops, mlp_bottoms):
    emb = hugectr.SparseEmbedding(embedding_type="DistributedSlotSparseEmbeddingHash", workspace_size_per_gpu_in_mb=1,
                                  embedding_vec_size=4, combiner="sum", sparse_embedding_name="emb",
                                  bottom_name="data1")
    layers = [DL("MLP", ["dense"], ["bottom"], num_outputs=[4]),
              DL("Interaction", ["bottom", "emb"], interaction_tops),
              DL("MLP", mlp_bottoms, ["fc3"], num_outputs=[8, 1], activations=["Relu", "None"]), BCE]
    return dense_model(layers, sparse=[hugectr.DataReaderSparseParam("data1", 1, True, 3)], embeddings=[emb])


def test_the_interaction_gradient_top_of_the_dlrm_sample_is_an_alias():
    """HugeCTR 23.x's DLRM sample: Interaction tops ["interaction1", "interaction1_grad"], read by the top MLP."""
    sparse = {"data1": (3, 50)}
    sample = _dlrm_head(["interaction1", "interaction1_grad"], ["interaction1", "interaction1_grad"])
    assert [layer.top_names for layer in sample.dense_layers][1:3] == [["interaction1"], ["fc3"]]
    assert_same_training(sample, _dlrm_head(["interaction1"], ["interaction1"]), sparse=sparse)


def test_a_repeated_bottom_that_is_no_alias_stays():
    model = dense_model([DL("Add", ["dense", "dense"], ["twice"]), DL("InnerProduct", ["twice"], ["fc3"]), BCE])
    assert model.dense_layers[0].bottom_names == ["dense", "dense"]


def test_hugectr_graph_json_with_fused_inner_products_loads(tmp_path):
    """HugeCTR writes a FusedInnerProduct with "position" and "activation" beside its fc_param."""
    model = dense_model(PLAIN_CHAIN)
    model.compile()
    path = tmp_path / "graph.json"
    model.graph_to_json(str(path))
    doc = json.loads(path.read_text())
    fused = [{"type": FIP, "bottom": "dense", "top": ["fc11", "fc12", "fc13", "fc14"], "position": "Head",
              "activation": "Relu", "fc_param": {"num_output": 16}},
             {"type": FIP, "bottom": ["fc11", "fc12", "fc13", "fc14"], "top": "fc2", "position": "Tail",
              "activation": "Relu", "fc_param": {"num_output": 8}}]
    doc["layers"] = [doc["layers"][0], *fused, *[e for e in doc["layers"] if e.get("top") == "fc3" or
                                                e["type"] == "BinaryCrossEntropyLoss"]]
    path.write_text(json.dumps(doc))
    clone = hugectr.Model(model.solver, model.reader_params, model.opt_params)
    clone.construct_from_json(str(path), include_dense_network=True)
    clone.compile()
    assert [n.layer.type_name for n in clone.runtime.graph.nodes][:3] == ["MLP", "MLP", "MLP"]
    assert clone.runtime.shapes["train"]["fc2"] == (8, 8)


def test_layer_t_names_fused_inner_product():
    assert str(hugectr.Layer_t.FusedInnerProduct) == FIP and FIP in hugectr.Layer_t


@pytest.mark.parametrize("layer, message", [
    (DL(FIP, ["dense"], ["fc1"], num_output=4, pos_type=hugectr.FcPosition_t.Head),
     r"at position Head takes 1 or 2 bottom\(s\) and names 4 top\(s\)"),
    (DL(FIP, ["dense"], ["a", "b", "c", "d"], num_output=4, pos_type=hugectr.FcPosition_t.Body),
     r"at position Body takes 4 bottom\(s\)"),
    (DL(FIP, ["dense"], ["fc1"], num_output=4, pos_type="Sideways"), "pos_type must be one of FcPosition_t"),
    (DL(FIP, ["dense", "label", "dense", "label"], ["fc1"], num_output=4, pos_type=hugectr.FcPosition_t.Tail),
     "must be the tops of one FusedInnerProduct"),
    (DL(FIP, ["dense", "label"], ["a", "b", "c", "d"], num_output=4, pos_type=hugectr.FcPosition_t.Head),
     "an Interaction's gradient name"),
])
def test_a_misspelled_fused_chain_is_a_clear_error(layer, message):
    with pytest.raises(ConfigError, match=message):
        dense_model([layer])


@pytest.mark.parametrize("kwargs, message", [
    ({"top_name_list": ["fc1"], "num_outputs": [4]}, "at least two layers"),
    ({"top_name_list": ["fc1", "fc2"], "num_outputs": [4]}, "at least two layers"),
    ({"group_layer_type": "Grouped"}, "must be GroupLayer_t.GroupFusedInnerProduct"),
    ({"bottom_name_list": []}, "bottom_name_list must be a tensor name or a list of them"),
    ({"bottom_name_list": ["a", "b", "c"]}, "takes 1 or 2 names"),
    ({"last_act_type": "Sigmoid"}, "last_act_type must be"),
])
def test_a_bad_group_dense_layer_is_a_clear_error(kwargs, message):
    args = {"group_layer_type": hugectr.GroupLayer_t.GroupFusedInnerProduct, "bottom_name_list": ["dense"],
            "top_name_list": ["fc1", "fc2"], "num_outputs": [4, 1], **kwargs}
    with pytest.raises(ConfigError, match=message):
        hugectr.GroupDenseLayer(**args)


def test_fused_inner_product_refuses_an_unknown_activation():
    with pytest.raises(ConfigError, match="act_type must be Activation_t.Relu or Activation_t.Non, got 'Sigmoid'"):
        dense_model([DL(FIP, ["dense"], ["fc1"], num_output=4, pos_type="Isolated", act_type="Sigmoid")])


@pytest.mark.parametrize("kwargs, message", [
    ({"top_name_list": [1, 2]}, "top_name_list must be a tensor name or a list of them"),
    ({"bottom_name_list": None}, "bottom_name_list must be a tensor name or a list of them"),
    ({"num_outputs": "42"}, "num_outputs must be a list of ints >= 1"),
    ({"num_outputs": [4, "1"]}, "num_outputs must be a list of ints >= 1"),
])
def test_group_dense_layer_checks_its_argument_types(kwargs, message):
    args = {"group_layer_type": hugectr.GroupLayer_t.GroupFusedInnerProduct, "bottom_name_list": ["dense"],
            "top_name_list": ["fc1", "fc2"], "num_outputs": [4, 1], **kwargs}
    with pytest.raises(ConfigError, match=message):
        hugectr.GroupDenseLayer(**args)


@pytest.mark.parametrize("bottoms, tops", [(None, ["x"]), (["dense"], []), (["dense"], [5]), ([""], ["x"])])
def test_dense_layer_names_must_be_strings(bottoms, tops):
    with pytest.raises(ConfigError, match="must be a tensor name or a list of them"):
        DL("ReLU", bottoms, tops)


def test_an_alias_may_not_reuse_a_tensor_name():
    """An alias named like an existing tensor would silently redirect every later read of that name."""
    head = DL(FIP, ["dense"], ["h1", "dense2", "h3", "h4"], num_output=4, pos_type=hugectr.FcPosition_t.Head)
    with pytest.raises(hugectr.GraphError, match="tensor 'dense' is produced twice"):
        dense_model([DL(FIP, ["dense"], ["h1", "dense", "h3", "h4"], num_output=4,
                        pos_type=hugectr.FcPosition_t.Head)])
    with pytest.raises(hugectr.GraphError, match="tensor 'dense2' is produced twice"):
        dense_model([head, DL("ReLU", ["h1"], ["dense2"])])
    with pytest.raises(hugectr.GraphError, match="tensor 'h1' is produced twice"):  # two dense tops: the graph
        dense_model([DL("ReLU", ["dense"], ["h1"]), head, BCE]).compile()
    with pytest.raises(hugectr.GraphError, match="tensor 'r1' is produced twice"):  # a dense top, then an alias
        dense_model([DL("ReLU", ["dense"], ["r1"]), DL(FIP, ["dense"], ["h1", "r1", "h3", "h4"], num_output=4,
                                                        pos_type=hugectr.FcPosition_t.Head)])
    with pytest.raises(hugectr.GraphError, match="tensor 'label' is produced twice"):
        _dlrm_head(["interaction1", "label"], ["interaction1"])


def test_dense_tops_and_embeddings_may_not_reuse_input_names():
    emb = hugectr.SparseEmbedding(embedding_type="DistributedSlotSparseEmbeddingHash", workspace_size_per_gpu_in_mb=1,
                                  embedding_vec_size=4, combiner="sum", sparse_embedding_name="dense",
                                  bottom_name="data1")
    sparse = [hugectr.DataReaderSparseParam("data1", 1, True, 3)]
    with pytest.raises(hugectr.GraphError, match="tensor 'dense' is produced twice"):
        dense_model([], sparse=sparse, embeddings=[emb])
    with pytest.raises(hugectr.GraphError, match="tensor 'data1' is produced twice"):
        dense_model([DL("ReLU", ["dense"], ["data1"])], sparse=sparse)
