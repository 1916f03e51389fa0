"""Train from a Parquet data set on S3 and snapshot there, then load the snapshot back from S3
(a local S3-compatible server: moto in server mode on 127.0.0.1)."""
import os
import socket
import time

import numpy as np
import pytest

import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams
from hugectr_core.filesystems import filesystem_for

SLOTS = [30, 20, 10]


@pytest.fixture(scope="module")
def s3_endpoint():
    server_mod = pytest.importorskip("moto.server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch):
    monkeypatch.setenv("HUGECTR_S3_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    params = hugectr.DataSourceParams(source=hugectr.FileSystemType_t.S3, server="us-east-1", port=9000)
    fs = filesystem_for(params)
    name = f"hugectr-{time.monotonic_ns()}"
    fs.makedirs(name)
    return fs, name, params


def upload_parquet(fs, local_dir, bucket):
    """Upload the generated folders and rewrite the file lists with s3:// paths."""
    for split in ("train", "val"):
        names = sorted(n for n in os.listdir(os.path.join(local_dir, split)))
        for name in names:
            with open(os.path.join(local_dir, split, name), "rb") as f, fs.open(f"{bucket}/{split}/{name}", "wb") as g:
                g.write(f.read())
        data = [n for n in names if n.endswith(".parquet")]
        listing = "\n".join([str(len(data))] + [f"s3://{bucket}/{split}/{n}" for n in data]) + "\n"
        with fs.open(f"{bucket}/{split}/file_list.txt", "wb") as g:
            g.write(listing.encode())


def build(bucket, params):
    solver = hugectr.CreateSolver(batchsize=128, batchsize_eval=128, max_eval_batches=2, lr=0.01, seed=4,
                                  device="cpu", i64_input_key=True)
    reader = hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Parquet,
                                      source=[f"s3://{bucket}/train/file_list.txt"],
                                      eval_source=f"s3://{bucket}/val/file_list.txt", check_type=hugectr.Check_t.Non,
                                      slot_size_array=SLOTS, data_source_params=params)
    model = hugectr.Model(solver, reader, hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam))
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=3, dense_name="dense",
                            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True, 3)]))
    model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
                                      workspace_size_per_gpu_in_mb=1, embedding_vec_size=4, combiner="sum",
                                      sparse_embedding_name="emb", bottom_name="data1"))
    for layer in [hugectr.DenseLayer("Reshape", ["emb"], ["flat"], leading_dim=12),
                  hugectr.DenseLayer("Concat", ["flat", "dense"], ["x"]),
                  hugectr.DenseLayer("InnerProduct", ["x"], ["fc"], num_output=1),
                  hugectr.DenseLayer("BinaryCrossEntropyLoss", ["fc", "label"], ["loss"])]:
        model.add(layer)
    model.compile()
    return model


def test_train_from_s3_snapshot_to_s3_and_load_back(bucket, tmp_path):
    fs, name, params = bucket
    DataGenerator(DataGeneratorParams(hugectr.DataReaderType_t.Parquet, 1, 3, len(SLOTS), True,
                                      str(tmp_path / "file_list.txt"), str(tmp_path / "file_list_test.txt"),
                                      SLOTS, num_files=2, eval_num_files=1, num_samples_per_file=1024, seed=6,
                                      label_model="learnable")).generate()
    upload_parquet(fs, str(tmp_path), name)
    model = build(name, params)
    metrics = model.fit(max_iter=20, display=0, eval_interval=20, snapshot=10, snapshot_prefix=f"s3://{name}/ck/m")
    assert 0.0 <= metrics["AUC"] <= 1.0
    assert fs.exists(f"{name}/ck/m_dense_20.model") and fs.exists(f"{name}/ck/m0_sparse_20.model/key")
    fresh = build(name, params)
    fresh.load_dense_weights(f"s3://{name}/ck/m_dense_20.model")
    fresh.load_dense_optimizer_states(f"s3://{name}/ck/m_opt_dense_20.model")
    fresh.load_sparse_weights([f"s3://{name}/ck/m0_sparse_20.model"])
    assert fresh.runtime.step == 20
    batch = model.get_data_reader_eval().next_batch()
    np.testing.assert_array_equal(model.runtime.eval_step(batch)[0], fresh.runtime.eval_step(batch)[0])
