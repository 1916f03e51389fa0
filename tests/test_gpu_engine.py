"""On the GPU the training step allocates nothing new across steps (the CuPy pool stays flat)."""
import pytest

import hugectr
from tests.helpers import DL, dense_model, random_batch

LAYERS = [DL("Reshape", ["emb"], ["flat"], leading_dim=4 * 8), DL("Concat", ["flat", "dense"], ["x0"]),
          DL("MultiCross", ["x0"], ["cross"], num_layers=2), DL("InnerProduct", ["x0"], ["fc1"], num_output=16),
          DL("ReLU", ["fc1"], ["relu1"]), DL("Dropout", ["relu1"], ["drop1"], dropout_rate=0.3),
          DL("Concat", ["drop1", "cross"], ["x1"]), DL("InnerProduct", ["x1"], ["fc2"], num_output=1),
          DL("BinaryCrossEntropyLoss", ["fc2", "label"], ["loss"])]


def build(device, optimizer="Adam"):
    emb = hugectr.SparseEmbedding(embedding_type="DistributedSlotSparseEmbeddingHash",
                                  workspace_size_per_gpu_in_mb=1, embedding_vec_size=8, combiner="sum",
                                  sparse_embedding_name="emb", bottom_name="data1")
    model = dense_model(LAYERS, sparse=[hugectr.DataReaderSparseParam("data1", 1, True, 4)], embeddings=[emb],
                        optimizer=optimizer, device=device, batchsize=256, batchsize_eval=256)
    model.compile()
    return model


@pytest.mark.gpu
def test_memory_pool_does_not_grow_across_steps():
    import cupy

    model = build("gpu")
    rt, pool = model.runtime, cupy.get_default_memory_pool()
    batches = [random_batch(256, sparse={"data1": (4, 500)}, seed=s) for s in range(4)]
    for b in batches:
        rt.train_step(b, 1e-3)
    cupy.cuda.Device().synchronize()
    before = pool.total_bytes()
    for step in range(200):
        rt.train_step(batches[step % 4], 1e-3)
    cupy.cuda.Device().synchronize()
    assert pool.total_bytes() == before
