"""Documentation: every public name has a docstring with an example; help() shows arguments; docs/ is complete."""
import inspect
import os
import pydoc
import re
from dataclasses import MISSING, fields

import pytest

import hugectr
from hugectr_core.params import OptParamsPy
from hugectr_core.solver import Solver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")


@pytest.mark.parametrize("name", hugectr.__all__)
def test_every_public_name_has_a_docstring_with_an_example(name):
    doc = inspect.getdoc(getattr(hugectr, name)) or ""
    assert "Example" in doc, f"hugectr.{name} has no example in its docstring"


@pytest.mark.parametrize("factory, cls", [(hugectr.CreateSolver, Solver), (hugectr.CreateOptimizer, OptParamsPy)])
def test_help_lists_every_argument_with_its_default(factory, cls):
    text = pydoc.render_doc(factory, renderer=pydoc.plaintext)
    signature = inspect.signature(factory)
    for f in fields(cls):
        default = f.default if f.default is not MISSING else f.default_factory()
        assert f"{f.name}: default {default!r}" in text, f.name
        assert signature.parameters[f.name].default == default


def test_the_signature_refuses_what_create_solver_refuses():
    assert "batch_size" not in inspect.signature(hugectr.CreateSolver).parameters
    with pytest.raises(TypeError, match="unknown argument"):
        hugectr.CreateSolver(batch_size=3)


@pytest.mark.parametrize("page", ["quickstart.md", "migration.md", "formats.md", "plugins.md", "performance.md"])
def test_docs_pages_exist_and_their_links_resolve(page):
    path = os.path.join(DOCS, page)
    text = open(path, encoding="utf-8").read()
    assert text.startswith("# ") and len(text) > 1500
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert os.path.exists(os.path.normpath(os.path.join(DOCS, target))), f"{page}: broken link {target}"


def test_migration_guide_covers_every_documented_difference():
    text = open(os.path.join(DOCS, "migration.md"), encoding="utf-8").read()
    for topic in ("label_weight", "Scale", "initial_accu_value", "Select", "scaler", 'device="auto"', "seed",
                  "learnable", "slot offsets", "Power-law", "num_samples", "issue 8", "hybrid embedding",
                  "keyset"):
        assert topic in text, topic


def test_plugin_guide_describes_the_template_that_exists():
    text = open(os.path.join(DOCS, "plugins.md"), encoding="utf-8").read()
    for part in ("pyproject.toml", "README.md", "__init__.py", "layer.py", "reference.py", "kernels.py",
                 "kernels.cu", "tests/", "KernelModule", "prelude", "check_layer_gradients", "assert_twins"):
        assert part in text, part
    assert os.path.isdir(os.path.join(ROOT, "plugins", "_template"))


def test_performance_notes_keep_the_measured_facts():
    text = open(os.path.join(DOCS, "performance.md"), encoding="utf-8").read()
    assert "| model | device | precision | batch | samples/s |" in text
    assert "0.98 ms" in text and "14 us" in text and "8.5 ms" in text
