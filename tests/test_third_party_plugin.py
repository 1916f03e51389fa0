"""A third party's layer package, end to end: plugins/_template renamed, installed, used, removed.

The test does what the template's README tells a plugin author to do: copy the folder, rename the
distribution (``hugectr-layers-swish``) and the package (``hugectr_layers_swish``) by plain text
substitution, ``pip install`` the copy, and run its own tests. Then a fresh interpreter, which
knows nothing but what is installed, finds ``hugectr.Layer_t.Swish``, trains a small model with
it on CPU and round-trips the graph through HugeCTR's JSON. The package is uninstalled at the end
whatever happens, so the venv stays as it was.
"""
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hugectr_core.plugins import refresh_all, registry

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "plugins" / "_template"
RENAMES = {"hugectr_layers_example": "hugectr_layers_swish", "hugectr-layers-example": "hugectr-layers-swish"}
DISTRIBUTION = "hugectr-layers-swish"

USE_THE_LAYER = textwrap.dedent('''
    import json, sys
    import numpy as np
    import hugectr
    from hugectr_core.contracts import Batch

    from hugectr_core.plugins import registry
    out = {"has_swish": hasattr(hugectr.Layer_t, "Swish"),
           "swish_module": registry("layers").load("Swish").__module__}
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((64, 4)).astype(np.float32)
    label = (dense @ np.array([1.5, -2.0, 1.0, 0.5]) > 0).astype(np.float32).reshape(-1, 1)

    def DL(kind, bottoms, tops, **kw):
        return hugectr.DenseLayer(layer_type=kind, bottom_names=bottoms, top_names=tops, **kw)

    def build():
        solver = hugectr.CreateSolver(batchsize=32, batchsize_eval=32, lr=0.1, seed=7, device="cpu")
        reader = hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.RawAsync,
                                          source=["unused.bin"], eval_source="unused.bin",
                                          check_type=hugectr.Check_t.Non)
        return hugectr.Model(solver, reader, hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.SGD))

    model = build()
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=4, dense_name="dense",
                            data_reader_sparse_param_array=[]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dense"], ["fc1"], num_output=16))
    model.add(DL(hugectr.Layer_t.Swish, ["fc1"], ["swish1"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["swish1"], ["fc2"], num_output=1))
    model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, ["fc2", "label"], ["loss"]))
    model.compile()
    losses = []
    for step in range(80):
        rows = slice(32 * (step % 2), 32 * (step % 2) + 32)
        batch = Batch(32, label[rows], dense[rows], {})
        losses.append(float(model.runtime.train_step(batch, 0.1)))
    out["losses"] = losses
    out["layer_types"] = [n.layer.type_name for n in model.runtime.graph.nodes]
    out["has_graph_to_json"] = hasattr(model, "graph_to_json")
    if out["has_graph_to_json"]:
        path = sys.argv[1]
        model.graph_to_json(path)
        clone = build()
        clone.construct_from_json(path, True)
        clone.compile()
        out["summary_equal"] = clone.summary() == model.summary()
        out["shapes_equal"] = clone.runtime.shapes == model.runtime.shapes
        out["json_types"] = [layer["type"] for layer in json.load(open(path))["layers"]]
    print("RESULT " + json.dumps(out))
''')


def copy_and_rename(dest: Path) -> Path:
    """The template copied to ``dest`` with every name replaced (README step 2)."""
    shutil.copytree(TEMPLATE, dest, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    for path in dest.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for old, new in RENAMES.items():
                text = text.replace(old, new)
            path.write_text(text)
    (dest / "src" / "hugectr_layers_example").rename(dest / "src" / "hugectr_layers_swish")
    return dest


def pip(*args):
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=180)


@pytest.fixture
def swish_package(tmp_path):
    package = copy_and_rename(tmp_path / DISTRIBUTION)
    assert not any("example" in p.name for p in package.rglob("*"))
    try:
        done = pip("install", "-q", "--no-deps", "--no-build-isolation", "-e", str(package))
        assert done.returncode == 0, done.stderr
        refresh_all()
        yield package
    finally:
        pip("uninstall", "-y", DISTRIBUTION)
        refresh_all()


def test_template_becomes_an_installed_layer_package(swish_package, tmp_path):
    # entry points are metadata: this interpreter sees the new name at once (importing the module
    # needs the editable install's .pth, which only a new interpreter reads)
    assert "Swish" in registry("layers").names()

    # the copy's own tests and doctests, as its author runs them (numerical gradients, float16, package
    # data; GPU twins skip without CuPy)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q"], capture_output=True, text=True,
                           cwd=swish_package, timeout=300)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    passed = re.search(r"(\d+) passed", tests.stdout)
    assert passed and int(passed.group(1)) >= 10 and " failed" not in tests.stdout, tests.stdout[-2000:]

    # a fresh interpreter: discovery through the entry point only
    run = subprocess.run([sys.executable, "-c", USE_THE_LAYER, str(tmp_path / "graph.json")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.split("RESULT ", 1)[1])
    assert result["has_swish"] and result["swish_module"] == "hugectr_layers_swish.layer"
    assert "Swish" in result["layer_types"]
    losses = result["losses"]
    assert all(l == l for l in losses), "NaN loss"
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10, losses
    if result["has_graph_to_json"]:
        assert result["summary_equal"] and result["shapes_equal"]
        assert "Swish" in result["json_types"]


def test_uninstalled_again_after_the_test():
    # runs after the test above (file order): the venv no longer has the package or the layer
    assert pip("show", DISTRIBUTION).returncode != 0
    assert "Swish" not in registry("layers").names()
