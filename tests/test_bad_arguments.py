"""Arguments of the wrong type or value get a ConfigError naming the object and the argument, at the call
that takes them, not a Python error from deep inside later (cases from a bad-input audit of the public API)."""
import numpy as np
import pytest

import hugectr
from hugectr.tools import DataGeneratorParams
from hugectr_core.errors import BackendError, ConfigError, DataError, LayerError
from tests.helpers import DL, dense_model, solver

OPT = hugectr.CreateOptimizer(optimizer_type="Adam")
BCE = DL("BinaryCrossEntropyLoss", ["x", "label"], ["loss"])


def emb(**kw):
    args = dict(embedding_type="DistributedSlotSparseEmbeddingHash", workspace_size_per_gpu_in_mb=1,
                embedding_vec_size=4, combiner="sum", sparse_embedding_name="e", bottom_name="d")
    return hugectr.SparseEmbedding(**{**args, **kw})


@pytest.mark.parametrize("make, message", [
    (lambda: hugectr.CreateSolver(batchsize="8"), "CreateSolver: batchsize must be an int, got '8'"),
    (lambda: hugectr.CreateSolver(lr=float("nan")), "lr must be a finite number"),
    (lambda: hugectr.CreateSolver(seed="a"), "seed must be an int"),
    (lambda: hugectr.CreateSolver(repeat_dataset="no"), "repeat_dataset must be True or False"),
    (lambda: hugectr.CreateSolver(lr_policy="bogus"), "unknown lr_policy 'bogus'"),
    (lambda: hugectr.CreateSolver(vvgpu=[[0, 0]]), "distinct GPU ids"),
    (lambda: hugectr.CreateSolver(metrics_spec=["AUC"]), "metrics_spec must be a dict"),
    (lambda: hugectr.CreateSolver(metrics_spec={hugectr.MetricsType.AUC: "x"}), "maps each hugectr.MetricsType"),
    (lambda: hugectr.CreateSolver(training_callbacks=[1]), "hugectr.TrainingCallback instances"),
    (lambda: hugectr.CreateOptimizer(beta1="0.9"), "CreateOptimizer: beta1 must be a finite number"),
    (lambda: hugectr.CreateOptimizer(momentum_factor=-1.0), "momentum_factor must be >= 0"),
    (lambda: hugectr.AsyncParam(num_threads="2"), "AsyncParam: num_threads must be an int"),
    (lambda: hugectr.AsyncParam(io_depth=0), "io_depth and io_alignment must be >= 1"),
    (lambda: hugectr.DataReaderParams("RawAsync", ["a.bin"], "b.bin", async_param=None),
     "async_param must be a hugectr.AsyncParam"),
    (lambda: hugectr.DataReaderParams("RawAsync", ["a.bin"], "b.bin", check_type="Bogus"), "unknown check_type"),
    (lambda: hugectr.DataReaderParams("RawAsync", ["a.bin"], "b.bin", slot_size_array=["a"]),
     "slot_size_array must be a list of ints >= 0"),
    (lambda: hugectr.DataReaderSparseParam("d", 2.5, True, 3), "nnz_per_slot must be an int >= 1 or a list"),
    (lambda: hugectr.DataReaderSparseParam("d", 1, True, "3"), "slot_num must be an int"),
    (lambda: hugectr.Input(label_dim=1, label_name="label", dense_dim=4.7), "dense_dim must be an int >= 0"),
    (lambda: hugectr.Input(label_dim=1, label_name="label", dense_dim=4, dense_name=None), "dense_name must be"),
    (lambda: hugectr.Input(label_dim=1, label_name="label", data_reader_sparse_param_array=[1]),
     "list of hugectr.DataReaderSparseParam"),
    (lambda: emb(embedding_vec_size=2.5), "SparseEmbedding 'e': embedding_vec_size must be an int"),
    (lambda: emb(workspace_size_per_gpu_in_mb=float("nan")), "workspace_size_per_gpu_in_mb must be a finite"),
    (lambda: emb(slot_size_array=[-5, 1]), "slot_size_array must be a list of ints >= 1"),
    (lambda: emb(optimizer="Adam"), "optimizer must be a hugectr.CreateOptimizer"),
    (lambda: emb(sparse_embedding_name=5), "sparse_embedding_name must be a string"),
    (lambda: DataGeneratorParams("RawAsync", 1, 4, 2, False, "t.bin", "v.bin", [5, 5], num_samples="10"),
     "DataGeneratorParams: num_samples must be an int"),
    (lambda: hugectr.Model(None, None, OPT), "solver must come from hugectr.CreateSolver"),
    (lambda: hugectr.Model(solver(), "x", OPT), "reader_params must be a hugectr.DataReaderParams"),
    (lambda: hugectr.Model(solver(), None, "Adam"), "opt_params must come from hugectr.CreateOptimizer"),
])
def test_a_wrong_argument_is_named_where_it_is_given(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


@pytest.mark.parametrize("layer, message", [
    (DL("MLP", ["dense"], ["x"], num_outputs=5), r"layer 'x' \(MLP\): an argument has the wrong type"),
    (DL("Concat", ["dense", "dense"], ["x"], axis="a"), r"layer 'x' \(Concat\): an argument has the wrong type"),
])
def test_a_layer_argument_of_the_wrong_type_names_the_layer(layer, message):
    with pytest.raises(LayerError, match=message):
        dense_model([layer, BCE]).compile()


def test_a_model_too_large_for_memory_says_so():
    with pytest.raises(BackendError, match="does not fit in host memory.*workspace_size_per_gpu_in_mb"):
        dense_model([DL("Reshape", ["e"], ["f"], leading_dim=12), DL("InnerProduct", ["f"], ["x"], num_output=1), BCE],
                    sparse=[hugectr.DataReaderSparseParam("d", 1, True, 3)],
                    embeddings=[emb(workspace_size_per_gpu_in_mb=10**7)]).compile()


def test_model_methods_check_their_arguments(tmp_path):
    model = dense_model([DL("InnerProduct", ["dense"], ["x"], num_output=1), BCE])
    model.compile()
    with pytest.raises(ConfigError, match="set_learning_rate: lr must be a finite number >= 0"):
        model.set_learning_rate("x")
    with pytest.raises(ConfigError, match="set_learning_rate"):
        model.set_learning_rate(-1.0)
    with pytest.raises(ConfigError, match="evaluate: max_batches must be an int >= 1"):
        model.evaluate(max_batches=-1)
    with pytest.raises(ConfigError, match="not a file name in an existing folder"):
        model.graph_to_json(str(tmp_path / "missing" / "g.json"))
    with pytest.raises(ConfigError, match="path must be a non-empty string"):
        model.load_dense_weights(None)
    with pytest.raises(ConfigError, match="fit: max_iter must be an int"):
        model.fit(max_iter="10")
    with pytest.raises(ConfigError, match="fit: snapshot_prefix must be a string"):
        model.fit(max_iter=1, snapshot=1, snapshot_prefix=None)
    bad = dense_model([DL("InnerProduct", ["dense"], ["x"], num_output=1), BCE])
    with pytest.raises(ConfigError, match="loss_weights must be finite numbers"):
        bad.compile(loss_names=["label"], loss_weights=["x"])


def test_a_folder_given_as_a_data_file_is_named(tmp_path):
    from hugectr_core.localfs import LocalFileSystem

    with pytest.raises(DataError, match="is a folder; a file name is needed"):
        LocalFileSystem().open(str(tmp_path))


def test_nan_in_the_eval_data_alone_stops_the_evaluation(tmp_path):
    from hugectr.tools import DataGenerator
    from tests.test_fit import BATCH, SLOTS, build

    d = tmp_path
    DataGenerator(DataGeneratorParams("RawAsync", 1, 4, len(SLOTS), False, str(d / "train.bin"), str(d / "val.bin"),
                                      SLOTS, num_samples=1000, eval_num_samples=512, float_label_dense=True,
                                      seed=5)).generate()
    raw = np.fromfile(d / "val.bin", dtype=np.float32)
    raw[1] = np.nan  # the first record's first dense value (after its one label)
    raw.tofile(d / "val.bin")
    model = build(d)
    model.start_data_reading()
    assert model.train() and BATCH
    with pytest.raises(DataError, match="evaluation data .*val.bin': dense.0. of a record is not finite"):
        model.eval()


def test_check_out_tensor_refuses_an_unknown_tensor_type():
    model = dense_model([DL("InnerProduct", ["dense"], ["x"], num_output=1), BCE])
    model.compile()
    with pytest.raises(ConfigError, match="unknown tensor_type 'Bogus'"):
        model.check_out_tensor("x", "Bogus")


def test_a_sparse_folder_with_a_key_twice_is_corrupt(tmp_path):
    from tests.test_resume import build, run

    model = build("SGD")
    run(model, range(1))
    model.save_params_to_files(str(tmp_path / "m"), 1)
    keys = np.fromfile(tmp_path / "m0_sparse_1.model" / "key", dtype="<i8")
    keys[1] = keys[0]
    keys.tofile(tmp_path / "m0_sparse_1.model" / "key")
    with pytest.raises(hugectr.CheckpointError, match="lists 1 key.s. more than once; the checkpoint is corrupt"):
        build("SGD").load_sparse_weights([str(tmp_path / "m0_sparse_1.model")])


def test_bce_labels_outside_zero_one_are_a_data_error():
    """HugeCTR trains on them to a negative loss and an AUC of 0.5; soft labels in [0, 1] stay fine."""
    from tests.helpers import random_batch

    model = dense_model([DL("InnerProduct", ["dense"], ["x"], num_output=1), BCE])
    model.compile()
    soft = random_batch(8)
    soft.label[:] = 0.25
    model.runtime.train_step(soft, 0.01)
    bad = random_batch(8)
    bad.label[3] = 5.0
    with pytest.raises(DataError, match="label 'label' of a BinaryCrossEntropyLoss holds 5.0 in this batch"):
        model.runtime.train_step(bad, 0.01)
