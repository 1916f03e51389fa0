"""RawAsync / Raw readers: layouts, batch order, threads, shuffle, epoch/repeat, errors."""
import threading

import hugectr
import numpy as np
import pytest
from hugectr.tools import DataGenerator, DataGeneratorParams
from hugectr_core.errors import DataError
from hugectr_core.plugins import registry
from hugectr_reader_raw import Raw, RawAsync, RecordLayout

LABEL, DENSE = 1, 3
HOT = (2, 1, 3)          # "a": three slots with static hotness
HOT_B = (1, 1)           # "b": two one-hot slots


def make_input(hot=HOT, hot_b=HOT_B, label_dim=LABEL, dense_dim=DENSE):
    return hugectr.Input(label_dim=label_dim, label_name="label", dense_dim=dense_dim, dense_name="dense",
                         data_reader_sparse_param_array=[
                             hugectr.DataReaderSparseParam("a", list(hot), True, len(hot)),
                             hugectr.DataReaderSparseParam("b", list(hot_b), True, len(hot_b))])


def make_params(threads=1, depth=2, shuffle=False, multi_hot=True, dense_float=True, float_label_dense=False):
    return hugectr.DataReaderParams(
        data_reader_type="RawAsync", source=["x.bin"], eval_source="y.bin", float_label_dense=float_label_dense,
        async_param=hugectr.AsyncParam(num_threads=threads, num_batches_per_thread=depth, shuffle=shuffle,
                                       multi_hot_reader=multi_hot, is_dense_float=dense_float))


def write_records(path, n, *, label_dt="<i4", dense_dt="<f4", key_dt="<u4", hot=HOT + HOT_B, seed=0):
    """Hand-written records with known values; returns the structured array."""
    rng = np.random.default_rng(seed)
    dt = np.dtype([("label", label_dt, (LABEL,)), ("dense", dense_dt, (DENSE,)), ("keys", key_dt, (sum(hot),))])
    rec = np.zeros(n, dtype=dt)
    rec["label"] = rng.integers(0, 2, size=(n, LABEL))
    rec["dense"] = rng.random((n, DENSE)) * 20 if dense_dt == "<f4" else rng.integers(0, 50, size=(n, DENSE))
    rec["keys"] = rng.integers(0, 2 ** 31, size=(n, sum(hot)))
    rec.tofile(path)
    return rec


def read_all(reader):
    batches = []
    while (b := reader.next_batch()) is not None:
        batches.append(b)
    return batches


def expected_sparse(rec, hot_a=HOT, hot_b=HOT_B):
    """Per input: (row_offsets, keys) computed slot by slot with Python loops, independent of the reader."""
    out = {}
    col = 0
    for name, hot in (("a", hot_a), ("b", hot_b)):
        offsets, keys = [0], []
        for r in rec:
            c = col
            for h in hot:
                keys.extend(r["keys"][c:c + h])
                offsets.append(offsets[-1] + h)
                c += h
        out[name] = (np.array(offsets), np.array(keys))
        col += sum(hot)
    return out


def test_entry_points_are_registered():
    assert registry("readers").load("RawAsync") is RawAsync
    assert registry("readers").load("Raw") is Raw


def test_multi_hot_values_round_trip(tmp_path):
    path = str(tmp_path / "d.bin")
    rec = write_records(path, 10)
    reader = RawAsync(make_params(), make_input(), batch_size=4, source=path, repeat=False)
    batches = read_all(reader)
    reader.close()
    assert [b.size for b in batches] == [4, 4, 2]
    label = np.concatenate([b.label for b in batches])
    dense = np.concatenate([b.dense for b in batches])
    assert label.dtype == np.float32 and label.shape == (10, LABEL)
    np.testing.assert_array_equal(label, rec["label"].astype(np.float32))
    np.testing.assert_array_equal(dense, rec["dense"])
    for start, b in zip((0, 4, 8), batches):
        exp = expected_sparse(rec[start:start + b.size])
        for name in ("a", "b"):
            np.testing.assert_array_equal(b.sparse[name].row_offsets, exp[name][0])
            np.testing.assert_array_equal(b.sparse[name].keys, exp[name][1])
            assert b.sparse[name].keys.dtype == np.uint32 and b.sparse[name].row_offsets.dtype == np.int64


def test_int_dense_gets_log1p_and_int64_keys(tmp_path):
    path = str(tmp_path / "d.bin")
    rec = write_records(path, 6, dense_dt="<i4", key_dt="<i8")
    reader = RawAsync(make_params(dense_float=False), make_input(), batch_size=3, source=path, repeat=False,
                      key_dtype="int64")
    batches = read_all(reader)
    np.testing.assert_allclose(np.concatenate([b.dense for b in batches]), np.log1p(rec["dense"].astype(np.float64)),
                               rtol=1e-6)
    keys = batches[0].sparse["a"].keys
    assert keys.dtype == np.int64
    np.testing.assert_array_equal(keys, expected_sparse(rec[:3])["a"][1])


def test_legacy_one_hot_layout(tmp_path):
    path = str(tmp_path / "d.bin")
    # One-hot: one key per slot whatever nnz_per_slot says; dense uint32 -> log(x+1).
    rec = write_records(path, 5, dense_dt="<u4", hot=(1,) * 5)
    reader = RawAsync(make_params(multi_hot=False, dense_float=False), make_input(), batch_size=5, source=path,
                      repeat=False)
    assert reader.layout.record_size == 4 * (LABEL + DENSE + 5)
    b = reader.next_batch()
    np.testing.assert_allclose(b.dense, np.log1p(rec["dense"].astype(np.float64)), rtol=1e-6)
    exp = expected_sparse(rec, hot_a=(1, 1, 1), hot_b=(1, 1))
    np.testing.assert_array_equal(b.sparse["a"].row_offsets, np.arange(16))
    np.testing.assert_array_equal(b.sparse["a"].keys, exp["a"][1])
    np.testing.assert_array_equal(b.sparse["b"].keys, exp["b"][1])


def test_same_batches_for_any_thread_count(tmp_path):
    path = str(tmp_path / "d.bin")
    write_records(path, 50)
    runs = []
    for threads, depth in ((1, 1), (3, 2), (4, 5)):
        reader = RawAsync(make_params(threads=threads, depth=depth), make_input(), batch_size=7, source=path,
                          repeat=False)
        runs.append(read_all(reader))
        reader.close()
    for other in runs[1:]:
        assert len(other) == len(runs[0]) == 8
        for x, y in zip(runs[0], other):
            np.testing.assert_array_equal(x.label, y.label)
            np.testing.assert_array_equal(x.sparse["a"].keys, y.sparse["a"].keys)


def test_shuffle_is_a_seeded_permutation_of_batches(tmp_path):
    path = str(tmp_path / "d.bin")
    write_records(path, 64)

    def first_keys(shuffle, seed, threads=2):
        reader = RawAsync(make_params(threads=threads, shuffle=shuffle), make_input(), batch_size=4, source=path,
                          repeat=False, seed=seed)
        out = [tuple(b.sparse["b"].keys[:2]) for b in read_all(reader)]
        reader.close()
        return out

    plain = first_keys(False, 0)
    shuffled = first_keys(True, 3)
    assert sorted(shuffled) == sorted(plain) and len(set(plain)) == 16
    assert shuffled != plain
    assert first_keys(True, 3, threads=1) == shuffled   # seeded, thread-count independent
    assert first_keys(True, 4) != shuffled


def test_epoch_mode_short_batch_eof_and_rewind(tmp_path):
    path, other = str(tmp_path / "d.bin"), str(tmp_path / "e.bin")
    rec = write_records(path, 10)
    rec2 = write_records(other, 3, seed=5)
    reader = RawAsync(make_params(threads=2), make_input(), batch_size=4, source=path, repeat=False)
    sizes = [b.size for b in read_all(reader)]
    assert sizes == [4, 4, 2] and reader.is_eof()
    assert reader.next_batch() is None
    reader.set_source("")
    assert not reader.is_eof()
    np.testing.assert_array_equal(reader.next_batch().label[:, 0], rec["label"][:4, 0])
    reader.set_source(other)
    b = reader.next_batch()
    assert b.size == 3
    np.testing.assert_array_equal(b.dense, rec2["dense"])
    assert reader.next_batch() is None and reader.is_eof()
    reader.close()


def test_repeat_mode_wraps_and_skips_the_incomplete_batch(tmp_path):
    path = str(tmp_path / "d.bin")
    rec = write_records(path, 10)
    reader = RawAsync(make_params(threads=3), make_input(), batch_size=4, source=path, repeat=True)
    batches = [reader.next_batch() for _ in range(5)]
    reader.close()
    assert [b.size for b in batches] == [4] * 5
    # 10 samples, batch 4: records 8-9 are never a batch; batch 2 is the start of the file again.
    np.testing.assert_array_equal(batches[2].dense, rec["dense"][:4])
    np.testing.assert_array_equal(batches[3].dense, rec["dense"][4:8])
    assert not reader.is_eof()


def test_num_samples_limits_the_read(tmp_path):
    path = str(tmp_path / "d.bin")
    write_records(path, 10)
    reader = RawAsync(make_params(), make_input(), batch_size=4, source=path, repeat=False, num_samples=6)
    assert [b.size for b in read_all(reader)] == [4, 2]


def test_size_not_a_multiple_of_the_record_is_a_data_error(tmp_path):
    path = str(tmp_path / "d.bin")
    write_records(path, 4)
    with open(path, "ab") as f:
        f.write(b"\0\0\0")
    record = 4 * (LABEL + DENSE) + 4 * sum(HOT + HOT_B)
    with pytest.raises(DataError) as err:
        RawAsync(make_params(), make_input(), batch_size=2, source=path)
    msg = str(err.value)
    assert path in msg and str(4 * record + 3) in msg and str(record) in msg


def test_file_smaller_than_num_samples_is_a_data_error(tmp_path):
    path = str(tmp_path / "d.bin")
    write_records(path, 4)
    with pytest.raises(DataError, match="100 records are expected") as err:
        RawAsync(make_params(), make_input(), batch_size=2, source=path, num_samples=100)
    assert path in str(err.value)
    with pytest.raises(DataError, match="does not exist"):
        RawAsync(make_params(), make_input(), batch_size=2, source=str(tmp_path / "missing.bin"))


def test_worker_exception_reaches_next_batch(tmp_path):
    path = str(tmp_path / "d.bin")
    write_records(path, 40)
    reader = RawAsync(make_params(threads=2, depth=1), make_input(), batch_size=4, source=path, repeat=False)
    with open(path, "r+b") as f:  # truncated after the size check: the worker's read comes up short
        f.truncate(4)
    with pytest.raises(DataError, match="ended early"):
        reader.next_batch()
    with pytest.raises(DataError):
        reader.next_batch()
    reader.close()


def test_close_stops_worker_threads(tmp_path):
    path = str(tmp_path / "d.bin")
    write_records(path, 40)
    already = set(threading.enumerate())  # other tests' readers may still run
    reader = RawAsync(make_params(threads=3, depth=1), make_input(), batch_size=2, source=path, repeat=True)
    reader.next_batch()
    ours = lambda: [t for t in threading.enumerate() if t not in already and t.name.startswith("RawAsync")]  # noqa: E731
    assert ours()
    reader.close()
    reader.close()
    assert not ours()


def test_generated_raw_async_reads_back_with_slot_offsets(tmp_path):
    sizes, nnz = [5, 7, 11, 3, 13], [2, 1, 3, 1, 1]
    p = DataGeneratorParams("RawAsync", 1, DENSE, 5, False, str(tmp_path / "t.bin"), str(tmp_path / "v.bin"),
                            sizes, nnz_array=nnz, num_samples=300, eval_num_samples=50, seed=2,
                            label_model="learnable")
    DataGenerator(p).generate()
    raw = np.fromfile(tmp_path / "t.bin", dtype=np.dtype([("label", "<i4", (1,)), ("dense", "<f4", (DENSE,)),
                                                          ("keys", "<u4", (8,))]))
    reader = RawAsync(make_params(threads=2), make_input(hot=(2, 1, 3), hot_b=(1, 1)), batch_size=64,
                      source=str(tmp_path / "t.bin"), repeat=False, num_samples=300)
    batches = read_all(reader)
    keys_a = np.concatenate([b.sparse["a"].keys for b in batches]).reshape(300, 6)
    np.testing.assert_array_equal(keys_a, raw["keys"][:, :6])
    np.testing.assert_array_equal(np.concatenate([b.label for b in batches])[:, 0], raw["label"][:, 0])
    assert set(np.unique(raw["label"])) <= {0, 1}
    offsets = np.cumsum([0] + sizes[:-1])
    col = 0
    for s, h in enumerate(nnz):  # every slot's keys lie in its own offset range
        k = raw["keys"][:, col:col + h]
        assert k.min() >= offsets[s] and k.max() < offsets[s] + sizes[s]
        col += h


@pytest.mark.parametrize("float_label_dense", [True, False])
def test_generated_legacy_raw_reads_back(tmp_path, float_label_dense):
    p = DataGeneratorParams("Raw", 1, DENSE, 5, False, str(tmp_path / "t.bin"), str(tmp_path / "v.bin"),
                            [4, 4, 4, 4, 4], num_samples=20, eval_num_samples=8, seed=1,
                            float_label_dense=float_label_dense)
    DataGenerator(p).generate()
    reader = Raw(make_params(float_label_dense=float_label_dense), make_input(hot=(1, 1, 1)), batch_size=8,
                 source=str(tmp_path / "t.bin"), repeat=False)
    batches = read_all(reader)
    label = np.concatenate([b.label for b in batches])[:, 0]
    dense = np.concatenate([b.dense for b in batches])
    np.testing.assert_array_equal(label, np.arange(20) % 2)  # HugeCTR's Raw generator: label = i % 2
    expected_dense = np.arange(DENSE, dtype=np.float64)        # ... and dense[j] = j
    if not float_label_dense:
        expected_dense = np.log1p(expected_dense)
    np.testing.assert_allclose(dense, np.broadcast_to(expected_dense, (20, DENSE)), rtol=1e-6)
    keys = np.concatenate([b.sparse["b"].keys for b in batches]).reshape(20, 2)
    assert keys[:, 0].min() >= 12 and keys[:, 1].min() >= 16 and keys.max() < 20  # slots 3, 4 with offsets
    # The same file is the legacy one-hot RawAsync layout when label/dense are int32.
    if not float_label_dense:
        legacy = RawAsync(make_params(multi_hot=False, dense_float=False), make_input(), batch_size=20,
                          source=str(tmp_path / "t.bin"), repeat=False)
        np.testing.assert_array_equal(legacy.next_batch().sparse["b"].keys.reshape(20, 2), keys)


def test_record_layout_dtype_matches_formats_md():
    layout = RecordLayout(1, "<i4", 13, "<f4", False, "<u4", {"x": (2,) * 107})
    assert layout.record_size == 4 * (1 + 13 + 214)  # MLPerf DLRM-DCNv2 row


@pytest.mark.parametrize("n, sizes", [(10, [4, 4, 2]), (8, [4, 4])])
def test_is_eof_turns_true_with_the_last_batch(tmp_path, n, sizes):
    path = str(tmp_path / "d.bin")
    write_records(path, n)
    reader = RawAsync(make_params(threads=2), make_input(), batch_size=4, source=path, repeat=False)
    for i, size in enumerate(sizes):
        assert not reader.is_eof()
        assert reader.next_batch().size == size
    assert reader.is_eof()                      # right after the last (possibly short) batch
    assert reader.next_batch() is None and reader.is_eof()
    reader.set_source("")
    assert not reader.is_eof() and [b.size for b in read_all(reader)] == sizes and reader.is_eof()
    reader.close()


# ----- static hotness: shared, read-only row offsets ------------------------------------------
def test_static_row_offsets_are_cached_read_only_and_flagged(tmp_path):
    from hugectr_core.contracts.reader import static_row_offsets

    write_records(tmp_path / "s.bin", 20)
    reader = RawAsync(make_params(threads=2), make_input(), batch_size=8, source=str(tmp_path / "s.bin"),
                      repeat=False)
    batches = read_all(reader)
    reader.close()
    assert [b.size for b in batches] == [8, 8, 4]
    for b in batches:
        for name, hot in (("a", HOT), ("b", HOT_B)):
            sb = b.sparse[name]
            assert sb.static_hotness == hot
            assert sb.row_offsets is static_row_offsets(hot, b.size)   # one shared array per (hotness, n)
            assert not sb.row_offsets.flags.writeable
            np.testing.assert_array_equal(sb.row_offsets, np.concatenate([[0], np.cumsum(np.tile(hot, b.size))]))
            assert sb.keys.flags.writeable and sb.keys.flags.c_contiguous   # keys stay owned copies
    assert batches[0].sparse["a"].row_offsets is batches[1].sparse["a"].row_offsets


def test_static_row_offsets_cache_is_thread_safe():
    from hugectr_core.contracts.reader import static_row_offsets

    seen, errors = [], []

    def worker():
        try:
            for n in range(1, 60):
                seen.append((n, static_row_offsets((3, 1), n)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(seen) == 4 * 59
    for n, offsets in seen:
        assert offsets.size == 2 * n + 1 and offsets[-1] == 4 * n and offsets.dtype == np.int64
