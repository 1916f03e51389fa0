"""Clean shutdown: reader threads stop on Model.close(), on leaving ``with model:`` and on Ctrl-C in fit."""
import threading
import time

import pytest

from tests.test_crash_safety import write_data
from tests.test_fuzz import build_small, small_model

READER_PREFIXES = ("RawAsync", "Raw-", "Norm", "Parquet", "hugectr-reader")


def reader_threads(ignore=frozenset()):
    """Live reader threads, less ``ignore`` (those other tests' models left running before this test)."""
    return [t for t in threading.enumerate() if t.name.startswith(READER_PREFIXES) and t.is_alive()
            and t not in ignore]


@pytest.fixture
def others():
    return frozenset(reader_threads())


@pytest.fixture
def model(tmp_path):
    write_data(tmp_path, n=128)
    m = build_small(small_model(str(tmp_path)))
    m.reader_params.async_param.num_threads = 3
    yield m
    m.close()


def test_close_stops_reader_threads_and_is_idempotent(model, others):
    before = set(others)
    model.start_data_reading()
    model.train()
    model.eval()
    assert len(set(reader_threads()) - before) >= 3
    start = time.perf_counter()
    model.close()
    model.close()
    assert time.perf_counter() - start < 5
    assert not set(reader_threads()) - before
    assert model.train()  # a closed model can go on: fresh readers start from the top
    model.close()


def test_with_block_closes(model, others):
    with model as m:
        m.start_data_reading()
        m.train()
        assert reader_threads(others)
    assert not reader_threads(others)


def test_keyboard_interrupt_in_fit_stops_readers(model, others):
    import hugectr

    class CtrlC(hugectr.TrainingCallback):
        def on_eval_start(self, iteration):
            raise KeyboardInterrupt

    model.solver.training_callbacks.append(CtrlC())
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        model.fit(max_iter=100, display=0, eval_interval=5, snapshot=0)
    assert time.perf_counter() - start < 10
    assert not reader_threads(others)


def test_keyboard_interrupt_from_a_reader_thread_reaches_fit_and_stops_readers(model, others):
    model.start_data_reading()
    reader = model.get_data_reader_train()
    produce, calls = reader._produce, []

    def interrupted(k):
        calls.append(k)
        if k == 7:
            raise KeyboardInterrupt
        return produce(k)
    reader._produce = interrupted
    with pytest.raises(KeyboardInterrupt):
        model.fit(max_iter=100, display=0, eval_interval=0, snapshot=0)
    assert not reader_threads(others)
