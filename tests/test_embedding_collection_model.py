"""Embedding Collection inside a model: HugeCTR's EC script style trains, dumps and reloads."""
import numpy as np

import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams

SLOTS = [40, 60, 25]


def build(tmp_path, fused=True):
    DataGenerator(DataGeneratorParams(hugectr.DataReaderType_t.Parquet, 1, 4, len(SLOTS), True,
                                      str(tmp_path / "train.txt"), str(tmp_path / "val.txt"), SLOTS, num_files=1,
                                      eval_num_files=1, num_samples_per_file=4096, seed=3,
                                      label_model="learnable")).generate()
    solver = hugectr.CreateSolver(batchsize=256, batchsize_eval=256, max_eval_batches=4, lr=0.01, seed=2,
                                  device="cpu", i64_input_key=True, use_embedding_collection=True)
    reader = hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Parquet,
                                      source=[str(tmp_path / "train.txt")], eval_source=str(tmp_path / "val.txt"),
                                      check_type=hugectr.Check_t.Non)  # no slot_size_array: keys stay table-local
    model = hugectr.Model(solver, reader, hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam))
    names = [f"C{i}" for i in range(len(SLOTS))]
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=4, dense_name="dense",
                            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam(n, 1, True, 1)
                                                            for n in names]))
    tables = [hugectr.EmbeddingTableConfig(name=f"t{i}", max_vocabulary_size=s, ev_size=8)
              for i, s in enumerate(SLOTS)]
    ebc = hugectr.EmbeddingCollectionConfig()
    ebc.embedding_lookup(tables, names, "emb", ["sum"] * len(SLOTS))
    model.add(ebc)
    for layer in [hugectr.DenseLayer("Concat", ["emb", "dense"], ["x"]),
                  hugectr.DenseLayer("InnerProduct", ["x"], ["fc1"], num_output=16),
                  hugectr.DenseLayer("ReLU", ["fc1"], ["r1"]),
                  hugectr.DenseLayer("InnerProduct", ["r1"], ["fc2"], num_output=1),
                  hugectr.DenseLayer("BinaryCrossEntropyLoss", ["fc2", "label"], ["loss"])]:
        model.add(layer)
    model.compile()
    return model


def test_collection_trains_and_round_trips(tmp_path):
    model = build(tmp_path)
    assert model.runtime.shapes["train"]["emb"] == (256, 8 * len(SLOTS))
    model.start_data_reading()
    losses = []
    for _ in range(60):
        model.set_learning_rate(0.01)
        model.train()
        losses.append(model.get_current_loss())
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.01
    model.embedding_dump(str(tmp_path / "ec"))
    fresh = build(tmp_path)
    fresh.embedding_load(str(tmp_path / "ec"))
    batch = model.get_data_reader_eval().next_batch()
    fresh.runtime.weights_flat[...] = model.runtime.weights_flat
    np.testing.assert_array_equal(model.runtime.eval_step(batch)[0], fresh.runtime.eval_step(batch)[0])


def test_collection_requires_the_solver_switch(tmp_path):
    import pytest

    solver = hugectr.CreateSolver(batchsize=8, batchsize_eval=8, device="cpu")
    model = hugectr.Model(solver, hugectr.DataReaderParams("Parquet", ["a"], "b"), hugectr.CreateOptimizer())
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=0, dense_name="dense",
                            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("C0", 1, True, 1)]))
    ebc = hugectr.EmbeddingCollectionConfig()
    ebc.embedding_lookup(hugectr.EmbeddingTableConfig(name="t", max_vocabulary_size=10, ev_size=4), "C0", "emb", "sum")
    model.add(ebc)
    model.add(hugectr.DenseLayer("Reshape", ["emb"], ["flat"], leading_dim=4))
    model.add(hugectr.DenseLayer("InnerProduct", ["flat"], ["fc"], num_output=1))
    model.add(hugectr.DenseLayer("BinaryCrossEntropyLoss", ["fc", "label"], ["loss"]))
    with pytest.raises(hugectr.ConfigError, match="use_embedding_collection=True"):
        model.compile()
