"""Small builders shared by the core tests."""
import numpy as np

import hugectr
from hugectr_core.contracts import Batch, SparseBatch


def solver(**kw):
    base = dict(batchsize=8, batchsize_eval=8, lr=0.01, seed=7, device="cpu")
    base.update(kw)
    return hugectr.CreateSolver(**base)


def reader(tmp_path="."):
    return hugectr.DataReaderParams(data_reader_type="RawAsync", source=[f"{tmp_path}/train.bin"],
                                    eval_source=f"{tmp_path}/val.bin", check_type=hugectr.Check_t.Non,
                                    async_param=hugectr.AsyncParam(1, 2, shuffle=False, multi_hot_reader=True,
                                                                   is_dense_float=True))


def dense_model(layers, dense_dim=4, sparse=(), embeddings=(), optimizer="SGD", **solver_kw):
    model = hugectr.Model(solver(**solver_kw), reader(), hugectr.CreateOptimizer(optimizer_type=optimizer))
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=dense_dim, dense_name="dense",
                            data_reader_sparse_param_array=list(sparse)))
    for emb in embeddings:
        model.add(emb)
    for layer in layers:
        model.add(layer)
    return model


def DL(kind, bottoms, tops, **kw):  # noqa: N802 - reads like HugeCTR scripts
    return hugectr.DenseLayer(layer_type=kind, bottom_names=bottoms, top_names=tops, **kw)


def random_batch(n, dense_dim=4, sparse=None, seed=0):
    rng = np.random.default_rng(seed)
    label = (rng.random((n, 1)) < 0.5).astype(np.float32)
    dense = rng.standard_normal((n, dense_dim)).astype(np.float32)
    sp = {}
    for name, (slots, vocab) in (sparse or {}).items():
        keys = rng.integers(0, vocab, n * slots).astype(np.uint32)
        sp[name] = SparseBatch(np.arange(n * slots + 1, dtype=np.int64), keys)
    return Batch(n, label, dense, sp)


def add_small_embedding_mlp(model, hidden: int):
    """Input (1 label, 4 dense, 3 one-hot slots) -> 4-wide embedding -> MLP (hidden) -> BCE, then compile."""
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=4, dense_name="dense",
                            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True, 3)]))
    model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
                                      workspace_size_per_gpu_in_mb=1, embedding_vec_size=4, combiner="sum",
                                      sparse_embedding_name="emb", bottom_name="data1"))
    for layer in [DL("Reshape", ["emb"], ["flat"], leading_dim=12), DL("Concat", ["flat", "dense"], ["x"]),
                  DL("InnerProduct", ["x"], ["fc1"], num_output=hidden), DL("ReLU", ["fc1"], ["r1"]),
                  DL("InnerProduct", ["r1"], ["fc2"], num_output=1),
                  DL("BinaryCrossEntropyLoss", ["fc2", "label"], ["loss"])]:
        model.add(layer)
    model.compile()
    return model
