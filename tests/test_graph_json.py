"""Graph JSON (formats.md 2.7): round trips give the same graph, weights and predictions."""
import json

import numpy as np
import pytest

import examples.dcn_learnable as dcn_script
import hugectr
from hugectr_core.errors import ConfigError, PluginError
from tests import e2e_models as E

BUILDERS = {"dcn": (dcn_script.generate, dcn_script.build_model), "dlrm": (E.generate_dlrm, E.build_dlrm),
            "wdl": (E.generate_wdl, E.build_wdl)}


def round_trip(model, tmp_path, include_dense=True):
    path = str(tmp_path / "graph.json")
    model.graph_to_json(path)
    clone = hugectr.Model(model.solver, model.reader_params, model.opt_params)
    clone.construct_from_json(path, include_dense)
    return clone, path


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_round_trip_same_summary_and_predictions(name, tmp_path):
    generate, build = BUILDERS[name]
    generate(str(tmp_path))
    model = build(str(tmp_path), "cpu")
    model.compile()
    model.fit(max_iter=5, display=0, eval_interval=0, snapshot=0)
    model.save_params_to_files(str(tmp_path / "m"), 5)
    clone, path = round_trip(model, tmp_path)
    clone.compile()
    assert clone.runtime.shapes == model.runtime.shapes
    assert [n.layer.type_name for n in clone.runtime.graph.nodes] == [n.layer.type_name for n in model.runtime.graph.nodes]
    clone.load_dense_weights(str(tmp_path / "m_dense_5.model"))
    clone.load_sparse_weights([str(tmp_path / f"m{k}_sparse_5.model") for k in range(len(model.sparse_embeddings))])
    batch = model.get_data_reader_eval().next_batch()
    ours, _, _ = model.runtime.eval_step(batch)
    theirs, _, _ = clone.runtime.eval_step(batch)
    np.testing.assert_array_equal(ours, theirs)
    doc = json.load(open(path))
    assert doc["layers"][0]["type"] == "Data" and doc["layers"][-1]["type"] == "BinaryCrossEntropyLoss"


def test_without_dense_network_a_new_head_trains(tmp_path):
    dcn_script.generate(str(tmp_path))
    model = dcn_script.build_model(str(tmp_path), "cpu")
    model.compile()
    clone, _ = round_trip(model, tmp_path, include_dense=False)
    assert clone.dense_layers == [] and len(clone.sparse_embeddings) == 1
    for layer in [hugectr.DenseLayer("Reshape", ["sparse_embedding1"], ["flat"], leading_dim=8 * 26),
                  hugectr.DenseLayer("InnerProduct", ["flat"], ["fc"], num_output=1),
                  hugectr.DenseLayer("BinaryCrossEntropyLoss", ["fc", "label"], ["loss"])]:
        clone.add(layer)
    clone.compile()
    clone.fit(max_iter=3, display=0, eval_interval=0, snapshot=0)
    assert clone.runtime.step == 3


def _write(tmp_path, doc):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_bad_graph_json_is_a_clear_error(tmp_path):
    dcn_script.generate(str(tmp_path))
    model = dcn_script.build_model(str(tmp_path), "cpu")
    model.compile()
    _, path = round_trip(model, tmp_path)
    doc = json.load(open(path))
    fresh = lambda: hugectr.Model(model.solver, model.reader_params, model.opt_params)  # noqa: E731
    broken = json.loads(json.dumps(doc))
    broken["layers"][3]["type"] = "NoSuchLayer"
    m = fresh()
    m.construct_from_json(_write(tmp_path, broken), True)
    with pytest.raises(PluginError, match="NoSuchLayer"):
        m.compile()
    broken = json.loads(json.dumps(doc))
    del broken["layers"][1]["sparse_embedding_hparam"]["embedding_vec_size"]
    with pytest.raises(ConfigError, match="no 'embedding_vec_size' key"):
        fresh().construct_from_json(_write(tmp_path, broken), True)
    broken = json.loads(json.dumps(doc))
    broken["layers"][2]["bogus_key"] = 1
    with pytest.raises(ConfigError, match="unknown key 'bogus_key'"):
        fresh().construct_from_json(_write(tmp_path, broken), True)
    with pytest.raises(ConfigError, match="not valid JSON"):
        (tmp_path / "bad.json").write_text("{")
        fresh().construct_from_json(str(tmp_path / "bad.json"), True)
