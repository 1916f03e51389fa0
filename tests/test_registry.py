"""Registries: lazy entry points, missing types, duplicates, env switches, enum views, CLI."""
import pytest

import hugectr
from hugectr_core import plugins
from hugectr_core.cli import main
from hugectr_core.contracts import Layer
from hugectr_core.errors import PluginError


class Dummy(Layer):
    def infer_shapes(self, bottom_shapes):
        return [bottom_shapes[0]]


@pytest.fixture
def fresh_layers():
    reg = plugins.registry("layers")
    yield reg
    reg.unregister("MyDummy")
    reg.refresh()


def test_installed_plugins_are_listed_without_importing():
    names = {(e.kind, e.name) for e in plugins.list_plugins()}
    assert ("filesystems", "Local") in names
    assert ("layers", "InnerProduct") in names
    assert ("embeddings", "DistributedSlotSparseEmbeddingHash") in names


def test_missing_known_type_names_the_distribution(fresh_layers, monkeypatch):
    monkeypatch.setenv("HUGECTR_PLUGINS_BLOCK", "hugectr-layers-sequence")  # as if it were not installed
    fresh_layers.refresh()
    with pytest.raises(PluginError, match="pip install hugectr-layers-sequence"):
        plugins.registry("layers").load("MultiHeadAttention")
    with pytest.raises(PluginError, match="hugectr-layers-sequence"):
        hugectr.Layer_t.MultiHeadAttention


def test_unknown_type_lists_installed(fresh_layers):
    with pytest.raises(PluginError, match="unknown layer type 'NoSuchLayer'.*InnerProduct"):
        fresh_layers.load("NoSuchLayer")


def test_registering_in_code_extends_layer_t(fresh_layers):
    assert "MyDummy" not in hugectr.Layer_t
    fresh_layers.register("MyDummy", Dummy)
    assert hugectr.Layer_t.MyDummy == "MyDummy"
    assert "MyDummy" in dir(hugectr.Layer_t)
    with pytest.raises(PluginError, match="already registered"):
        fresh_layers.register("MyDummy", Dummy)
    fresh_layers.register("MyDummy", Dummy, override=True)
    assert fresh_layers.load("MyDummy") is Dummy


def test_duplicate_names_across_distributions_are_refused(monkeypatch, fresh_layers):
    from importlib import metadata

    class FakeDist:
        def __init__(self, name):
            self.metadata, self.version = {"Name": name}, "1.0"

    class FakeEP:
        def __init__(self, dist):
            self.name, self.value, self.dist = "Twin", "math:sqrt", FakeDist(dist)

    monkeypatch.setattr(metadata, "entry_points", lambda group: [FakeEP("dist-a"), FakeEP("dist-b")])
    fresh_layers.refresh()
    with pytest.raises(PluginError, match="several distributions.*dist-a, dist-b"):
        fresh_layers.load("Twin")


def test_block_and_allow_lists(monkeypatch, fresh_layers):
    monkeypatch.setenv("HUGECTR_PLUGINS_BLOCK", "layers:InnerProduct")
    fresh_layers.refresh()
    assert "InnerProduct" not in fresh_layers and "ReLU" in fresh_layers
    monkeypatch.delenv("HUGECTR_PLUGINS_BLOCK")
    monkeypatch.setenv("HUGECTR_PLUGINS_ALLOW", "hugectr-layers-dense")
    fresh_layers.refresh()
    assert fresh_layers.names() == ["InnerProduct", "MLP"]
    monkeypatch.delenv("HUGECTR_PLUGINS_ALLOW")
    monkeypatch.setenv("HUGECTR_DISABLE_PLUGIN_AUTOLOAD", "1")
    fresh_layers.refresh()
    assert fresh_layers.names() == []


def test_pluggy_manager_has_the_progress_hook():
    pm = plugins.plugin_manager()
    assert pm.get_plugin("hooks:progress") is not None
    assert "hugectr_train_step_end" in {h.name for h in pm.hook.__dict__.values() if hasattr(h, "name")}


def test_cli_plugins_lists_kernels(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if " InnerProduct " in ln)
    assert "hugectr-layers-dense" in line and line.rstrip().endswith("yes")
    assert main(["plugins", "--kind", "readers"]) == 0
    assert "RawAsync" in capsys.readouterr().out


def test_importing_never_touches_a_gpu():
    import subprocess
    import sys

    code = ("import sys, hugectr, hugectr_core.plugins as p;"
            "[p.registry(k).load(n) for k in ('layers','embeddings','optimizers','readers') for n in p.registry(k).names()];"
            "print('cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
