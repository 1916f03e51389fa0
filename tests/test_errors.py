"""The error hierarchy (docs/errors.md) and that reader/loader error paths raise project errors."""
import os

import numpy as np
import pytest

import hugectr
from hugectr_core import errors
from hugectr_core.plugins import registry
from tests.test_crash_safety import write_data
from tests.test_fuzz import build_small, small_model

ALL = [errors.ConfigError, errors.LayerError, errors.GraphError, errors.DataError, errors.CheckpointError,
       errors.PluginError, errors.BackendError, errors.TrainingError]


def test_hierarchy():
    assert hugectr.Error is errors.HugeCTRError is errors.Error
    assert all(issubclass(cls, hugectr.Error) for cls in ALL)
    assert issubclass(errors.LayerError, errors.ConfigError) and issubclass(errors.GraphError, errors.ConfigError)
    # the builtin bases keep old ``except ValueError`` code working
    assert issubclass(errors.DataError, ValueError) and issubclass(errors.TrainingError, RuntimeError)


def raw(path, num_samples=0):
    params = hugectr.DataReaderParams("RawAsync", [path], path)
    inp = hugectr.Input(label_dim=1, label_name="label", dense_dim=4, dense_name="dense",
                        data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True, 3)])
    return registry("readers").load("RawAsync")(params, inp, batch_size=8, source=path, repeat=True,
                                                   num_samples=num_samples)


def cases(tmp):
    write_data(tmp)
    (tmp / "short.bin").write_bytes(b"\0" * 7)
    (tmp / "list.txt").write_text("two\nx\n")
    (tmp / "bad.json").write_text("{not json")
    model = build_small(small_model(str(tmp)))
    inp = hugectr.Input(label_dim=1, label_name="label", dense_dim=1, dense_name="dense",
                        data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("s", 1, True, 1)])
    lst = str(tmp / "list.txt")
    return {
        "raw missing file": (errors.DataError, lambda: raw(str(tmp / "nope.bin"))),
        "raw wrong size": (errors.DataError, lambda: raw(str(tmp / "short.bin"))),
        "raw too few samples": (errors.DataError, lambda: raw(str(tmp / "train.bin"), num_samples=10**6)),
        "norm bad list": (errors.DataError, lambda: registry("readers").load("Norm")(
            hugectr.DataReaderParams("Norm", [lst], lst), inp, batch_size=2, source=lst)),
        "parquet bad list": (errors.DataError, lambda: registry("readers").load("Parquet")(
            hugectr.DataReaderParams("Parquet", [lst], lst), inp, batch_size=2, source=lst)),
        "graph json": (errors.ConfigError, lambda: small_model(str(tmp)).construct_from_json(str(tmp / "bad.json"),
                                                                                            True)),
        "dense checkpoint": (errors.CheckpointError, lambda: model.load_dense_weights(str(tmp / "short.bin"))),
        "sparse checkpoint": (errors.CheckpointError, lambda: model.load_sparse_weights([str(tmp)])),
        "opt sparse": (errors.CheckpointError, lambda: model.load_sparse_optimizer_states([str(tmp / "short.bin")])),
        "ntp json": (errors.CheckpointError, lambda: __import__("hugectr_core.checkpoint", fromlist=["x"])
                     .load_layer_state(model, str(tmp / "bad.json"))),
        "unknown plugin": (errors.PluginError, lambda: registry("readers").load("NoSuchReader")),
    }


def test_every_reader_and_loader_error_path_raises_a_project_error(tmp_path):
    for name, (cls, fn) in cases(tmp_path).items():
        with pytest.raises(cls) as info:
            fn()
            pytest.fail(f"{name}: no error")
        assert isinstance(info.value, hugectr.Error), name
        assert len(str(info.value)) > 20, f"{name}: the message must say what was wrong and what to do"
