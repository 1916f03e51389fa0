"""HugeCTR's sample graphs (formats.md 4.1 / 4.4), small, trained on CPU: the loss falls, nothing is NaN.

Each test writes its model the way HugeCTR's sample script does (public ``hugectr`` API, same layer
sequence, smaller widths and vocabularies), generates learnable data with
``hugectr.tools.DataGenerator`` (``seed=``, ``label_model="learnable"``: labels come from a hidden
model, so there is something to learn) and runs HugeCTR's low-level loop
(``start_data_reading`` / ``set_learning_rate`` / ``train`` / ``get_current_loss``). The loss must
fall: the mean of the last 10 losses is below the mean of the first 10 by a clear margin.
"""
import math
import shutil
import tempfile

import numpy as np
import pytest

import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams

SEED = 2027
BATCH = 128


def DL(kind, bottoms, tops, **kw):  # noqa: N802 - reads like HugeCTR's scripts
    return hugectr.DenseLayer(layer_type=kind, bottom_names=bottoms, top_names=tops, **kw)


def generate(tmp_path, fmt, slots, dense_dim, label_dim=1, nnz=None, samples=4096):
    d = str(tmp_path)
    common = dict(label_dim=label_dim, dense_dim=dense_dim, num_slot=len(slots), slot_size_array=slots,
                  nnz_array=nnz or [], seed=SEED, label_model="learnable")
    if fmt == "Parquet":
        params = DataGeneratorParams(format=hugectr.DataReaderType_t.Parquet, i64_input_key=True,
                                     source=f"{d}/file_list.txt", eval_source=f"{d}/file_list_test.txt",
                                     num_files=1, eval_num_files=1, num_samples_per_file=samples, **common)
    else:
        params = DataGeneratorParams(format=hugectr.DataReaderType_t.RawAsync, i64_input_key=False,
                                     source=f"{d}/train.bin", eval_source=f"{d}/val.bin", num_samples=samples,
                                     eval_num_samples=1024, float_label_dense=True, **common)
    DataGenerator(params).generate()


def new_model(tmp_path, fmt, slots, *, lr=0.001, optimizer="Adam", samples=4096, batch=BATCH, **opt_kw):
    d = str(tmp_path)
    solver = hugectr.CreateSolver(max_eval_batches=1, batchsize_eval=batch, batchsize=batch, lr=lr, vvgpu=[[0]],
                                  repeat_dataset=True, i64_input_key=fmt == "Parquet", seed=SEED, device="cpu")
    if fmt == "Parquet":
        reader = hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Parquet,
                                          source=[f"{d}/file_list.txt"], eval_source=f"{d}/file_list_test.txt",
                                          check_type=hugectr.Check_t.Non, slot_size_array=slots)
    else:
        reader = hugectr.DataReaderParams(
            data_reader_type=hugectr.DataReaderType_t.RawAsync, source=[f"{d}/train.bin"],
            eval_source=f"{d}/val.bin", check_type=hugectr.Check_t.Non, num_samples=samples, eval_num_samples=1024,
            async_param=hugectr.AsyncParam(num_threads=1, num_batches_per_thread=2, shuffle=False,
                                           multi_hot_reader=True, is_dense_float=True))
    opt_type = getattr(hugectr.Optimizer_t, optimizer)
    opt = hugectr.CreateOptimizer(optimizer_type=opt_type, update_type=hugectr.Update_t.Global, **opt_kw)
    return hugectr.Model(solver, reader, opt)


def sparse(name, slots, nnz=1):
    return hugectr.DataReaderSparseParam(name, nnz, nnz == 1, slots)


def embedding(name, bottom, vec, localized=False, mb=1):
    kind = (hugectr.Embedding_t.LocalizedSlotSparseEmbeddingHash if localized
            else hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash)
    return hugectr.SparseEmbedding(embedding_type=kind, workspace_size_per_gpu_in_mb=mb, embedding_vec_size=vec,
                                   combiner="sum", sparse_embedding_name=name, bottom_name=bottom)


def train_and_check(model, steps=100, lr=0.001, margin=0.02, loss_names=None, loss_weights=None):
    """Compile, run HugeCTR's low-level loop, and check that the loss falls and stays finite."""
    if loss_names:
        model.compile(loss_names=loss_names, loss_weights=loss_weights)
    else:
        model.compile()
    model.start_data_reading()
    losses = []
    for _ in range(steps):
        model.set_learning_rate(lr)
        model.train()
        losses.append(float(model.get_current_loss()))
    assert all(math.isfinite(v) for v in losses), losses
    assert np.isfinite(np.asarray(model.runtime.weights_flat, dtype=np.float64)).all(), "NaN/inf in dense weights"
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < first - margin, f"loss did not fall: first 10 {first:.4f}, last 10 {last:.4f}"
    check_json_round_trip(model, loss_names, loss_weights)
    return losses


def check_json_round_trip(model, loss_names=None, loss_weights=None):
    """graph_to_json -> construct_from_json: same layers, shapes and parameters; after loading the
    same weights (dense, .ntp.json state, sparse) the same predictions (issue 6 acceptance)."""
    folder = tempfile.mkdtemp(prefix="graph-json-")
    try:
        model.graph_to_json(f"{folder}/graph.json")
        model.save_params_to_files(f"{folder}/w", 1)
        clone = hugectr.Model(model.solver, model.reader_params, model.opt_params)
        clone.construct_from_json(f"{folder}/graph.json", True)
        clone.compile(loss_names=loss_names, loss_weights=loss_weights) if loss_names else clone.compile()
        a, b = model.runtime, clone.runtime
        assert [n.layer.type_name for n in a.graph.nodes] == [n.layer.type_name for n in b.graph.nodes]
        assert a.shapes == b.shapes
        assert [(n, s.name, s.shape) for n, s in a.param_layout] == [(n, s.name, s.shape) for n, s in b.param_layout]
        clone.load_dense_weights(f"{folder}/w_dense_1.model")
        clone.load_sparse_weights([f"{folder}/w{k}_sparse_1.model" for k in range(len(a.embeddings))])
        batch = model.get_data_reader_eval().next_batch()
        np.testing.assert_array_equal(a.eval_step(batch)[0], b.eval_step(batch)[0])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- (1) Wide & Deep: samples/wdl/wdl_1gpu.py -----------------------------------------------------
def test_wide_and_deep(tmp_path):
    wide, deep = [30, 40], [200, 100, 300, 50, 80, 120]
    generate(tmp_path, "Parquet", wide + deep, dense_dim=4)
    model = new_model(tmp_path, "Parquet", wide + deep, beta1=0.9, beta2=0.999, epsilon=1e-7)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=4, dense_name="dense",
                            data_reader_sparse_param_array=[sparse("wide_data", len(wide)),
                                                            sparse("deep_data", len(deep))]))
    model.add(embedding("sparse_embedding2", "wide_data", 1))
    model.add(embedding("sparse_embedding1", "deep_data", 8))
    model.add(DL(hugectr.Layer_t.Reshape, ["sparse_embedding1"], ["reshape1"], leading_dim=len(deep) * 8))
    model.add(DL(hugectr.Layer_t.Reshape, ["sparse_embedding2"], ["reshape2"], leading_dim=len(wide)))
    model.add(DL(hugectr.Layer_t.ReduceSum, ["reshape2"], ["wide_redn"], axis=1))
    model.add(DL(hugectr.Layer_t.Concat, ["reshape1", "dense"], ["concat1"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["concat1"], ["fc1"], num_output=32))
    model.add(DL(hugectr.Layer_t.ReLU, ["fc1"], ["relu1"]))
    model.add(DL(hugectr.Layer_t.Dropout, ["relu1"], ["dropout1"], dropout_rate=0.5))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dropout1"], ["fc2"], num_output=32))
    model.add(DL(hugectr.Layer_t.ReLU, ["fc2"], ["relu2"]))
    model.add(DL(hugectr.Layer_t.Dropout, ["relu2"], ["dropout2"], dropout_rate=0.5))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dropout2"], ["fc3"], num_output=1))
    model.add(DL(hugectr.Layer_t.Add, ["fc3", "wide_redn"], ["add1"]))
    model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, ["add1", "label"], ["loss"]))
    train_and_check(model, lr=0.003)


# -- (2) DCN v1 and v2: samples/dcn/dcn_parquet.py, DCNv2 of samples/dlrm ----------------------------
@pytest.mark.parametrize("projection_dim", [0, 4], ids=["v1", "v2"])
def test_dcn(tmp_path, projection_dim):
    slots = [200, 100, 300, 50, 80, 120]
    generate(tmp_path, "RawAsync", slots, dense_dim=4)
    model = new_model(tmp_path, "RawAsync", slots)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=4, dense_name="dense",
                            data_reader_sparse_param_array=[sparse("data1", len(slots))]))
    model.add(embedding("sparse_embedding1", "data1", 8))
    width = len(slots) * 8 + 4
    model.add(DL(hugectr.Layer_t.Reshape, ["sparse_embedding1"], ["reshape1"], leading_dim=len(slots) * 8))
    model.add(DL(hugectr.Layer_t.Concat, ["reshape1", "dense"], ["concat1"]))
    model.add(DL(hugectr.Layer_t.Slice, ["concat1"], ["slice11", "slice12"], ranges=[(0, width), (0, width)]))
    model.add(DL(hugectr.Layer_t.MultiCross, ["slice11"], ["multicross1"], num_layers=3,
                 projection_dim=projection_dim))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["slice12"], ["fc1"], num_output=32))
    model.add(DL(hugectr.Layer_t.ReLU, ["fc1"], ["relu1"]))
    model.add(DL(hugectr.Layer_t.Dropout, ["relu1"], ["dropout1"], dropout_rate=0.5))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dropout1"], ["fc2"], num_output=32))
    model.add(DL(hugectr.Layer_t.ReLU, ["fc2"], ["relu2"]))
    model.add(DL(hugectr.Layer_t.Dropout, ["relu2"], ["dropout2"], dropout_rate=0.5))
    model.add(DL(hugectr.Layer_t.Concat, ["dropout2", "multicross1"], ["concat2"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["concat2"], ["fc3"], num_output=1))
    model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, ["fc3", "label"], ["loss"]))
    train_and_check(model, lr=0.003)


# -- (3) DeepFM: samples/deepfm/deepfm_parquet.py ----------------------------------------------------
def test_deepfm(tmp_path):
    slots, dense, k = [200, 100, 300, 50, 80, 120], 4, 4  # k latent + 1 first-order weight per key
    generate(tmp_path, "Parquet", slots, dense_dim=dense)
    model = new_model(tmp_path, "Parquet", slots)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=dense, dense_name="dense",
                            data_reader_sparse_param_array=[sparse("data1", len(slots))]))
    model.add(embedding("sparse_embedding1", "data1", k + 1, localized=True))
    s = len(slots)
    model.add(DL(hugectr.Layer_t.Reshape, ["sparse_embedding1"], ["reshape1"], leading_dim=k + 1))
    model.add(DL(hugectr.Layer_t.Slice, ["reshape1"], ["slice11", "slice12"], ranges=[(0, k), (k, k + 1)]))
    model.add(DL(hugectr.Layer_t.Reshape, ["slice11"], ["reshape2"], leading_dim=s * k))
    model.add(DL(hugectr.Layer_t.Reshape, ["slice12"], ["reshape3"], leading_dim=s))
    model.add(DL(hugectr.Layer_t.Slice, ["dense"], ["slice21", "slice22"], ranges=[(0, dense), (0, dense)]))
    model.add(DL(hugectr.Layer_t.WeightMultiply, ["slice21"], ["weight_multiply1"], weight_dims=[dense, k]))
    model.add(DL(hugectr.Layer_t.WeightMultiply, ["slice22"], ["weight_multiply2"], weight_dims=[dense, 1]))
    model.add(DL(hugectr.Layer_t.Concat, ["reshape2", "weight_multiply1"], ["concat1"]))
    width = (s + dense) * k
    model.add(DL(hugectr.Layer_t.Slice, ["concat1"], ["slice31", "slice32"], ranges=[(0, width), (0, width)]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["slice31"], ["fc1"], num_output=32))
    model.add(DL(hugectr.Layer_t.ReLU, ["fc1"], ["relu1"]))
    model.add(DL(hugectr.Layer_t.Dropout, ["relu1"], ["dropout1"], dropout_rate=0.5))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dropout1"], ["fc2"], num_output=32))
    model.add(DL(hugectr.Layer_t.ReLU, ["fc2"], ["relu2"]))
    model.add(DL(hugectr.Layer_t.Dropout, ["relu2"], ["dropout2"], dropout_rate=0.5))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dropout2"], ["fc3"], num_output=1))
    model.add(DL(hugectr.Layer_t.FmOrder2, ["slice32"], ["fmorder2"], out_dim=k))
    model.add(DL(hugectr.Layer_t.ReduceSum, ["fmorder2"], ["reducesum1"], axis=1))
    model.add(DL(hugectr.Layer_t.Concat, ["reshape3", "weight_multiply2"], ["concat2"]))
    model.add(DL(hugectr.Layer_t.ReduceSum, ["concat2"], ["reducesum2"], axis=1))
    model.add(DL(hugectr.Layer_t.Add, ["fc3", "reducesum1", "reducesum2"], ["add"]))
    model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, ["add", "label"], ["loss"]))
    train_and_check(model, lr=0.003)


# -- (5) DIN: samples/din/din_parquet.py -----------------------------------------------------------
def test_din(tmp_path):
    hist, vec = 5, 6  # history length (the sample: 10) and embedding width (18)
    users, goods, cates = [300], [200] * (hist + 1), [40] * (hist + 1)
    slots = users + goods + cates
    generate(tmp_path, "Parquet", slots, dense_dim=0)
    model = new_model(tmp_path, "Parquet", slots, epsilon=1e-9)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=0, dense_name="dense",
                            data_reader_sparse_param_array=[sparse("UserID", 1), sparse("GoodID", hist + 1),
                                                            sparse("CateID", hist + 1)]))
    model.add(embedding("sparse_embedding_user", "UserID", vec))
    model.add(embedding("sparse_embedding_good", "GoodID", vec))
    model.add(embedding("sparse_embedding_cate", "CateID", vec))
    item = 2 * vec
    model.add(DL(hugectr.Layer_t.FusedReshapeConcat, ["sparse_embedding_good", "sparse_embedding_cate"],
                 ["FusedReshapeConcat_item_his_em", "FusedReshapeConcat_item"]))
    model.add(DL(hugectr.Layer_t.Slice, ["FusedReshapeConcat_item"], ["item1", "item2"],
                 ranges=[(0, item), (0, item)]))
    model.add(DL(hugectr.Layer_t.Slice, ["FusedReshapeConcat_item_his_em"], ["item_his1", "item_his2", "item_his3",
                                                                              "item_his4", "item_his5"],
                 ranges=[(0, item)] * 5))
    model.add(DL(hugectr.Layer_t.Scale, ["item1"], ["Scale_item"], axis=1, factor=hist))
    model.add(DL(hugectr.Layer_t.Slice, ["Scale_item"], ["Scale_item1", "Scale_item2", "Scale_item3"],
                 ranges=[(0, item)] * 3))
    model.add(DL(hugectr.Layer_t.Sub, ["Scale_item1", "item_his1"], ["sub_ih"]))
    model.add(DL(hugectr.Layer_t.ElementwiseMultiply, ["Scale_item2", "item_his2"], ["ElementwiseMul_i"]))
    model.add(DL(hugectr.Layer_t.Concat, ["Scale_item3", "item_his3", "sub_ih", "ElementwiseMul_i"], ["concat_i_h"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["concat_i_h"], ["fc_att_i2"], num_output=16))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["fc_att_i2"], ["fc_att_i3"], num_output=1))
    model.add(DL(hugectr.Layer_t.Reshape, ["fc_att_i3"], ["reshape_score"], leading_dim=hist))
    model.add(DL(hugectr.Layer_t.Softmax, ["reshape_score"], ["softmax_att_i"]))
    model.add(DL(hugectr.Layer_t.Scale, ["softmax_att_i"], ["Scale_i"], axis=0, factor=item))
    model.add(DL(hugectr.Layer_t.Reshape, ["item_his4"], ["reshape_item_his"], leading_dim=item * hist))
    model.add(DL(hugectr.Layer_t.ElementwiseMultiply, ["Scale_i", "reshape_item_his"], ["ElementwiseMul_ih"]))
    model.add(DL(hugectr.Layer_t.ReduceSum, ["ElementwiseMul_ih"], ["reduce_ih"], axis=1))
    model.add(DL(hugectr.Layer_t.Reshape, ["item_his5"], ["reshape_his"], leading_dim=item, time_step=hist))
    model.add(DL(hugectr.Layer_t.ReduceMean, ["reshape_his"], ["reduce_item_his"], axis=1))
    model.add(DL(hugectr.Layer_t.Reshape, ["reduce_item_his"], ["reshape_reduce_item_his"], leading_dim=item))
    model.add(DL(hugectr.Layer_t.Reshape, ["sparse_embedding_user"], ["reshape_user"], leading_dim=vec))
    model.add(DL(hugectr.Layer_t.Concat, ["reshape_user", "reshape_reduce_item_his", "reduce_ih", "item2"],
                 ["concat_din_i"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["concat_din_i"], ["fc_din_i1"], num_output=32))
    model.add(DL(hugectr.Layer_t.PReLU_Dice, ["fc_din_i1"], ["dice_1"], elu_alpha=0.2, eps=1e-8))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dice_1"], ["fc_din_i2"], num_output=16))
    model.add(DL(hugectr.Layer_t.PReLU_Dice, ["fc_din_i2"], ["dice_2"], elu_alpha=0.2, eps=1e-8))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dice_2"], ["fc_din_i3"], num_output=1))
    model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, ["fc_din_i3", "label"], ["loss"]))
    train_and_check(model, lr=0.003)


# -- BST: samples/bst/bst_avg_pooling.py ------------------------------------------------------------
def test_bst(tmp_path):
    hist, vec = 5, 8
    users, goods, cates, target = [300], [200] * hist, [40] * hist, [200]
    slots = users + goods + cates + target
    generate(tmp_path, "Parquet", slots, dense_dim=1)  # dense(1): the history length
    model = new_model(tmp_path, "Parquet", slots)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=1, dense_name="dense",
                            data_reader_sparse_param_array=[sparse("UserID", 1), sparse("GoodID", hist),
                                                            sparse("CateID", hist), sparse("TargetID", 1)]))
    model.add(embedding("sparse_embedding_user", "UserID", vec))
    model.add(embedding("sparse_embedding_good", "GoodID", vec))
    model.add(embedding("sparse_embedding_cate", "CateID", vec))
    model.add(embedding("sparse_embedding_target", "TargetID", vec))
    d = 2 * vec
    model.add(DL(hugectr.Layer_t.Slice, ["dense"], ["len_from", "len_to"], ranges=[(0, 1), (0, 1)]))
    model.add(DL(hugectr.Layer_t.SequenceMask, ["len_from", "len_to"], ["sequence_mask"],
                 max_sequence_len_from=hist, max_sequence_len_to=hist))
    model.add(DL(hugectr.Layer_t.Concat, ["sparse_embedding_good", "sparse_embedding_cate"], ["concat_seq"], axis=2))
    model.add(DL(hugectr.Layer_t.Slice, ["concat_seq"], ["seq_q", "seq_k", "seq_v", "seq_res"], ranges=[(0, d)] * 4))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["seq_q"], ["query"], num_output=d))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["seq_k"], ["key"], num_output=d))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["seq_v"], ["value"], num_output=d))
    model.add(DL(hugectr.Layer_t.MultiHeadAttention, ["query", "key", "value", "sequence_mask"], ["attention"],
                 num_attention_heads=2))
    model.add(DL(hugectr.Layer_t.Add, ["attention", "seq_res"], ["attention_res"]))
    model.add(DL(hugectr.Layer_t.LayerNorm, ["attention_res"], ["attention_ln"]))
    model.add(DL(hugectr.Layer_t.Slice, ["attention_ln"], ["ffn_in", "ffn_res"], ranges=[(0, d)] * 2))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["ffn_in"], ["ffn1"], num_output=2 * d))
    model.add(DL(hugectr.Layer_t.ReLU, ["ffn1"], ["ffn_relu"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["ffn_relu"], ["ffn2"], num_output=d))
    model.add(DL(hugectr.Layer_t.Add, ["ffn2", "ffn_res"], ["ffn_out"]))
    model.add(DL(hugectr.Layer_t.LayerNorm, ["ffn_out"], ["transformer_out"]))
    model.add(DL(hugectr.Layer_t.ReduceMean, ["transformer_out"], ["pooled"], axis=1))
    model.add(DL(hugectr.Layer_t.Reshape, ["pooled"], ["pooled_2d"], leading_dim=d))
    model.add(DL(hugectr.Layer_t.Reshape, ["sparse_embedding_user"], ["user_2d"], leading_dim=vec))
    model.add(DL(hugectr.Layer_t.Reshape, ["sparse_embedding_target"], ["target_2d"], leading_dim=vec))
    model.add(DL(hugectr.Layer_t.Concat, ["user_2d", "pooled_2d", "target_2d"], ["concat_all"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["concat_all"], ["fc1"], num_output=32))
    model.add(DL(hugectr.Layer_t.PReLU_Dice, ["fc1"], ["dice1"], elu_alpha=0.2, eps=1e-8))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dice1"], ["fc2"], num_output=16))
    model.add(DL(hugectr.Layer_t.PReLU_Dice, ["fc2"], ["dice2"], elu_alpha=0.2, eps=1e-8))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dice2"], ["fc3"], num_output=1))
    model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, ["fc3", "label"], ["loss"]))
    train_and_check(model, lr=0.003)


# -- (6) MMoE: samples/mmoe/mmoe_parquet.py --------------------------------------------------------
def test_mmoe(tmp_path):
    slots, vec, experts, width = [50, 80, 30, 120, 60, 40, 90, 70], 4, 3, 8
    labels = ["income_label", "married_label"]
    generate(tmp_path, "Parquet", slots, dense_dim=0, label_dim=2)
    model = new_model(tmp_path, "Parquet", slots, lr=0.05, optimizer="SGD")
    model.add(hugectr.Input(label_dims=[1, 1], label_names=labels, dense_dim=0, dense_name="dense",
                            data_reader_sparse_param_array=[sparse("data", len(slots))]))
    model.add(embedding("sparse_embedding", "data", vec, localized=True))
    flat = len(slots) * vec
    model.add(DL(hugectr.Layer_t.Reshape, ["sparse_embedding"], ["reshape"], leading_dim=flat))
    copies = [f"reshape_expert{i}" for i in range(experts)] + [f"reshape_gate_{t}" for t in labels]
    model.add(DL(hugectr.Layer_t.Slice, ["reshape"], copies, ranges=[(0, flat)] * len(copies)))
    for i in range(experts):
        model.add(DL(hugectr.Layer_t.InnerProduct, [f"reshape_expert{i}"], [f"expert{i}_fc1"], num_output=16))
        model.add(DL(hugectr.Layer_t.ReLU, [f"expert{i}_fc1"], [f"expert{i}_relu1"]))
        model.add(DL(hugectr.Layer_t.Dropout, [f"expert{i}_relu1"], [f"expert{i}_dropout1"], dropout_rate=0.1))
        model.add(DL(hugectr.Layer_t.InnerProduct, [f"expert{i}_dropout1"], [f"expert{i}_fc2"], num_output=width))
        model.add(DL(hugectr.Layer_t.ReLU, [f"expert{i}_fc2"], [f"expert{i}_out"]))
    for t in labels:
        model.add(DL(hugectr.Layer_t.InnerProduct, [f"reshape_gate_{t}"], [f"gate_{t}_fc"], num_output=experts))
        model.add(DL(hugectr.Layer_t.Softmax, [f"gate_{t}_fc"], [f"gate_{t}_softmax"]))
        model.add(DL(hugectr.Layer_t.Slice, [f"gate_{t}_softmax"], [f"gate_{t}_w{i}" for i in range(experts)],
                     ranges=[(i, i + 1) for i in range(experts)]))
        for i in range(experts):
            model.add(DL(hugectr.Layer_t.Scale, [f"gate_{t}_w{i}"], [f"gate_{t}_scale{i}"], axis=0, factor=width))
            model.add(DL(hugectr.Layer_t.ElementwiseMultiply, [f"gate_{t}_scale{i}", f"expert{i}_out"],
                         [f"gate_{t}_weighted{i}"]))
        model.add(DL(hugectr.Layer_t.Add, [f"gate_{t}_weighted{i}" for i in range(experts)], [f"gate_{t}_out"]))
        model.add(DL(hugectr.Layer_t.InnerProduct, [f"gate_{t}_out"], [f"tower_{t}_fc1"], num_output=8))
        model.add(DL(hugectr.Layer_t.ReLU, [f"tower_{t}_fc1"], [f"tower_{t}_relu"]))
        model.add(DL(hugectr.Layer_t.Dropout, [f"tower_{t}_relu"], [f"tower_{t}_dropout"], dropout_rate=0.1))
        model.add(DL(hugectr.Layer_t.InnerProduct, [f"tower_{t}_dropout"], [f"tower_{t}_fc2"], num_output=1))
    for t in labels:  # loss layers come last
        model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, [f"tower_{t}_fc2", t], [f"loss_{t}"]))
    train_and_check(model, steps=120, lr=0.05, loss_names=labels, loss_weights=[0.5, 0.5])


# -- NCF and NeuMF: samples/ncf/ncf.py, neumf.py -------------------------------------------------------
def test_ncf(tmp_path):
    slots, vec = [500, 300], 16  # users, items
    generate(tmp_path, "Parquet", slots, dense_dim=0)
    model = new_model(tmp_path, "Parquet", slots, beta1=0.25, beta2=0.5, epsilon=1e-7)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=0, dense_name="dense",
                            data_reader_sparse_param_array=[sparse("data", 2)]))
    model.add(embedding("mlp_embedding", "data", vec))
    model.add(DL(hugectr.Layer_t.Reshape, ["mlp_embedding"], ["reshape1"], leading_dim=2 * vec))
    for i, (bottom, width) in enumerate([("reshape1", 32), ("dropout1", 32), ("dropout2", 16)], start=1):
        model.add(DL(hugectr.Layer_t.InnerProduct, [bottom], [f"fc{i}"], num_output=width))
        model.add(DL(hugectr.Layer_t.ReLU, [f"fc{i}"], [f"relu{i}"]))
        model.add(DL(hugectr.Layer_t.Dropout, [f"relu{i}"], [f"dropout{i}"], dropout_rate=0.1))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dropout3"], ["fc4"], num_output=1))
    model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, ["fc4", "label"], ["loss"]))
    train_and_check(model, lr=0.003)


def test_neumf(tmp_path):
    slots, mlp_vec, gmf_vec = [500, 300], 8, 4
    generate(tmp_path, "Parquet", slots, dense_dim=0)
    model = new_model(tmp_path, "Parquet", slots, beta1=0.25, beta2=0.5, epsilon=1e-7)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=0, dense_name="dense",
                            data_reader_sparse_param_array=[sparse("data", 2)]))
    vec = mlp_vec + gmf_vec  # one embedding sliced into the MLP part and the GMF part
    model.add(embedding("embedding", "data", vec))
    model.add(DL(hugectr.Layer_t.Reshape, ["embedding"], ["reshape1"], leading_dim=vec))  # (B*2, vec)
    model.add(DL(hugectr.Layer_t.Slice, ["reshape1"], ["mlp_part", "gmf_part"],
                 ranges=[(0, mlp_vec), (mlp_vec, vec)]))
    model.add(DL(hugectr.Layer_t.Reshape, ["mlp_part"], ["mlp_in"], leading_dim=2 * mlp_vec))
    model.add(DL(hugectr.Layer_t.Reshape, ["gmf_part"], ["gmf_pair"], leading_dim=2 * gmf_vec))
    model.add(DL(hugectr.Layer_t.Slice, ["gmf_pair"], ["gmf_user", "gmf_item"],
                 ranges=[(0, gmf_vec), (gmf_vec, 2 * gmf_vec)]))
    model.add(DL(hugectr.Layer_t.ElementwiseMultiply, ["gmf_user", "gmf_item"], ["gmf_out"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["mlp_in"], ["fc1"], num_output=32))
    model.add(DL(hugectr.Layer_t.ReLU, ["fc1"], ["relu1"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["relu1"], ["fc2"], num_output=16))
    model.add(DL(hugectr.Layer_t.ReLU, ["fc2"], ["relu2"]))
    model.add(DL(hugectr.Layer_t.Concat, ["relu2", "gmf_out"], ["concat1"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["concat1"], ["fc3"], num_output=1))
    model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, ["fc3", "label"], ["loss"]))
    train_and_check(model, lr=0.003)


# -- (4) DLRM, classic with Interaction: samples/ftrl/dlrm_train_ftrl.py ------------------------------
def dlrm_inputs(tmp_path, vec=8):
    """DLRM's data, Input and embedding (HugeCTR's samples/dlrm), before its dense layers."""
    slots = [200, 100, 300, 50, 80, 120, 60, 90]
    generate(tmp_path, "RawAsync", slots, dense_dim=4)
    model = new_model(tmp_path, "RawAsync", slots)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=4, dense_name="dense",
                            data_reader_sparse_param_array=[sparse("data1", len(slots))]))
    model.add(embedding("sparse_embedding1", "data1", vec))
    return model, vec


def test_dlrm(tmp_path):
    model, vec = dlrm_inputs(tmp_path)
    model.add(DL(hugectr.Layer_t.MLP, ["dense"], ["mlp1"], num_outputs=[16, vec]))
    model.add(DL(hugectr.Layer_t.Interaction, ["mlp1", "sparse_embedding1"], ["interaction1"]))
    model.add(DL(hugectr.Layer_t.MLP, ["interaction1"], ["mlp2"], num_outputs=[32, 16, 1],
                 activations=["Relu", "Relu", "None"]))
    model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, ["mlp2", "label"], ["loss"]))
    train_and_check(model, lr=0.003)


# -- (9b) DLRM as HugeCTR 3.x and 23.x wrote it: GroupDenseLayer, FusedInnerProduct, the gradient top ----------
def test_dlrm_with_hugectr_fused_path_spellings(tmp_path):
    """samples/dlrm of HugeCTR 3.x (GroupDenseLayer bottom MLP, FusedInnerProduct Head/Body/Tail top MLP) and
    23.x (Interaction tops ["interaction1", "interaction1_grad"]); HugeCTR needs fp16 for them, any precision here."""
    model, vec = dlrm_inputs(tmp_path)
    model.add(hugectr.GroupDenseLayer(group_layer_type=hugectr.GroupLayer_t.GroupFusedInnerProduct,
                                      bottom_name_list=["dense"], top_name_list=["fc1", "fc2"], num_outputs=[16, vec],
                                      last_act_type=hugectr.Activation_t.Relu))
    model.add(DL(hugectr.Layer_t.Interaction, ["fc2", "sparse_embedding1"], ["interaction1", "interaction1_grad"]))
    head, body = ["fc31", "fc32", "fc33", "fc34"], ["fc41", "fc42", "fc43", "fc44"]
    model.add(DL(hugectr.Layer_t.FusedInnerProduct, ["interaction1", "interaction1_grad"], head, num_output=32,
                 pos_type=hugectr.FcPosition_t.Head, act_type=hugectr.Activation_t.Relu))
    model.add(DL(hugectr.Layer_t.FusedInnerProduct, head, body, num_output=16, pos_type=hugectr.FcPosition_t.Body,
                 act_type=hugectr.Activation_t.Relu))
    model.add(DL(hugectr.Layer_t.FusedInnerProduct, body, ["fc5"], num_output=1, pos_type=hugectr.FcPosition_t.Tail,
                 act_type=hugectr.Activation_t.Non))
    model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, ["fc5", "label"], ["loss"]))
    train_and_check(model, lr=0.003)
