"""hugectr2onnx: onnxruntime predictions equal Model.eval predictions (fp32, 1e-5) for DCN, DLRM, W&D
and HugeCTR's sample graphs; bad input is explained."""
import importlib
import os
import sys

import numpy as np
import onnxruntime as ort
import pytest

from hugectr2onnx.converter import EMITTERS, convert, csr_to_fixed_hotness
from hugectr_core.errors import CheckpointError, LayerError

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))
from tests import e2e_models as E  # noqa: E402
import dcn_config as DCN_C  # noqa: E402
import dcn_learnable as DCN  # noqa: E402

STEPS = 4
TOL = 1e-5


def onnx_feed(model, batch, convert_embedding=True):
    """The converter's inputs for one reader batch: dense, and fixed-hotness keys (or embedding outputs)."""
    inp = model.input_layer
    feed = {inp.dense_name: np.asarray(batch.dense, np.float32)} if inp.dense_dim else {}
    used = {e.bottom_name for e in model.sparse_embeddings}
    for p in inp.sparse_params:
        if p.top_name in used and convert_embedding:
            sb = batch.sparse[p.top_name]
            feed[p.top_name] = csr_to_fixed_hotness(sb.row_offsets, sb.keys, batch.size, p.slot_num, max(p.max_nnz))
    if not convert_embedding:
        for e in model.sparse_embeddings:
            feed[e.sparse_embedding_name] = model.check_out_tensor(e.sparse_embedding_name)
    return feed


def eval_batch_and_predictions(model):
    reader = model.get_data_reader_eval()
    reader.set_source("")
    batch = reader.next_batch()
    pred, _label, _loss = model.runtime.eval_step(batch)
    return batch, pred


def save(model, d, name):
    model.graph_to_json(f"{d}/graph.json")
    model.save_params_to_files(f"{d}/{name}", STEPS)
    sparse = [f"{d}/{name}{k}_sparse_{STEPS}.model" for k in range(len(model.sparse_embeddings))]
    return f"{d}/graph.json", f"{d}/{name}_dense_{STEPS}.model", sparse


def check_export(model, d, name, key_lookup="auto", convert_embedding=True):
    graph, dense, sparse = save(model, d, name)
    batch, ours = eval_batch_and_predictions(model)
    convert(f"{d}/{name}.onnx", graph, dense, convert_embedding=convert_embedding, sparse_models=sparse,
            key_lookup=key_lookup)
    theirs = ort.InferenceSession(f"{d}/{name}.onnx").run(None, onnx_feed(model, batch, convert_embedding))[0]
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=TOL)
    return batch, ours


def train(model, steps=STEPS):
    model.compile()
    for _ in range(steps):
        model.train()
    return model


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setitem(E.DLRM, "train", 4 * 512)
    monkeypatch.setitem(E.DLRM, "eval", 2048)
    for key, value in (("files", 1), ("per_file", 4096), ("eval_files", 1)):
        monkeypatch.setitem(E.WDL, key, value)
    monkeypatch.setattr(DCN_C, "TRAIN_SAMPLES", 4 * 512)
    monkeypatch.setattr(DCN_C, "EVAL_SAMPLES", 2048)


@pytest.mark.parametrize("key_lookup", ["table", "search"])
def test_dlrm_matches_onnxruntime(tmp_path, small, key_lookup):
    E.generate_dlrm(str(tmp_path))
    model = train(E.build_dlrm(str(tmp_path)))
    check_export(model, str(tmp_path), "dlrm", key_lookup=key_lookup)


def test_wdl_matches_onnxruntime_with_and_without_embeddings(tmp_path, small):
    E.generate_wdl(str(tmp_path))
    model = train(E.build_wdl(str(tmp_path)))
    check_export(model, str(tmp_path), "wdl")
    check_export(model, str(tmp_path), "wdl", convert_embedding=False)  # embedding outputs are inputs


def test_dcn_matches_onnxruntime_and_unseen_keys_read_zeros(tmp_path, small):
    d = str(tmp_path)
    DCN.generate(d)
    model = train(DCN.build_model(d, "cpu"))
    batch, _ = check_export(model, d, "dcn")
    feed = onnx_feed(model, batch)
    feed["data1"][:, 5] = 10**12        # never seen in training
    feed["data1"][:, 6] = -1            # absent
    session = ort.InferenceSession(f"{d}/dcn.onnx")
    got = session.run(None, feed)[0]
    # the same rows through the exported dense part with those slots' vectors zeroed
    convert(f"{d}/dense_only.onnx", f"{d}/graph.json", f"{d}/dcn_dense_{STEPS}.model")
    model.runtime.eval_step(batch)
    emb = model.check_out_tensor("sparse_embedding1")
    emb[:, 5:7, :] = 0
    want = ort.InferenceSession(f"{d}/dense_only.onnx").run(None, {"dense": batch.dense, "sparse_embedding1": emb})[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


# -- HugeCTR's sample graphs (tests/test_sample_graphs.py builds them) ----------------------------
SAMPLES = ["test_wide_and_deep", "test_dcn[v1]", "test_dcn[v2]", "test_deepfm", "test_din", "test_mmoe",
           "test_ncf", "test_neumf", "test_dlrm", "test_bst"]


def _run_sample(tmp_path, monkeypatch, test_id):
    """Run a sample-graph test with its training replaced by a few steps; return the model."""
    samples = importlib.import_module("tests.test_sample_graphs")
    captured = {}

    def brief_training(model, steps=100, lr=0.001, margin=0.02, loss_names=None, loss_weights=None):
        if loss_names:
            model.compile(loss_names=loss_names, loss_weights=loss_weights)
        else:
            model.compile()
        for _ in range(STEPS):
            model.train()
        captured["model"] = model

    monkeypatch.setattr(samples, "train_and_check", brief_training)
    name, _, param = test_id.partition("[")
    func = getattr(samples, name)
    if param:
        func(tmp_path, {"v1]": 0, "v2]": 4}[param])
    else:
        func(tmp_path)
    return captured["model"]


@pytest.mark.parametrize("test_id", SAMPLES)
def test_sample_graphs_match_onnxruntime(tmp_path, monkeypatch, test_id):
    model = _run_sample(tmp_path, monkeypatch, test_id)
    types = {dl.type_name for dl in model.dense_layers}
    if "MultiHeadAttention" in types:  # BST: no conversion yet, and the error says which layer
        with pytest.raises(LayerError, match=r"\(MultiHeadAttention\): has no ONNX conversion"):
            check_export(model, str(tmp_path), "sample")
        return
    check_export(model, str(tmp_path), "sample")


# -- bad input ------------------------------------------------------------------------------------
@pytest.fixture
def dlrm_files(tmp_path, small):
    E.generate_dlrm(str(tmp_path))
    model = train(E.build_dlrm(str(tmp_path)), steps=1)
    return model, save(model, str(tmp_path), "dlrm")


def test_dense_file_that_does_not_match_the_graph(tmp_path, dlrm_files):
    _model, (graph, dense, sparse) = dlrm_files
    short = tmp_path / "short.model"
    short.write_bytes(open(dense, "rb").read()[:-4])
    with pytest.raises(CheckpointError, match=r"has \d+ bytes .* the graph needs \d+ float32 .*mlp1\.weight0\(13, 64\)"):
        convert(str(tmp_path / "m.onnx"), graph, str(short), convert_embedding=True, sparse_models=sparse)
    with pytest.raises(CheckpointError, match="one sparse folder per embedding"):
        convert(str(tmp_path / "m.onnx"), graph, dense, convert_embedding=True, sparse_models=[])


def test_sparse_folder_that_does_not_match_the_graph(tmp_path, dlrm_files):
    _model, (graph, dense, sparse) = dlrm_files
    folder = tmp_path / "bad_sparse"
    folder.mkdir()
    np.arange(3, dtype="<i8").tofile(folder / "key")
    np.zeros(3 * 8, dtype="<f4").tofile(folder / "emb_vector")
    with pytest.raises(CheckpointError, match=r"3 keys but 24 floats .* vectors of 16 floats \(48 expected\)"):
        convert(str(tmp_path / "m.onnx"), graph, dense, convert_embedding=True, sparse_models=[str(folder)])


def test_export_path_that_is_not_writable(tmp_path, dlrm_files):
    _model, (graph, dense, sparse) = dlrm_files
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(CheckpointError, match="does not exist"):
        convert(str(blocker / "m.onnx"), graph, dense, convert_embedding=True, sparse_models=sparse)
    with pytest.raises(CheckpointError, match="does not exist"):
        convert(str(tmp_path / "missing" / "m.onnx"), graph, dense)
    if os.geteuid() != 0:  # root writes anywhere: the permission check only means something for users
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(CheckpointError, match="not writable"):
            convert(str(locked / "m.onnx"), graph, dense)
    assert not (tmp_path / "m.onnx").exists()


def test_every_registered_layer_is_convertible_or_named():
    from hugectr_core.plugins import registry

    unconvertible = sorted(set(registry("layers").names()) - set(EMITTERS)
                           - {"BinaryCrossEntropyLoss", "CrossEntropyLoss", "MultiCrossEntropyLoss"})
    assert unconvertible == ["GRU", "MultiHeadAttention"]
