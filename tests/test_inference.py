"""hugectr.inference: InferenceModel predictions equal Model.eval predictions; bad input is explained."""
import os
import subprocess
import sys

import numpy as np
import pytest

import hugectr
from hugectr.inference import InferenceModel, InferenceParams
from hugectr_core.errors import CheckpointError, ConfigError, DataError
from hugectr_core.metrics import auc
from tests import e2e_models as E

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import dcn_config as DCN_C  # noqa: E402
import dcn_learnable as DCN  # noqa: E402

EVAL_BATCHES = 2
STEPS = 4


def _shrunk(monkeypatch):
    monkeypatch.setitem(E.DLRM, "train", 4 * 512)
    monkeypatch.setitem(E.DLRM, "eval", EVAL_BATCHES * 2048)
    for key, value in (("files", 1), ("per_file", 4096), ("eval_files", 1)):
        monkeypatch.setitem(E.WDL, key, value)
    monkeypatch.setattr(DCN_C, "TRAIN_SAMPLES", 4 * 512)
    monkeypatch.setattr(DCN_C, "EVAL_SAMPLES", EVAL_BATCHES * 2048)


def _reader_kw(name):
    if name == "wdl":
        slots = E.WDL["wide_slots"] + E.WDL["deep_slots"]
        return dict(source="file_list_test.txt", data_reader_type="Parquet", slot_size_array=slots, num_samples=0)
    return dict(source="val.bin", data_reader_type="RawAsync", slot_size_array=None,
                num_samples=EVAL_BATCHES * 2048)


BUILDERS = {"dlrm": (E.generate_dlrm, E.build_dlrm), "wdl": (E.generate_wdl, E.build_wdl),
            "dcn": (DCN.generate, lambda d: DCN.build_model(d, "cpu"))}


def train_and_save(name, d):
    """Briefly trained model, its graph JSON and checkpoint, and Model.eval predictions of 2 batches."""
    generate, build = BUILDERS[name]
    generate(d)
    model = build(d)
    model.compile()
    for _ in range(STEPS):
        model.train()
    model.graph_to_json(f"{d}/graph.json")
    model.save_params_to_files(f"{d}/{name}", STEPS)
    model._metrics.reset()
    for _ in range(EVAL_BATCHES):
        assert model.eval()
    preds = np.concatenate(model._metrics._preds).astype(np.float32)
    labels = np.concatenate(model._metrics._labels)
    return model, preds, labels


def files(name, d, n_emb):
    return dict(dense_model_file=f"{d}/{name}_dense_{STEPS}.model",
                sparse_model_files=[f"{d}/{name}{k}_sparse_{STEPS}.model" for k in range(n_emb)])


def params_for(model, name, d, **kw):
    kw.setdefault("device", "cpu")
    return InferenceParams(model_name=name, max_batchsize=model.solver.batchsize_eval, hit_rate_threshold=1.0,
                           device_id=0, use_gpu_embedding_cache=False, cache_size_percentage=0.2,
                           i64_input_key=model.solver.i64_input_key,
                           **files(name, d, len(model.sparse_embeddings)), **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """{name: (model, eval predictions, labels, folder)} for DLRM, W&D and DCN."""
    mp = pytest.MonkeyPatch()
    _shrunk(mp)
    out = {}
    try:
        for name in BUILDERS:
            d = str(tmp_path_factory.mktemp(name))
            out[name] = (*train_and_save(name, d), d)
    finally:
        mp.undo()
    return out


@pytest.mark.parametrize("name", list(BUILDERS))
def test_predict_equals_model_eval(trained, name):
    model, preds, labels, d = trained[name]
    inference = InferenceModel(f"{d}/graph.json", params_for(model, name, d))
    kw = _reader_kw(name)
    got = inference.predict(EVAL_BATCHES, f"{d}/{kw.pop('source')}", kw.pop("data_reader_type"), hugectr.Check_t.Non,
                            **kw)
    assert got.shape == preds.shape == (EVAL_BATCHES * model.solver.batchsize_eval, 1)
    np.testing.assert_array_equal(got, preds)
    kw = _reader_kw(name)
    value = inference.evaluate(EVAL_BATCHES, f"{d}/{kw.pop('source')}", kw.pop("data_reader_type"),
                               hugectr.Check_t.Non, **kw)
    assert value == pytest.approx(auc(preds, labels), abs=1e-12)


@pytest.mark.parametrize("devices", [[0, 1], [0, 1, 2]])
def test_several_deployed_devices_give_the_same_predictions_in_order(trained, devices):
    """One replica per device, batches dealt round robin: on NumPy the replicas are separate models."""
    model, preds, _, d = trained["dlrm"]
    inference = InferenceModel(f"{d}/graph.json", params_for(model, "dlrm", d, deployed_devices=devices))
    assert len(inference.replicas) == len(devices)
    kw = _reader_kw("dlrm")
    got = inference.predict(EVAL_BATCHES, f"{d}/{kw.pop('source')}", kw.pop("data_reader_type"), hugectr.Check_t.Non,
                            **kw)
    np.testing.assert_array_equal(got, preds)


@pytest.mark.gpu
def test_multi_gpu_inference_matches_one_gpu(trained):
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs 2 GPUs")
    model, _, _, d = trained["dlrm"]
    kw = _reader_kw("dlrm")
    source, fmt = f"{d}/{kw.pop('source')}", kw.pop("data_reader_type")
    one = InferenceModel(f"{d}/graph.json", params_for(model, "dlrm", d, device="gpu")).predict(
        EVAL_BATCHES, source, fmt, hugectr.Check_t.Non, **dict(kw))
    multi = InferenceModel(f"{d}/graph.json", params_for(model, "dlrm", d, device="gpu", deployed_devices=[0, 1]))
    assert {rt.runtime.embeddings[0].rows.device.id for rt, _ in multi.replicas} == {0, 1}
    got = multi.predict(EVAL_BATCHES, source, fmt, hugectr.Check_t.Non, **dict(kw))
    np.testing.assert_allclose(got, one, rtol=1e-5, atol=1e-6)


def _eval_batch(model):
    reader = model.get_data_reader_eval()
    reader.set_source("")
    return reader.next_batch()


def test_predict_arrays_equals_reader_predict_and_unseen_keys_give_zeros(trained):
    model, preds, _labels, d = trained["dlrm"]
    inference = InferenceModel(f"{d}/graph.json", params_for(model, "dlrm", d))
    batch = _eval_batch(model)
    sb = batch.sparse["data1"]
    keys = np.asarray(sb.keys, np.int64).reshape(batch.size, -1)
    # in chunks smaller than the batch, from the fixed-hotness form and from the CSR form
    np.testing.assert_array_equal(inference.predict_arrays(batch.dense, {"data1": keys}), preds[:batch.size])
    np.testing.assert_array_equal(inference.predict_arrays(batch.dense, {"data1": (sb.row_offsets, sb.keys)}),
                                  preds[:batch.size])
    unseen = keys.copy()
    unseen[:, 3] = 4_000_000_000  # never inserted: a zero vector, as in training's evaluation
    inference.predict_arrays(batch.dense, {"data1": unseen})
    emb = inference.check_out_tensor("sparse_embedding1")
    assert np.all(emb[:, 3, :] == 0) and np.any(emb[:, 2, :] != 0)
    absent = keys.copy()
    absent[:, 3] = -1  # "no key" in the fixed-hotness form: also zero
    np.testing.assert_array_equal(inference.predict_arrays(batch.dense, {"data1": absent}),
                                  inference.predict_arrays(batch.dense, {"data1": unseen}))


def test_checkpoint_that_does_not_match_the_graph(trained, tmp_path):
    model, _p, _l, d = trained["dlrm"]
    dense = f"{d}/dlrm_dense_{STEPS}.model"
    short = tmp_path / "short.model"
    short.write_bytes(open(dense, "rb").read()[:-8])
    bad = params_for(model, "dlrm", d)
    bad.dense_model_file = str(short)
    with pytest.raises(CheckpointError, match=r"has \d+ bytes; this model needs \d+ bytes"):
        InferenceModel(f"{d}/graph.json", bad)
    # the DCN sparse folder has vectors of 8 floats; DLRM's embedding needs 16
    dcn = trained["dcn"][3]
    wrong = params_for(model, "dlrm", d)
    wrong.sparse_model_files = [f"{dcn}/dcn0_sparse_{STEPS}.model"]
    with pytest.raises(CheckpointError, match="expects 16 floats per key"):
        InferenceModel(f"{d}/graph.json", wrong)
    two = params_for(model, "dlrm", d)
    two.sparse_model_files = two.sparse_model_files * 2
    with pytest.raises(CheckpointError, match="2 sparse_model_files for the 1 embeddings"):
        InferenceModel(f"{d}/graph.json", two)
    with pytest.raises(CheckpointError, match="does not exist"):
        InferenceModel(f"{d}/graph.json", InferenceParams("m", 16, dense_model_file=f"{d}/nope.model", device="cpu"))


def test_inference_params_validation():
    base = dict(model_name="m", max_batchsize=8, dense_model_file="d.model", sparse_model_files=["s"])
    p = InferenceParams(**base, use_gpu_embedding_cache=True, cache_size_percentage=0.5, thread_pool_size=4)
    assert p.sparse_model_files == ["s"] and p.deployed_devices == [0]
    assert InferenceParams(**{**base, "sparse_model_files": "s"}).sparse_model_files == ["s"]
    with pytest.raises(ConfigError, match="max_batchsize"):
        InferenceParams(**{**base, "max_batchsize": 0})
    with pytest.raises(ConfigError, match="cache_size_percentage"):
        InferenceParams(**base, cache_size_percentage=1.5)
    assert InferenceParams(**base, deployed_devices=[0, 1]).deployed_devices == [0, 1]
    with pytest.raises(ConfigError, match="twice"):
        InferenceParams(**base, deployed_devices=[1, 1])
    with pytest.raises(ConfigError, match="default_value_for_each_table"):
        InferenceParams(**base, default_value_for_each_table=[0.5])
    with pytest.raises(ConfigError, match="parameter server"):
        InferenceParams(**base, volatile_db="redis://x")
    with pytest.raises(ConfigError, match="dense_model_file"):
        InferenceParams(model_name="m", max_batchsize=8)


def test_predict_arrays_bad_input(trained):
    model, _p, _l, d = trained["dlrm"]
    inference = InferenceModel(f"{d}/graph.json", params_for(model, "dlrm", d))
    with pytest.raises(DataError, match="dense_dim=13"):
        inference.predict_arrays(np.zeros((4, 12)), {"data1": np.zeros((4, 26), np.int64)})
    with pytest.raises(DataError, match="do not match"):
        inference.predict_arrays(np.zeros((4, 13)), {"other": np.zeros((4, 26), np.int64)})
    with pytest.raises(ConfigError, match="num_batches"):
        inference.predict(0, f"{d}/val.bin", "RawAsync", "Non")


def test_cli_predict_hook_writes_predictions(trained, tmp_path):
    from hugectr_core.inference import cli_predict

    model, preds, _l, d = trained["dcn"]
    out = tmp_path / "pred.npy"
    got = cli_predict(f"{d}/graph.json", f"{d}/dcn_dense_{STEPS}.model", [f"{d}/dcn0_sparse_{STEPS}.model"],
                      f"{d}/val.bin", "RawAsync", EVAL_BATCHES, model.solver.batchsize_eval, output=str(out),
                      device="cpu", num_samples=EVAL_BATCHES * 2048)
    np.testing.assert_array_equal(np.load(out), preds)
    np.testing.assert_array_equal(got, preds)


def test_inference_benchmark_small_runs_on_cpu(tmp_path):
    result = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "inference.py"), "--small", "--device", "cpu",
                           "--data", str(tmp_path / "data"), "--result", str(result)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    report = json.loads(result.read_text())
    assert report["hugectr_core"]["samples_per_s"] > 0
    assert report["batch"] == report["config"]["batch"]
