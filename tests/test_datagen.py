"""hugectr.tools.DataGenerator: parameters, key distributions, formats on disk, learnable labels."""
import json
import os

import numpy as np
import pytest

import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams, roc_auc, sample_keys
from hugectr_core.errors import ConfigError


def params(fmt, tmp_path, **kw):
    base = dict(format=fmt, label_dim=1, dense_dim=3, num_slot=4, i64_input_key=False,
                source=str(tmp_path / "train_list.txt"), eval_source=str(tmp_path / "val_list.txt"),
                slot_size_array=[50, 20, 7, 100], num_files=2, eval_num_files=1, num_samples_per_file=64,
                num_samples=200, eval_num_samples=100, seed=0)
    base.update(kw)
    return DataGeneratorParams(**base)


@pytest.mark.parametrize("kw, match", [
    (dict(alpha=0.0), "alpha must be > 0"),
    (dict(alpha=1.0), "alpha must be > 0 and != 1"),
    (dict(slot_size_array=[5, 5]), "slot_size_array needs num_slot=4"),
    (dict(slot_size_array=[5, 0, 5, 5]), "slot_size_array"),
    (dict(nnz_array=[1, 2]), "nnz_array needs"),
    (dict(format="Csv"), "format must be one of"),
    (dict(label_model="oracle"), "label_model"),
    (dict(num_threads=0), "num_threads"),
    (dict(slot_size_array=[2 ** 31] * 4), "do not fit uint32"),
])
def test_bad_params_are_config_errors(tmp_path, kw, match):
    with pytest.raises(ConfigError, match=match):
        params("RawAsync", tmp_path, **kw)


def test_power_law_types_fix_alpha(tmp_path):
    assert params("RawAsync", tmp_path, power_law_type=hugectr.PowerLaw_t.Long).alpha_value == 0.9
    assert params("RawAsync", tmp_path, power_law_type=hugectr.PowerLaw_t.Short, alpha=1.0).alpha_value == 1.3
    # alpha is only checked for Specific power laws
    assert params("RawAsync", tmp_path, dist_type=hugectr.Distribution_t.Uniform, alpha=1.0).alpha == 1.0


@pytest.mark.parametrize("check, i64", [(hugectr.Check_t.Sum, False), (hugectr.Check_t.Non, True)])
def test_norm_header_records_offsets_and_framing(tmp_path, check, i64):
    p = params("Norm", tmp_path, nnz_array=[2, 1, 1, 3], check_type=check, i64_input_key=i64)
    out = DataGenerator(p).generate()
    assert out["train"] == [str(tmp_path / "train" / f"gen_{k}.data") for k in range(2)]
    assert open(out["train_list"]).read().split() == ["2"] + out["train"]
    data = open(out["train"][0], "rb").read()
    framed = check == hugectr.Check_t.Sum
    pos = 4 if framed else 0
    if framed:
        assert np.frombuffer(data, "<i4", 1)[0] == 64 and data[68] == sum(data[4:68]) % 256
    header = np.frombuffer(data, "<i8", 8, pos).tolist()
    assert header == [int(framed), 64, 1, 3, 4, 0, 0, 0]
    key = np.dtype("<i8" if i64 else "<u4")
    fields = [("len", "<i4")] if framed else []
    fields += [("label", "<f4"), ("dense", "<f4", 3)]
    for s, nnz in enumerate([2, 1, 1, 3]):
        fields += [(f"n{s}", "<i4"), (f"k{s}", key, nnz)]
    fields += [("sum", "u1")] if framed else []
    rec = np.frombuffer(data, np.dtype(fields), offset=pos + 64 + int(framed))
    assert len(rec) == 64
    bounds = np.cumsum([0, 50, 20, 7, 100])
    for s, nnz in enumerate([2, 1, 1, 3]):
        assert (rec[f"n{s}"] == nnz).all()
        keys = rec[f"k{s}"]
        assert keys.min() >= bounds[s] and keys.max() < bounds[s + 1]   # the slot's own offset range
    assert 0 <= rec["label"].min() and rec["label"].max() < 1 and 0 <= rec["dense"].min() and rec["dense"].max() < 1
    if framed:
        raw = np.frombuffer(data, np.uint8, offset=69).reshape(64, -1)
        assert (rec["len"] == raw.shape[1] - 5).all()
        assert (raw[:, 4:-1].sum(axis=1) % 256 == rec["sum"]).all()


def test_norm_keys_with_offsets_must_fit_uint32(tmp_path):
    assert params("Parquet", tmp_path, slot_size_array=[2 ** 30 + 1] * 4)   # slot-local keys: fine
    with pytest.raises(ConfigError, match="do not fit uint32"):
        params("Norm", tmp_path, slot_size_array=[2 ** 30 + 1] * 4)


def test_power_law_follows_hugectrs_inverse_cdf_and_low_keys_are_hottest():
    keys = sample_keys(np.random.default_rng(3), 1000, 100_000, "PowerLaw", 1.2)
    u = np.random.default_rng(3).random(100_000)
    y = ((1000.0 ** -0.2 - 1.0) * u + 1.0) ** (1.0 / -0.2)
    np.testing.assert_array_equal(keys, np.floor(y + 0.5).astype(np.int64) - 1)
    counts = np.bincount(keys, minlength=1000)
    assert keys.min() >= 0 and keys.max() < 1000
    # HugeCTR's round(y) - 1 gives key 0 only the half-width bin [1, 1.5): from key 1 on the
    # frequencies fall; key 0 is the hottest once alpha is large enough (below), second at 1.2.
    assert counts[1] > counts[2] > counts[10] > counts[500] and np.argsort(counts)[-2:].tolist() == [0, 1]
    steep = np.bincount(sample_keys(np.random.default_rng(3), 1000, 100_000, "PowerLaw", 2.0), minlength=1000)
    assert steep.argmax() == 0 and steep[0] > steep[1] > steep[2]


def test_uniform_keys_cover_the_range():
    keys = sample_keys(np.random.default_rng(0), 10, 50_000, "Uniform", 1.2)
    counts = np.bincount(keys, minlength=10)
    assert counts.size == 10 and counts.min() > 4500 and counts.max() < 5500


def test_roc_auc_is_exact_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 200).astype(float)
    labels = rng.integers(0, 2, 200)
    pos, neg = scores[labels == 1], scores[labels == 0]
    brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (pos.size * neg.size)
    assert roc_auc(scores, labels) == pytest.approx(brute, abs=1e-12)
    assert np.isnan(roc_auc(np.ones(3), np.ones(3)))


def test_raw_random_follows_hugectr(tmp_path, capsys):
    p = params("Raw", tmp_path, source=str(tmp_path / "t.bin"), eval_source=str(tmp_path / "v.bin"),
               float_label_dense=True, nnz_array=[1, 2, 1, 1])
    out = DataGenerator(p).generate()
    assert out == {"train": [str(tmp_path / "t.bin")], "eval": [str(tmp_path / "v.bin")], "ceiling_auc": None}
    rec = np.fromfile(tmp_path / "t.bin", dtype=np.dtype([("label", "<f4", (1,)), ("dense", "<f4", (3,)),
                                                          ("keys", "<u4", (5,))]))
    assert rec.size == 200
    np.testing.assert_array_equal(rec["label"][:, 0], np.arange(200) % 2)
    np.testing.assert_array_equal(rec["dense"], np.broadcast_to([0, 1, 2], (200, 3)))
    lo = np.array([0, 50, 50, 70, 77])        # offsets of the slot of each key column
    hi = np.array([50, 70, 70, 77, 177])
    assert (rec["keys"] >= lo).all() and (rec["keys"] < hi).all()
    printed = capsys.readouterr().out.splitlines()
    assert sum("wrote" in line for line in printed) == 2


def test_raw_int_label_dense_has_the_key_width(tmp_path):
    p = params("Raw", tmp_path, source=str(tmp_path / "t.bin"), eval_source=str(tmp_path / "v.bin"),
               i64_input_key=True)
    DataGenerator(p).generate()
    assert os.path.getsize(tmp_path / "t.bin") == 200 * 8 * (1 + 3 + 4)


def test_parquet_layout_metadata_and_local_keys(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = params("Parquet", tmp_path, nnz_array=[3, 1, 1, 2], i64_input_key=True)
    out = DataGenerator(p).generate()
    assert out["train"] == [str(tmp_path / "train" / f"gen_{k}.parquet") for k in range(2)]
    assert out["eval"] == [str(tmp_path / "val" / "gen_0.parquet")]
    lines = (tmp_path / "train_list.txt").read_text().split()
    assert lines == ["2"] + out["train"]
    meta = json.loads((tmp_path / "train" / "_metadata.json").read_text())
    assert meta["file_stats"] == [{"file_name": f"gen_{k}.parquet", "num_rows": 64} for k in range(2)]
    assert [c["col_name"] for c in meta["labels"]] == ["label0"]
    assert [c["index"] for c in meta["labels"] + meta["conts"] + meta["cats"]] == list(range(8))
    t = pq.read_table(out["train"][0])
    assert t.schema.field("label0").type == pa.float32()
    cats = [c["col_name"] for c in meta["cats"]]
    assert t.schema.field(cats[0]).type == pa.list_(pa.int64()) and t.schema.field(cats[1]).type == pa.int64()
    hot = [len(v) for v in t.column(cats[0]).to_pylist()]
    assert min(hot) >= 1 and max(hot) <= 3 and len(set(hot)) > 1          # hotness 1 + r % nnz
    for name, size in zip(cats, p.slot_size_array):                        # keys are slot-local
        col = t.column(name).combine_chunks()
        values = (col.flatten() if pa.types.is_list(col.type) else col).to_numpy()
        assert values.min() >= 0 and values.max() < size
    labels = t.column("label0").to_numpy()
    assert (labels >= 0).all() and (labels < 1).all() and len(np.unique(labels)) > 2  # random model: U[0,1)


def test_learnable_ceiling_auc_and_reproducibility(tmp_path, capsys):
    kw = dict(label_model="learnable", num_samples=20_000, eval_num_samples=8_000, nnz_array=[2, 1, 1, 1],
              source=str(tmp_path / "a" / "t.bin"), eval_source=str(tmp_path / "a" / "v.bin"))
    out = DataGenerator(params("RawAsync", tmp_path, **kw)).generate()
    assert 0.72 < out["ceiling_auc"] < 0.88
    assert "ceiling AUC" in capsys.readouterr().out
    dt = np.dtype([("label", "<i4", (1,)), ("dense", "<f4", (3,)), ("keys", "<u4", (5,))])
    rec = np.fromfile(out["train"][0], dtype=dt)
    assert set(np.unique(rec["label"])) == {0, 1} and 0.2 < rec["label"].mean() < 0.6
    assert (rec["dense"] >= 0).all() and (rec["dense"] < 1).all()
    kw2 = dict(kw, source=str(tmp_path / "b" / "t.bin"), eval_source=str(tmp_path / "b" / "v.bin"))
    again = DataGenerator(params("RawAsync", tmp_path, **kw2)).generate()
    assert again["ceiling_auc"] == out["ceiling_auc"]
    assert (tmp_path / "a" / "t.bin").read_bytes() == (tmp_path / "b" / "t.bin").read_bytes()
    kw3 = dict(kw2, seed=1)
    other = DataGenerator(params("RawAsync", tmp_path, **kw3)).generate()
    assert (tmp_path / "a" / "t.bin").read_bytes() != (tmp_path / "b" / "t.bin").read_bytes()
    assert other["ceiling_auc"] != out["ceiling_auc"]


def test_learnable_labels_depend_on_keys(tmp_path):
    """A per-key click-rate table fitted on train beats chance on eval: the keys carry signal."""
    kw = dict(label_model="learnable", num_samples=30_000, eval_num_samples=10_000, dense_dim=0,
              source=str(tmp_path / "t.bin"), eval_source=str(tmp_path / "v.bin"))
    DataGenerator(params("RawAsync", tmp_path, **kw)).generate()
    dt = np.dtype([("label", "<i4", (1,)), ("dense", "<f4", (0,)), ("keys", "<u4", (4,))])
    train, val = np.fromfile(tmp_path / "t.bin", dtype=dt), np.fromfile(tmp_path / "v.bin", dtype=dt)
    total = 177
    score = np.zeros(len(val))
    for s in range(4):
        clicks = np.bincount(train["keys"][:, s], weights=train["label"][:, 0], minlength=total)
        seen = np.bincount(train["keys"][:, s], minlength=total)
        rate = (clicks + 1) / (seen + 2)
        score += np.log(rate[val["keys"][:, s]] / (1 - rate[val["keys"][:, s]]))
    assert roc_auc(score, val["label"][:, 0]) > 0.6


def test_threads_give_the_same_files(tmp_path):
    outs = []
    for threads in (1, 3):
        d = tmp_path / f"t{threads}"
        p = params("Parquet", tmp_path, num_threads=threads, num_files=4, source=str(d / "l.txt"),
                   eval_source=str(d / "v.txt"), label_model="learnable")
        outs.append(DataGenerator(p).generate())
    for a, b in zip(outs[0]["train"], outs[1]["train"]):
        assert open(a, "rb").read() == open(b, "rb").read()
    assert outs[0]["ceiling_auc"] == outs[1]["ceiling_auc"]


def test_enum_format_and_hugectr_tools_namespace(tmp_path):
    import hugectr.tools as tools

    assert tools.DataGeneratorParams is DataGeneratorParams
    p = params(hugectr.DataReaderType_t.RawAsync, tmp_path, source=str(tmp_path / "t.bin"),
               eval_source=str(tmp_path / "v.bin"))
    assert p.format_name == "RawAsync"
