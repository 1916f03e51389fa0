"""Embedding Collection over several workers: the shard plan (row-wise and table-wise mp, dp) trains like
one device (NumPy worker threads; the same code runs per GPU with NCCL)."""
import numpy as np
import pytest

import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams

SLOTS, NNZ = [300, 60, 25], [3, 1, 1]   # t0 multi-hot (mean), t1 and t2 one-hot
COMBINERS = ["mean", "sum", "sum"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ecshard")
    DataGenerator(DataGeneratorParams(hugectr.DataReaderType_t.Parquet, 1, 4, len(SLOTS), True,
                                      str(root / "train.txt"), str(root / "val.txt"), SLOTS, nnz_array=NNZ,
                                      num_files=1, eval_num_files=1, num_samples_per_file=4096, seed=3,
                                      label_model="learnable")).generate()
    return root


def plan_for(workers: int):
    """t0 row-wise over every worker (mp), t1 on the last worker only (mp), t2 replicated (dp)."""
    if workers == 1:
        return None
    matrix = [["t0", "t2"] for _ in range(workers)]
    matrix[-1].append("t1")
    return matrix, [("mp", ["t0", "t1"]), ("dp", ["t2"])]


def build(data, workers: int, fused: bool = True, device: str = "cpu", dynamic: bool = False):
    solver = hugectr.CreateSolver(batchsize=256, batchsize_eval=256, max_eval_batches=4, lr=0.01, seed=2,
                                  device=device, i64_input_key=True, use_embedding_collection=True,
                                  vvgpu=[list(range(workers))])
    reader = hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Parquet,
                                      source=[str(data / "train.txt")], eval_source=str(data / "val.txt"),
                                      check_type=hugectr.Check_t.Non)
    model = hugectr.Model(solver, reader, hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam))
    names = [f"C{i}" for i in range(len(SLOTS))]
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=4, dense_name="dense",
                            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam(n, nnz, nnz == 1, 1)
                                                            for n, nnz in zip(names, NNZ)]))
    tables = [hugectr.EmbeddingTableConfig(name=f"t{i}", max_vocabulary_size=-1 if dynamic else s, ev_size=8)
              for i, s in enumerate(SLOTS)]
    ebc = hugectr.EmbeddingCollectionConfig()
    if fused:
        ebc.embedding_lookup(tables, names, "emb", COMBINERS)
        top = "emb"
    else:
        for i, (t, n, c) in enumerate(zip(tables, names, COMBINERS)):
            ebc.embedding_lookup(t, n, f"e{i}", c)
        model_layers_in = [f"e{i}" for i in range(len(SLOTS))]
    plan = plan_for(workers)
    if plan is not None:
        ebc.shard(shard_matrix=plan[0], shard_strategy=plan[1])
    model.add(ebc)
    layers = []
    if not fused:
        layers.append(hugectr.DenseLayer("Concat", model_layers_in, ["emb3"]))
        layers.append(hugectr.DenseLayer("Reshape", ["emb3"], ["emb"], leading_dim=8 * len(SLOTS)))
    layers += [hugectr.DenseLayer("Concat", ["emb", "dense"], ["x"]),
               hugectr.DenseLayer("InnerProduct", ["x"], ["fc1"], num_output=16),
               hugectr.DenseLayer("ReLU", ["fc1"], ["r1"]),
               hugectr.DenseLayer("InnerProduct", ["r1"], ["fc2"], num_output=1),
               hugectr.DenseLayer("BinaryCrossEntropyLoss", ["fc2", "label"], ["loss"])]
    for layer in layers:
        model.add(layer)
    model.compile()
    return model


def train(model, steps=12):
    losses = []
    for _ in range(steps):
        model.train()
        losses.append(model.get_current_loss())
    for _ in range(2):
        model.eval()
    return np.array(losses), dict(model.get_eval_metrics())["AUC"]


def dumped(path):
    from hugectr_embeddings_collection.io import read_meta_data

    folder = f"{path}/embedding_collection_0"
    meta = read_meta_data(folder)
    out = {}
    for tid, (count, ev) in meta["tables"].items():
        keys = np.fromfile(f"{folder}/key{tid}", "<i8")
        rows = np.fromfile(f"{folder}/weight{tid}", "<f4").reshape(count, ev)
        out[tid] = dict(zip(keys.tolist(), rows))
    return out


@pytest.mark.parametrize("fused,dynamic", [(True, False), (False, False), (True, True)])
def test_shard_plan_trains_like_one_device(data, fused, dynamic):
    base_losses, base_auc = train(build(data, 1, fused, dynamic=dynamic))
    for workers in (2, 4):
        losses, auc = train(build(data, workers, fused, dynamic=dynamic))
        np.testing.assert_allclose(losses, base_losses, rtol=1e-5)
        assert abs(auc - base_auc) < 1e-4


def test_the_exchange_is_an_all_to_all_of_the_columns_each_worker_answers_for(data, monkeypatch):
    """Forward: worker r sends every worker its rows of the columns r answers for (t0 row-wise: 8 columns
    from everyone; t1 table-wise: 8 more from the last worker; dp t2 never travels). Backward: the way back,
    each owner receiving the gradient of its columns."""
    from hugectr_core.comm import Comm

    calls = {}
    original = Comm.alltoall

    def spy(self, parts, recv_shapes=None):
        calls.setdefault(self.rank, []).append([tuple(p.shape) for p in parts])
        return original(self, parts, recv_shapes)

    monkeypatch.setattr(Comm, "alltoall", spy)
    monkeypatch.setattr(Comm, "reduce_scatter_sum", lambda *a: pytest.fail("the exchange is an all-to-all"))
    build(data, 4).train()
    local = 256 // 4
    for rank in range(4):
        forward, backward = calls[rank]
        assert forward == [(local, 16 if rank == 3 else 8)] * 4
        assert backward == [(local, 8), (local, 8), (local, 8), (local, 16)]


def stored_rows(model) -> list:
    """{table: rows stored} of every worker."""
    def rows(rt):
        tables = {p.table.name: p.table for e in rt.embeddings for p in e.parts}
        return {name: int(t.rows.shape[0]) for name, t in sorted(tables.items())}
    return model._each(rows)


def test_each_worker_stores_only_its_part_of_the_tables(data):
    """Model parallel is also a memory split: t0 (row-wise over 4) stores a quarter of its rows on each
    worker, t1 (table-wise) lives on the last worker alone, t2 (dp) is whole everywhere."""
    per_worker = stored_rows(build(data, 4))
    assert [w["t0"] for w in per_worker] == [75, 75, 75, 75]
    assert [w["t1"] for w in per_worker] == [0, 0, 0, 60]
    assert [w["t2"] for w in per_worker] == [25, 25, 25, 25]


def test_sharded_tables_dump_and_load_like_one_device(data, tmp_path):
    one, four = build(data, 1), build(data, 4)
    train(one, 6)
    train(four, 6)
    one.embedding_dump(str(tmp_path / "one"))
    four.embedding_dump(str(tmp_path / "four"))
    a, b = dumped(tmp_path / "one"), dumped(tmp_path / "four")
    assert a.keys() == b.keys()
    for tid in a:
        assert sorted(a[tid]) == sorted(b[tid])  # same keys, gathered from the workers that own them
        for key, row in a[tid].items():
            np.testing.assert_allclose(b[tid][key], row, rtol=1e-5, atol=1e-6)
    # a 1-device dump loads on 2 workers: the same predictions as the 1-device model
    two = build(data, 2)
    two.embedding_load(str(tmp_path / "one"))
    two._each(lambda rt: rt.dense.master.__setitem__(Ellipsis, one.runtime.dense.master))
    batch = one.get_data_reader_eval().next_batch()
    expected = one.runtime.eval_step(batch)[0]
    got = two._each(lambda rt: rt.eval_step(batch))[0][0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_row_wise_concat_is_refused(data):
    with pytest.raises(hugectr.ConfigError, match="row-wise"):
        solver = hugectr.CreateSolver(batchsize=8, batchsize_eval=8, device="cpu", use_embedding_collection=True,
                                      vvgpu=[[0, 1]])
        model = hugectr.Model(solver, hugectr.DataReaderParams("Parquet", [str(data / "train.txt")],
                                                               str(data / "val.txt")), hugectr.CreateOptimizer())
        model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=0, dense_name="dense",
                                data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("C0", 2, False, 1)]))
        ebc = hugectr.EmbeddingCollectionConfig()
        ebc.embedding_lookup(hugectr.EmbeddingTableConfig(name="t", max_vocabulary_size=10, ev_size=4), "C0", "emb",
                             "concat")
        ebc.shard(shard_matrix=[["t"], ["t"]], shard_strategy=[("mp", ["t"])])
        model.add(ebc)
        model.add(hugectr.DenseLayer("Reshape", ["emb"], ["flat"], leading_dim=8))
        model.add(hugectr.DenseLayer("InnerProduct", ["flat"], ["fc"], num_output=1))
        model.add(hugectr.DenseLayer("BinaryCrossEntropyLoss", ["fc", "label"], ["loss"]))
        model.compile()


@pytest.mark.gpu
def test_gpu_shard_plan_trains_like_one_gpu(data):
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("needs a host with 2 or more GPUs")
    base_losses, base_auc = train(build(data, 1, device="gpu"))
    losses, auc = train(build(data, 2, device="gpu"))
    np.testing.assert_allclose(losses, base_losses, rtol=1e-5)
    assert abs(auc - base_auc) < 1e-4
