"""Packaging: kernels.cu ships in every plugin wheel; uninstalling a plugin removes its types."""
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS_WITH_KERNELS = sorted(p.parents[2] for p in ROOT.glob("plugins/*/*/src/*/kernels.cu"))


def _pip(python, *args, cwd=ROOT):
    return subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args], cwd=cwd,
                          capture_output=True, text=True, check=True)


@pytest.mark.parametrize("plugin", PLUGINS_WITH_KERNELS, ids=lambda p: p.name)
def test_kernels_cu_is_in_the_built_wheel(plugin, tmp_path):
    _pip(sys.executable, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(plugin))
    wheel = next(tmp_path.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("/kernels.cu") for n in names), names


def test_plugins_with_kernels_exist():
    assert len(PLUGINS_WITH_KERNELS) >= 6


def _fresh_venv(tmp_path):
    """A venv that sees only numpy, pluggy and the build tools of this one (not its plugins)."""
    import venv

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    shared = tmp_path / "shared"
    shared.mkdir()
    ours = Path(sysconfig.get_paths()["purelib"])
    for name in ("numpy", "numpy.libs", "pluggy", "setuptools", "_distutils_hack", "pkg_resources", "wheel", "pip"):
        for path in [ours / name, *ours.glob(f"{name}-*.dist-info")]:
            if path.exists():
                os.symlink(path, shared / path.name)
    (site / "_shared_deps.pth").write_text(str(shared) + "\n")
    return python, env_dir / "bin" / "hugectr"


def _run(python, code):
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True)


def test_fresh_venv_install_and_uninstall_a_plugin(tmp_path):
    python, cli = _fresh_venv(tmp_path)
    _pip(python, "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-e", ".",
         "-e", "plugins/layers/activations")
    listing = subprocess.run([str(cli), "plugins"], capture_output=True, text=True, check=True).stdout
    assert "ReLU" in listing and "hugectr-layers-activations" in listing
    assert "InnerProduct" not in listing
    missing = _run(python, "import hugectr; hugectr.Layer_t.InnerProduct")
    assert missing.returncode != 0 and "pip install hugectr-layers-dense" in missing.stderr
    assert _run(python, "import hugectr; print(hugectr.Layer_t.ReLU)").stdout.strip() == "ReLU"

    _pip(python, "uninstall", "-y", "-q", "hugectr-layers-activations")
    listing = subprocess.run([str(cli), "plugins"], capture_output=True, text=True, check=True).stdout
    assert "ReLU" not in listing
    gone = _run(python, "import hugectr; hugectr.Layer_t.ReLU")
    assert gone.returncode != 0 and "pip install hugectr-layers-activations" in gone.stderr


def test_meta_distribution_requires_every_plugin():
    import re
    import tomllib

    meta = tomllib.loads((ROOT / "plugins/defaults/pyproject.toml").read_text())["project"]["dependencies"]
    names = {tomllib.loads(p.read_text())["project"]["name"] for p in ROOT.glob("plugins/*/*/pyproject.toml")}
    assert names and names | {"hugectr-core"} == {re.split(r"[<>=\[ ]", d)[0] for d in meta}
