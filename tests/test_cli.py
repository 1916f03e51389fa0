"""The ``hugectr`` command end to end on the CPU: generate -> train -> summary -> plot, bench, exit codes."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from hugectr_core import cli, summary
from hugectr_core.metrics_log import read_log
from hugectr_core.plot import plot_metrics

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "data", "tiny_model.py")
SLOTS = "60,40,30,20"          # tiny_model.py's vocabulary
RECORD_BYTES = 4 + 4 * 4 + 4 * 4  # RawAsync: int32 label, 4 float32 dense, 4 uint32 keys


def tiny():
    """tests/data/tiny_model.py as a module (its build_model builds the model the CLI tests train)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_model", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*argv):
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Data written by `hugectr generate`, then a training run with a metrics log."""
    d = tmp_path_factory.mktemp("cli")
    assert run("generate", "--format", "RawAsync", "--slot-sizes", SLOTS, "--dense-dim", 4, "--num-samples", 4096,
               "--eval-num-samples", 1024, "--learnable", "--seed", 7, "--output", d / "data") == 0
    assert run("train", "--metrics-log", d / "metrics.jsonl", TINY, "--data", d / "data", "--iters", 40) == 0
    return d


def test_generate_writes_the_files_it_reports(workdir, capsys):
    assert os.path.getsize(workdir / "data" / "train.bin") == 4096 * RECORD_BYTES
    assert os.path.getsize(workdir / "data" / "val.bin") == 1024 * RECORD_BYTES
    keys = np.fromfile(workdir / "data" / "train.bin", dtype=np.uint32).reshape(4096, -1)[:, 5:]
    assert keys.max() < 60 + 40 + 30 + 20 and (keys[:, 1] >= 60).all()   # slot offsets are in the keys


def test_generate_parquet_and_its_report(tmp_path, capsys):
    assert run("generate", "--format", "Parquet", "--slot-sizes", "10,20", "--dense-dim", 2, "--num-files", 2,
               "--samples-per-file", 64, "--nnz", "2", "--seed", 1, "--output", tmp_path) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("\n{") + 1:])
    assert len(report["train"]) == 2 and all(os.path.isfile(p) for p in report["train"] + report["eval"])
    assert report["train_list"] == str(tmp_path / "file_list.txt")
    assert open(tmp_path / "file_list.txt").read().split()[0] == "2"


def test_train_writes_a_metrics_log(workdir):
    records = read_log(workdir / "metrics.jsonl")
    events = [r["event"] for r in records]
    assert events[0] == "fit_start" and events[-1] == "fit_end"
    train = [r for r in records if r["event"] == "train"]
    evals = [r for r in records if r["event"] == "eval"]
    assert [r["iteration"] for r in train] == list(range(5, 41, 5))
    assert [r["iteration"] for r in evals] == [10, 20, 30, 40]
    assert all(r["loss"] > 0 and r["lr"] == 0.01 and r["samples_per_s"] > 0 and r["wall_time"] >= 0 for r in train)
    assert all(0.5 < r["metrics"]["AUC"] <= 1.0 for r in evals)
    assert records[-1]["samples"] == 40 * 128
    assert "HUGECTR_METRICS_LOG" not in os.environ   # --metrics-log does not leak into the process


def test_summary_prints_the_plan_without_training(workdir, capsys):
    assert run("summary", TINY, "--data", workdir / "data") == 0
    out = capsys.readouterr().out
    assert "MultiCross" in out and "(128, 36)" in out and "Dense parameters: 453" in out
    for part in ("activations (train)", "dense weights", "dense optimizer states", "embedding emb: table",
                 "embedding emb: hash table", "RAM available", "OK: the plan"):
        assert part in out, part
    assert "Iter:" not in out and "HUGECTR_SUMMARY_ONLY" not in os.environ


def test_plot_draws_both_curves(workdir, capsys):
    png = workdir / "curves.png"
    assert run("plot", workdir / "metrics.jsonl", "-o", png) == 0
    assert png.stat().st_size > 10_000
    fig = plot_metrics(str(workdir / "metrics.jsonl"), str(workdir / "again.png"))
    records = read_log(workdir / "metrics.jsonl")
    (loss_line,), (auc_line,) = fig.axes[0].lines, fig.axes[1].lines
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "AUC"]
    assert list(loss_line.get_ydata()) == [r["loss"] for r in records if r["event"] == "train"]
    assert list(auc_line.get_ydata()) == [r["metrics"]["AUC"] for r in records if r["event"] == "eval"]
    import matplotlib.image

    pixels = matplotlib.image.imread(str(png))[..., :3]
    blue = np.all(np.abs(pixels - np.array([0x1F, 0x77, 0xB4]) / 255) < 0.05, axis=-1)    # tab:blue loss
    orange = np.all(np.abs(pixels - np.array([0xFF, 0x7F, 0x0E]) / 255) < 0.05, axis=-1)  # tab:orange AUC
    width = pixels.shape[1]
    assert blue[:, : width // 2].sum() > 200 and orange[:, width // 2:].sum() > 200


def test_plot_without_matplotlib_says_how_to_install(workdir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert run("plot", workdir / "metrics.jsonl", "-o", workdir / "x.png") == 1
    assert "hugectr-core[plot]" in capsys.readouterr().err


def test_train_graph_json(workdir, capsys):
    model = tiny().build_model(str(workdir / "data"))
    model.compile()
    model.graph_to_json(str(workdir / "graph.json"))
    assert run("train", "--graph", workdir / "graph.json", "--source", workdir / "data" / "train.bin",
               "--eval-source", workdir / "data" / "val.bin", "--batchsize", 128, "--batchsize-eval", 256,
               "--max-eval-batches", 2, "--max-iter", 10, "--display", 5, "--eval-interval", 10,
               "--device", "cpu") == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["iterations"] == 10 and 0 < result["metrics"]["AUC"] <= 1


def test_train_graph_without_construct_from_json_is_a_clear_error(workdir, monkeypatch, capsys):
    from hugectr_core.model import Model

    monkeypatch.delattr(Model, "construct_from_json", raising=False)
    assert run("train", "--graph", TINY, "--source", "a", "--eval-source", "b") == 1
    assert "model-lifecycle" in capsys.readouterr().err


def test_predict_and_export_onnx_end_to_end(tmp_path, capsys):
    import numpy as np

    import examples.dcn_learnable as dcn

    dcn.generate(str(tmp_path))
    model = dcn.build_model(str(tmp_path), "cpu")
    model.compile()
    model.fit(max_iter=4, display=0, eval_interval=0, snapshot=0)
    model.graph_to_json(str(tmp_path / "g.json"))
    model.save_params_to_files(str(tmp_path / "m"), 4)
    files = ["--graph", tmp_path / "g.json", "--dense", tmp_path / "m_dense_4.model",
             "--sparse", tmp_path / "m0_sparse_4.model"]
    assert run("predict", *files, "--source", tmp_path / "val.bin", "--num-batches", 2, "--batch-size", 512,
               "--device", "cpu", "--output", tmp_path / "p.npy") == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"] == 1024
    pred = np.load(tmp_path / "p.npy")
    assert pred.shape == (1024, 1) and np.all((pred > 0) & (pred < 1))
    assert run("export-onnx", *files, "--onnx", tmp_path / "m.onnx") == 0
    assert (tmp_path / "m.onnx").stat().st_size > 0
    assert run("predict", *files, "--source", tmp_path / "missing.bin", "--device", "cpu") == 1


def test_bench_reports_samples_per_second(capsys):
    assert run("bench", "--device", "cpu", "--iters", 3, "--warmup", 1, "--batch", 64, "--slot-sizes", "50,50",
               "--hidden", 8, "--json") == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["iterations"] == 3 and result["batch"] == 64 and result["samples_per_s"] > 0
    assert result["device"].startswith("cpu")


@pytest.mark.parametrize("argv", [
    [], ["nosuch"], ["generate"], ["generate", "--slot-sizes", "a,b"], ["generate", "--slot-sizes", "3",
                                                                          "--format", "Norm2"],
    ["train"], ["train", "missing_script.py"], ["summary", "missing_script.py"], ["plot", "missing.jsonl"],
    ["train", "--graph", "missing.json"], ["bench", "--iters", "0"], ["plugins", "--kind", "nokind"]])
def test_usage_errors_exit_2(argv, capsys):
    try:
        code = run(*argv)
    except SystemExit as exc:   # argparse's own usage errors
        code = exc.code
    assert code == 2
    assert "error" in capsys.readouterr().err


def test_hugectr_errors_exit_1(tmp_path, capsys):
    assert run("generate", "--slot-sizes", "10", "--alpha", "1.0", "--output", tmp_path) == 1
    assert "alpha" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    assert run("train", bad) == 1


@pytest.mark.parametrize("command", ["plugins", "generate", "train", "summary", "predict", "export-onnx", "bench",
                                     "plot"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        run(command, "--help")
    assert exc.value.code == 0 and f"hugectr {command}" in capsys.readouterr().out


def test_installed_command_exit_codes():
    exe = os.path.join(os.path.dirname(sys.executable), "hugectr")
    command = [exe] if os.path.exists(exe) else [sys.executable, "-m", "hugectr_core.cli"]
    ok = subprocess.run(command + ["plugins", "--kind", "hooks"], capture_output=True, text=True)
    assert ok.returncode == 0 and "metrics_log" in ok.stdout and "memory_check" in ok.stdout
    assert subprocess.run(command + ["generate"], capture_output=True).returncode == 2
    assert subprocess.run(command + ["predict"], capture_output=True).returncode == 2  # missing arguments


def test_memory_warning_before_training(workdir, monkeypatch, capsys):
    model = tiny().build_model(str(workdir / "data"))
    model.compile()
    monkeypatch.setattr(summary, "device_memory", lambda xp: (1024, 2048))
    assert "WARNING: the memory plan needs" in model.summary()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(max_iter=1, display=0, eval_interval=0, snapshot=0)
    assert any(issubclass(w.category, summary.MemoryPlanWarning) for w in caught)
    assert "[HCTR] WARNING: the memory plan needs" in capsys.readouterr().out


def test_plain_progress_lines_off_a_terminal(workdir, monkeypatch, capsys):
    model = tiny().build_model(str(workdir / "data"))
    model.compile()
    monkeypatch.setenv("HUGECTR_PROGRESS_SECONDS", "0")
    model.fit(max_iter=4, display=2, eval_interval=0, snapshot=0)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "progress:" in ln]
    assert len(lines) == 4 and "iteration 4/4 (100%)" in lines[-1]
    assert "samples/s" in lines[-1] and "loss" in lines[-1] and "ETA 0:00:00" in lines[-1]


def test_progress_bar_on_a_terminal(workdir, monkeypatch, capsys):
    from hugectr_core import progress

    model = tiny().build_model(str(workdir / "data"))
    model.compile()
    monkeypatch.setattr(progress, "_want_bar", lambda: True)
    model.fit(max_iter=4, display=2, eval_interval=0, snapshot=0)
    captured = capsys.readouterr()
    assert "samples/s" in captured.err and "loss" in captured.err and "4/4" in captured.err  # the tqdm bar
    assert "Iter: 4" in captured.out   # HugeCTR's display lines stay


def test_evaluation_progress_bar_hooks(monkeypatch, capsys):
    """fit's evaluation reports through hugectr_eval_start / hugectr_eval_batch_end (call sites: the lead's fit)."""
    from hugectr_core import progress
    from hugectr_core.plugins import plugin_manager

    monkeypatch.setattr(progress, "_want_bar", lambda: True)
    hook = plugin_manager().hook
    hook.hugectr_eval_start(model=None, iteration=10, batches=3)
    for batch in (1, 2):
        hook.hugectr_eval_batch_end(model=None, batch=batch)
    reporter = plugin_manager().get_plugin("hooks:progress")
    assert reporter.eval_bar is not None and reporter.eval_bar.n == 2
    hook.hugectr_eval_batch_end(model=None, batch=3)
    assert reporter.eval_bar is None and "eval:" in capsys.readouterr().err   # leave=False: cleared when done
