"""Embedding Collection on NumPy against dict references; GPU twins marked gpu."""
import importlib.resources
import math
import os

import numpy as np
import pytest

from hugectr_core.contracts import StepContext
from hugectr_core.errors import CheckpointError, ConfigError, DataError, GraphError
from hugectr_core.layers_api import DataReaderSparseParam, Input
from hugectr_core.params import CreateOptimizer
from hugectr_core.plugins import registry
from hugectr_core.solver import CreateSolver
from hugectr_embeddings_collection import (CommunicationStrategy, CompressionStrategy, EmbeddingCollection,
                                           EmbeddingCollectionConfig, EmbeddingTableConfig, dump_collection,
                                           load_collection, read_meta_data, reference, tables)

SAMPLES_A = [[1, 3, 1], [], [0, 7]]          # 3 samples, hotness 3, repeated key 1
SAMPLES_B = [[5], [2, 2], [9]]


def csr(samples):
    offsets = np.cumsum([0] + [len(s) for s in samples]).astype(np.int64)
    return offsets, np.array([k for s in samples for k in s], np.int64)


def make_input(**hotness):
    params = [DataReaderSparseParam(name, h, False, 1) for name, h in hotness.items()]
    return Input(label_dim=1, label_name="label", dense_dim=0, dense_name="dense",
                 data_reader_sparse_param_array=params)


def expand(ebc, optimizer="SGD", i64=False, **hotness):
    solver = CreateSolver(batchsize=3, batchsize_eval=3, i64_input_key=i64)
    embs = EmbeddingCollection.expand(ebc, make_input(**(hotness or {"a": 3, "b": 2})), solver,
                                      CreateOptimizer(optimizer_type=optimizer))
    for e in embs:
        e.allocate(np, np.random.default_rng(0))
    return embs


def ctx(training=True, step=1, scaler=1.0):
    return StepContext(np, training=training, step=step, scaler=scaler)


def inputs(**samples):
    pairs = {name: csr(s) for name, s in samples.items()}
    return {n: p[0] for n, p in pairs.items()}, {n: p[1].astype(np.uint32) for n, p in pairs.items()}


def table_dict(table):
    keys = table.keys_in_row_order()
    return {int(k): table.rows[i].astype(np.float64) for i, k in enumerate(keys)}


def combine(samples, vectors, combiner, ev, hotness):
    out = []
    for keys in samples:
        if combiner == "concat":
            row = np.zeros(hotness * ev)
            for p, k in enumerate(keys):
                row[p * ev:(p + 1) * ev] = vectors.get(k, np.zeros(ev))
        else:
            row = sum((vectors.get(k, np.zeros(ev)) for k in keys), np.zeros(ev))
            row = row / len(keys) if combiner == "mean" and keys else row
        out.append(row)
    return np.array(out)


def key_grads(samples, grad_2d, combiner, ev):
    grads = {}
    for b, keys in enumerate(samples):
        for p, k in enumerate(keys):
            if combiner == "concat":
                g = grad_2d[b, p * ev:(p + 1) * ev]
            else:
                g = grad_2d[b] / (len(keys) if combiner == "mean" else 1)
            grads[k] = grads.get(k, 0.0) + g.astype(np.float64)
    return grads


@pytest.mark.parametrize("combiner", ["sum", "mean", "concat"])
def test_single_lookup_forward_backward_against_dict_reference(combiner):
    t = EmbeddingTableConfig("t", 10, 4)
    ebc = EmbeddingCollectionConfig()
    ebc.embedding_lookup(t, "a", "emb", combiner)
    [emb] = expand(ebc)
    width = 12 if combiner == "concat" else 4
    assert emb.output_shape(3) == (3, 1, width)
    offsets, keys = csr(SAMPLES_A)
    out = np.full((3, 1, width), np.nan, np.float32)
    emb.forward(ctx(), offsets, keys.astype(np.uint32), out)
    table = emb.parts[0].table
    before = table_dict(table)
    np.testing.assert_allclose(out[:, 0], combine(SAMPLES_A, before, combiner, 4, 3), rtol=1e-6, atol=1e-7)
    grad = np.random.default_rng(1).normal(size=(3, 1, width)).astype(np.float32)
    emb.backward(ctx(scaler=2.0), grad * 2, lr=0.1)
    after = table_dict(table)
    expected = key_grads(SAMPLES_A, grad[:, 0], combiner, 4)
    for k in range(10):
        want = before[k] - 0.1 * expected.get(k, 0.0)
        np.testing.assert_allclose(after[k], want, rtol=1e-5, atol=1e-6)


def test_fused_lookup_is_batch_major_and_each_table_gets_its_gradient():
    t1, t2 = EmbeddingTableConfig("t1", 10, 4), EmbeddingTableConfig("t2", -1, 3)
    ebc = EmbeddingCollectionConfig()
    ebc.embedding_lookup([t1, t2], ["a", "b"], "fused", ["mean", "concat"])
    [emb] = expand(ebc)
    assert emb.output_shape(3) == (3, 4 + 2 * 3) and emb.config.extra["bottom_names"] == ["a", "b"]
    offsets, keys = inputs(a=SAMPLES_A, b=SAMPLES_B)
    out = np.empty((3, 10), np.float32)
    emb.forward(ctx(), offsets, keys, out)
    v1, v2 = table_dict(emb.parts[0].table), table_dict(emb.parts[1].table)
    assert sorted(v2) == [2, 5, 9]  # the dynamic table holds only keys seen
    want = np.concatenate([combine(SAMPLES_A, v1, "mean", 4, 3), combine(SAMPLES_B, v2, "concat", 3, 2)], axis=1)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-7)
    grad = np.random.default_rng(2).normal(size=(3, 10)).astype(np.float32)
    emb.backward(ctx(), grad, lr=0.5)
    g1, g2 = key_grads(SAMPLES_A, grad[:, :4], "mean", 4), key_grads(SAMPLES_B, grad[:, 4:], "concat", 3)
    a1, a2 = table_dict(emb.parts[0].table), table_dict(emb.parts[1].table)
    for k, g in g1.items():
        np.testing.assert_allclose(a1[k], v1[k] - 0.5 * g, rtol=1e-5, atol=1e-6)
    for k, g in g2.items():
        np.testing.assert_allclose(a2[k], v2[k] - 0.5 * g, rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="pass dicts"):
        emb.forward(ctx(), offsets["a"], keys["a"], out)


def test_shared_table_across_lookups_and_memory_reported_once():
    t = EmbeddingTableConfig("shared", 10, 4)
    ebc = EmbeddingCollectionConfig()
    ebc.embedding_lookup(t, "a", "e1", "sum")
    ebc.embedding_lookup(t, "b", "e2", "mean")
    e1, e2 = expand(ebc)
    assert e1.parts[0].table is e2.parts[0].table
    assert e1.memory_bytes()["shared rows"] == 10 * 4 * 4 and e2.memory_bytes() == {}
    e2.frozen = True
    assert e1.parts[0].table.frozen


def test_static_key_out_of_range_and_negative_keys_are_data_errors():
    ebc = EmbeddingCollectionConfig()
    ebc.embedding_lookup(EmbeddingTableConfig("small", 5, 2), "a", "e", "sum")
    [emb] = expand(ebc, i64=True)
    out = np.empty((3, 1, 2), np.float32)
    with pytest.raises(DataError, match=r"table 'small' \(lookup 'e'\): key 7 is outside \[0, 5\)"):
        emb.forward(ctx(), *csr(SAMPLES_A), out)
    offsets, keys = csr(SAMPLES_A)
    keys[0] = -1
    with pytest.raises(DataError, match="negative key -1"):
        emb.forward(ctx(training=False), offsets, keys, out)


def test_static_init_range_and_keys_buffer_longer_than_nnz():
    ebc = EmbeddingCollectionConfig()
    ebc.embedding_lookup(EmbeddingTableConfig("t", 400, 8), "a", "e", "sum")
    [emb] = expand(ebc)
    rows = emb.parts[0].table.rows
    assert np.abs(rows).max() <= math.sqrt(1 / 400) and np.abs(rows).max() > 0.04
    offsets, keys = csr(SAMPLES_A)
    padded = np.concatenate([keys, [999, 998]]).astype(np.uint32)  # past row_offsets[-1]: never read
    out = np.empty((3, 1, 8), np.float32)
    emb.forward(ctx(), offsets, padded, out)
    np.testing.assert_allclose(out[2, 0], rows[0] + rows[7], rtol=1e-6)


def test_dynamic_table_grows_past_initial_capacity_and_keeps_rows():
    ebc = EmbeddingCollectionConfig()
    ebc.embedding_lookup(EmbeddingTableConfig("dyn", -1, 4, opt_params_or_empty=CreateOptimizer(
        optimizer_type="AdaGrad", initial_accu_value=0.5)), "a", "e", "sum")
    [emb] = expand(ebc, i64=True, a=1)
    table = emb.parts[0].table
    assert table.capacity == tables.INITIAL_DYNAMIC_CAPACITY and type(table.optimizer).__name__ == "AdaGrad"
    first = np.arange(3) * 1000 + 7
    emb.forward(ctx(), np.arange(4), first, np.empty((3, 1, 4), np.float32))
    emb.backward(ctx(), np.ones((3, 1, 4), np.float32), lr=0.1)
    kept = {k: v.copy() for k, v in table_dict(table).items()}
    accum = table.states[0][table.table.find(first)].copy()
    n = 3000
    big = (np.arange(n, dtype=np.int64) * 7919 + 11) % (2**40)
    out = np.empty((n, 1, 4), np.float32)
    emb.forward(ctx(), np.arange(n + 1), big, out)
    assert table.capacity >= (n + 3) / tables.MAX_LOAD and table.used_rows() == n + 3
    now = table_dict(table)
    for k, v in kept.items():
        np.testing.assert_array_equal(now[k], v)
    np.testing.assert_array_equal(table.states[0][table.table.find(first)], accum)
    assert np.all(table.states[0][table.table.find(big)] == np.float32(0.5))
    np.testing.assert_array_equal(out[:, 0], table.rows[table.table.find(big)])
    ev_out = np.empty((2, 1, 4), np.float32)  # evaluation: unseen keys give zeros, nothing inserted
    emb.forward(ctx(training=False), np.arange(3), np.array([7, 123456789]), ev_out)
    assert np.all(ev_out[1] == 0) and table.used_rows() == n + 3


def test_dynamic_table_with_rmsprop_updates_its_rows_as_hugectr():
    """HugeCTR offers RMSProp to dynamic tables: v = beta*v + (1-beta)*g^2, w -= lr*g/(sqrt(v)+eps)."""
    ebc = EmbeddingCollectionConfig()
    ebc.embedding_lookup(EmbeddingTableConfig("dyn", -1, 4, opt_params_or_empty=CreateOptimizer(
        optimizer_type="RMSProp", beta1=0.9, epsilon=1e-7)), "a", "e", "sum")
    [emb] = expand(ebc, i64=True, a=1)
    table = emb.parts[0].table
    keys = np.array([5, 9, 5], np.int64)  # key 5 twice: its gradient sums to 2
    emb.forward(ctx(), np.arange(4), keys, np.empty((3, 1, 4), np.float32))
    before = table_dict(table)
    emb.backward(ctx(), np.ones((3, 1, 4), np.float32), lr=0.1)
    after = table_dict(table)
    for key, g in ((5, 2.0), (9, 1.0)):
        v = 0.1 * g * g
        np.testing.assert_allclose(after[key], before[key] - 0.1 * g / (np.sqrt(v) + 1e-7), rtol=1e-6)
        np.testing.assert_allclose(table.states[0][table.table.find(np.array([key]))], v, rtol=1e-6)


def test_per_table_optimizer_and_lazy_global_adam():
    lazy = CreateOptimizer(optimizer_type="Adam", update_type="LazyGlobal")
    t1, t2 = EmbeddingTableConfig("lazy", 10, 2, opt_params_or_empty=lazy), EmbeddingTableConfig("sgd", 10, 2)
    ebc = EmbeddingCollectionConfig()
    ebc.embedding_lookup([t1, t2], ["a", "b"], "e", ["sum", "sum"])
    [emb] = expand(ebc)
    lz = emb.parts[0].table
    assert type(lz.optimizer).__name__ == "Adam" and lz.stamps.shape == (10, 2)
    assert type(emb.parts[1].table.optimizer).__name__ == "SGD"
    offsets, keys = inputs(a=SAMPLES_A, b=SAMPLES_B)
    w0 = lz.rows.copy()
    for step in (1, 3):
        emb.forward(ctx(step=step), offsets, keys, np.empty((3, 4), np.float32))
        emb.backward(ctx(step=step), np.ones((3, 4), np.float32), lr=0.1)
    # key 7 (sample 2 with key 0): g = 1 at steps 1 and 3; at step 1 the weight does not move yet,
    # at step 3 it catches up 2 skipped steps: lr/(1-b1) sqrt(1-b2)/(1-b1) (1-b1^2) m/(sqrt(v)+eps)
    m, v = 0.1, 0.001
    move = 0.1 / 0.1 * math.sqrt(1 - 0.999) / 0.1 * (1 - 0.81) * m / (math.sqrt(v) + 1e-7)
    np.testing.assert_allclose(lz.rows[7], w0[7] - move, rtol=1e-5)
    assert lz.stamps[7].tolist() == [3, 3] and lz.stamps[2].tolist() == [1, 1]


def test_dump_load_round_trip_and_meta_data_layout(tmp_path):
    t1, t2 = EmbeddingTableConfig("static", 6, 4), EmbeddingTableConfig("dynamic", -1, 3)
    ebc = EmbeddingCollectionConfig()
    ebc.embedding_lookup([t1, t2], ["a", "b"], "e", ["sum", "concat"])
    [emb] = expand(ebc, i64=True)
    offsets, keys = inputs(a=[[1], [5, 0], []], b=SAMPLES_B)
    keys = {n: k.astype(np.int64) for n, k in keys.items()}
    emb.forward(ctx(), offsets, keys, np.empty((3, 10), np.float32))
    [folder] = dump_collection([emb], str(tmp_path))
    assert folder.endswith("embedding_collection_0")
    raw = np.fromfile(os.path.join(folder, "meta_data"), "<u1")
    assert raw[:20].view("<i4").tolist() == [2, 1, 0, 0, 4]
    assert raw[20:28].view("<i4").tolist() == [0, 1]
    assert raw[28:44].view("<u8").tolist() == [6, 3] and raw[44:52].view("<i4").tolist() == [4, 3]
    assert np.fromfile(os.path.join(folder, "key1"), "<i8").tolist() == [5, 2, 9]
    np.testing.assert_array_equal(np.fromfile(os.path.join(folder, "weight0"), "<f4").reshape(6, 4),
                                  emb.parts[0].table.rows)
    meta = read_meta_data(folder)
    assert meta["tables"] == {0: (6, 4), 1: (3, 3)} and meta["key_type"] == 1
    [fresh] = expand(ebc, i64=True)  # same config: new tables
    fresh.parts[0].table.rows[...] = 0
    load_collection([fresh], str(tmp_path))
    np.testing.assert_array_equal(fresh.parts[0].table.rows, emb.parts[0].table.rows)
    assert table_dict(fresh.parts[1].table).keys() == table_dict(emb.parts[1].table).keys()
    for k, v in table_dict(emb.parts[1].table).items():
        np.testing.assert_array_equal(table_dict(fresh.parts[1].table)[k], v)


def test_dump_subset_and_load_errors(tmp_path):
    t1, t2 = EmbeddingTableConfig("x", 4, 2), EmbeddingTableConfig("y", 4, 2)
    ebc = EmbeddingCollectionConfig()
    ebc.embedding_lookup([t1, t2], ["a", "b"], "e", ["sum", "sum"])
    [emb] = expand(ebc)
    [folder] = dump_collection([emb], str(tmp_path), ["y"])
    assert read_meta_data(folder)["tables"] == {1: (4, 2)} and not os.path.exists(os.path.join(folder, "key0"))
    with pytest.raises(CheckpointError, match="no table named"):
        dump_collection([emb], str(tmp_path), ["nope"])
    with pytest.raises(CheckpointError, match="has no table 'x'"):
        load_collection([emb], str(tmp_path), ["x"])
    other = EmbeddingCollectionConfig()
    other.embedding_lookup([EmbeddingTableConfig("x", 4, 2), EmbeddingTableConfig("y", 4, 5)], ["a", "b"], "e",
                           ["sum", "sum"])
    [wrong] = expand(other)
    before = wrong.parts[1].table.rows.copy()
    with pytest.raises(CheckpointError, match="ev_len 2.*ev_size 5"):
        load_collection([wrong], str(tmp_path))
    np.testing.assert_array_equal(wrong.parts[1].table.rows, before)
    np.fromfile(os.path.join(folder, "weight1"), "<f4")[:-1].tofile(os.path.join(folder, "weight1"))
    with pytest.raises(CheckpointError, match="holds 7 values, meta_data says 8"):
        load_collection([emb], str(tmp_path))


def test_shard_validation():
    t1, t2 = EmbeddingTableConfig("t1", 10, 4), EmbeddingTableConfig("t2", 10, 4)
    ebc = EmbeddingCollectionConfig(comm_strategy=CommunicationStrategy.Hierarchical)
    ebc.embedding_lookup([t1, t2], ["a", "b"], "e", ["sum", "sum"])
    ebc.shard([["t1", "t2"], ["t1"]], [("dp", ["t1"]), ("mp", ["t2"])],
              compression_strategy={CompressionStrategy.Reduction: ["t2"]})
    assert ebc.shard_strategy == {"t1": "dp", "t2": "mp"}
    with pytest.raises(ConfigError, match="shard_matrix has 2 rows but the solver has 1"):
        expand(ebc)
    cases = [(([["t1"], ["t1"]], [("mp", ["t1"])]), "tables \\['t2'\\] are on no GPU"),
             (([["t1", "t3"]], [("mp", ["t1"])]), "names table 't3'"),
             (([["t1", "t2"], ["t2"]], [("dp", ["t1"]), ("mp", ["t2"])]), "dp table 't1' must be on every GPU"),
             (([["t1", "t2"]], [("mp", ["t1"])]), "\\['t2'\\] have no strategy"),
             (([["t1", "t2"]], [("xp", ["t1", "t2"])]), "kinds are 'mp' and 'dp'"),
             (([["t1", "t2"]], [("mp", ["t1", "t2"]), ("dp", ["t1"])]), "appears twice")]
    for (matrix, strategy), message in cases:
        with pytest.raises(ConfigError, match=message):
            ebc.shard(matrix, strategy)


def test_config_validation():
    with pytest.raises(ConfigError, match="ev_size must be in \\[1, 256\\]"):
        EmbeddingTableConfig("t", 10, 300)
    with pytest.raises(ConfigError, match="max_vocabulary_size must be >= 1"):
        EmbeddingTableConfig("t", 0, 4)
    assert EmbeddingTableConfig("t", 10, 4, opt_params=CreateOptimizer(optimizer_type="SGD")).opt_params_or_empty
    ebc = EmbeddingCollectionConfig()
    with pytest.raises(ConfigError, match="combiner must be one of"):
        ebc.embedding_lookup(EmbeddingTableConfig("t", 10, 4), "a", "e", "max")
    with pytest.raises(ConfigError, match="one bottom name and one combiner per table"):
        ebc.embedding_lookup([EmbeddingTableConfig("t", 10, 4)], ["a", "b"], "e", ["sum"])
    ebc.embedding_lookup(EmbeddingTableConfig("t", 10, 4), "zzz", "e", "sum")
    with pytest.raises(GraphError, match="reads 'zzz'"):
        expand(ebc)
    multi = EmbeddingCollectionConfig()
    multi.embedding_lookup(EmbeddingTableConfig("t", 10, 4), "a", "e", "sum")
    solver = CreateSolver(batchsize=3, batchsize_eval=3)
    inp = Input(label_dim=1, label_name="label", dense_dim=0, dense_name="dense",
                data_reader_sparse_param_array=[DataReaderSparseParam("a", 1, True, 26)])
    with pytest.raises(ConfigError, match="slot_num=26"):
        EmbeddingCollection.expand(multi, inp, solver, CreateOptimizer(optimizer_type="SGD"))


def test_concat_more_keys_than_hotness_is_a_data_error():
    ebc = EmbeddingCollectionConfig()
    ebc.embedding_lookup(EmbeddingTableConfig("t", 10, 2), "a", "e", "concat")
    [emb] = expand(ebc, a=2)
    with pytest.raises(DataError, match="has 3 keys, more than the hotness 2"):
        emb.forward(ctx(), *csr(SAMPLES_A), np.empty((3, 1, 4), np.float32))


def test_reference_gather_concat_and_entry_point():
    table = np.arange(20, dtype=np.float32).reshape(10, 2)
    out = reference.gather_concat(table, np.array([3, -1, 4]), np.array([0, 2, 2, 3]), 2, np.empty((3, 4)))
    assert out.tolist() == [[6, 7, 0, 0], [0, 0, 0, 0], [8, 9, 0, 0]]
    assert registry("embeddings").load("EmbeddingCollection") is EmbeddingCollection
    source = importlib.resources.files("hugectr_embeddings_collection").joinpath("kernels.cu")
    assert source.is_file() and "void gather_concat(" in source.read_text()


# -- GPU -------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_gather_concat_twin(dtype):
    from hugectr_core.testing import assert_twins
    from hugectr_embeddings_collection import kernels

    rng = np.random.default_rng(3)
    counts = rng.integers(0, 5, 300)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    rows = rng.integers(-1, 1000, offsets[-1]).astype(np.int64)
    table = rng.normal(size=(1000, 24)).astype(dtype)
    assert_twins(reference.gather_concat, kernels.gather_concat, table, rows, offsets, 4,
                 np.empty((300, 4 * 24), dtype), rtol=0, atol=0)


@pytest.mark.gpu
def test_gpu_collection_matches_numpy(gpu_xp):
    t1, t2 = EmbeddingTableConfig("s", 10, 4), EmbeddingTableConfig("d", -1, 3)
    ebc = EmbeddingCollectionConfig()
    ebc.embedding_lookup([t1, t2], ["a", "b"], "e", ["mean", "concat"])
    [host] = expand(ebc)
    solver = CreateSolver(batchsize=3, batchsize_eval=3)
    [dev] = EmbeddingCollection.expand(ebc, make_input(a=3, b=2), solver, CreateOptimizer(optimizer_type="SGD"))
    dev.allocate(gpu_xp, np.random.default_rng(0))
    offsets, keys = inputs(a=SAMPLES_A, b=SAMPLES_B)
    host.forward(ctx(), offsets, keys, np.empty((3, 10), np.float32))
    dev.parts[1].table.rows_for_load(keys["b"].astype(np.int64))
    dev.parts[0].table.rows[...] = gpu_xp.asarray(host.parts[0].table.rows)
    for k, v in table_dict(host.parts[1].table).items():
        dev.parts[1].table.rows[dev.parts[1].table.table.find(gpu_xp.asarray([k]))] = gpu_xp.asarray(v, np.float32)
    grad = np.random.default_rng(2).normal(size=(3, 10)).astype(np.float32)
    out = gpu_xp.empty((3, 10), gpu_xp.float32)
    dev.forward(StepContext(gpu_xp, training=True, step=1), offsets,
                {n: gpu_xp.asarray(k) for n, k in keys.items()}, out)
    want = np.empty((3, 10), np.float32)
    host.forward(ctx(), offsets, keys, want)
    np.testing.assert_allclose(out.get(), want, rtol=1e-6, atol=1e-7)
    dev.backward(StepContext(gpu_xp, training=True, step=1), gpu_xp.asarray(grad), lr=0.1)
    host.backward(ctx(), grad, lr=0.1)
    np.testing.assert_allclose(dev.parts[0].table.rows.get(), host.parts[0].table.rows, rtol=1e-5, atol=1e-6)
