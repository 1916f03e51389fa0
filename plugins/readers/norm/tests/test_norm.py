"""Norm reader: generated and hand-written files read back value by value, framing, hotness, errors, epochs."""
import io
import os
import struct

import hugectr
import numpy as np
import pytest
from hugectr.tools import DataGenerator, DataGeneratorParams
from hugectr_core.contracts.filesystem import FileSystem
from hugectr_core.errors import DataError
from hugectr_core.plugins import registry
from hugectr_reader_norm import Norm, NormLayout, encode_file, parse_file

SIZES = [5, 6, 7, 8]
NNZ = [2, 1, 3, 1]


def make_input(max_a=(2, 1), max_b=(3, 1), dense_dim=3, label_dim=1):
    return hugectr.Input(label_dim=label_dim, label_name="label", dense_dim=dense_dim, dense_name="dense",
                         data_reader_sparse_param_array=[
                             hugectr.DataReaderSparseParam("a", list(max_a), False, len(max_a)),
                             hugectr.DataReaderSparseParam("b", list(max_b), False, len(max_b))])


def make_params(source, check="Sum", workers=1):
    return hugectr.DataReaderParams(data_reader_type="Norm", source=[source], eval_source=source,
                                    check_type=getattr(hugectr.Check_t, check), num_workers=workers)


def generate(tmp_path, check="Sum", i64=False, files=2, rows=10, **kw):
    p = DataGeneratorParams("Norm", 1, 3, 4, i64, str(tmp_path / "train.txt"), str(tmp_path / "val.txt"), SIZES,
                            nnz_array=NNZ, num_files=files, eval_num_files=1, num_samples_per_file=rows, seed=0,
                            check_type=getattr(hugectr.Check_t, check), **kw)
    return DataGenerator(p).generate()


def parse_independently(path, checksum, key_fmt, label_dim=1, dense_dim=3, slots=4):
    """A struct-based reader written apart from the plugin: list of (label, dense, [keys per slot])."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0

    def payload():
        nonlocal pos
        if not checksum:
            return None
        (length,) = struct.unpack_from("<i", data, pos)
        body = data[pos + 4:pos + 4 + length]
        assert data[pos + 4 + length] == sum(body) % 256
        return length

    length = payload()
    if checksum:
        assert length == 64
        pos += 4
    header = struct.unpack_from("<8q", data, pos)
    pos += 64 + (1 if checksum else 0)
    assert header[:5] == (int(checksum), header[1], label_dim, dense_dim, slots)
    records = []
    for _ in range(header[1]):
        payload()
        if checksum:
            pos += 4
        values = struct.unpack_from(f"<{label_dim + dense_dim}f", data, pos)
        pos += 4 * (label_dim + dense_dim)
        keys = []
        for _ in range(slots):
            (nnz,) = struct.unpack_from("<i", data, pos)
            pos += 4
            size = struct.calcsize(key_fmt)
            keys.append(list(struct.unpack_from(f"<{nnz}{key_fmt}", data, pos)))
            pos += nnz * size
        if checksum:
            pos += 1
        records.append((values[:label_dim], values[label_dim:], keys))
    assert pos == len(data)
    return records


def read_all(reader):
    out = []
    while (b := reader.next_batch()) is not None:
        out.append(b)
    return out


def check_batches(batches, records, split=((0, 2), (2, 4))):
    row = 0
    for b in batches:
        recs = records[row:row + b.size]
        np.testing.assert_array_equal(b.label, np.array([r[0] for r in recs], np.float32))
        np.testing.assert_array_equal(b.dense, np.array([r[1] for r in recs], np.float32))
        for name, (first, stop) in zip(("a", "b"), split):
            per = [r[2][s] for r in recs for s in range(first, stop)]
            np.testing.assert_array_equal(b.sparse[name].row_offsets, np.concatenate([[0], np.cumsum([len(k) for k in per])]))
            np.testing.assert_array_equal(b.sparse[name].keys, [k for ks in per for k in ks])
        row += b.size
    return row


def write_list(tmp_path, name, files):
    path = tmp_path / name
    path.write_text(f"{len(files)}\n" + "".join(f"{f}\n" for f in files))
    return str(path)


def handmade(tmp_path, name, checksum=True, nnz=((2, 0, 3, 1), (1, 1, 0, 1), (0, 1, 2, 0)), key_dtype="<u4"):
    """Variable-hotness records with known values (struct-free encoder of the plugin is tested separately)."""
    layout = NormLayout(1, 3, (2, 1, 3, 1), key_dtype, checksum)
    nnz = np.array(nnz)
    keys = np.arange(100, 100 + nnz.sum())
    label = np.arange(len(nnz))[:, None] * 0.5
    dense = np.arange(len(nnz) * 3).reshape(-1, 3) + 0.25
    (tmp_path / name).write_bytes(encode_file(layout, label, dense, nnz, keys))
    return str(tmp_path / name)


def test_entry_point_is_registered():
    assert registry("readers").load("Norm") is Norm


@pytest.mark.parametrize("check, i64", [("Sum", False), ("Sum", True), ("Non", False), ("Non", True)])
def test_generated_files_read_back_value_by_value(tmp_path, check, i64):
    out = generate(tmp_path, check=check, i64=i64)
    assert out["train_list"] == str(tmp_path / "train.txt") and len(out["train"]) == 2
    with open(out["train"][0], "rb") as f:
        first = struct.unpack("<i", f.read(4))[0]
    assert (first == 64) == (check == "Sum")   # a checksum file starts with the int32 64
    records = [r for path in out["train"] for r in parse_independently(path, check == "Sum", "q" if i64 else "I")]
    offsets = np.cumsum([0] + SIZES)
    for _, dense, keys in records:   # fixed hotness, keys in the slot's offset range, dense U[0,1)
        assert [len(k) for k in keys] == NNZ
        assert all(offsets[s] <= k < offsets[s + 1] for s in range(4) for k in keys[s])
        assert all(0 <= v < 1 for v in dense)
    reader = Norm(make_params(out["train_list"], check), make_input(), batch_size=8, source=out["train_list"],
                  repeat=False, key_dtype="int64" if i64 else "uint32")
    batches = read_all(reader)
    assert [b.size for b in batches] == [8, 8, 4] and reader.is_eof()
    assert batches[0].sparse["a"].keys.dtype == (np.int64 if i64 else np.uint32)
    assert check_batches(batches, records) == 20
    reader.close()


def test_learnable_labels_are_binary(tmp_path):
    out = generate(tmp_path, label_model="learnable", rows=64)
    reader = Norm(make_params(out["train_list"]), make_input(), batch_size=128, source=out["train_list"], repeat=False)
    labels = reader.next_batch().label
    assert set(np.unique(labels)) == {0.0, 1.0} and out["ceiling_auc"] > 0.5


@pytest.mark.parametrize("checksum", [True, False])
def test_variable_hotness_hand_written(tmp_path, checksum):
    path = handmade(tmp_path, "v.data", checksum=checksum)
    lst = write_list(tmp_path, "list.txt", [path])
    reader = Norm(make_params(lst, "Sum" if checksum else "Non"), make_input(), batch_size=2, source=lst, repeat=False)
    b0, b1 = read_all(reader)
    # nnz rows (2,0,3,1), (1,1,0,1), (0,1,2,0); keys 100.. in order; input a = slots 0-1, b = slots 2-3
    np.testing.assert_array_equal(b0.sparse["a"].row_offsets, [0, 2, 2, 3, 4])
    np.testing.assert_array_equal(b0.sparse["a"].keys, [100, 101, 106, 107])
    np.testing.assert_array_equal(b0.sparse["b"].row_offsets, [0, 3, 4, 4, 5])
    np.testing.assert_array_equal(b0.sparse["b"].keys, [102, 103, 104, 105, 108])
    np.testing.assert_array_equal(b1.sparse["a"].keys, [109])
    np.testing.assert_array_equal(b1.sparse["b"].keys, [110, 111])
    np.testing.assert_array_equal(b1.dense, [[6.25, 7.25, 8.25]])
    np.testing.assert_array_equal(b0.label[:, 0], [0.0, 0.5])
    assert reader.is_eof()


def test_encoder_matches_struct_layout():
    layout = NormLayout(1, 1, (2,), "<u4", checksum=True)
    data = encode_file(layout, [[1.0]], [[2.0]], [[2]], np.array([7, 9]))
    header = struct.pack("<8q", 1, 1, 1, 1, 1, 0, 0, 0)
    body = struct.pack("<ffiII", 1.0, 2.0, 2, 7, 9)
    assert data == (struct.pack("<i", 64) + header + bytes([sum(header) % 256])
                    + struct.pack("<i", len(body)) + body + bytes([sum(body) % 256]))
    samples = parse_file(data, "x", layout)
    assert samples.keys.tolist() == [7, 9] and samples.dense.tolist() == [[2.0]]


def test_too_many_keys_names_file_record_and_slot(tmp_path):
    path = handmade(tmp_path, "big.data", nnz=((2, 1, 3, 1), (1, 1, 3, 1)))
    lst = write_list(tmp_path, "list.txt", [path])
    reader = Norm(make_params(lst), make_input(max_b=(2, 1)), batch_size=2, source=lst, repeat=False)
    with pytest.raises(DataError, match=r"big\.data' record 0: slot 2 \(sparse input 'b' slot 0\) has nnz=3"):
        reader.next_batch()
    reader.close()


@pytest.mark.parametrize("fixed", [True, False])
def test_bad_record_checksum_names_file_and_record(tmp_path, fixed):
    out = generate(tmp_path, files=1, rows=10) if fixed else None
    path = out["train"][0] if fixed else handmade(tmp_path, "v.data")
    data = bytearray(open(path, "rb").read())
    record_size = (len(data) - 69) // 10 if fixed else None
    where = 69 + 3 * record_size + 10 if fixed else len(data) - 3   # inside record 3 / the last record
    data[where] ^= 0x40
    open(path, "wb").write(bytes(data))
    lst = write_list(tmp_path, "list.txt", [path])
    reader = Norm(make_params(lst), make_input(), batch_size=4, source=lst, repeat=False)
    record = 3 if fixed else 2
    with pytest.raises(DataError, match=rf"{os.path.basename(path)}'.*record {record}.*checksum"):
        reader.next_batch()
    reader.close()


def test_bad_header_checksum(tmp_path):
    path = handmade(tmp_path, "h.data")
    data = bytearray(open(path, "rb").read())
    data[4 + 8 + 1] ^= 1   # number_of_records byte
    open(path, "wb").write(bytes(data))
    lay = NormLayout(1, 3, (2, 1, 3, 1), "<u4", True)
    with pytest.raises(DataError, match=r"'h\.data'.*checksum of the header fails"):
        parse_file(bytes(data), "h.data", lay)


@pytest.mark.parametrize("inp, match", [
    (dict(dense_dim=2), r"dense_dim=3 \(Input has 2\)"),
    (dict(label_dim=2), r"label_dim=1 \(Input has 2\)"),
    (dict(max_b=(3, 1, 1)), r"slot_num=4 \(Input has 5\)"),
])
def test_header_disagreeing_with_input_names_the_file(tmp_path, inp, match):
    out = generate(tmp_path, files=1)
    lst = out["train_list"]
    reader = Norm(make_params(lst), make_input(**inp), batch_size=4, source=lst, repeat=False)
    with pytest.raises(DataError, match=rf"gen_0\.data' header disagrees with the model's Input: .*{match}"):
        reader.next_batch()


@pytest.mark.parametrize("written, told", [("Sum", "Non"), ("Non", "Sum")])
def test_check_type_disagreeing_with_the_file(tmp_path, written, told):
    out = generate(tmp_path, check=written, files=1)
    reader = Norm(make_params(out["train_list"], told), make_input(), batch_size=4, source=out["train_list"])
    with pytest.raises(DataError, match=rf"gen_0\.data'.*check_type=Check_t\.{written}"):
        reader.next_batch()


def test_truncated_file_and_trailing_bytes(tmp_path):
    out = generate(tmp_path, files=1, check="Non")
    path = out["train"][0]
    data = open(path, "rb").read()
    lay = NormLayout(1, 3, (2, 1, 3, 1), "<u4", False)
    with pytest.raises(DataError, match=r"gen_0\.data' record 9: the file ends inside"):
        parse_file(data[:-3], path, lay)
    with pytest.raises(DataError, match=r"gen_0\.data' has 2 bytes after its 10 records"):
        parse_file(data + b"xx", path, lay)


def test_same_batches_for_any_worker_count_across_files(tmp_path):
    out = generate(tmp_path, files=4, rows=7)
    records = [r for p in out["train"] for r in parse_independently(p, True, "I")]

    def run(workers):
        reader = Norm(make_params(out["train_list"], workers=workers), make_input(), batch_size=5,
                      source=out["train_list"], repeat=False)
        batches = read_all(reader)
        reader.close()
        return batches

    for workers in (1, 3, 8):
        batches = run(workers)
        assert [b.size for b in batches] == [5] * 5 + [3]   # 28 rows, batches span files
        assert check_batches(batches, records) == 28


def test_epoch_rewind_switch_and_repeat(tmp_path):
    out = generate(tmp_path, files=2, rows=10)
    records = [r for p in out["train"] for r in parse_independently(p, True, "I")]
    reader = Norm(make_params(out["train_list"], workers=2), make_input(), batch_size=8, source=out["train_list"],
                  repeat=False)
    batches = read_all(reader)
    assert [b.size for b in batches] == [8, 8, 4]
    assert reader.is_eof() and reader.next_batch() is None
    reader.set_source("")
    assert not reader.is_eof()
    check_batches([reader.next_batch()], records)
    reader.set_source(out["eval_list"])
    assert [b.size for b in read_all(reader)] == [8, 2] and reader.is_eof()
    reader.close()

    rep = Norm(make_params(out["train_list"], workers=2), make_input(), batch_size=8, source=out["train_list"])
    batches = [rep.next_batch() for _ in range(5)]
    rep.close()
    assert [b.size for b in batches] == [8] * 5 and not rep.is_eof()
    # 20 rows, batch 8: rows 16-19 are dropped, batch 2 starts the next pass.
    check_batches(batches[2:4], records)


def test_is_eof_right_after_the_last_batch(tmp_path):
    out = generate(tmp_path, files=1, rows=10)
    reader = Norm(make_params(out["train_list"]), make_input(), batch_size=5, source=out["train_list"], repeat=False)
    assert reader.next_batch().size == 5 and not reader.is_eof()
    assert reader.next_batch().size == 5 and reader.is_eof()   # exactly the last rows: the end is known at once
    assert reader.next_batch() is None and reader.is_eof()
    reader.set_source("")
    assert not reader.is_eof()
    assert [b.size for b in read_all(reader)] == [5, 5] and reader.is_eof()


def test_is_eof_after_a_short_last_batch_and_with_empty_files(tmp_path):
    out = generate(tmp_path, files=1, rows=10)
    empty = handmade(tmp_path, "empty.data", nnz=np.zeros((0, 4), int))
    lst = write_list(tmp_path, "list.txt", [out["train"][0], empty, empty])
    reader = Norm(make_params(lst, workers=2), make_input(), batch_size=6, source=lst, repeat=False)
    assert reader.next_batch().size == 6 and not reader.is_eof()
    assert reader.next_batch().size == 4 and reader.is_eof()
    lst = write_list(tmp_path, "list2.txt", [out["train"][0], empty])
    reader = Norm(make_params(lst), make_input(), batch_size=5, source=lst, repeat=False)
    assert reader.next_batch().size == 5 and not reader.is_eof()
    assert reader.next_batch().size == 5 and reader.is_eof()   # only empty files follow
    assert reader.next_batch() is None


def test_repeat_mode_with_fewer_rows_than_a_batch(tmp_path):
    out = generate(tmp_path, files=1, rows=3)
    reader = Norm(make_params(out["train_list"]), make_input(), batch_size=8, source=out["train_list"])
    with pytest.raises(DataError, match="holds 3 records, fewer than one batch of 8"):
        reader.next_batch()
    reader.close()


def test_wrong_count_line_names_the_list(tmp_path):
    out = generate(tmp_path, files=2)
    lst = write_list(tmp_path, "bad.txt", out["train"])
    (tmp_path / "bad.txt").write_text("3\n" + "".join(f"{p}\n" for p in out["train"]))
    with pytest.raises(DataError, match=r"bad\.txt' says 3 files on line 1 but lists 2"):
        Norm(make_params(lst), make_input(), batch_size=4, source=lst)
    (tmp_path / "bad.txt").write_text("two\n")
    with pytest.raises(DataError, match="must start with the number of files"):
        Norm(make_params(lst), make_input(), batch_size=4, source=lst)


def test_bad_second_file_reaches_next_batch(tmp_path):
    out = generate(tmp_path, files=2, rows=10)
    data = bytearray(open(out["train"][1], "rb").read())
    data[69 + 2 * 65 + 10] ^= 0xFF   # a label byte of record 2 (65-byte framed records)
    open(out["train"][1], "wb").write(bytes(data))
    reader = Norm(make_params(out["train_list"], workers=2), make_input(), batch_size=10, source=out["train_list"],
                  repeat=False)
    assert reader.next_batch().size == 10
    with pytest.raises(DataError, match=r"train/gen_1\.data'.*checksum"):
        reader.next_batch()
    reader.close()


def test_missing_data_file(tmp_path):
    lst = write_list(tmp_path, "list.txt", [str(tmp_path / "nope.data")])
    reader = Norm(make_params(lst), make_input(), batch_size=4, source=lst)
    with pytest.raises(DataError, match=r"nope\.data' \(from the file list\) does not exist"):
        reader.next_batch()


class DictFileSystem(FileSystem):
    """An in-memory FileSystem: proves the reader reads only through ``filesystem``."""

    def __init__(self, files):
        super().__init__()
        self.files, self.opened = files, []

    def open(self, path, mode="rb"):
        self.opened.append(path)
        return io.BytesIO(self.files[path])

    def exists(self, path):
        return path in self.files

    def size(self, path):
        return len(self.files[path])


def test_reads_through_the_given_filesystem(tmp_path):
    out = generate(tmp_path, files=2, rows=10)
    files = {f"mem://d/gen_{k}.data": open(p, "rb").read() for k, p in enumerate(out["train"])}
    files["mem://d/list.txt"] = b"2\ngen_0.data\ngen_1.data\n"
    fs = DictFileSystem(files)
    reader = Norm(make_params("mem://d/list.txt"), make_input(), batch_size=8, source="mem://d/list.txt",
                  repeat=False, filesystem=fs)
    records = [r for p in out["train"] for r in parse_independently(p, True, "I")]
    assert check_batches(read_all(reader), records) == 20
    assert set(fs.opened) == set(files)


# ----- the blocked fixed-hotness decoder and static hotness ------------------------------------
FIXED = (2, 1, 3, 1)


def fixed_file(n, checksum=True, seed=0):
    """n records of hotness FIXED: (layout, label, dense, nnz, keys, bytes)."""
    rng = np.random.default_rng(seed)
    layout = NormLayout(1, 3, FIXED, "<u4", checksum=checksum)
    label, dense = rng.random((n, 1)), rng.random((n, 3))
    nnz = np.tile(FIXED, (n, 1))
    keys = rng.integers(0, 2 ** 32, size=n * sum(FIXED))
    return layout, label, dense, nnz, keys, encode_file(layout, label, dense, nnz, keys)


def test_fixed_hotness_across_many_blocks_reads_back_and_is_static():
    layout, label, dense, nnz, keys, data = fixed_file(2 * 4096 + 17)
    samples = parse_file(data, "f.data", layout)
    assert samples.hotness == FIXED
    np.testing.assert_array_equal(samples.label, label.astype(np.float32))
    np.testing.assert_array_equal(samples.dense, dense.astype(np.float32))
    np.testing.assert_array_equal(samples.nnz, nnz)
    np.testing.assert_array_equal(samples.keys, keys.astype(np.uint32))
    part = samples.rows(4000, 4100)          # crosses a block boundary
    ro, k = part.slot_range(2, 4)            # the second input's slots only (hotness 3, 1)
    np.testing.assert_array_equal(ro, np.concatenate([[0], np.cumsum(np.tile((3, 1), 100))]))
    np.testing.assert_array_equal(k, keys.reshape(-1, 7)[4000:4100, 3:].reshape(-1))


def test_checksum_error_in_a_later_block_names_the_record():
    layout, *_, data = fixed_file(3 * 4096)
    record = 4 + 64 + 1 + 5000 * (4 + 4 * (1 + 3 + 4 + 7) + 1)   # start of record 5000
    broken = bytearray(data)
    broken[record + 8] ^= 0x40                                    # a dense byte: its checksum fails
    with pytest.raises(DataError, match=r"'f.data' record 5000: checksum fails .*1 record\(s\) of the file are corrupt"):
        parse_file(bytes(broken), "f.data", layout)


def test_hotness_changing_in_a_later_block_falls_back_to_the_record_loop():
    rng = np.random.default_rng(1)
    layout = NormLayout(1, 3, (2, 1, 3, 1), "<u4", checksum=False)
    n = 4096 + 10
    nnz = np.tile(FIXED, (n, 1))
    nnz[4100] = (1, 1, 0, 1)
    keys = rng.integers(0, 1000, size=int(nnz.sum()))
    samples = parse_file(encode_file(layout, np.zeros((n, 1)), np.zeros((n, 3)), nnz, keys), "v.data", layout)
    assert samples.hotness is None
    np.testing.assert_array_equal(samples.nnz, nnz)
    np.testing.assert_array_equal(samples.keys, keys)


def test_reader_sets_static_hotness_for_fixed_files(tmp_path):
    from hugectr_core.contracts.reader import static_row_offsets

    *_, data = fixed_file(10)
    (tmp_path / "f.data").write_bytes(data)
    lst = write_list(tmp_path, "list.txt", [str(tmp_path / "f.data")])
    reader = Norm(make_params(lst), make_input(), batch_size=4, source=lst, repeat=False)
    batches = read_all(reader)
    reader.close()
    assert [b.size for b in batches] == [4, 4, 2]
    for b in batches:
        assert b.sparse["a"].static_hotness == (2, 1) and b.sparse["b"].static_hotness == (3, 1)
        assert b.sparse["b"].row_offsets is static_row_offsets((3, 1), b.size)
