"""NaN/Inf: fit stops with a TrainingError naming the iteration and never snapshots NaN weights;
readers report NaN/Inf label or dense values when check_type=Check_t.Sum (our extension)."""
import os

import numpy as np
import pytest

import hugectr
from hugectr_core.errors import DataError, TrainingError
from hugectr_core.plugins import registry
from tests.test_crash_safety import load, state_hash, write_data
from tests.test_fuzz import build_small, small_model


def poison_after(model, iteration):
    """Make the dense weights NaN once the runtime reaches ``iteration`` (a diverging run, made certain)."""
    rt = model.runtime
    step = rt.train_step

    def train_step(batch, lr):
        loss = step(batch, lr)
        if rt.step >= iteration:
            rt.dense.master[...] = np.nan
            rt.dense.sync_working()
            return loss * np.nan
        return loss
    rt.train_step = train_step


@pytest.mark.parametrize("display,eval_interval", [(1, 0), (0, 5), (0, 0)])
def test_nan_stops_fit_naming_the_iteration_and_keeps_the_last_snapshot(tmp_path, display, eval_interval):
    write_data(tmp_path)
    model = build_small(small_model(str(tmp_path)))
    model.solver.max_eval_batches = 1
    prefix = str(tmp_path / "snap")
    poison_after(model, 13)
    snapshots = {}

    real_save = model.save_params_to_files

    def save(p, it):
        real_save(p, it)
        snapshots[it] = state_hash(model)
    model.save_params_to_files = save
    with pytest.raises(TrainingError, match=r"iteration 1[3-5]\b") as info:
        model.fit(max_iter=40, display=display, eval_interval=eval_interval, snapshot=5, snapshot_prefix=prefix)
    assert "last snapshot of this fit is iteration 10" in str(info.value)
    assert not os.path.exists(f"{prefix}_dense_15.model"), "a snapshot was written from NaN weights"
    assert load(model, prefix, 10) == snapshots[10]
    assert np.isfinite(build_small(small_model(str(tmp_path))).runtime.dense.master).all()


def raw_reader(path, check, kind="RawAsync"):
    params = hugectr.DataReaderParams(kind, [path], path, check_type=check,
                                      async_param=hugectr.AsyncParam(1, 1, shuffle=False, multi_hot_reader=True,
                                                                     is_dense_float=True))
    inp = hugectr.Input(label_dim=1, label_name="label", dense_dim=4, dense_name="dense",
                        data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True, 3)])
    return registry("readers").load(kind)(params, inp, batch_size=16, source=path, repeat=False)


@pytest.mark.parametrize("field,bad", [("dense", np.nan), ("dense", np.inf), ("label", -np.inf)])
def test_raw_reader_reports_nan_with_file_and_record(tmp_path, field, bad):
    write_data(tmp_path)
    path = str(tmp_path / "train.bin")
    dtype = np.dtype([("label", "<i4", (1,)), ("dense", "<f4", (4,)), ("keys", "<u4", (3,))])
    rec = np.fromfile(path, dtype)
    if field == "label":  # labels are int32 on disk in RawAsync: use Raw with float labels for this one
        dtype = np.dtype([("label", "<f4", (1,)), ("dense", "<f4", (4,)), ("keys", "<u4", (3,))])
        rec = rec.astype(dtype)
    rec[field][37, 0] = bad
    rec.tofile(path)
    kind = "Raw" if field == "label" else "RawAsync"
    if kind == "Raw":
        reader = raw_reader(path, hugectr.Check_t.Sum, kind)
        reader.params.float_label_dense = True
        reader.close()
        params = reader.params
        inp = reader.input_layer
        reader = registry("readers").load("Raw")(params, inp, batch_size=16, source=path, repeat=False)
    else:
        reader = raw_reader(path, hugectr.Check_t.Sum)
    with pytest.raises(DataError, match=rf"train.bin' record 37: {field}\[0\] is"):
        while reader.next_batch() is not None:
            pass
    reader.close()
    unchecked = raw_reader(path, hugectr.Check_t.Non, kind) if kind == "RawAsync" else None
    if unchecked is not None:  # check_type=Non reads the value as it is
        batches = []
        while (b := unchecked.next_batch()) is not None:
            batches.append(b)
        unchecked.close()
        assert not np.isfinite(np.concatenate([b.dense for b in batches])).all()


def test_parquet_and_norm_readers_report_nan_when_checking(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from hugectr_reader_norm import NormLayout, encode_file

    dense = np.ones(6, np.float32)
    dense[4] = np.nan
    pq.write_table(pa.table({"label": pa.array(np.zeros(6, np.float32)), "I1": pa.array(dense),
                             "C0": pa.array(np.arange(6, dtype=np.int64))}), str(tmp_path / "p.parquet"))
    (tmp_path / "_metadata.json").write_text('{"file_stats": [{"file_name": "p.parquet", "num_rows": 6}], '
                                             '"labels": [{"col_name": "label"}], "conts": [{"col_name": "I1"}], '
                                             '"cats": [{"col_name": "C0"}]}')
    (tmp_path / "list.txt").write_text(f"1\n{tmp_path}/p.parquet\n")
    inp = hugectr.Input(label_dim=1, label_name="label", dense_dim=1, dense_name="dense",
                        data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("s", 1, True, 1)])
    lst = str(tmp_path / "list.txt")
    params = hugectr.DataReaderParams("Parquet", [lst], lst, check_type=hugectr.Check_t.Sum, num_workers=1)
    reader = registry("readers").load("Parquet")(params, inp, batch_size=3, source=lst, repeat=False, key_dtype="int64")
    with pytest.raises(DataError, match=r"p.parquet' row 4: column 'I1' is nan"):
        while reader.next_batch() is not None:
            pass
    reader.close()

    layout = NormLayout(1, 1, (1,), "<u4", checksum=True)
    (tmp_path / "n.data").write_bytes(encode_file(layout, np.zeros((6, 1)), dense.reshape(6, 1), np.ones((6, 1), int),
                                                  np.arange(6)))
    (tmp_path / "nlist.txt").write_text(f"1\n{tmp_path}/n.data\n")
    nlst = str(tmp_path / "nlist.txt")
    params = hugectr.DataReaderParams("Norm", [nlst], nlst, check_type=hugectr.Check_t.Sum, num_workers=1)
    reader = registry("readers").load("Norm")(params, inp, batch_size=3, source=nlst, repeat=False)
    with pytest.raises(DataError, match=r"n.data' record 4: dense\[0\] is nan"):
        while reader.next_batch() is not None:
            pass
    reader.close()
