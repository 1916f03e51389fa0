"""Mixed precision: embeddings that read and write float16 themselves skip the float32 staging copies,
with results identical to the staged path (sums in float32, rounded once either way)."""
import numpy as np
import pytest

import hugectr
from hugectr_embeddings_sparse.embedding import SparseEmbeddingHash
from tests.helpers import add_small_embedding_mlp, random_batch, reader

STEPS, BATCH = 6, 32


def train_mixed(device="cpu"):
    solver = hugectr.CreateSolver(batchsize=BATCH, batchsize_eval=BATCH, lr=0.05, seed=11, device=device,
                                  use_mixed_precision=True, scaler=128.0)
    model = hugectr.Model(solver, reader(), hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.SGD))
    add_small_embedding_mlp(model, hidden=8)
    rt = model.runtime
    losses = [float(np.asarray(hugectr_host(rt.train_step(random_batch(BATCH, sparse={"data1": (3, 40)}, seed=s),
                                                          model.learning_rate))))
              for s in range(STEPS)]
    dump = rt.embeddings[0].dump()  # by key: the GPU hash table gives new keys rows in any order
    order = np.argsort(dump["key"])
    return rt, losses, (dump["key"][order], dump["emb_vector"][order])


def hugectr_host(x):
    from hugectr_core.backend import to_host

    return np.asarray(to_host(x))


@pytest.mark.parametrize("device", ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def test_fp16_io_embedding_trains_exactly_like_the_staged_one(device, monkeypatch):
    rt, losses, table = train_mixed(device)
    assert rt.staging == {}  # the sparse embedding writes the float16 tensor itself
    assert rt.networks["train"].tensors["emb"].dtype == np.float16
    monkeypatch.setattr(SparseEmbeddingHash, "fp16_io", False)
    staged_rt, staged_losses, staged_table = train_mixed(device)
    assert set(staged_rt.staging) == {"train/emb", "eval/emb", "grad/emb"}
    assert all(np.isfinite(losses))
    np.testing.assert_array_equal(losses, staged_losses)
    for got, want in zip(table, staged_table):
        np.testing.assert_array_equal(got, want)


# -- batch inputs through pinned staging buffers ---------------------------------------------------------
@pytest.mark.parametrize("device", ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def test_pinned_uploads_keep_every_batch_intact(device):
    """Two staging buffers per input take turns: three batches in a row each arrive whole, into a given
    output or a new array, whatever the shapes."""
    from hugectr_core.backend import PinnedUploads, resolve, to_host

    xp = resolve(device)
    uploads = PinnedUploads(xp)
    rng = np.random.default_rng(3)
    outs = [xp.zeros((5, 3), xp.float32) for _ in range(3)]
    hosts = [rng.standard_normal((5, 3)).astype(np.float32) for _ in range(3)]
    got = [uploads.to_device("dense", h, out=o) for h, o in zip(hosts, outs)]
    keys = [rng.integers(0, 99, n).astype(np.uint32) for n in (7, 3, 11)]
    sent = [uploads.to_device("keys", k) for k in keys]
    for h, o, g in zip(hosts, outs, got):
        assert g is o
        np.testing.assert_array_equal(to_host(o), h)
    for k, s in zip(keys, sent):
        assert s.dtype == np.uint32
        np.testing.assert_array_equal(to_host(s), k)
    assert uploads.to_device("empty", np.zeros((0, 4), np.float32)).shape == (0, 4)
