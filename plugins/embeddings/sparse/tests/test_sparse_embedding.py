"""Distributed/LocalizedSlotSparseEmbeddingHash on NumPy against dict-based references."""
import importlib.resources
import math

import numpy as np
import pytest

from hugectr_core.contracts import EmbeddingConfig, StepContext
from hugectr_core.errors import CheckpointError, ConfigError, DataError
from hugectr_core.params import CreateOptimizer
from hugectr_core.plugins import registry
from hugectr_embeddings_sparse import reference
from hugectr_embeddings_sparse.hash_table import HostHashTable

def make_embedding(type_name="DistributedSlotSparseEmbeddingHash", optimizer="SGD", update_type="Local",
                   combiner="sum", vec=4, slot_num=3, workspace=1, key_dtype="uint32", xp=np, seed=0,
                   allocate=True, slot_size_array=(), **opt_kw):
    opt = registry("optimizers").load(optimizer)(
        CreateOptimizer(optimizer_type=optimizer, update_type=update_type, **opt_kw))
    config = EmbeddingConfig(type_name=type_name, name="sparse_embedding1", bottom_name="data",
                             embedding_vec_size=vec, combiner=combiner, workspace_size_per_gpu_in_mb=workspace,
                             slot_num=slot_num, max_nnz_per_slot=(4,) * slot_num, key_dtype=key_dtype,
                             slot_size_array=tuple(slot_size_array))
    emb = registry("embeddings").load(type_name)(config, opt)
    if allocate:
        emb.allocate(xp, np.random.default_rng(seed))
    return emb


def ctx(xp=np, training=True, step=1, scaler=1.0):
    return StepContext(xp, training=training, step=step, scaler=scaler)


def csr(samples):
    """CSR (row_offsets, keys) of ``samples[b][s] = [keys...]`` (sample-major)."""
    offsets, keys = [0], []
    for sample in samples:
        for slot in sample:
            keys.extend(slot)
            offsets.append(len(keys))
    return np.array(offsets, np.int64), np.array(keys, np.int64)


@pytest.fixture
def batch():
    """3 samples x 3 slots, multi-hot, with empty slots and keys repeated within and across samples."""
    return [[[1, 2], [10], []],
            [[1], [], [20, 21, 20]],
            [[3, 1, 1], [11, 10], [22]]]


TYPES = ["DistributedSlotSparseEmbeddingHash", "LocalizedSlotSparseEmbeddingHash"]


def vectors_by_key(emb):
    d = emb.dump()
    return {int(k): v.astype(np.float64) for k, v in zip(d["key"], d["emb_vector"])}


def expected_forward(samples, table, combiner, vec):
    out = np.zeros((len(samples), len(samples[0]), vec))
    for b, sample in enumerate(samples):
        for s, keys in enumerate(sample):
            total = sum((table.get(k, np.zeros(vec)) for k in keys), np.zeros(vec))
            out[b, s] = total / len(keys) if (combiner == "mean" and keys) else total
    return out


def expected_key_grads(samples, top_grad, combiner):
    grads = {}
    for b, sample in enumerate(samples):
        for s, keys in enumerate(sample):
            for k in keys:
                scale = 1.0 / len(keys) if combiner == "mean" else 1.0
                grads[k] = grads.get(k, 0.0) + top_grad[b, s].astype(np.float64) * scale
    return grads


def forward(emb, samples, training=True, step=1):
    offsets, keys = csr(samples)
    out = np.full((len(samples), emb.config.slot_num, emb.config.embedding_vec_size), np.nan, np.float32)
    emb.forward(ctx(training=training, step=step), offsets, keys.astype(np.uint32), out)
    return out


@pytest.mark.parametrize("type_name", TYPES)
@pytest.mark.parametrize("combiner", ["sum", "mean"])
def test_forward_matches_dict_reference(type_name, combiner, batch):
    emb = make_embedding(type_name, combiner=combiner)
    out = forward(emb, batch)
    table = vectors_by_key(emb)
    assert sorted(table) == [1, 2, 3, 10, 11, 20, 21, 22]
    np.testing.assert_allclose(out, expected_forward(batch, table, combiner, 4), rtol=1e-6, atol=1e-7)
    assert np.all(out[0, 2] == 0) and np.all(out[1, 1] == 0)  # empty slots give zeros


def test_new_keys_take_rows_in_first_sight_order_and_init_range(batch):
    emb = make_embedding()
    forward(emb, batch)
    d = emb.dump()
    assert d["key"].tolist() == [1, 2, 10, 20, 21, 3, 11, 22]
    assert d["key"].dtype == np.int64 and d["emb_vector"].dtype == np.float32 and d["slot_id"] is None
    # a row's initial value comes from (seed, key): independent of insertion order, device and backend
    from hugectr_embeddings_sparse.embedding import key_uniform

    np.testing.assert_array_equal(d["emb_vector"], key_uniform(np, d["key"], 4, emb.key_init, 0.05))
    sample = key_uniform(np, np.arange(50000), 4, emb.key_init, 0.05)
    assert np.abs(sample).max() <= 0.05 and abs(float(sample.std()) - 0.1 / math.sqrt(12)) < 1e-3
    assert abs(float(sample.mean())) < 1e-3


def test_eval_gives_zeros_for_unseen_keys_and_inserts_nothing(batch):
    emb = make_embedding(combiner="mean")
    forward(emb, batch)
    table = vectors_by_key(emb)
    samples = [[[1, 999], [], [888]], [[2], [10], [22, 777]]]
    out = forward(emb, samples, training=False)
    np.testing.assert_allclose(out, expected_forward(samples, table, "mean", 4), rtol=1e-6, atol=1e-7)
    assert np.all(out[0, 2] == 0)
    np.testing.assert_allclose(out[0, 0], table[1] / 2, rtol=1e-6)  # unseen key counts in the mean
    assert emb.table.size == 8


@pytest.mark.parametrize("combiner", ["sum", "mean"])
@pytest.mark.parametrize("scaler", [1.0, 8.0])
def test_backward_sgd_aggregates_duplicate_keys(combiner, scaler, batch):
    emb = make_embedding(combiner=combiner)
    forward(emb, batch)
    before = vectors_by_key(emb)
    top_grad = np.random.default_rng(1).normal(size=(3, 3, 4)).astype(np.float32) * scaler
    emb.backward(ctx(scaler=scaler), top_grad, lr=0.1)
    after = vectors_by_key(emb)
    for k, g in expected_key_grads(batch, top_grad, combiner).items():
        np.testing.assert_allclose(after[k], before[k] - 0.1 * g / scaler, rtol=1e-5, atol=1e-6)
    # key 1 occurs 4 times (2x in one slot): its gradient is the sum of all 4 occurrences
    assert not np.allclose(after[1], before[1])


def _adam_run(update_type, optimizer="Adam", **kw):
    emb = make_embedding(optimizer=optimizer, update_type=update_type, **kw)
    forward(emb, [[[1], [2], [3]]], step=1)
    emb.backward(ctx(step=1), np.ones((1, 3, 4), np.float32), lr=0.01)
    snapshot = vectors_by_key(emb)
    forward(emb, [[[1], [1], [1]]], step=2)  # keys 2 and 3 untouched at step 2
    emb.backward(ctx(step=2), np.ones((1, 3, 4), np.float32), lr=0.01)
    return snapshot, vectors_by_key(emb), emb


@pytest.mark.parametrize("optimizer,kw", [("Adam", {}), ("MomentumSGD", {"momentum_factor": 0.9}),
                                          ("Nesterov", {"momentum_factor": 0.9})])
def test_global_moves_untouched_rows_and_local_does_not(optimizer, kw):
    before_g, after_g, emb = _adam_run("Global", optimizer, **kw)
    assert not np.allclose(after_g[2], before_g[2]) and not np.allclose(after_g[3], before_g[3])
    before_l, after_l, _ = _adam_run("Local", optimizer, **kw)
    np.testing.assert_array_equal(after_l[2], before_l[2])
    np.testing.assert_array_equal(after_l[3], before_l[3])
    np.testing.assert_allclose(after_g[1], after_l[1], rtol=1e-6)  # touched rows agree
    assert np.all(emb.states[0][emb.table.size:] == 0)  # rows never inserted keep zero state


def test_adam_global_untouched_row_follows_formula():
    before, after, emb = _adam_run("Global")
    # key 2 had g = 1 at step 1 -> m = 0.1, v = 0.001; at step 2 g = 0: m = 0.09, v = 0.000999
    m, v, t = 0.9 * 0.1, 0.999 * 0.001, 2
    lr_t = 0.01 * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
    np.testing.assert_allclose(after[2], before[2] - lr_t * m / (math.sqrt(v) + 1e-7), rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["SGD", "AdaGrad"])
def test_global_equals_local_for_sgd_and_adagrad(optimizer):
    _, after_g, _ = _adam_run("Global", optimizer)
    _, after_l, _ = _adam_run("Local", optimizer)
    for k in after_g:
        np.testing.assert_array_equal(after_g[k], after_l[k])


def test_adagrad_states_start_at_initial_accu_value():
    emb = make_embedding(optimizer="AdaGrad", initial_accu_value=0.1)
    assert np.all(emb.states[0] == np.float32(0.1))


def test_frozen_embedding_does_not_change(batch):
    emb = make_embedding()
    forward(emb, batch)
    before = emb.rows.copy()
    emb.frozen = True
    emb.backward(ctx(), np.ones((3, 3, 4), np.float32), lr=1.0)
    np.testing.assert_array_equal(emb.rows, before)


def test_capacity_formula_and_memory():
    emb = make_embedding(optimizer="Adam", vec=16, workspace=1)
    assert emb.capacity == 2**20 // (3 * 4 * 16)
    sizes = emb.memory_bytes()
    assert sizes["rows"] == emb.capacity * 16 * 4 and sizes["optimizer_states"] == 2 * sizes["rows"]
    assert make_embedding(vec=16, workspace=1, allocate=False).capacity == 2**20 // (4 * 16)


def test_workspace_zero_is_a_config_error():
    with pytest.raises(ConfigError, match="workspace_size_per_gpu_in_mb"):
        make_embedding(workspace=0)


def test_lazy_global_is_adam_only():
    params = CreateOptimizer(optimizer_type="Adam", update_type="LazyGlobal")
    sgd = registry("optimizers").load("SGD")(params)  # CreateOptimizer refuses it; the embedding checks too
    config = EmbeddingConfig("DistributedSlotSparseEmbeddingHash", "e", "data", 4, "sum", 1, 1, (1,))
    with pytest.raises(ConfigError, match="LazyGlobal is implemented for Adam only"):
        registry("embeddings").load("DistributedSlotSparseEmbeddingHash")(config, sgd)


def test_full_table_names_embedding_capacity_and_fix():
    emb = make_embedding(vec=1024, workspace=0.01)  # 2 keys
    assert emb.capacity == 2
    forward(emb, [[[1], [2], [1]]])
    with pytest.raises(ConfigError, match=r"sparse_embedding1.*holds 2 keys.*raise workspace_size_per_gpu_in_mb"):
        forward(emb, [[[1], [3], [4]]])


def test_negative_int64_keys_are_a_data_error():
    emb = make_embedding(key_dtype="int64")
    offsets = np.array([0, 1, 2, 3])
    with pytest.raises(DataError, match="negative keys"):
        emb.forward(ctx(), offsets, np.array([1, -5, 2], np.int64), np.empty((1, 3, 4), np.float32))


def test_int64_keys_beyond_uint32(batch):
    emb = make_embedding(key_dtype="int64")
    big = [[[2**40, 1], [2**40 + 1], [2**62]]]
    offsets, keys = csr(big)
    out = np.empty((1, 3, 4), np.float32)
    emb.forward(ctx(), offsets, keys, out)
    assert emb.dump()["key"].tolist() == [2**40, 1, 2**40 + 1, 2**62]


def test_row_offsets_length_is_checked():
    emb = make_embedding()
    with pytest.raises(DataError, match="row_offsets"):
        emb.forward(ctx(), np.array([0, 1]), np.array([1], np.uint32), np.empty((1, 3, 4), np.float32))


@pytest.mark.parametrize("type_name", TYPES)
def test_dump_load_round_trip(type_name, batch):
    emb = make_embedding(type_name, optimizer="Adam")
    forward(emb, batch)
    emb.backward(ctx(), np.ones((3, 3, 4), np.float32), lr=0.1)
    dumped = emb.dump()
    fresh = make_embedding(type_name, optimizer="Adam", seed=7)
    fresh.load(dumped["key"], dumped["emb_vector"], dumped["slot_id"])
    again = fresh.dump()
    np.testing.assert_array_equal(again["key"], dumped["key"])
    np.testing.assert_array_equal(again["emb_vector"], dumped["emb_vector"])
    if type_name.startswith("Localized"):
        np.testing.assert_array_equal(again["slot_id"], dumped["slot_id"])
    out_a, out_b = forward(emb, batch, training=False), forward(fresh, batch, training=False)
    np.testing.assert_array_equal(out_a, out_b)


def test_load_rejects_mismatched_checkpoints():
    emb = make_embedding()
    with pytest.raises(CheckpointError, match="embedding_vec_size"):
        emb.load(np.arange(3), np.zeros((3, 8), np.float32))
    with pytest.raises(CheckpointError, match="3 keys but 2 vectors"):
        emb.load(np.arange(3), np.zeros((2, 4), np.float32))
    with pytest.raises(CheckpointError, match="uint32"):
        emb.load(np.array([2**33]), np.zeros((1, 4), np.float32))


def test_localized_records_slot_ids_and_needs_them_to_load(batch):
    emb = make_embedding("LocalizedSlotSparseEmbeddingHash")
    forward(emb, batch)
    d = emb.dump()
    slot_of = {1: 0, 2: 0, 3: 0, 10: 1, 11: 1, 20: 2, 21: 2, 22: 2}
    assert d["slot_id"].dtype == np.uint64
    assert [int(s) for s in d["slot_id"]] == [slot_of[int(k)] for k in d["key"]]
    with pytest.raises(CheckpointError, match="slot_id"):
        make_embedding("LocalizedSlotSparseEmbeddingHash").load(d["key"], d["emb_vector"])


def test_localized_slot_size_array_sizes_and_initialises_per_slot():
    emb = make_embedding("LocalizedSlotSparseEmbeddingHash", workspace=0, vec=8, slot_size_array=(4, 100, 10000))
    assert emb.capacity == 10104
    # 50 samples, each one key per slot: slot s keys come from [off_s, off_s + size_s)
    rng = np.random.default_rng(0)
    keys = np.stack([rng.integers(0, 4, 50), 4 + rng.integers(0, 100, 50), 104 + rng.integers(0, 10000, 50)], 1)
    out = np.empty((50, 3, 8), np.float32)
    emb.forward(StepContext(np, training=True), np.arange(151), keys.reshape(-1).astype(np.uint32), out)
    for slot, bound, floor in ((0, math.sqrt(1 / 4), 0.1), (1, 0.1, 0.05), (2, 0.01, 0.005)):
        values = np.abs(out[:, slot])
        assert values.max() <= bound and values.max() > floor
    # the values depend on (seed, key) only: another embedding with the same seed agrees
    other = make_embedding("LocalizedSlotSparseEmbeddingHash", workspace=0, vec=8, slot_size_array=(4, 100, 10000))
    again = np.empty_like(out)
    other.forward(StepContext(np, training=True), np.arange(151), keys.reshape(-1).astype(np.uint32), again)
    np.testing.assert_array_equal(out, again)
    with pytest.raises(ConfigError, match="slot_size_array"):
        make_embedding("LocalizedSlotSparseEmbeddingHash", workspace=0, slot_size_array=(4, 5))


def test_host_hash_table_first_sight_rows_and_find():
    t = HostHashTable(10, on_full=RuntimeError)
    assert t.insert_or_find(np.array([50, 7, 50, 3, 7])).tolist() == [0, 1, 0, 2, 1]
    assert t.insert_or_find(np.array([3, 8, 50, 9])).tolist() == [2, 3, 0, 4]
    assert t.find(np.array([9, 4, 50])).tolist() == [4, -1, 0]
    assert t.keys_in_row_order().tolist() == [50, 7, 3, 8, 9]


def test_reference_hash_twins_with_collisions():
    # 16 slots for 8 keys: many collisions and wrap-around probing
    slot_keys = np.full(16, reference.EMPTY_KEY, np.uint64)
    slot_rows, row_keys, counter = np.full(16, -1, np.int64), np.full(8, -1, np.int64), np.zeros(1, np.uint64)
    keys = np.array([5, 21, 37, 5, 2**40, 53, 21, 69, 85, 101], np.int64)
    rows = reference.hash_insert_or_find(slot_keys, slot_rows, row_keys, counter, keys, 8)[0]
    assert rows.tolist() == [0, 1, 2, 0, 3, 4, 1, 5, 6, 7]
    assert row_keys[rows].tolist() == keys.tolist() and int(counter[0]) == 8
    assert reference.hash_find(slot_keys, slot_rows, np.array([69, 6, 2**40])).tolist() == [5, -1, 3]
    rows = reference.hash_insert_or_find(slot_keys, slot_rows, row_keys, counter, np.array([7]), 8)[0]
    assert rows.tolist() == [-2] and int(counter[0]) == 9  # past capacity: the host reports a full table


def test_numpy_path_uses_reference_gather_and_reduction(batch):
    offsets, keys = csr(batch)
    table = np.random.default_rng(2).normal(size=(30, 4)).astype(np.float32)
    out = reference.gather_combine(table, keys, offsets, True, np.empty((9, 4), np.float32))
    want = expected_forward(batch, {k: table[k].astype(np.float64) for k in range(30)}, "mean", 4)
    np.testing.assert_allclose(out.reshape(3, 3, 4), want, rtol=1e-6)
    grad_sv = np.random.default_rng(3).normal(size=(9, 4)).astype(np.float32)
    seg = np.repeat(np.arange(9), np.diff(offsets))
    order = np.argsort(keys, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(keys[order]) != 0])
    got = reference.segmented_reduce(grad_sv, seg[order], np.ones(keys.size, np.float32), np.r_[starts, keys.size])
    want = expected_key_grads(batch, grad_sv.reshape(3, 3, 4), "sum")
    np.testing.assert_allclose(got, np.stack([want[k] for k in np.unique(keys)]), rtol=1e-6)


def test_entry_points_and_kernels_cu_package_data():
    assert {"DistributedSlotSparseEmbeddingHash", "LocalizedSlotSparseEmbeddingHash"} <= set(
        registry("embeddings").names())
    source = importlib.resources.files("hugectr_embeddings_sparse").joinpath("kernels.cu")
    assert source.is_file()
    for name in ("hash_insert_or_find", "hash_find", "gather_combine", "segmented_reduce_chunks",
                 "segmented_reduce_merge"):
        assert f"void {name}(" in source.read_text()


# -- Update_t.LazyGlobal (formats.md 3.5) ---------------------------------------------------------

B1, B2, EPS = 0.9, 0.999, 1e-7


def lazy_adam_by_hand(w, m, v, prev, g, t, lr, b1=B1, b2=B2, eps=EPS):
    """formats.md 3.5 written out for one element in float64: catch up k = t - prev steps, then m, v."""
    k = t - prev
    w = w - lr / (1 - b1) * math.sqrt(1 - b2 ** prev) / (1 - b1 ** prev) * (1 - b1 ** k) * m / (math.sqrt(v) + eps)
    return w, b1 ** k * m + (1 - b1) * g, b2 ** k * v + (1 - b2) * g * g, t


def test_lazy_reference_three_touches_with_skipped_steps_float64():
    rng = np.random.default_rng(11)
    table, g_all = rng.normal(size=(5, 3)), rng.normal(size=(3, 2, 3))
    m, v, stamps = np.zeros((5, 3)), np.zeros((5, 3)), np.ones((5, 3), np.int64)
    want = {r: [(table[r, c], 0.0, 0.0, 1) for c in range(3)] for r in range(5)}
    touches = [(1, [0, 3]), (4, [3, 1]), (7, [0, 3])]  # row 3 skips steps 2-3 and 5-6, row 0 steps 2-6
    for (t, rows), g in zip(touches, g_all):
        reference.adam_lazy_update_rows(table, m, v, stamps, np.array(rows), g * 4.0, 0.01, t, B1, B2, EPS, 0.25)
        for r, g_row in zip(rows, g):
            want[r] = [lazy_adam_by_hand(*want[r][c][:3], want[r][c][3], g_row[c], t, 0.01) for c in range(3)]
    for r in range(5):
        np.testing.assert_allclose(table[r], [e[0] for e in want[r]], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(m[r], [e[1] for e in want[r]], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(v[r], [e[2] for e in want[r]], rtol=1e-12, atol=1e-15)
        assert stamps[r].tolist() == [want[r][0][3]] * 3
    assert stamps[2].tolist() == [1, 1, 1] and not np.allclose(table[0], want[2][0][0])


def test_lazy_touched_every_step_is_global_adam_one_step_late():
    table, m, v, stamps = np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), np.ones((1, 1), np.int64)
    grads, lr = [0.5, -1.0, 2.0], 0.1
    am = av = w = 0.0
    for t, g in enumerate(grads, start=1):
        reference.adam_lazy_update_rows(table, m, v, stamps, np.array([0]), np.array([[g]]), lr, t, B1, B2, EPS, 1.0)
        if t > 1:  # the movement of step t-1, with Adam's alpha_{t-1}
            w -= lr * math.sqrt(1 - B2 ** (t - 1)) / (1 - B1 ** (t - 1)) * am / (math.sqrt(av) + EPS)
        am, av = B1 * am + (1 - B1) * g, B2 * av + (1 - B2) * g * g
        assert table[0, 0] == pytest.approx(w, rel=1e-12, abs=1e-15)
    assert m[0, 0] == pytest.approx(am) and v[0, 0] == pytest.approx(av)


def test_lazy_global_embedding_three_steps_against_formula(batch):
    emb = make_embedding(optimizer="Adam", update_type="LazyGlobal", combiner="mean")
    assert emb.n_states() == 3 and emb.capacity == 2**20 // (4 * 4 * 4)
    assert emb.stamps.shape == (emb.capacity, 4) and np.all(emb.stamps == 1)
    rng = np.random.default_rng(5)
    steps = [(1, batch), (2, [[[1], [10], [20]]]), (4, batch)]  # keys 2, 3, 11, 21, 22 skip steps 2 and 3
    state = {}
    for t, samples in steps:
        forward(emb, samples, step=t)
        if not state:
            state = {k: [(w, 0.0, 0.0, 1) for w in vec] for k, vec in vectors_by_key(emb).items()}
        top_grad = rng.normal(size=(len(samples), 3, 4)).astype(np.float32)
        emb.backward(ctx(step=t, scaler=2.0), top_grad * 2.0, lr=0.05)
        for k, g in expected_key_grads(samples, top_grad, "mean").items():
            state[k] = [lazy_adam_by_hand(*state[k][c][:3], state[k][c][3], g[c], t, 0.05) for c in range(4)]
        got = vectors_by_key(emb)
        for k, elems in state.items():
            np.testing.assert_allclose(got[k], [e[0] for e in elems], rtol=1e-5, atol=1e-7)
    rows = emb.table.find(np.array([2, 1]))
    assert emb.stamps[rows[0]].tolist() == [4] * 4 and emb.stamps[rows[1]].tolist() == [4] * 4


def test_lazy_global_optimizer_states_round_trip(batch):
    emb = make_embedding(optimizer="Adam", update_type="LazyGlobal")
    for t, sample in ((1, batch[0]), (3, batch[1])):  # keys 2 and 10 only at step 1
        forward(emb, [sample], step=t)
        emb.backward(ctx(step=t), np.ones((1, 3, 4), np.float32), lr=0.1)
    d, states = emb.dump(), emb.dump_optimizer_states()
    assert len(states) == 3 and sorted(set(states[2].ravel().tolist())) == [1.0, 3.0]
    fresh = make_embedding(optimizer="Adam", update_type="LazyGlobal", seed=3)
    fresh.load(d["key"], d["emb_vector"])
    fresh.load_optimizer_states(d["key"], states)
    for a, b in zip(fresh.dump_optimizer_states(), states):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(CheckpointError, match="2 optimizer states in the file.*has 3"):
        fresh.load_optimizer_states(d["key"], states[:2])


def test_rowwise_adagrad_embedding_keeps_one_accumulator_per_row(batch):
    emb = make_embedding(optimizer="RowWiseAdaGrad", initial_accu_value=0.1, vec=4)
    assert emb.states[0].shape == (emb.capacity, 1) and np.all(emb.states[0] == np.float32(0.1))
    assert emb.capacity == 2**20 // (4 * (4 + 1))  # 4 bytes per vector element plus one per row
    forward(emb, batch)
    before = vectors_by_key(emb)
    top_grad = np.random.default_rng(2).normal(size=(3, 3, 4)).astype(np.float32)
    emb.backward(ctx(), top_grad, lr=0.1)
    after, rows = vectors_by_key(emb), emb.table.find(np.array([1]))
    for k, g in expected_key_grads(batch, top_grad, "sum").items():
        acc = 0.1 + float(np.mean(g * g))
        np.testing.assert_allclose(after[k], before[k] - 0.1 * g / (math.sqrt(acc) + 1e-7), rtol=1e-5, atol=1e-7)
    acc_1 = 0.1 + float(np.mean(expected_key_grads(batch, top_grad, "sum")[1] ** 2))
    assert emb.states[0][rows[0], 0] == pytest.approx(acc_1, rel=1e-5)
    states = emb.dump_optimizer_states()  # files keep [n, vec]: the row's accumulator repeated
    assert states[0].shape == (8, 4) and np.all(states[0] == states[0][:, :1])
    fresh = make_embedding(optimizer="RowWiseAdaGrad", seed=1)
    d = emb.dump()
    fresh.load(d["key"], d["emb_vector"])
    fresh.load_optimizer_states(d["key"], states)
    np.testing.assert_array_equal(fresh.states[0][:8], emb.states[0][:8])


# -- key checks -----------------------------------------------------------------------------------

def test_key_above_slot_size_is_a_data_error_naming_embedding_and_slot():
    emb = make_embedding("LocalizedSlotSparseEmbeddingHash", workspace=0, slot_size_array=(4, 100, 10))
    forward(emb, [[[3], [103], [113]]])  # bound without known offsets: [0, cumulative end of the slot)
    with pytest.raises(DataError, match=r"sparse_embedding1.*key 104 in slot 1 of sample 1.*\[0, 104\).*"
                                        r"slot_size_array\[1\]=100"):
        forward(emb, [[[1], [2], [5]], [[0], [104], [105]]])
    assert emb.table.size == 3  # nothing inserted by the refused batch


def test_slot_key_offsets_from_the_reader_give_exact_ranges():
    opt = registry("optimizers").load("SGD")(CreateOptimizer(optimizer_type="SGD"))
    config = EmbeddingConfig("DistributedSlotSparseEmbeddingHash", "emb", "data", 4, "sum", 1, 2, (2, 2),
                             slot_size_array=(4, 100), extra={"slot_key_offsets": (0, 4)})
    emb = registry("embeddings").load("DistributedSlotSparseEmbeddingHash")(config, opt)
    emb.allocate(np, np.random.default_rng(0))
    out = np.empty((1, 2, 4), np.float32)
    emb.forward(ctx(), np.array([0, 1, 2]), np.array([3, 4], np.uint32), out)
    with pytest.raises(DataError, match=r"key 3 in slot 1 .*\[4, 104\)"):
        emb.forward(ctx(), np.array([0, 1, 2]), np.array([0, 3], np.uint32), out)
    with pytest.raises(DataError, match=r"key 4 in slot 0 .*\[0, 4\)"):
        emb.forward(ctx(), np.array([0, 1, 2]), np.array([4, 5], np.uint32), out)


def test_keys_buffer_longer_than_row_offsets_reads_only_nnz(batch):
    emb, ref = make_embedding(), make_embedding()
    offsets, keys = csr(batch)
    padded = np.concatenate([keys, [777, 888, 999]]).astype(np.uint32)
    out, want = np.empty((3, 3, 4), np.float32), np.empty((3, 3, 4), np.float32)
    emb.forward(ctx(), offsets, padded, out)
    ref.forward(ctx(), offsets, keys.astype(np.uint32), want)
    np.testing.assert_array_equal(out, want)
    assert 777 not in emb.dump()["key"].tolist() and emb.table.size == 8
    with pytest.raises(DataError, match="row_offsets end at 13 but input 'data' has only 12 keys"):
        emb.forward(ctx(), offsets, keys[:12].astype(np.uint32), out)


# -- GPU twins and the CuPy backend --------------------------------------------------------------

def _device_table(cupy, n_slots, capacity):
    return (cupy.full(n_slots, reference.EMPTY_KEY, cupy.uint64), cupy.full(n_slots, -1, cupy.int64),
            cupy.full(capacity, -1, cupy.int64), cupy.zeros(1, cupy.uint64))


@pytest.mark.gpu
@pytest.mark.parametrize("key_dtype", [np.uint32, np.int64])
@pytest.mark.parametrize("n_slots,capacity,n_unique", [(64, 32, 31), (1 << 14, 1 << 13, 8000), (1 << 12, 2048, 2048)])
def test_gpu_hash_insert_find_with_collisions_and_nearly_full(gpu_xp, key_dtype, n_slots, capacity, n_unique):
    from hugectr_embeddings_sparse import kernels

    rng = np.random.default_rng(4)
    uniq = rng.choice(2**31 if key_dtype == np.uint32 else 2**50, n_unique, replace=False).astype(key_dtype)
    keys = uniq[rng.integers(0, n_unique, 5 * n_unique)]
    keys[:n_unique] = uniq  # every key at least once, many repeated within one launch
    keys = rng.permutation(keys)
    table = _device_table(gpu_xp, n_slots, capacity)
    rows = kernels.hash_insert_or_find(*table, gpu_xp.asarray(keys), capacity)[0].get()
    ref_table = [a.get() for a in _device_table(gpu_xp, n_slots, capacity)]
    ref_rows = reference.hash_insert_or_find(*ref_table, keys, capacity)[0]
    row_keys = table[2].get()
    assert int(table[3].get()[0]) == int(ref_table[3][0]) == n_unique
    assert sorted(set(rows.tolist())) == list(range(n_unique)) == sorted(set(ref_rows.tolist()))
    np.testing.assert_array_equal(row_keys[rows], keys.astype(np.int64))  # one consistent key -> row map
    np.testing.assert_array_equal(ref_table[2][ref_rows], keys.astype(np.int64))
    found = kernels.hash_find(table[0], table[1], gpu_xp.asarray(keys)).get()
    np.testing.assert_array_equal(found, rows)
    absent = np.setdiff1d(np.arange(1000, 1500, dtype=key_dtype), uniq)
    assert np.all(kernels.hash_find(table[0], table[1], gpu_xp.asarray(absent)).get() == -1)


@pytest.mark.gpu
@pytest.mark.parametrize("mean", [False, True])
@pytest.mark.parametrize("vec,dtype", [(32, np.float32), (7, np.float32), (32, np.float64)],
                         ids=["float4", "scalar", "double"])
def test_gpu_gather_combine_twin(gpu_xp, mean, vec, dtype):
    from hugectr_core.testing import assert_twins
    from hugectr_embeddings_sparse import kernels

    rng = np.random.default_rng(5)
    counts = rng.integers(0, 5, 600)  # empty segments included
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    rows = rng.integers(-1, 1000, offsets[-1]).astype(np.int64)  # -1: unseen key at evaluation
    table = rng.normal(size=(1000, vec)).astype(dtype)
    assert_twins(reference.gather_combine, kernels.gather_combine, table, rows, offsets, mean,
                 np.zeros((600, vec), dtype), rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("mean", [False, True])
@pytest.mark.parametrize("vec", [32, 6], ids=["float4", "scalar"])
def test_gpu_gather_combine_float16_output_twin(gpu_xp, mean, vec):
    """Mixed precision: float32 table, float16 lookup (summed in float32, rounded once)."""
    from hugectr_embeddings_sparse import kernels

    rng = np.random.default_rng(15)
    counts = rng.integers(0, 5, 600)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    rows = rng.integers(-1, 1000, offsets[-1]).astype(np.int64)
    table = rng.normal(size=(1000, vec)).astype(np.float32)
    want = reference.gather_combine(table, rows, offsets, mean, np.zeros((600, vec), np.float16))
    got = kernels.gather_combine(gpu_xp.asarray(table), gpu_xp.asarray(rows), gpu_xp.asarray(offsets), mean,
                                 gpu_xp.zeros((600, vec), np.float16))
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.get().astype(np.float32), want.astype(np.float32), rtol=1e-3, atol=1e-3)


def skewed_reduction_case(seed, vec, grad_dtype):
    rng = np.random.default_rng(seed)
    rows = rng.zipf(1.2, 20000) % 3000  # skewed: a few very hot rows
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    first = np.flatnonzero(np.r_[True, np.diff(sorted_rows) != 0])
    starts = np.r_[first, rows.size].astype(np.int64)
    seg_j = rng.integers(0, 5000, rows.size).astype(np.int64)
    scale_j = rng.uniform(0.2, 1, rows.size).astype(np.float32)
    grad_sv = rng.normal(size=(5000, vec)).astype(grad_dtype)
    return sorted_rows[first].astype(np.int64), starts, seg_j, scale_j, grad_sv


@pytest.mark.gpu
@pytest.mark.parametrize("vec", [16, 6], ids=["float4", "scalar"])
def test_gpu_reductions_read_float16_gradients(gpu_xp, vec):
    """Mixed precision: the top gradient stays float16; sums and the table update are float32."""
    from hugectr_core.testing import assert_twins
    from hugectr_embeddings_sparse import kernels

    unique_rows, starts, seg_j, scale_j, grad_sv = skewed_reduction_case(9, vec, np.float16)
    on_device = [gpu_xp.asarray(a) for a in (grad_sv, seg_j, scale_j, starts)]
    assert kernels.segmented_reduce(*on_device).dtype == np.float32
    assert_twins(reference.segmented_reduce, kernels.segmented_reduce, grad_sv, seg_j, scale_j, starts,
                 rtol=1e-4, atol=1e-4)
    table = np.random.default_rng(10).normal(size=(3000, vec)).astype(np.float32)
    assert_twins(reference.reduce_and_sgd, kernels.reduce_and_sgd, grad_sv, seg_j, scale_j, starts, unique_rows,
                 table, 0.01, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("vec", [16, 7], ids=["float4", "scalar"])
def test_gpu_segmented_reduce_twin(gpu_xp, vec):
    from hugectr_core.testing import assert_twins
    from hugectr_embeddings_sparse import kernels

    _, starts, seg_j, scale_j, grad_sv = skewed_reduction_case(6, vec, np.float32)
    assert_twins(reference.segmented_reduce, kernels.segmented_reduce, grad_sv, seg_j, scale_j, starts,
                 rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("type_name", TYPES)
@pytest.mark.parametrize("optimizer,update", [("Adam", "Global"), ("Adam", "Local"), ("SGD", "Global"),
                                              ("AdaGrad", "Local"), ("MomentumSGD", "Global")])
def test_gpu_embedding_matches_numpy_by_key(gpu_xp, type_name, optimizer, update, batch):
    host = make_embedding(type_name, optimizer=optimizer, update_type=update, combiner="mean")
    dev = make_embedding(type_name, optimizer=optimizer, update_type=update, combiner="mean", xp=gpu_xp)
    forward(host, batch)  # insert the batch's keys on the host, then give the device the same vectors
    d = host.dump()
    dev.load(d["key"], d["emb_vector"], d["slot_id"])
    top_grad = np.random.default_rng(7).normal(size=(3, 3, 4)).astype(np.float32)
    for step in (1, 2):
        offsets, keys = csr(batch)
        out = gpu_xp.empty((3, 3, 4), gpu_xp.float32)
        dev.forward(ctx(gpu_xp, step=step), gpu_xp.asarray(offsets), gpu_xp.asarray(keys.astype(np.uint32)), out)
        out_host = forward(host, batch, step=step) if step > 1 else expected_forward(batch, vectors_by_key(host),
                                                                                     "mean", 4)
        np.testing.assert_allclose(out.get(), out_host, rtol=1e-5, atol=1e-6)
        dev.backward(ctx(gpu_xp, step=step), gpu_xp.asarray(top_grad), lr=0.01)
        if step == 1:
            forward(host, batch, step=1)
        host.backward(ctx(step=step), top_grad, lr=0.01)
    want, got = vectors_by_key(host), vectors_by_key(dev)
    assert sorted(want) == sorted(got)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)
    if type_name.startswith("Localized"):
        assert dict(zip(host.dump()["key"].tolist(), host.dump()["slot_id"].tolist())) == \
            dict(zip(dev.dump()["key"].tolist(), dev.dump()["slot_id"].tolist()))


@pytest.mark.gpu
def test_gpu_table_full_and_eval_zeros(gpu_xp):
    emb = make_embedding(vec=1024, workspace=0.01, xp=gpu_xp)
    offsets = gpu_xp.asarray([0, 1, 2, 3])
    out = gpu_xp.empty((1, 3, 1024), gpu_xp.float32)
    emb.forward(ctx(gpu_xp, training=False), offsets, gpu_xp.asarray([1, 2, 3], dtype=gpu_xp.uint32), out)
    assert float(gpu_xp.abs(out).max()) == 0.0
    # training: the forward does not read the row counter back (no host sync); backward settles it and
    # reports the full table before any update touches the rows past capacity
    emb.forward(ctx(gpu_xp), offsets, gpu_xp.asarray([1, 2, 3], dtype=gpu_xp.uint32), out)
    before = emb.rows.copy()
    with pytest.raises(ConfigError, match="hash table is full"):
        emb.backward(ctx(gpu_xp), gpu_xp.ones_like(out), lr=0.1)
    assert bool((emb.rows == before).all())


@pytest.mark.gpu
@pytest.mark.parametrize("type_name,sizes", [(TYPES[0], ()), (TYPES[1], ()), (TYPES[1], (10, 20, 30))],
                         ids=["distributed", "localized", "localized-slot-sizes"])
@pytest.mark.parametrize("combiner", ["sum", "mean"])
def test_gpu_new_rows_and_backward_plan_equal_numpy(gpu_xp, type_name, sizes, combiner):
    """New rows filled on the device from (seed, key) and the sync-free backward plan: the same vectors by
    key as NumPy after three steps that each bring new keys (repeated keys within a batch included)."""
    host = make_embedding(type_name, combiner=combiner, slot_size_array=sizes)
    dev = make_embedding(type_name, combiner=combiner, slot_size_array=sizes, xp=gpu_xp)
    bounds = np.cumsum((0,) + tuple(sizes or (20, 20, 20)))
    rng = np.random.default_rng(4)
    for step in (1, 2, 3):
        samples = [[list(rng.integers(bounds[s], bounds[s + 1], rng.integers(1, 4))) for s in range(3)]
                   for _ in range(6)]
        offsets, keys = csr(samples)
        want = np.empty((6, 3, 4), np.float32)
        host.forward(ctx(step=step), offsets, keys.astype(np.uint32), want)
        got = gpu_xp.empty((6, 3, 4), gpu_xp.float32)
        dev.forward(ctx(gpu_xp, step=step), gpu_xp.asarray(offsets), gpu_xp.asarray(keys.astype(np.uint32)), got)
        np.testing.assert_allclose(got.get(), want, rtol=1e-6, atol=1e-7)
        grad = rng.normal(size=(6, 3, 4)).astype(np.float32)
        host.backward(ctx(step=step), grad, lr=0.1)
        dev.backward(ctx(gpu_xp, step=step), gpu_xp.asarray(grad), lr=0.1)
    assert dev.table.size == host.table.size
    want, got = vectors_by_key(host), vectors_by_key(dev)
    assert want.keys() == got.keys()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_gpu_adam_lazy_update_rows_twin(gpu_xp):
    from hugectr_core.testing import assert_twins
    from hugectr_embeddings_sparse import kernels

    rng = np.random.default_rng(9)
    for dtype in (np.float32, np.float64):
        table = rng.normal(size=(500, 24)).astype(dtype)
        m = (rng.normal(size=(500, 24)) * 0.1).astype(dtype)
        v = rng.uniform(0, 0.01, size=(500, 24)).astype(dtype)
        stamps = rng.integers(1, 40, size=(500, 24)).astype(np.int64)
        rows = rng.choice(500, 200, replace=False).astype(np.int64)
        grad = rng.normal(size=(200, 24)).astype(dtype)
        assert_twins(reference.adam_lazy_update_rows, kernels.adam_lazy_update_rows, table, m, v, stamps, rows,
                     grad, 0.01, 41, 0.9, 0.999, 1e-7, 0.5, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-6)


@pytest.mark.gpu
def test_gpu_lazy_global_embedding_matches_numpy(gpu_xp, batch):
    host = make_embedding(optimizer="Adam", update_type="LazyGlobal")
    dev = make_embedding(optimizer="Adam", update_type="LazyGlobal", xp=gpu_xp)
    forward(host, batch)
    d = host.dump()
    dev.load(d["key"], d["emb_vector"])
    top_grad = np.random.default_rng(4).normal(size=(3, 3, 4)).astype(np.float32)
    host.backward(ctx(step=1), top_grad, lr=0.01)
    offsets, keys = csr(batch)
    for step in (1, 3):
        out = gpu_xp.empty((3, 3, 4), gpu_xp.float32)
        dev.forward(ctx(gpu_xp, step=step), offsets, gpu_xp.asarray(keys.astype(np.uint32)), out)
        dev.backward(ctx(gpu_xp, step=step), gpu_xp.asarray(top_grad), lr=0.01)
    forward(host, batch, step=3)
    host.backward(ctx(step=3), top_grad, lr=0.01)
    want, got = vectors_by_key(host), vectors_by_key(dev)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("vec", [16, 7], ids=["float4", "scalar"])
def test_gpu_reduce_and_sgd_twin(gpu_xp, vec):
    from hugectr_core.testing import assert_twins
    from hugectr_embeddings_sparse import kernels

    unique_rows, starts, seg_j, scale_j, grad_sv = skewed_reduction_case(8, vec, np.float32)
    table = np.random.default_rng(9).normal(size=(3000, vec)).astype(np.float32)
    assert_twins(reference.reduce_and_sgd, kernels.reduce_and_sgd, grad_sv, seg_j, scale_j, starts,
                 unique_rows, table, 0.01, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
def test_gpu_key_init_equals_numpy(gpu_xp):
    from hugectr_embeddings_sparse.embedding import key_uniform

    keys = np.random.default_rng(3).integers(0, 2**40, 5000).astype(np.int64)
    np.testing.assert_array_equal(key_uniform(gpu_xp, gpu_xp.asarray(keys), 16, 12345, 0.05).get(),
                                  key_uniform(np, keys, 16, 12345, 0.05))


def test_reference_float16_io_sums_in_float32_and_rounds_once():
    rng = np.random.default_rng(21)
    offsets = np.r_[0, np.cumsum(rng.integers(0, 6, 200))].astype(np.int64)
    rows = rng.integers(-1, 300, offsets[-1]).astype(np.int64)
    table = rng.normal(size=(300, 8)).astype(np.float32)
    wide = reference.gather_combine(table, rows, offsets, True, np.zeros((200, 8), np.float32))
    half = reference.gather_combine(table, rows, offsets, True, np.zeros((200, 8), np.float16))
    np.testing.assert_array_equal(half, wide.astype(np.float16))
    _, starts, seg_j, scale_j, grad16 = skewed_reduction_case(22, 8, np.float16)
    got = reference.segmented_reduce(grad16, seg_j, scale_j, starts)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, reference.segmented_reduce(grad16.astype(np.float32), seg_j, scale_j, starts))
