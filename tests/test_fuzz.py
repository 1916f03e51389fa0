"""Fuzzing every loader of data and state: Raw/RawAsync, Norm, Parquet (+ _metadata.json, file lists),
graph JSON and the checkpoint files (dense, opt_dense + .step, sparse folders, opt_sparse).

Each example mutates a valid input (truncation, bit flips, appended/inserted/deleted bytes, random bytes,
wrong dtypes/sizes of the reader's configuration) and asserts the outcome is a project error
(``hugectr.Error``) or a correct result: for Raw files the batches must equal an independent NumPy decode of
the bytes, a file of the wrong size must fail, and a checksum-framed Norm file with one flipped bit must fail.
A watchdog aborts the run (with a traceback) if an example hangs.

CI runs a bounded slice; scale it with ``HUGECTR_FUZZ_EXAMPLES`` (examples per test, default 150), e.g.
``HUGECTR_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest tests/test_fuzz.py -q``. The number of inputs tried
is printed in pytest's terminal summary.
"""
import faulthandler
import json
import os
import shutil
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hugectr
from hugectr_core.plugins import registry
from hugectr_reader_norm import NormLayout, encode_file
from tests.helpers import add_small_embedding_mlp

EXAMPLES = int(os.environ.get("HUGECTR_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("HUGECTR_FUZZ_RANDOM") is None,
                suppress_health_check=list(HealthCheck), database=None)
HANG_S = 60


@pytest.fixture(autouse=True)
def watchdog():
    """A hang is a failure: dump every thread's stack and exit if one test runs past HANG_S per example batch."""
    faulthandler.dump_traceback_later(HANG_S * max(1, EXAMPLES // 150), exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def tried(pytestconfig):
    counts = pytestconfig.__dict__.setdefault("_hugectr_fuzz_counts", {})

    def count(kind):
        counts[kind] = counts.get(kind, 0) + 1
    return count


@pytest.fixture(scope="module")
def work():
    d = tempfile.mkdtemp(prefix="hugectr-fuzz-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ----- mutations -------------------------------------------------------------------------------
@st.composite
def mutated(draw, data: bytes):
    """(kind, new bytes) for one random corruption of ``data``."""
    kind = draw(st.sampled_from(["same", "truncate", "flip1", "flips", "append", "insert", "delete", "random"]))
    b = bytearray(data)
    if kind == "truncate":
        b = b[:draw(st.integers(0, max(0, len(b) - 1)))]
    elif kind in ("flip1", "flips") and b:
        for _ in range(1 if kind == "flip1" else draw(st.integers(2, 6))):
            i = draw(st.integers(0, len(b) - 1))
            b[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "append":
        b += draw(st.binary(min_size=1, max_size=40))
    elif kind == "insert":
        i = draw(st.integers(0, len(b)))
        b[i:i] = draw(st.binary(min_size=1, max_size=9))
    elif kind == "delete" and b:
        i = draw(st.integers(0, len(b) - 1))
        del b[i:i + draw(st.integers(1, 9))]
    elif kind == "random":
        b = bytearray(draw(st.binary(max_size=200)))
    return kind, bytes(b)


def write(path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return path


def read_all(reader, limit=200):
    batches = []
    try:
        for _ in range(limit):
            b = reader.next_batch()
            if b is None:
                return batches
            batches.append(b)
        raise AssertionError("an epoch-mode reader did not end")
    finally:
        reader.close()


def project_error_or(fn):
    """Run ``fn``; return (error or None, result). Any exception that is not hugectr.Error fails the test."""
    try:
        return None, fn()
    except hugectr.Error as exc:
        assert str(exc), "a project error must say what went wrong"
        return exc, None


# ----- Raw and RawAsync --------------------------------------------------------------------------
HOT = (2, 1)
N_RECORDS = 12


def raw_file_dtype(kind, key, dense_dim, float_dense):
    if kind == "RawAsync":
        return np.dtype([("label", "<i4", (1,)), ("dense", "<f4" if float_dense else "<i4", (dense_dim,)),
                         ("keys", key, (sum(HOT),))])
    value = "<f4" if float_dense else ("<i4" if key == "<u4" else "<i8")
    return np.dtype([("label", value, (1,)), ("dense", value, (dense_dim,)), ("keys", key, (sum(HOT),))])


@given(data=st.data())
@FUZZ
def test_fuzz_raw_readers(data, work, tried):
    tried("raw")
    kind = data.draw(st.sampled_from(["RawAsync", "Raw"]))
    key = data.draw(st.sampled_from(["uint32", "int64"]))
    float_dense = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    written = raw_file_dtype(kind, {"uint32": "<u4", "int64": "<i8"}[key], 2, float_dense)
    records = np.zeros(N_RECORDS, written)
    records["label"] = rng.integers(0, 2, (N_RECORDS, 1))
    records["dense"] = rng.integers(0, 100, (N_RECORDS, 2))
    records["keys"] = rng.integers(0, 1000, (N_RECORDS, sum(HOT)))
    mutation, raw = data.draw(mutated(records.tobytes()))
    # The reader may also be configured wrongly for the file (key width, dense width): sizes and dtypes.
    read_key = data.draw(st.sampled_from([key, "uint32", "int64"]))
    dense_dim = data.draw(st.sampled_from([2, 2, 1, 3]))
    check = data.draw(st.sampled_from([hugectr.Check_t.Non, hugectr.Check_t.Sum]))
    num_samples = data.draw(st.sampled_from([0, N_RECORDS, N_RECORDS // 2]))
    path = write(os.path.join(work, "fuzz.bin"), raw)
    params = hugectr.DataReaderParams(kind, [path], path, check_type=check, float_label_dense=float_dense,
                                      async_param=hugectr.AsyncParam(2, 2, shuffle=False, multi_hot_reader=True,
                                                                     is_dense_float=float_dense))
    inp = hugectr.Input(label_dim=1, label_name="label", dense_dim=dense_dim, dense_name="dense",
                        data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", list(HOT), True, 2)])
    expected_dtype = raw_file_dtype(kind, {"uint32": "<u4", "int64": "<i8"}[read_key], dense_dim, float_dense)

    def run():
        reader = registry("readers").load(kind)(params, inp, batch_size=5, source=path, repeat=False,
                                                key_dtype=read_key, num_samples=num_samples)
        return read_all(reader)

    with np.errstate(all="ignore"):
        error, batches = project_error_or(run)
    size = expected_dtype.itemsize
    if len(raw) % size or num_samples > len(raw) // size:
        assert error is not None, f"{mutation}: a file of {len(raw)} bytes ({size}-byte records) must be refused"
        return
    rec = np.frombuffer(raw, expected_dtype)[:num_samples or None]
    label = rec["label"].astype(np.float32).reshape(len(rec), 1)
    dense = rec["dense"].reshape(len(rec), dense_dim)
    with np.errstate(all="ignore"):
        dense = dense.astype(np.float32) if float_dense else np.log1p(dense.astype(np.float64)).astype(np.float32)
    if check == hugectr.Check_t.Sum and not (np.isfinite(label).all() and np.isfinite(dense).all()):
        assert error is not None and "record" in str(error), "check_type=Sum must report a NaN/Inf record"
        return
    assert error is None, f"{mutation}: a well-sized file failed: {error}"
    assert sum(b.size for b in batches) == len(rec)
    if batches:
        np.testing.assert_array_equal(np.concatenate([b.label for b in batches]), label)
        np.testing.assert_array_equal(np.concatenate([b.dense for b in batches]), dense)
        keys = np.concatenate([b.sparse["data1"].keys for b in batches])
        np.testing.assert_array_equal(keys, rec["keys"].reshape(-1))


# ----- Norm -----------------------------------------------------------------------------------
def norm_input(max_nnz=(2, 3)):
    return hugectr.Input(label_dim=1, label_name="label", dense_dim=2, dense_name="dense",
                         data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", list(max_nnz),
                                                                                      False, len(max_nnz))])


@given(data=st.data())
@FUZZ
def test_fuzz_norm_reader_and_file_list(data, work, tried):
    tried("norm")
    checksum = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    n = data.draw(st.integers(1, 6))
    layout = NormLayout(1, 2, (2, 3), "<u4", checksum=checksum)
    nnz = np.stack([rng.integers(0, 3, n), rng.integers(0, 4, n)], axis=1)
    keys = rng.integers(0, 1000, int(nnz.sum()))
    good = encode_file(layout, rng.integers(0, 2, (n, 1)), rng.random((n, 2)), nnz, keys)
    target = data.draw(st.sampled_from(["data", "data", "list"]))
    mutation, raw = data.draw(mutated(good))
    data_path = write(os.path.join(work, "f0.data"), raw if target == "data" else good)
    list_text = f"1\n{data_path}\n".encode()
    list_mutation, list_raw = data.draw(mutated(list_text)) if target == "list" else ("same", list_text)
    lst = write(os.path.join(work, "norm_list.txt"), list_raw)
    params = hugectr.DataReaderParams("Norm", [lst], lst, check_type=hugectr.Check_t.Sum if checksum
                                      else hugectr.Check_t.Non, num_workers=1)

    def run():
        reader = registry("readers").load("Norm")(params, norm_input(), batch_size=4, source=lst, repeat=False)
        return read_all(reader)

    error, batches = project_error_or(run)
    changed = raw != good if target == "data" else list_raw != list_text
    if not changed:
        assert error is None
        got = np.concatenate([b.sparse["data1"].keys for b in batches])
        np.testing.assert_array_equal(got, keys)
        return
    if target == "data" and mutation in ("truncate", "append", "insert", "delete"):
        assert error is not None, f"{mutation}: a Norm file whose size disagrees with its header must be refused"
    if target == "data" and mutation == "flip1" and checksum:
        assert error is not None, "a flipped bit in a checksum-framed file must be detected"
    for b in batches or []:  # whatever was read is well-formed
        ro = b.sparse["data1"].row_offsets
        assert ro[0] == 0 and (np.diff(ro) >= 0).all() and ro[-1] == b.sparse["data1"].keys.size
        assert (np.diff(ro).reshape(b.size, 2) <= np.array([2, 3])).all()


# ----- Parquet + _metadata.json + file list ---------------------------------------------------
def parquet_dataset(folder, rng, key_type):
    os.makedirs(folder, exist_ok=True)
    n = 6
    cols = {"label": pa.array(rng.integers(0, 2, n).astype(np.float32)),
            "I1": pa.array(rng.random(n).astype(np.float32))}
    cols["C0"] = pa.array(rng.integers(0, 5, n).astype(np.int64), type=key_type)
    cols["C1"] = pa.array([list(rng.integers(0, 5, int(k))) for k in rng.integers(0, 3, n)], type=pa.list_(key_type))
    path = os.path.join(folder, "part0.parquet")
    pq.write_table(pa.table(cols), path)
    meta = {"file_stats": [{"file_name": "part0.parquet", "num_rows": n}],
            "labels": [{"col_name": "label", "index": 0}], "conts": [{"col_name": "I1", "index": 1}],
            "cats": [{"col_name": "C0", "index": 2}, {"col_name": "C1", "index": 3}]}
    return path, meta


def json_values():
    leaf = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8)
    return st.recursive(leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                        max_leaves=8)


def replace_somewhere(draw, doc):
    """Replace one random node of a JSON document with a random JSON value."""
    doc = json.loads(json.dumps(doc))
    parent, key = None, None
    node = doc
    for _ in range(draw(st.integers(0, 4))):
        if isinstance(node, dict) and node:
            parent, key = node, draw(st.sampled_from(sorted(node)))
        elif isinstance(node, list) and node:
            parent, key = node, draw(st.integers(0, len(node) - 1))
        else:
            break
        node = parent[key]
    value = draw(json_values())
    if parent is None:
        return value
    parent[key] = value
    return doc


@given(data=st.data())
@FUZZ
def test_fuzz_parquet_metadata_and_file_list(data, work, tried):
    tried("parquet")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    key_type = data.draw(st.sampled_from([pa.int64(), pa.uint32(), pa.int32(), pa.int16(), pa.float32()]))
    folder = os.path.join(work, "pq")
    shutil.rmtree(folder, ignore_errors=True)
    path, meta = parquet_dataset(folder, rng, key_type)
    target = data.draw(st.sampled_from(["parquet", "meta_bytes", "meta_json", "list", "none"]))
    meta_raw = json.dumps(meta).encode()
    if target == "meta_json":
        meta_raw = json.dumps(replace_somewhere(data.draw, meta)).encode()
    elif target == "meta_bytes":
        meta_raw = data.draw(mutated(meta_raw))[1]
    write(os.path.join(folder, "_metadata.json"), meta_raw)
    if target == "parquet":
        write(path, data.draw(mutated(open(path, "rb").read()))[1])
    list_raw = f"1\n{path}\n".encode()
    if target == "list":
        list_raw = data.draw(mutated(list_raw))[1]
    lst = write(os.path.join(folder, "list.txt"), list_raw)
    key_dtype = data.draw(st.sampled_from(["uint32", "int64"]))
    params = hugectr.DataReaderParams("Parquet", [lst], lst, slot_size_array=[5, 5], num_workers=1,
                                      check_type=data.draw(st.sampled_from([hugectr.Check_t.Sum, hugectr.Check_t.Non])))
    inp = hugectr.Input(label_dim=1, label_name="label", dense_dim=1, dense_name="dense",
                        data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("s", 2, False, 2)])

    def run():
        reader = registry("readers").load("Parquet")(params, inp, batch_size=4, source=lst, repeat=False,
                                                     key_dtype=key_dtype)
        return read_all(reader)

    error, batches = project_error_or(run)
    allowed = (pa.int64(),) if key_dtype == "int64" else (pa.uint32(), pa.int32())
    if target == "none":
        assert (error is None) == (key_type in allowed), f"{key_type} keys with key_dtype={key_dtype}: {error}"
    for b in batches or []:
        assert b.label.dtype == np.float32 and b.dense.shape == (b.size, 1)
        ro = b.sparse["s"].row_offsets
        assert ro.size == 2 * b.size + 1 and ro[-1] == b.sparse["s"].keys.size


# ----- graph JSON -----------------------------------------------------------------------------
def small_model(folder="."):
    solver = hugectr.CreateSolver(batchsize=8, batchsize_eval=8, lr=0.01, seed=3, device="cpu")
    reader = hugectr.DataReaderParams("RawAsync", [f"{folder}/train.bin"], f"{folder}/val.bin",
                                      async_param=hugectr.AsyncParam(1, 2, shuffle=False, multi_hot_reader=True,
                                                                     is_dense_float=True))
    return hugectr.Model(solver, reader, hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam))


def build_small(model):
    return add_small_embedding_mlp(model, hidden=4)


@pytest.fixture(scope="module")
def graph_doc(work):
    model = build_small(small_model(work))
    path = os.path.join(work, "graph.json")
    model.graph_to_json(path)
    return open(path, "rb").read()


@given(data=st.data())
@FUZZ
def test_fuzz_graph_json(data, work, graph_doc, tried):
    tried("graph_json")
    if data.draw(st.booleans()):
        raw = data.draw(mutated(graph_doc))[1]
    else:
        raw = json.dumps(replace_somewhere(data.draw, json.loads(graph_doc))).encode()
    path = write(os.path.join(work, "fuzz_graph.json"), raw)
    model = small_model(work)
    error, _ = project_error_or(lambda: model.construct_from_json(path, data.draw(st.booleans())))
    if raw == graph_doc:
        assert error is None


# ----- checkpoints ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def snapshot(work):
    from tests.helpers import random_batch

    model = build_small(small_model(work))
    batch = random_batch(8, dense_dim=4, sparse={"data1": (3, 50)}, seed=1)
    for _ in range(3):
        model.runtime.train_step(batch, 0.01)
    folder = os.path.join(work, "ckpt")
    os.makedirs(folder)
    model.save_params_to_files(os.path.join(folder, "m"), 3)
    return model, folder


CKPT_FILES = ["m_dense_3.model", "m_opt_dense_3.model", "m_opt_dense_3.model.step", "m0_sparse_3.model/key",
              "m0_sparse_3.model/emb_vector", "m0_opt_sparse_3.model"]


def load_all(model, folder):
    model.load_dense_weights(os.path.join(folder, "m_dense_3.model"))
    model.load_dense_optimizer_states(os.path.join(folder, "m_opt_dense_3.model"))
    model.load_sparse_weights([os.path.join(folder, "m0_sparse_3.model")])
    model.load_sparse_optimizer_states([os.path.join(folder, "m0_opt_sparse_3.model")])


@given(data=st.data())
@FUZZ
def test_fuzz_checkpoint_loaders(data, work, snapshot, tried):
    tried("checkpoint")
    model, folder = snapshot
    copy = os.path.join(work, "ckpt_fuzz")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(folder, copy)
    name = data.draw(st.sampled_from(CKPT_FILES + ["missing"]))
    if name == "missing":
        victim = os.path.join(copy, data.draw(st.sampled_from(CKPT_FILES)))
        os.remove(victim)
        original = raw = b""
        mutation = "missing"
    else:
        victim = os.path.join(copy, name)
        original = open(victim, "rb").read()
        mutation, raw = data.draw(mutated(original))
        write(victim, raw)
    error, _ = project_error_or(lambda: load_all(model, copy))
    if mutation == "missing":
        if not victim.endswith(".step"):  # the .step side file is optional (HugeCTR does not write it)
            assert error is not None and ("exist" in str(error) or "has no" in str(error)), error
    elif len(raw) != len(original) and not name.endswith(".step"):
        assert error is not None, f"{name}: {len(raw)} bytes instead of {len(original)} must be refused"
    elif raw == original:
        assert error is None
