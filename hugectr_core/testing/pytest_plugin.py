"""pytest plugin (entry point ``pytest11``): ``xp`` runs a test on NumPy and, when a GPU is there, CuPy.

GPU tests are marked ``@pytest.mark.gpu`` and skip without a CUDA GPU.
"""
import numpy as np
import pytest

from ..backend import has_cupy_gpu


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU with CuPy")


def pytest_collection_modifyitems(config, items):
    if has_cupy_gpu():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CuPy")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    if request.param == "numpy":
        return np
    import cupy

    return cupy


@pytest.fixture
def gpu_xp():
    if not has_cupy_gpu():
        pytest.skip("needs an NVIDIA GPU with CuPy")
    import cupy

    return cupy
