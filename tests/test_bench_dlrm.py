"""bench/dlrm.py (issue 7's benchmark): the CPU smoke configuration runs and reports every row."""
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "dlrm.py"
PHASES = ["embedding forward", "dense forward", "dense backward", "optimizer", "embedding backward+update", "reader"]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_dlrm", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("dlrm") / "result.json"
    missing_peer = tmp_path_factory.mktemp("nopeer") / "torch_dlrm.py"
    done = subprocess.run([sys.executable, str(BENCH), "--device", "cpu", "--small", "--batch", "1024",
                           "--steps", "5", "--e2e", "--peer", str(missing_peer), "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, json.loads(out.read_text()), str(missing_peer)


def test_smoke_json_has_every_figure(smoke):
    _, result, _ = smoke
    assert {"title", "card", "date", "config", "rows", "phases", "memory"} <= set(result)
    rows = {r["name"]: r for r in result["rows"]}
    for name in ("ours, resident batches", "ours, end to end (RawAsync)"):
        assert rows[name]["samples_per_s"] > 0 and rows[name]["step_ms"] > 0
        # samples/s and step time describe the same measurement
        assert math.isclose(rows[name]["samples_per_s"] * rows[name]["step_ms"] / 1e3, 1024, rel_tol=1e-6)
    assert math.isfinite(rows["ours, resident batches"]["loss"])
    phases = {p["phase"]: p for p in result["phases"]}
    for name in PHASES:
        assert phases[name]["ms"] > 0 and phases[name]["floor_ms"] > 0, name
    memory = result["memory"]
    assert memory["peak"] > 0 and memory["after_first_step"] > 0 and memory["after_last_step"] > 0
    assert memory["peak"] >= memory["after_last_step"]


def test_smoke_table_and_missing_peer_row(smoke):
    stdout, result, missing = smoke
    table = [line for line in stdout.splitlines() if line.startswith("|")]
    text = "\n".join(table)
    for name in ["ours, resident batches", "ours, end to end (RawAsync)", "memory: peak"] + \
            [f"phase: {p}" for p in PHASES]:
        assert name in text, name
    peer = [r for r in result["rows"] if r["name"] == "peer"]
    assert len(peer) == 1 and "missing" in peer[0]["note"] and missing in peer[0]["note"]
    assert "samples_per_s" not in peer[0]


def test_dense_floors_count_every_gemm(smoke):
    """2*M*N*K per GEMM: MLP forward, dW and dX backward (no dX into the dense input), Interaction both ways."""
    _, result, _ = smoke
    batch, vectors = 1024, 27
    widths = [13, 512, 256, 128], [480, 1024, 1024, 512, 256, 1]
    macs = sum(k * n for sizes in widths for k, n in zip(sizes[:-1], sizes[1:]))
    interaction = 2 * vectors * vectors * 128
    fwd = batch * (2 * macs + interaction)
    bwd = batch * (2 * (2 * macs - 13 * 512) + interaction)
    assert 14.0e6 < 3 * 2 * macs < 15.0e6  # the README's ~14.7 MFLOP per sample in the MLPs
    phases = {p["phase"]: p for p in result["phases"]}
    assert math.isclose(phases["dense forward"]["floor_ms"], fwd / 51e12 * 1e3, rel_tol=1e-9)
    assert math.isclose(phases["dense backward"]["floor_ms"], bwd / 51e12 * 1e3, rel_tol=1e-9)


def test_parse_peer_output():
    bench = load_bench()
    text = "\n".join(["device NVIDIA H100 80GB HBM3 torch 2.11",
                      json.dumps({"variant": "fused", "amp": False, "step_ms": 21.9, "samples_per_s": 2990000}),
                      json.dumps({"variant": "compiled", "amp": False, "error": "RuntimeError('x')"}), "noise"])
    rows = bench.parse_peer_output(text, amp=False)
    assert rows[0] == {"name": "peer fused (TF32)", "samples_per_s": 2990000.0, "step_ms": 21.9,
                       "note": "NVIDIA H100 80GB HBM3 torch 2.11"}
    assert rows[1]["name"] == "peer compiled (TF32)" and "error" in rows[1]["note"]


def test_tf32_is_refused_on_the_cpu():
    bench = load_bench()
    with pytest.raises(SystemExit):
        bench.parse_args(["--device", "cpu", "--precision", "tf32"])
    assert bench.parse_args(["--device", "cpu"]).precision == "fp32"
    assert bench.parse_args([]).precision == "tf32"


@pytest.mark.parametrize("embedding", ["LocalizedSlotSparseEmbeddingHash", "hybrid"])
def test_scaling_bench_smoke_run_reports_every_worker_count(tmp_path, embedding):
    """bench/scaling.py on NumPy workers (threads): one row per worker count, speed-up against one."""
    out = tmp_path / "scaling.json"
    done = subprocess.run([sys.executable, str(BENCH.parent / "scaling.py"), "--device", "cpu", "--small",
                           "--per-gpu-batch", "256", "--gpus", "1,2", "--steps", "2", "--warmup", "1",
                           "--precision", "fp32", "--embedding", embedding, "--json", str(out),
                           *(["--grouped-all-reduce"] if embedding == "hybrid" else [])],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert [r["gpus"] for r in result["rows"]] == [1, 2]
    assert [r["global_batch"] for r in result["rows"]] == [256, 512]
    assert result["rows"][0]["speedup_over_one"] == pytest.approx(1.0)
    assert all(r["samples_per_s"] > 0 and math.isfinite(r["loss"]) for r in result["rows"])
    assert all(r["grouped_all_reduce"] == (embedding == "hybrid") for r in result["rows"])
    assert all("NumPy backend" in r["network"] for r in result["rows"])


def test_scaling_bench_under_mpiexec_reports_each_rank_phases(tmp_path):
    """bench/scaling.py --mpi (one process per device): rank 0 writes the rate and every rank's phase times,
    whose spread shows ranks waiting for each other in the collectives."""
    import os
    import shutil

    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    mpiexec = here if os.path.exists(here) else shutil.which("mpiexec")
    assert mpiexec, "mpiexec not found: `scripts/setup test` installs MPICH (pip install mpich mpi4py)"
    out = tmp_path / "mpi.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    done = subprocess.run([mpiexec, "-n", "2", sys.executable, str(BENCH.parent / "scaling.py"), "--mpi", "--phases",
                           "--device", "cpu", "--small", "--per-gpu-batch", "128", "--steps", "1", "--warmup", "1",
                           "--precision", "fp32", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "MPI, 2 process(es)" in done.stdout and "(ranks " in done.stdout
    result = json.loads(out.read_text())
    assert result["gpus"] == 2 and result["global_batch"] == 256
    assert len(result["phases_ms_by_rank"]) == 2
    assert set(result["phases_ms_by_rank"][1]) == set(result["phases_ms"])
