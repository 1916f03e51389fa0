"""Exact resume (train N, save, load into a fresh model, train N more == 2N uninterrupted) for every
optimizer, checkpoint sizes as formats.md 2.6 predicts, and a HugeCTR-laid-out file set loads."""
import os

import numpy as np
import pytest

import hugectr
from tests.helpers import DL, random_batch

N = 4
OPTIMIZERS = {
    "SGD": {}, "MomentumSGD": {"momentum_factor": 0.9}, "Nesterov": {"momentum_factor": 0.9},
    "AdaGrad": {"initial_accu_value": 0.1, "epsilon": 1e-7}, "Adam-Global": {"update_type": "Global"},
    "Adam-Local": {"update_type": "Local"}, "Ftrl": {"beta": 1.0, "lambda1": 0.001, "lambda2": 0.01},
    "RMSProp": {"beta1": 0.9, "epsilon": 1e-7},
}
LAYERS = [DL("Reshape", ["emb"], ["flat"], leading_dim=12), DL("Concat", ["flat", "dense"], ["x"]),
          DL("MultiCross", ["x"], ["cross"], num_layers=1), DL("InnerProduct", ["x"], ["fc1"], num_output=8),
          DL("ReLU", ["fc1"], ["r1"]), DL("Concat", ["r1", "cross"], ["x2"]),
          DL("InnerProduct", ["x2"], ["fc2"], num_output=1), DL("BinaryCrossEntropyLoss", ["fc2", "label"], ["loss"])]


def build(opt_name, device="cpu"):
    kind = opt_name.split("-")[0]
    opt = hugectr.CreateOptimizer(optimizer_type=kind, **OPTIMIZERS[opt_name])
    solver = hugectr.CreateSolver(batchsize=32, batchsize_eval=32, lr=0.05, seed=11, device=device)
    reader = hugectr.DataReaderParams("RawAsync", ["unused.bin"], "unused.bin")
    model = hugectr.Model(solver, reader, opt)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=4, dense_name="dense",
                            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True, 3)]))
    model.add(hugectr.SparseEmbedding(embedding_type="DistributedSlotSparseEmbeddingHash",
                                      workspace_size_per_gpu_in_mb=1, embedding_vec_size=4, combiner="sum",
                                      sparse_embedding_name="emb", bottom_name="data1"))
    for layer in LAYERS:
        model.add(layer)
    model.compile()
    return model


BATCHES = [random_batch(32, dense_dim=4, sparse={"data1": (3, 60)}, seed=s) for s in range(2 * N)]
LRS = [0.05 * (1 + s) / (2 * N) for s in range(2 * N)]


def run(model, steps):
    for s in steps:
        model.runtime.train_step(BATCHES[s], LRS[s])


def state(model):
    """Dense weights and states, then the embedding's rows and states, in key order (GPU row ids differ)."""
    from hugectr_core.backend import to_host

    rt = model.runtime
    emb = rt.embeddings[0].dump()
    order = np.argsort(emb["key"])
    return [to_host(rt.weights_flat), *[to_host(s) for s in rt.opt_states], emb["key"][order],
            emb["emb_vector"][order], *[s[order] for s in rt.embeddings[0].dump_optimizer_states()]]


def resume_pair(opt_name, tmp_path, device):
    """(uninterrupted 2N steps, N steps + save + load into a fresh model + N steps)."""
    straight = build(opt_name, device)
    run(straight, range(2 * N))

    first = build(opt_name, device)
    run(first, range(N))
    prefix = str(tmp_path / "ck")
    first.save_params_to_files(prefix, N)
    resumed = build(opt_name, device)
    resumed.load_dense_weights(f"{prefix}_dense_{N}.model")
    resumed.load_dense_optimizer_states(f"{prefix}_opt_dense_{N}.model")
    resumed.load_sparse_weights([f"{prefix}0_sparse_{N}.model"])
    resumed.load_sparse_optimizer_states(sparse_opt_states_files_map={"emb": f"{prefix}0_opt_sparse_{N}.model"})
    assert resumed.runtime.step == N
    run(resumed, range(N, 2 * N))
    return state(straight), state(resumed)


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_resume_is_bitwise_exact_on_numpy(opt_name, tmp_path):
    for a, b in zip(*resume_pair(opt_name, tmp_path, "cpu")):
        np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_resume_is_exact_on_the_gpu(opt_name, tmp_path):
    """Within 1e-6 relative: GPU reductions (cuBLAS, the embedding's row sums) need not be bitwise repeatable."""
    for a, b in zip(*resume_pair(opt_name, tmp_path, "gpu")):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def dcn_param_count(width=16, hidden=8):
    cross = 2 * width                       # MultiCross v1, 1 layer: w[1,n] + b[1,n]
    fc1 = width * hidden + hidden
    fc2 = (hidden + width) * 1 + 1
    return cross + fc1 + fc2


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_a_checkpoint_saved_before_the_first_step_loads_back(opt_name, tmp_path):
    """Right after compile() the tables hold no row yet: the files are empty and load into a fresh model."""
    prefix = str(tmp_path / "zero")
    build(opt_name).save_params_to_files(prefix, 0)
    fresh = build(opt_name)
    fresh.load_dense_weights(f"{prefix}_dense_0.model")
    fresh.load_dense_optimizer_states(f"{prefix}_opt_dense_0.model")
    fresh.load_sparse_weights([f"{prefix}0_sparse_0.model"])
    fresh.load_sparse_optimizer_states([f"{prefix}0_opt_sparse_0.model"])
    assert fresh.runtime.embeddings[0].dump()["key"].size == 0
    run(fresh, range(1))


def test_checkpoint_sizes_match_formats_2_6(tmp_path):
    model = build("Adam-Global")
    run(model, range(2))
    model.save_params_to_files(str(tmp_path / "dcn"), 2)
    n = dcn_param_count()
    assert os.path.getsize(tmp_path / "dcn_dense_2.model") == 4 * n
    assert os.path.getsize(tmp_path / "dcn_opt_dense_2.model") == 2 * 4 * n
    keys = np.fromfile(tmp_path / "dcn0_sparse_2.model" / "key", "<i8")
    assert os.path.getsize(tmp_path / "dcn0_sparse_2.model" / "emb_vector") == 4 * 4 * keys.size
    assert set(os.listdir(tmp_path / "dcn0_sparse_2.model")) == {"key", "emb_vector"}


def test_hugectr_laid_out_file_set_loads(tmp_path):
    """Files written from formats.md's description: dense = W then b per layer in creation order."""
    model = build("SGD")
    rng = np.random.default_rng(0)
    width, hidden = 16, 8
    cross_w, cross_b = rng.normal(size=(1, width)), rng.normal(size=(1, width))
    w1, b1 = rng.normal(size=(width, hidden)), rng.normal(size=(1, hidden))
    w2, b2 = rng.normal(size=(hidden + width, 1)), rng.normal(size=(1, 1))
    flat = np.concatenate([a.ravel() for a in (cross_w, cross_b, w1, b1, w2, b2)]).astype("<f4")
    flat.tofile(tmp_path / "h_dense_0.model")
    folder = tmp_path / "h0_sparse_0.model"
    folder.mkdir()
    keys = np.array([42, 7, 19], "<i8")          # not sorted: HugeCTR writes in hash-table order
    vectors = rng.normal(size=(3, 4)).astype("<f4")
    keys.tofile(folder / "key")
    vectors.tofile(folder / "emb_vector")
    model.load_dense_weights(str(tmp_path / "h_dense_0.model"))
    model.load_sparse_weights([str(folder)])
    np.testing.assert_array_equal(model.runtime.params["fc1"][0], w1.astype(np.float32))
    np.testing.assert_array_equal(model.runtime.params["fc2"][1], b2.astype(np.float32))
    dump = model.runtime.embeddings[0].dump()
    got = dict(zip(dump["key"].tolist(), dump["emb_vector"]))
    for k, v in zip(keys, vectors):
        np.testing.assert_array_equal(got[int(k)], v)


def test_optimizer_state_files_are_checked(tmp_path):
    model = build("Adam-Global")
    run(model, range(1))
    model.save_params_to_files(str(tmp_path / "a"), 1)
    other = build("SGD")
    with pytest.raises(hugectr.CheckpointError, match="bytes"):
        other.load_dense_optimizer_states(str(tmp_path / "a_opt_dense_1.model"))
    fresh = build("Adam-Global")
    with pytest.raises(hugectr.CheckpointError, match="load the matching sparse weights first"):
        fresh.load_sparse_optimizer_states([str(tmp_path / "a0_opt_sparse_1.model")])
    (tmp_path / "short").write_bytes(b"123")
    with pytest.raises(hugectr.CheckpointError, match="too short"):
        fresh.load_sparse_optimizer_states([str(tmp_path / "short")])
    with pytest.raises(hugectr.CheckpointError, match="no embedding named 'nope'"):
        fresh.load_sparse_weights({"nope": str(tmp_path / "a0_sparse_1.model")})
    with pytest.raises(hugectr.CheckpointError, match="no embedding named .nope."):
        fresh.load_sparse_weights(sparse_embedding_files_map={"nope": str(tmp_path / "a0_sparse_1.model")})
    with pytest.raises(TypeError, match="exactly one of sparse_embedding_files, sparse_embedding_files_map"):
        fresh.load_sparse_weights([], sparse_embedding_files_map={})


def test_batchnorm_running_stats_go_to_ntp_json_and_back(tmp_path):
    import json

    from tests.helpers import dense_model

    layers = [DL("InnerProduct", ["dense"], ["fc1"], num_output=6), DL("BatchNorm", ["fc1"], ["bn1"], factor=0.5),
              DL("InnerProduct", ["bn1"], ["fc2"], num_output=1), DL("BinaryCrossEntropyLoss", ["fc2", "label"], ["loss"])]
    model = dense_model(layers)
    model.compile()
    for s in range(3):
        model.runtime.train_step(random_batch(8, seed=s), 0.1)
    model.save_params_to_files(str(tmp_path / "bn"), 3)
    ntp = json.load(open(tmp_path / "bn_dense_3.model.ntp.json"))
    assert [entry["type"] for entry in ntp["layers"]] == ["BatchNorm"]
    stats = model.runtime.dense.state_of("bn1")
    assert len(ntp["layers"][0]) == 1 + len(stats)
    fresh = dense_model(layers)
    fresh.compile()
    fresh.load_dense_weights(str(tmp_path / "bn_dense_3.model"))
    for ours, theirs in zip(stats, fresh.runtime.dense.state_of("bn1")):
        np.testing.assert_array_equal(ours, theirs)
    batch = random_batch(8, seed=9)
    np.testing.assert_array_equal(model.runtime.eval_step(batch)[0], fresh.runtime.eval_step(batch)[0])
    n_trainable = sum(int(np.prod(s.shape)) for _, s in model.runtime.dense.trainable)
    assert (tmp_path / "bn_dense_3.model").stat().st_size == 4 * n_trainable


def test_loading_before_compile_is_a_clear_error(tmp_path):
    model = hugectr.Model(hugectr.CreateSolver(batchsize=8, batchsize_eval=8, device="cpu"),
                          hugectr.DataReaderParams("RawAsync", ["a"], "b"), hugectr.CreateOptimizer())
    with pytest.raises(hugectr.GraphError, match="call model.compile"):
        model.load_dense_weights(str(tmp_path / "x_dense_0.model"))
