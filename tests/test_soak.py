"""Soak: many steps of a small model with resident memory flat, and (GPU) the CuPy pool flat.

CI runs 2 000 CPU steps; ``-m slow`` adds the 20 000-step run. Growth is measured after a warm-up, so
first-touch allocations (buffers, embedding rows for keys first seen) do not count.
"""
import os

import pytest

from tests.test_crash_safety import write_data
from tests.test_fuzz import build_small, small_model

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def soak(tmp_path, steps, device="cpu", sample=None):
    write_data(tmp_path, n=256)
    model = build_small(small_model(str(tmp_path)))
    if device != "cpu":
        import hugectr
        model = hugectr.Model(hugectr.CreateSolver(batchsize=8, batchsize_eval=8, lr=0.01, seed=3, device=device),
                              model.reader_params, model.opt_params)
        build_small(model)
    warm = min(500, steps // 4)
    readings = []
    with model:
        model.start_data_reading()
        for it in range(1, steps + 1):
            assert model.train()
            if it % 100 == 0:
                model.get_current_loss()  # the NaN check and a host sync, as fit's display does
            if it == warm or it % 1000 == 0 or it == steps:
                readings.append((it, rss_mb(), sample() if sample else None))
    return readings


def check_flat(readings, limit_mb, label):
    start, end = readings[0], readings[-1]
    peak = max(r[1] for r in readings)
    print(f"\nsoak {label}: {end[0]} steps, RSS after warm-up {start[1]:.1f} MB, at end {end[1]:.1f} MB, "
          f"peak {peak:.1f} MB")
    assert peak - start[1] < limit_mb, f"RSS grew {peak - start[1]:.1f} MB over {end[0]} steps: {readings}"


def test_soak_2000_steps_cpu_rss_flat(tmp_path, capsys):
    readings = soak(tmp_path, 2_000)
    with capsys.disabled():
        check_flat(readings, 20, "CPU")


@pytest.mark.slow
def test_soak_20000_steps_cpu_rss_flat(tmp_path, capsys):
    readings = soak(tmp_path, 20_000)
    with capsys.disabled():
        check_flat(readings, 20, "CPU")


@pytest.mark.gpu
def test_soak_1000_steps_gpu_pool_flat(tmp_path, capsys):
    import cupy

    pool = cupy.get_default_memory_pool()
    readings = soak(tmp_path, 1_000, device="gpu", sample=lambda: (pool.used_bytes(), pool.total_bytes()))
    (_, _, (used0, total0)), (_, _, (used1, total1)) = readings[0], readings[-1]
    with capsys.disabled():
        print(f"\nsoak GPU: CuPy pool used {used0} -> {used1} bytes, held {total0} -> {total1} bytes")
    assert used1 - used0 <= 1 << 20 and total1 - total0 <= 4 << 20, readings
