"""fit() in iteration and epoch mode, metrics, early stop, callbacks, snapshots, the low-level loop."""
import os

import numpy as np
import pytest

import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams
from hugectr_core.errors import CheckpointError, TrainingError
from tests.helpers import add_small_embedding_mlp

SLOTS, TRAIN, EVAL, BATCH = [50, 40, 30], 1000, 512, 64


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("raw")
    DataGenerator(DataGeneratorParams("RawAsync", 1, 4, len(SLOTS), False, str(d / "train.bin"), str(d / "val.bin"),
                                      SLOTS, num_samples=TRAIN, eval_num_samples=EVAL, float_label_dense=True,
                                      seed=5, label_model="learnable")).generate()
    return d


def build(data, metrics=None, callbacks=(), repeat=True, drop=True, **source):
    solver = hugectr.CreateSolver(batchsize=BATCH, batchsize_eval=128, max_eval_batches=4, lr=0.01, seed=3,
                                  device="cpu", repeat_dataset=repeat, drop_incomplete_batch=drop,
                                  metrics_spec=metrics or {hugectr.MetricsType.AUC: 1.0},
                                  training_callbacks=list(callbacks))
    reader = hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.RawAsync,
                                      source=[str(data / "train.bin")], eval_source=str(data / "val.bin"),
                                      check_type=hugectr.Check_t.Non, num_samples=TRAIN, eval_num_samples=EVAL,
                                      async_param=hugectr.AsyncParam(num_threads=2, num_batches_per_thread=2,
                                                                     shuffle=False, multi_hot_reader=True,
                                                                     is_dense_float=True), **source)
    model = hugectr.Model(solver, reader, hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam))
    return add_small_embedding_mlp(model, hidden=8)


def test_iteration_mode_logs_and_reports_all_metrics(data, capsys):
    metrics = {hugectr.MetricsType.AUC: 1.0, hugectr.MetricsType.AverageLoss: 0.0, hugectr.MetricsType.HitRate: 0.8}
    model = build(data, metrics)
    result = model.fit(max_iter=40, display=10, eval_interval=20, snapshot=0)
    out = capsys.readouterr().out
    assert out.count("Iter: ") == 4 and out.count("Evaluation, AUC") == 2
    assert set(result) == {"AUC", "AverageLoss", "HitRate"} and 0.5 < result["AUC"] <= 1.0
    assert model.runtime.step == 40


def test_auc_threshold_stops_training(data):
    model = build(data, {hugectr.MetricsType.AUC: 0.0})  # any AUC beats 0: stop at the first evaluation
    model.fit(max_iter=100, display=0, eval_interval=10, snapshot=0)
    assert model.runtime.step == 10


def test_callbacks_are_called_and_can_stop(data):
    calls = []

    class Recorder(hugectr.TrainingCallback):
        def on_training_start(self):
            calls.append("start")

        def on_eval_end(self, iteration, results):
            calls.append(("eval", iteration, sorted(results)))
            return iteration >= 20

        def on_training_end(self, iteration):
            calls.append(("end", iteration))

    model = build(data, callbacks=[Recorder()])
    model.fit(max_iter=100, display=0, eval_interval=10, snapshot=0)
    assert calls == ["start", ("eval", 10, ["AUC"]), ("eval", 20, ["AUC"]), ("end", 20)]


@pytest.mark.parametrize("drop, per_epoch", [(True, TRAIN // BATCH), (False, -(-TRAIN // BATCH))])
def test_epoch_mode_runs_whole_epochs(data, drop, per_epoch):
    model = build(data, repeat=False, drop=drop)
    model.fit(num_epochs=2, display=0, eval_interval=0, snapshot=0)
    assert model.runtime.step == 2 * per_epoch
    assert model.train() is False  # the source stays exhausted until set_source
    model.set_source(str(data / "train.bin"), str(data / "val.bin"))
    assert model.train() is True


def test_the_low_level_reader_takes_hugectr_keywords(data):
    """DataReader.set_source(file_name='') rewinds, DataReader.is_eof() says when an epoch ends."""
    model = build(data, repeat=False)
    model.start_data_reading()
    reader = model.get_data_reader_train()
    assert isinstance(reader, hugectr.DataReader32) and isinstance(reader, hugectr.DataReader64)
    epoch = 0
    while model.train():
        epoch += 1
    assert reader.is_eof() and epoch == TRAIN // BATCH
    reader.set_source(file_name=str(data / "train.bin"))
    assert not reader.is_eof() and model.train()


def test_snapshots_have_hugectr_names_and_sizes(data, tmp_path):
    model = build(data)
    model.fit(max_iter=10, display=0, eval_interval=0, snapshot=5, snapshot_prefix=str(tmp_path / "dcn"))
    n = model.runtime.weights_flat.size
    for it in (5, 10):
        assert os.path.getsize(tmp_path / f"dcn_dense_{it}.model") == 4 * n
        assert os.path.getsize(tmp_path / f"dcn_opt_dense_{it}.model") == 2 * 4 * n  # Adam: m then v
        keys = np.fromfile(tmp_path / f"dcn0_sparse_{it}.model" / "key", dtype="<i8")
        vec = np.fromfile(tmp_path / f"dcn0_sparse_{it}.model" / "emb_vector", dtype="<f4")
        assert keys.size > 0 and vec.size == 4 * keys.size
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]
    fresh = build(data)
    fresh.load_dense_weights(str(tmp_path / "dcn_dense_10.model"))
    fresh.load_sparse_weights([str(tmp_path / "dcn0_sparse_10.model")])
    np.testing.assert_array_equal(fresh.runtime.weights_flat, np.fromfile(tmp_path / "dcn_dense_10.model", "<f4"))
    with pytest.raises(CheckpointError, match="does not exist"):
        model.save_params_to_files(str(tmp_path / "missing" / "x"), 1)
    with pytest.raises(CheckpointError, match="bytes"):
        fresh.load_dense_weights(str(tmp_path / "dcn_opt_dense_10.model"))


def test_low_level_loop_and_check_out_tensor(data):
    model = build(data)
    model.start_data_reading()
    lr_sch = model.get_learning_rate_scheduler()
    for _ in range(3):
        model.set_learning_rate(lr_sch.get_next())
        assert model.train()
    assert model.get_current_loss() > 0
    for _ in range(2):
        assert model.eval()
    metrics = dict(model.get_eval_metrics())
    assert "AUC" in metrics
    assert model.check_out_tensor("emb", hugectr.Tensor_t.Train).shape == (BATCH, 3, 4)
    assert model.check_out_tensor("fc1", hugectr.Tensor_t.Evaluate).shape == (128, 8)


def test_nan_loss_names_the_iteration(data):
    model = build(data)
    model.runtime.weights_flat[...] = np.nan
    model.start_data_reading()
    model.train()
    with pytest.raises(TrainingError, match="iteration 1"):
        model.get_current_loss()



def test_reset_scheduler_and_freezing(data):
    model = build(data)
    model.reset_learning_rate_scheduler(0.5, warmup_steps=2)
    sch = model.get_learning_rate_scheduler()
    assert [sch.get_next(), sch.get_next(), sch.get_next()] == [0.25, 0.5, 0.5]
    model.start_data_reading()
    model.freeze_embedding("emb")
    model.set_learning_rate(0.1)
    model.train()
    dump = model.runtime.embeddings[0].dump()
    rows_after_first = dump["emb_vector"].copy()
    model.train()
    frozen = model.runtime.embeddings[0].dump()["emb_vector"][:len(rows_after_first)]
    np.testing.assert_array_equal(frozen, rows_after_first)  # no update while frozen
    model.unfreeze_embedding()
    model.train()
    moved = model.runtime.embeddings[0].dump()["emb_vector"][:len(rows_after_first)]
    assert not np.array_equal(moved, rows_after_first)
    with pytest.raises(hugectr.ConfigError, match="no embedding named 'missing'"):
        model.freeze_embedding("missing")
