"""Parquet reader: generated data read back value by value, file-spanning batches, workers, errors."""
import json
import os

import hugectr
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hugectr.tools import DataGenerator, DataGeneratorParams
from hugectr_core.errors import DataError
from hugectr_core.plugins import registry
from hugectr_reader_parquet import Parquet, slot_bounds, slot_offsets, to_csr

SIZES = [6, 9, 4, 7]
NNZ = [3, 1, 2, 1]


def make_input(split=(3, 1), dense_dim=2, label_dim=1):
    params = [hugectr.DataReaderSparseParam(f"s{i}", 3, False, n) for i, n in enumerate(split)]
    return hugectr.Input(label_dim=label_dim, label_name="label", dense_dim=dense_dim, dense_name="dense",
                         data_reader_sparse_param_array=params)


def make_params(source, slot_size_array=SIZES, workers=1, sequential=True):
    return hugectr.DataReaderParams(data_reader_type="Parquet", source=[source], eval_source=source,
                                    slot_size_array=list(slot_size_array), num_workers=workers,
                                    read_file_sequentially=sequential)


def generate(tmp_path, i64=False, files=3, rows=10, seed=0):
    p = DataGeneratorParams("Parquet", 1, 2, 4, i64, str(tmp_path / "train_list.txt"), str(tmp_path / "val_list.txt"),
                            SIZES, nnz_array=NNZ, num_files=files, eval_num_files=1, num_samples_per_file=rows,
                            seed=seed, label_model="learnable")
    return DataGenerator(p).generate()


def expected_rows(paths):
    """Rows read with pyarrow directly: label, dense, per-cat python lists of GLOBAL keys."""
    offsets = np.cumsum([0] + SIZES[:-1])
    label, dense, cats = [], [], []
    for path in paths:
        t = pq.read_table(path).to_pydict()
        names = list(t)
        label += t[names[0]]
        dense += list(zip(t[names[1]], t[names[2]]))
        for r in range(len(t[names[0]])):
            row = []
            for c, name in enumerate(names[3:]):
                v = t[name][r]
                row.append([k + offsets[c] for k in (v if isinstance(v, list) else [v])])
            cats.append(row)
    return np.array(label, np.float32), np.array(dense, np.float32), cats


def read_all(reader):
    out = []
    while (b := reader.next_batch()) is not None:
        out.append(b)
    return out


def check_batches(batches, label, dense, cats, split=(3, 1)):
    start = 0
    for b in batches:
        rows = range(start, start + b.size)
        np.testing.assert_array_equal(b.label[:, 0], label[start:start + b.size])
        np.testing.assert_array_equal(b.dense, dense[start:start + b.size])
        first = 0
        for i, n in enumerate(split):
            per_row = [cats[r][first + s] for r in rows for s in range(n)]
            exp_offsets = np.concatenate([[0], np.cumsum([len(k) for k in per_row])])
            np.testing.assert_array_equal(b.sparse[f"s{i}"].row_offsets, exp_offsets)
            np.testing.assert_array_equal(b.sparse[f"s{i}"].keys, [k for ks in per_row for k in ks])
            first += n
        start += b.size
    return start


def test_entry_point_is_registered():
    assert registry("readers").load("Parquet") is Parquet


def test_generated_multi_hot_reads_back_value_by_value_across_files(tmp_path):
    out = generate(tmp_path)
    label, dense, cats = expected_rows(out["train"])
    assert any(len(k) > 1 for row in cats for k in row)           # list columns are really multi-hot
    reader = Parquet(make_params(out["train_list"]), make_input(), batch_size=4, source=out["train_list"],
                     repeat=False)
    batches = read_all(reader)
    reader.close()
    assert [b.size for b in batches] == [4] * 7 + [2]             # 30 rows; batches span the 10-row files
    assert check_batches(batches, label, dense, cats) == 30
    assert batches[0].sparse["s0"].keys.dtype == np.uint32
    assert reader.is_eof()


def test_int64_keys_and_worker_count_does_not_change_batches(tmp_path):
    out = generate(tmp_path, i64=True)
    label, dense, cats = expected_rows(out["train"])
    runs = []
    for workers in (1, 2, 5):
        reader = Parquet(make_params(out["train_list"], workers=workers), make_input(), batch_size=7,
                         source=out["train_list"], repeat=False, key_dtype="int64")
        runs.append(read_all(reader))
        reader.close()
    for batches in runs:
        assert check_batches(batches, label, dense, cats) == 30
        assert batches[0].sparse["s1"].keys.dtype == np.int64


def test_unsequential_reading_is_a_seeded_file_permutation(tmp_path):
    out = generate(tmp_path, files=4, rows=5)
    params = make_params(out["train_list"], sequential=False)

    def file_order(seed):
        reader = Parquet(params, make_input(), batch_size=5, source=out["train_list"], repeat=False, seed=seed)
        firsts = [float(b.label[0, 0]) + 10 * float(b.dense[0, 0]) for b in read_all(reader)]
        reader.close()
        return firsts

    label, dense, _ = expected_rows(out["train"])
    per_file = [float(label[5 * k]) + 10 * float(dense[5 * k, 0]) for k in range(4)]
    orders = {tuple(file_order(seed)) for seed in range(6)}
    assert all(sorted(o) == sorted(per_file) for o in orders)
    assert len(orders) > 1 and tuple(file_order(1)) == tuple(file_order(1))


def test_epoch_rewind_switch_and_repeat(tmp_path):
    out = generate(tmp_path)
    label, _, _ = expected_rows(out["train"])
    reader = Parquet(make_params(out["train_list"], workers=2), make_input(), batch_size=8,
                     source=out["train_list"], repeat=False)
    assert [b.size for b in read_all(reader)] == [8, 8, 8, 6]
    assert reader.next_batch() is None and reader.is_eof()
    reader.set_source("")
    np.testing.assert_array_equal(reader.next_batch().label[:, 0], label[:8])
    reader.set_source(out["eval_list"])
    assert [b.size for b in read_all(reader)] == [8, 2]
    reader.close()

    rep = Parquet(make_params(out["train_list"], workers=3), make_input(), batch_size=8, source=out["train_list"],
                  repeat=True)
    batches = [rep.next_batch() for _ in range(5)]
    rep.close()
    assert all(b.size == 8 for b in batches)
    # 30 rows, batch 8: rows 24-29 are dropped, batch 3 starts the next pass.
    np.testing.assert_array_equal(batches[3].label[:, 0], label[:8])
    np.testing.assert_array_equal(batches[4].label[:, 0], label[8:16])


def test_zero_slot_sizes_share_a_key_space():
    assert slot_offsets([10, 0, 0, 5]).tolist() == [0, 10, 10, 10]
    assert slot_bounds([10, 0, 0, 5]).tolist() == [10, 5, 5, 5]
    ro, keys = to_csr([np.array([0, 2, 3])], [np.array([1, 2, 3])], 2)
    assert ro.tolist() == [0, 2, 3] and keys.tolist() == [1, 2, 3]


# ----- hand-made data sets for the error cases ------------------------------------------------

def write_dataset(tmp_path, tables, meta=None, count=None, names=None):
    names = names or [f"part{k}.parquet" for k in range(len(tables))]
    paths = []
    for name, table in zip(names, tables):
        paths.append(str(tmp_path / name))
        pq.write_table(table, paths[-1])
    if meta is None:
        meta = {"file_stats": [{"file_name": n, "num_rows": t.num_rows} for n, t in zip(names, tables)],
                "labels": [{"col_name": "label", "index": 0}],
                "conts": [{"col_name": "I1", "index": 1}, {"col_name": "I2", "index": 2}],
                "cats": [{"col_name": f"C{i}", "index": 3 + i} for i in range(4)]}
    if meta is not False:
        (tmp_path / "_metadata.json").write_text(json.dumps(meta))
    list_path = str(tmp_path / "list.txt")
    with open(list_path, "w") as f:
        f.write(f"{len(paths) if count is None else count}\n" + "".join(p + "\n" for p in paths))
    return list_path


def table(n=4, key_type=pa.uint32(), label_type=pa.float32(), key=1, nulls=False):
    cols = {"label": pa.array(np.ones(n), type=label_type),
            "I1": pa.array(np.zeros(n, np.float32)), "I2": pa.array(np.zeros(n, np.float32))}
    for i in range(4):
        values = [key] * n
        if nulls and i == 2:
            values[1] = None
        cols[f"C{i}"] = pa.array(values, type=key_type)
    return pa.table(cols)


def open_reader(list_path, key_dtype="uint32", workers=1):
    return Parquet(make_params(list_path, workers=workers), make_input(), batch_size=2, source=list_path,
                   repeat=False, key_dtype=key_dtype)


def test_handmade_scalar_columns_read(tmp_path):
    lst = write_dataset(tmp_path, [table(key=2), table(key=3)])
    batches = read_all(open_reader(lst, workers=2))
    keys = np.concatenate([b.sparse["s0"].keys for b in batches]).reshape(8, 3)
    offsets = np.array(slot_offsets(SIZES)[:3])
    np.testing.assert_array_equal(keys[:4], np.broadcast_to(2 + offsets, (4, 3)))
    np.testing.assert_array_equal(keys[4:], np.broadcast_to(3 + offsets, (4, 3)))


def test_wrong_count_line_names_the_list(tmp_path):
    lst = write_dataset(tmp_path, [table()], count=3)
    with pytest.raises(DataError, match="says 3 files") as err:
        open_reader(lst)
    assert lst in str(err.value)


def test_missing_metadata_json(tmp_path):
    lst = write_dataset(tmp_path, [table()], meta=False)
    with pytest.raises(DataError, match="_metadata.json") as err:
        open_reader(lst)
    assert str(tmp_path / "part0.parquet") in str(err.value)


def test_path_escaping_the_folder(tmp_path):
    meta = {"file_stats": [{"file_name": "../part0.parquet", "num_rows": 4}], "labels": [], "conts": [], "cats": []}
    lst = write_dataset(tmp_path, [table()], meta=meta)
    with pytest.raises(DataError, match="leaves the metadata folder") as err:
        open_reader(lst)
    assert "_metadata.json" in str(err.value)


def test_metadata_not_matching_the_model(tmp_path):
    lst = write_dataset(tmp_path, [table()])
    with pytest.raises(DataError, match="sparse params have 5 slots"):
        Parquet(make_params(lst), make_input(split=(3, 2)), batch_size=2, source=lst, repeat=False)
    with pytest.raises(DataError, match=r"len\(slot_size_array\)=3"):
        Parquet(make_params(lst, slot_size_array=[5, 5, 5]), make_input(), batch_size=2, source=lst, repeat=False)


@pytest.mark.parametrize("case, match", [
    ("missing column", "has no column"),
    ("nulls", "null value"),
    ("int64 keys for uint32", "Dense KeyType and Parquet column type don't match"),
    ("uint32 keys for int64", "Dense KeyType and Parquet column type don't match"),
    ("int label", "must be float32"),
    ("num_rows", "has 4 rows but"),
    ("key too large", "slot_size_array bound"),
])
def test_bad_second_file_raises_data_error_in_next_batch(tmp_path, case, match):
    key_dtype = "int64" if case == "uint32 keys for int64" else "uint32"
    good = table(key_type=pa.int64() if key_dtype == "int64" else pa.uint32())
    bad = {"missing column": good.drop_columns(["C1"]),
           "nulls": table(nulls=True),
           "int64 keys for uint32": table(key_type=pa.int64()),
           "uint32 keys for int64": table(key_type=pa.uint32()),
           "int label": table(label_type=pa.int32()),
           "num_rows": good,
           "key too large": table(key=SIZES[2])}[case]
    lst = write_dataset(tmp_path, [good, bad])
    if case == "num_rows":
        meta = json.loads((tmp_path / "_metadata.json").read_text())
        meta["file_stats"][1]["num_rows"] = 5
        (tmp_path / "_metadata.json").write_text(json.dumps(meta))
    reader = open_reader(lst, key_dtype=key_dtype, workers=2)
    assert reader.next_batch().size == 2        # the good first file still reads
    with pytest.raises(DataError, match=match) as err:
        read_all(reader)                        # the worker's error reaches next_batch
    assert str(tmp_path / "part1.parquet") in str(err.value)
    with pytest.raises(DataError):
        reader.next_batch()
    reader.close()


def test_int32_keys_accepted_for_uint32(tmp_path):
    lst = write_dataset(tmp_path, [table(key_type=pa.int32(), key=0)])
    b = open_reader(lst).next_batch()
    assert b.sparse["s1"].keys.tolist() == [int(slot_offsets(SIZES)[3])] * 2


def test_relative_paths_in_list(tmp_path):
    pq.write_table(table(), str(tmp_path / "part0.parquet"))
    (tmp_path / "_metadata.json").write_text(json.dumps(
        {"file_stats": [{"file_name": "part0.parquet", "num_rows": 4}], "labels": [{"col_name": "label"}],
         "conts": [{"col_name": "I1"}, {"col_name": "I2"}], "cats": [{"col_name": f"C{i}"} for i in range(4)]}))
    (tmp_path / "list.txt").write_text("1\npart0.parquet\n")   # relative to the list's folder
    reader = open_reader(str(tmp_path / "list.txt"))
    assert sum(b.size for b in read_all(reader)) == 4
    assert os.path.isabs(reader.files[0])


@pytest.mark.parametrize("batch, sizes", [(8, [8, 8, 8, 6]), (10, [10, 10, 10])])
def test_is_eof_turns_true_with_the_last_batch(tmp_path, batch, sizes):
    out = generate(tmp_path)
    reader = Parquet(make_params(out["train_list"], workers=2), make_input(), batch_size=batch,
                     source=out["train_list"], repeat=False)
    for size in sizes:
        assert not reader.is_eof()
        assert reader.next_batch().size == size
    assert reader.is_eof()                      # right after the last (possibly short) batch
    assert reader.next_batch() is None
    reader.set_source("")
    assert not reader.is_eof() and [b.size for b in read_all(reader)] == sizes and reader.is_eof()
    reader.close()


# ----- batches built on the workers: static hotness, mixed files, shared decoded files -----------------------

def test_scalar_inputs_get_static_hotness_and_shared_offsets(tmp_path):
    from hugectr_core.contracts.reader import static_row_offsets

    lst = write_dataset(tmp_path, [table(n=3, key=2), table(n=4, key=3)])
    batches = read_all(open_reader(lst, workers=3))
    assert [b.size for b in batches] == [2, 2, 2, 1]          # batch 1 spans the two files
    for b in batches:
        assert b.sparse["s0"].static_hotness == (1, 1, 1) and b.sparse["s1"].static_hotness == (1,)
        assert b.sparse["s0"].row_offsets is static_row_offsets((1, 1, 1), b.size)
        assert not b.sparse["s0"].row_offsets.flags.writeable
    keys = np.concatenate([b.sparse["s0"].keys for b in batches]).reshape(7, 3)
    np.testing.assert_array_equal(keys, np.array([2] * 3 + [3] * 4)[:, None] + slot_offsets(SIZES)[:3])


def test_list_columns_have_no_static_hotness(tmp_path):
    out = generate(tmp_path)
    reader = Parquet(make_params(out["train_list"]), make_input(), batch_size=4, source=out["train_list"],
                     repeat=False)
    b = reader.next_batch()
    reader.close()
    assert b.sparse["s0"].static_hotness is None                # C0 (nnz 3) is a list column
    assert b.sparse["s1"].static_hotness == (1,)                 # C3 is scalar


def test_a_batch_spanning_a_scalar_and_a_list_file(tmp_path):
    scalar = table(n=3, key=1)
    as_list = table(n=3, key=2)
    as_list = as_list.set_column(3, "C0", pa.array([[2], [2, 2], []], type=pa.list_(pa.uint32())))
    lst = write_dataset(tmp_path, [scalar, as_list])
    reader = Parquet(make_params(lst), make_input(), batch_size=4, source=lst, repeat=False)
    first, second = read_all(reader)
    off = slot_offsets(SIZES)
    assert first.sparse["s0"].static_hotness is None and first.sparse["s1"].static_hotness == (1,)
    # rows 0-2 scalar (1 key per slot), row 3: C0=[2], C1=2, C2=2
    np.testing.assert_array_equal(first.sparse["s0"].row_offsets, np.arange(13))
    np.testing.assert_array_equal(first.sparse["s0"].keys, np.array([1] * 9 + [2] * 3) + np.tile(off[:3], 4))
    assert first.sparse["s0"].keys.dtype == np.uint32
    np.testing.assert_array_equal(np.diff(second.sparse["s0"].row_offsets), [2, 1, 1, 0, 1, 1])


def test_same_batches_for_any_worker_count_in_shuffled_repeat_mode(tmp_path):
    out = generate(tmp_path, files=4, rows=9)
    runs = []
    for workers in (1, 3, 7):
        reader = Parquet(make_params(out["train_list"], workers=workers, sequential=False), make_input(), batch_size=5,
                         source=out["train_list"], repeat=True, seed=4)
        runs.append([reader.next_batch() for _ in range(20)])   # 7 batches a pass (36 rows), 3 passes
        reader.close()
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a.label, b.label)
            for name in ("s0", "s1"):
                np.testing.assert_array_equal(a.sparse[name].row_offsets, b.sparse[name].row_offsets)
                np.testing.assert_array_equal(a.sparse[name].keys, b.sparse[name].keys)
    firsts = [tuple(b.label[:, 0]) for b in runs[0]]
    assert firsts[:7] != firsts[7:14]                            # each pass has its own file order


def test_decoded_files_are_dropped_after_their_last_batch(tmp_path):
    out = generate(tmp_path, files=3, rows=10)
    reader = Parquet(make_params(out["train_list"], workers=2), make_input(), batch_size=4,
                     source=out["train_list"], repeat=False)
    assert sum(b.size for b in read_all(reader)) == 30
    assert reader._files._entries == {}                          # every file released by its last user
    reader.close()


def test_files_without_rows_are_still_checked(tmp_path):
    lst = write_dataset(tmp_path, [table(n=4), table(n=0), table(n=0, label_type=pa.int32())])
    reader = open_reader(lst, workers=2)
    assert reader.next_batch().size == 2
    with pytest.raises(DataError, match="must be float32") as err:
        read_all(reader)
    assert "part2.parquet" in str(err.value)
    reader.close()
    (tmp_path / "e").mkdir()
    empty = write_dataset(tmp_path / "e", [table(n=0, label_type=pa.int32())])   # epoch mode, no rows at all
    reader = open_reader(empty)
    with pytest.raises(DataError, match="must be float32"):
        reader.next_batch()
    reader.close()
