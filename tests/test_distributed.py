"""Scale-out: several workers (threads of one process, or MPI ranks) train exactly like one device.

The CPU tests run the same job (tests/distributed_job.py) on 1, 2 and 4 workers with the same global
batch and compare the loss of every step (1e-5 relative), the AUC and the predictions. The MPI
tests start real processes with ``mpiexec`` (MPICH from PyPI, installed by ``scripts/setup test``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import hugectr
from hugectr_core import oneshot as oneshot_module
from hugectr_core.comm import Comm, HostGroup
from hugectr_core.errors import ConfigError, DataError, TrainingError

HERE = os.path.dirname(os.path.abspath(__file__))
JOB = os.path.join(HERE, "distributed_job.py")
sys.path.insert(0, HERE)
import distributed_job  # noqa: E402

REL = 1e-5


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("scaleout")
    for model in ("dlrm", "dcn"):
        distributed_job.generate(model, str(root / model))
    return root


def mpiexec() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.path.exists(here) else shutil.which("mpiexec")
    assert found, "mpiexec not found: `scripts/setup test` installs MPICH (pip install mpich mpi4py)"
    return found


def vvgpu(ranks: int, per_host: int = 1, distinct: bool = False) -> str:
    """One device list per rank; ``distinct``: rank r gets GPU r (several ranks on one GPU host)."""
    if distinct:
        return json.dumps([[r] for r in range(ranks)])
    return json.dumps([list(range(per_host))] * ranks)


def read(out: str, rank: int = 0) -> dict:
    with open(f"{out}.rank{rank}") as f:
        return json.load(f)


def run_in_process(data, tmp_path, model, embedding, devices, *extra):
    out = str(tmp_path / f"{model}-{embedding}-{devices}.json")
    distributed_job.main(["--model", model, "--embedding", embedding, "--data", str(data / model),
                          "--vvgpu", json.dumps([list(range(devices))]), "--out", out, *extra])
    return read(out)


def run_mpi(data, tmp_path, model, embedding, ranks, *extra, timeout=240, check=True, gpus=False):
    out = str(tmp_path / f"mpi-{model}-{embedding}-{ranks}{'-gpu' if gpus else ''}.json")
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, JOB, "--model", model, "--embedding", embedding,
           "--data", str(data / model), "--vvgpu", vvgpu(ranks, distinct=gpus), "--out", out, *extra]
    # Open MPI refuses root without these (containers); MPICH ignores them
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return out, proc


def assert_same_training(base: dict, other: dict) -> None:
    a, b = np.asarray(base["losses"]), np.asarray(other["losses"])
    assert a.shape == b.shape and a.size > 0
    np.testing.assert_allclose(b, a, rtol=REL, atol=0)
    assert abs(base["auc"] - other["auc"]) < 1e-6
    np.testing.assert_allclose(other["predictions"], base["predictions"], rtol=1e-4, atol=1e-6)


# -- collectives -------------------------------------------------------------------------------
def on_threads(n, fn):
    group, out, errors = HostGroup(n), [None] * n, []

    def work(r):
        try:
            out[r] = fn(Comm(group, r))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
            group.abort(str(exc))

    threads = [threading.Thread(target=work, args=(r,)) for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out, errors


def test_host_collectives_are_exact_and_identical_on_every_worker():
    def work(comm):
        r = comm.rank
        x = np.arange(6, dtype=np.float32) * (r + 1)
        comm.allreduce_sum(x)
        part = np.empty((2, 2), np.float32)
        comm.reduce_scatter_sum(np.full((6, 2), r + 1, np.float32), part)
        received = comm.alltoall([np.full(1, 10 * r + d) for d in range(3)])
        return x, part, comm.allgather(np.array([r])), received

    out, errors = on_threads(3, work)
    assert not errors
    for r, (x, part, gathered, received) in enumerate(out):
        np.testing.assert_array_equal(x, np.arange(6) * 6)
        np.testing.assert_array_equal(part, np.full((2, 2), 6))
        assert gathered.tolist() == [0, 1, 2]
        assert [int(a[0]) for a in received] == [10 * s + r for s in range(3)]


def test_a_worker_that_never_arrives_releases_the_others(monkeypatch):
    monkeypatch.setenv("HUGECTR_COLLECTIVE_TIMEOUT", "1")
    start = time.monotonic()
    out, errors = on_threads(2, lambda comm: comm.barrier() if comm.rank == 0 else None)
    assert time.monotonic() - start < 10
    assert len(errors) == 1 and isinstance(errors[0], TrainingError)
    assert "did not reach the collective" in str(errors[0])


# -- workers in one process (NumPy threads) ------------------------------------------------------
@pytest.mark.parametrize("model", ["dlrm", "dcn"])
@pytest.mark.parametrize("embedding", ["distributed", "localized"])
def test_threads_train_like_one_device(data, tmp_path, model, embedding):
    base = run_in_process(data, tmp_path, model, embedding, 1)
    for devices in (2, 4):
        assert_same_training(base, run_in_process(data, tmp_path, model, embedding, devices))


def test_checkpoint_saved_on_4_workers_loads_on_1_and_back(data, tmp_path):
    saved4 = str(tmp_path / "four")
    run_in_process(data, tmp_path, "dlrm", "localized", 4, "--save", saved4, "--steps", "6")
    on1 = run_in_process(data, tmp_path, "dlrm", "localized", 1, "--load", saved4, "--steps", "0")
    saved1 = str(tmp_path / "one")
    run_in_process(data, tmp_path, "dlrm", "localized", 1, "--save", saved1, "--steps", "6")
    ref1 = run_in_process(data, tmp_path, "dlrm", "localized", 1, "--load", saved1, "--steps", "0")
    np.testing.assert_allclose(on1["predictions"], ref1["predictions"], rtol=1e-4, atol=1e-6)
    on4 = run_in_process(data, tmp_path, "dlrm", "localized", 4, "--load", saved1, "--steps", "0")
    np.testing.assert_allclose(on4["predictions"], ref1["predictions"], rtol=1e-4, atol=1e-6)
    # the files do not depend on the worker count (keys sorted, same vectors)
    keys4 = np.fromfile(f"{saved4}0_sparse_0.model/key", "<i8")
    keys1 = np.fromfile(f"{saved1}0_sparse_0.model/key", "<i8")
    np.testing.assert_array_equal(keys4, keys1)
    np.testing.assert_allclose(np.fromfile(f"{saved4}0_sparse_0.model/emb_vector", "<f4"),
                               np.fromfile(f"{saved1}0_sparse_0.model/emb_vector", "<f4"), rtol=1e-5, atol=1e-7)


def test_hosts_without_mpirun_are_a_clear_error(data, tmp_path):
    with pytest.raises(ConfigError, match="mpirun -np 2"):
        distributed_job.main(["--data", str(data / "dlrm"), "--vvgpu", "[[0], [0]]", "--out", str(tmp_path / "x")])


def test_oneshot_all_reduce_trains_exactly_like_the_default(data, tmp_path, monkeypatch):
    """AllReduceAlgo.OneShot: the workers of one process read each other's gradient buffers in place; the
    sum is taken in rank order like the default's, so every step's loss is the same to the bit."""
    calls = []
    one_shot = oneshot_module.OneShotComm.allreduce_sum
    monkeypatch.setattr(oneshot_module.OneShotComm, "allreduce_sum",
                        lambda self, x: (calls.append(self.rank), one_shot(self, x))[1])
    for devices in (2, 4):
        default = run_in_process(data, tmp_path, "dlrm", "distributed", devices)
        calls.clear()
        oneshot = run_in_process(data, tmp_path, "dlrm", "distributed", devices, "--oneshot")
        assert len(calls) >= devices * len(oneshot["losses"])  # the gradients took the one-shot path
        assert oneshot["losses"] == default["losses"]
        assert oneshot["predictions"] == default["predictions"]


def test_oneshot_across_processes_is_a_clear_error(data, tmp_path):
    _, proc = run_mpi(data, tmp_path, "dlrm", "distributed", 2, "--oneshot", check=False)
    assert proc.returncode != 0
    assert "all_reduce_algo=OneShot" in proc.stderr and "use AllReduceAlgo.NCCL" in proc.stderr


# -- MPI ranks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["dlrm", "dcn"])
@pytest.mark.parametrize("embedding", ["distributed", "localized"])
def test_mpi_ranks_train_like_one_rank(data, tmp_path, model, embedding):
    base_out, _ = run_mpi(data, tmp_path, model, embedding, 1)
    base = read(base_out)
    for ranks in (2, 4):
        out, _ = run_mpi(data, tmp_path, model, embedding, ranks)
        for rank in range(ranks):
            assert_same_training(base, read(out, rank))


def test_mpi_checkpoint_from_2_ranks_loads_on_1(data, tmp_path):
    saved = str(tmp_path / "two")
    run_mpi(data, tmp_path, "dcn", "distributed", 2, "--save", saved, "--steps", "4")
    assert os.path.isdir(f"{saved}0_sparse_0.model")
    from_two = run_in_process(data, tmp_path, "dcn", "distributed", 1, "--load", saved, "--steps", "0")
    back, _ = run_mpi(data, tmp_path, "dcn", "distributed", 2, "--load", saved, "--steps", "0")
    np.testing.assert_allclose(read(back)["predictions"], from_two["predictions"], rtol=1e-4, atol=1e-6)


def test_mpi_rank_that_dies_stops_the_job(data, tmp_path):
    start = time.monotonic()
    _, proc = run_mpi(data, tmp_path, "dlrm", "distributed", 2, "--fail-rank", "1", "--steps", "6",
                      timeout=120, check=False)
    assert proc.returncode != 0
    assert time.monotonic() - start < 60
    assert "fails on purpose" in proc.stderr and "aborting all 2 ranks" in proc.stderr


def test_mpi_ranks_that_disagree_on_the_model_stop_at_compile(data, tmp_path):
    _, proc = run_mpi(data, tmp_path, "dlrm", "distributed", 2, "--model-differs", timeout=120, check=False)
    assert proc.returncode != 0
    assert "worker 1 built a different model than worker 0" in proc.stderr


# -- GPUs ------------------------------------------------------------------------------------------
def gpu_count() -> int:
    import cupy  # noqa: PLC0415

    return cupy.cuda.runtime.getDeviceCount()


@pytest.mark.gpu
@pytest.mark.parametrize("embedding", ["distributed", "localized"])
def test_gpus_in_one_process_train_like_one_gpu(data, tmp_path, embedding):
    devices = [n for n in (2, 4) if n <= gpu_count()]
    if not devices:
        pytest.skip("needs a host with 2 or more GPUs")
    base = run_in_process(data, tmp_path, "dlrm", embedding, 1, "--device", "gpu")
    for n in devices:
        assert_same_training(base, run_in_process(data, tmp_path, "dlrm", embedding, n, "--device", "gpu"))


@pytest.mark.gpu
def test_gpu_oneshot_all_reduce_trains_like_one_gpu(data, tmp_path):
    """AllReduceAlgo.OneShot on the GPUs of one process: peer copies after the peers' events, a rank-order
    sum, and a buffer overwritten only after every peer copied it: the training of one GPU."""
    devices = [n for n in (2, 4) if n <= gpu_count()]
    if not devices:
        pytest.skip("needs a host with 2 or more GPUs")
    base = run_in_process(data, tmp_path, "dlrm", "distributed", 1, "--device", "gpu")
    for n in devices:
        assert_same_training(base, run_in_process(data, tmp_path, "dlrm", "distributed", n, "--device", "gpu",
                                                  "--oneshot"))


@pytest.mark.gpu
def test_gpu_processes_under_mpirun_train_like_one_gpu(data, tmp_path):
    """Several hosts' way on one host: one process per GPU (vvgpu=[[0], [1]]), NCCL bootstrapped by MPI."""
    if gpu_count() < 2:
        pytest.skip("needs a host with 2 or more GPUs")
    base = run_in_process(data, tmp_path, "dlrm", "localized", 1, "--device", "gpu")
    out, _ = run_mpi(data, tmp_path, "dlrm", "localized", 2, "--device", "gpu", gpus=True)
    for rank in range(2):
        assert_same_training(base, read(out, rank))


@pytest.mark.gpu
def test_gpu_checkpoint_from_2_gpus_reloads_on_1(data, tmp_path):
    if gpu_count() < 2:
        pytest.skip("needs a host with 2 or more GPUs")
    saved = str(tmp_path / "gpu2")
    run_in_process(data, tmp_path, "dlrm", "distributed", 2, "--device", "gpu", "--save", saved, "--steps", "6")
    on1 = run_in_process(data, tmp_path, "dlrm", "distributed", 1, "--device", "gpu", "--load", saved, "--steps", "0")
    on2 = run_in_process(data, tmp_path, "dlrm", "distributed", 2, "--device", "gpu", "--load", saved, "--steps", "0")
    np.testing.assert_allclose(on1["predictions"], on2["predictions"], rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
def test_gpu_ids_that_do_not_exist_are_named(data, tmp_path):
    missing = gpu_count() + 3
    with pytest.raises(ConfigError, match=f"GPU id\\(s\\) \\[{missing}\\] do not exist"):
        distributed_job.main(["--data", str(data / "dlrm"), "--device", "gpu", "--vvgpu", f"[[0, {missing}]]",
                              "--out", str(tmp_path / "x")])


def test_epoch_mode_short_last_batch_matches_one_device(data, tmp_path):
    """A last global batch shorter than the batch size: the workers split its valid rows unevenly, and the
    gradient, the displayed loss and the evaluation still equal one device's."""
    def run(devices):
        args = argparse.Namespace(model="dlrm", data=str(data / "dlrm"), device="cpu", embedding="localized",
                                  model_differs=False, hybrid=None)
        model = distributed_job.build(args, [list(range(devices))], 0)
        model.solver.repeat_dataset = False
        model.solver.drop_incomplete_batch = False
        model.reader_params.num_samples = 3 * 512 + 300  # three full batches, then 300 rows (2 workers: 256 + 44)
        model.compile()
        losses = []
        while model.train():
            losses.append(model.get_current_loss())
        model.eval()
        return losses, dict(model.get_eval_metrics())["AUC"], model.runtime.dense.master.copy()

    base, auc, weights = run(1)
    assert len(base) == 4
    for devices in (2, 4):
        losses, other_auc, other_weights = run(devices)
        np.testing.assert_allclose(losses, base, rtol=REL)
        np.testing.assert_allclose(other_weights, weights, rtol=1e-4, atol=1e-6)
        # after 4 steps many predictions are nearly tied: 1e-7 differences reorder a few dozen pairs
        assert abs(other_auc - auc) < 5e-4


def two_workers(comm_cls):
    """A pool of two worker threads on the NumPy backend, each holding a ``comm_cls`` of one host group."""
    from hugectr_core.workers import Workers

    group = HostGroup(2)
    pool = Workers([0, 1], np, group)
    pool.start(lambda i: comm_cls(group, i))
    return pool


def fail_on_worker_1(pool, message: str) -> None:
    """Worker 1 raises ``message`` while worker 0 waits in a collective; the error reaches the caller."""
    def failing(comm):
        if comm.rank == 1:
            raise ValueError(message)
        comm.barrier()

    with pytest.raises(ValueError, match=message):
        pool.run(failing)


def test_workers_recover_after_an_error_the_user_caught():
    """One worker raises inside a step: the error reaches the caller, the others are released at once, and
    the next call meets in collectives normally."""

    pool = two_workers(Comm)
    start = time.monotonic()
    fail_on_worker_1(pool, "bad batch on worker 1")
    assert time.monotonic() - start < 10
    assert pool.run(lambda comm: comm.allgather(np.array([comm.rank])).tolist()) == [[0, 1], [0, 1]]
    pool.close()


# -- hybrid embedding ------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["dlrm", "dcn"])
@pytest.mark.parametrize("rule", ["NVLink_SingleNode", "IB_NVLink"])
def test_hybrid_embedding_trains_like_one_device(data, tmp_path, model, rule):
    """Frequent categories replicated, the rest by key % W: on 1, 2 and 4 workers the same losses, AUC and
    predictions as the ordinary embedding on one device (both frequency rules)."""
    plain = run_in_process(data, tmp_path, model, "distributed", 1, "--sgd")
    for devices in (1, 2, 4):
        hybrid = run_in_process(data, tmp_path, model, "distributed", devices, "--hybrid", rule)
        # at most max_num_frequent_categories=2 x the global batch; the bandwidth rule sees nothing to save on
        # one worker (no all-to-all), the duplicate rule always finds the hot keys of the power law
        assert hybrid["frequent_categories"] <= 2 * 512
        assert hybrid["frequent_categories"] > 0 or (devices == 1 and rule == "IB_NVLink")
        assert_same_training(plain, hybrid)


def test_grouped_all_reduce_sends_the_frequent_gradients_with_the_dense_ones(data, tmp_path, monkeypatch):
    """grouped_all_reduce=True: one all-reduce per step carries the dense gradients and the hybrid
    embedding's frequent-category gradients; the training is the same as ungrouped and as one device."""
    calls = {"single": 0, "grouped": 0}
    single, grouped = Comm.allreduce_sum, Comm.allreduce_sum_many

    def count_single(self, x):
        calls["single"] += self.rank == 0
        return single(self, x)

    def count_grouped(self, buffers):
        calls["grouped"] += self.rank == 0 and len(buffers) > 1
        return grouped(self, buffers)

    monkeypatch.setattr(Comm, "allreduce_sum", count_single)
    monkeypatch.setattr(Comm, "allreduce_sum_many", count_grouped)
    plain = run_in_process(data, tmp_path, "dlrm", "distributed", 1, "--sgd")
    ungrouped = run_in_process(data, tmp_path, "dlrm", "distributed", 2, "--hybrid", "NVLink_SingleNode")
    separate = dict(calls)
    calls.update(single=0, grouped=0)
    together = run_in_process(data, tmp_path, "dlrm", "distributed", 2, "--hybrid", "NVLink_SingleNode", "--grouped")
    steps = len(together["losses"])
    assert together["frequent_categories"] > 0 and separate["grouped"] == 0
    assert calls["grouped"] == steps  # one grouped call per step ...
    assert calls["single"] == separate["single"] - steps  # ... instead of the embedding's own all-reduce
    assert_same_training(plain, together)
    assert_same_training(ungrouped, together)


def test_hybrid_embedding_under_mpiexec_and_its_checkpoint(data, tmp_path):
    base = run_in_process(data, tmp_path, "dlrm", "distributed", 1, "--sgd")
    saved = str(tmp_path / "hybrid2")
    out, _ = run_mpi(data, tmp_path, "dlrm", "distributed", 2, "--hybrid", "NVLink_SingleNode", "--save", saved)
    for rank in range(2):
        assert_same_training(base, read(out, rank))
    # the hybrid checkpoint (frequent replica + infrequent shards, sorted by key) loads into an ordinary model
    keys = np.fromfile(f"{saved}0_sparse_0.model/key", "<i8")
    assert keys.size == np.unique(keys).size and np.all(np.diff(keys) > 0)
    ordinary = run_in_process(data, tmp_path, "dlrm", "distributed", 1, "--load", saved, "--steps", "0")
    hybrid = run_in_process(data, tmp_path, "dlrm", "distributed", 2, "--hybrid", "IB_NVLink", "--load", saved,
                            "--steps", "0")
    np.testing.assert_allclose(hybrid["predictions"], ordinary["predictions"], rtol=1e-4, atol=1e-6)


def test_hybrid_embedding_refuses_what_it_cannot_train(data):
    args = argparse.Namespace(model="dlrm", data=str(data / "dlrm"), device="cpu", embedding="distributed",
                              model_differs=False, hybrid="IB_NVLink", sgd=False)
    model = distributed_job.build(args, [[0, 1]], 0)
    model.sparse_embeddings[0].optimizer = hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam)
    with pytest.raises(ConfigError, match="SGD only"):
        model.compile()
    model = distributed_job.build(args, [[0, 1]], 0)
    model.sparse_embeddings[0].embedding_type = hugectr.Embedding_t.LocalizedSlotSparseEmbeddingHash
    with pytest.raises(ConfigError, match="needs DistributedSlotSparseEmbeddingHash"):
        model.compile()
    model = distributed_job.build(args, [[0, 1]], 0)
    param = model.sparse_embeddings[0].hybrid_embedding_param
    param.max_num_infrequent_samples = 0  # no infrequent lookup allowed at all
    model.compile()
    with pytest.raises(DataError, match="max_num_infrequent_samples=0"):
        for _ in range(5):
            model.train()


@pytest.mark.gpu
def test_gpu_hybrid_embedding_trains_like_one_gpu(data, tmp_path):
    if gpu_count() < 2:
        pytest.skip("needs a host with 2 or more GPUs")
    plain = run_in_process(data, tmp_path, "dlrm", "distributed", 1, "--sgd", "--device", "gpu")
    for n in [n for n in (2, 4) if n <= gpu_count()]:
        hybrid = run_in_process(data, tmp_path, "dlrm", "distributed", n, "--hybrid", "NVLink_SingleNode",
                                "--device", "gpu")
        assert hybrid["frequent_categories"] > 0
        assert_same_training(plain, hybrid)


# -- mixed precision: localized shards exchange fp16 --------------------------------------------------
@pytest.mark.parametrize("workers", [2, 4])
def test_localized_shards_exchange_fp16_bit_for_bit_under_mixed_precision(workers):
    """Sum-combined slots are summed whole by their owner and rounded to fp16 once, so the fp16 all-to-all
    (half the bytes, no fp32 staging) gives the one-device lookup and table bit for bit."""
    from hugectr_core.contracts import EmbeddingConfig, StepContext
    from hugectr_core.params import CreateOptimizer
    from hugectr_core.plugins import registry
    from hugectr_core.sharding import ShardedEmbedding

    cls = registry("embeddings").load("LocalizedSlotSparseEmbeddingHash")
    slots, vec, local = 5, 8, 4
    batch = local * workers

    def config(combiner):
        return EmbeddingConfig(type_name="LocalizedSlotSparseEmbeddingHash", name="e", bottom_name="data",
                               embedding_vec_size=vec, combiner=combiner, workspace_size_per_gpu_in_mb=1,
                               slot_num=slots, max_nnz_per_slot=(2,) * slots)

    def sgd():
        return registry("optimizers").load("SGD")(CreateOptimizer(optimizer_type="SGD"))

    rng = np.random.default_rng(workers)
    per_segment = rng.integers(1, 3, batch * slots)
    offsets = np.concatenate([[0], np.cumsum(per_segment)]).astype(np.int64)
    slot_of = np.repeat(np.tile(np.arange(slots), batch), per_segment)
    keys = (slot_of * 100 + rng.integers(0, 30, offsets[-1])).astype(np.uint32)  # keys unique to their slot
    grad = rng.normal(size=(batch, slots, vec)).astype(np.float16)
    ctx = StepContext(np, training=True, step=1, scaler=1.0)

    single = cls(config("sum"), sgd())
    single.allocate(np, np.random.default_rng(0))
    want = np.empty((batch, slots, vec), np.float16)
    single.forward(ctx, offsets, keys, want)
    single.backward(ctx, grad, lr=0.1)

    def work(comm):
        emb = ShardedEmbedding(cls, config("sum"), sgd(), comm)
        emb.allocate(np, np.random.default_rng(0))
        out = np.empty((local, slots, vec), np.float16)
        emb.forward(ctx, offsets, keys, out)
        emb.backward(ctx, grad[comm.rank * local:(comm.rank + 1) * local], lr=0.1)
        return emb.fp16_io, out, emb.dump()

    results, errors = on_threads(workers, work)
    assert not errors, errors
    assert all(r[0] for r in results)
    np.testing.assert_array_equal(np.concatenate([r[1] for r in results]), want)
    by_key = single.dump()
    order = np.argsort(by_key["key"])
    for _, _, dump in results:
        np.testing.assert_array_equal(dump["key"], by_key["key"][order])
        np.testing.assert_array_equal(dump["emb_vector"], by_key["emb_vector"][order])
    assert not ShardedEmbedding(cls, config("mean"), sgd(), Comm(HostGroup(1), 0)).fp16_io  # scaled after: fp32


def test_a_failing_worker_aborts_the_device_collectives_of_the_others():
    """On GPUs driven from threads the others may wait inside an NCCL collective, out of the host barrier's
    reach: a failure aborts every local device communicator, so they fail instead of hanging."""

    class DeviceComm(Comm):
        def __init__(self, group, rank):
            super().__init__(group, rank)
            self.aborts = 0

        def abort_device_collectives(self):
            self.aborts += 1

    pool = two_workers(DeviceComm)
    fail_on_worker_1(pool, "worker 1 dies")
    assert all(comm.aborts >= 1 for comm in pool.items)  # NcclComm itself aborts only the first time
    pool.close()
