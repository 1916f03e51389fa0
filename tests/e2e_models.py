"""DLRM and Wide&Deep as HugeCTR scripts (small sizes), shared by the end-to-end tests.

Their plain-PyTorch twins live in tests/reference/torch_models.py and read the same constants.
"""
import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams

SEED = 2026
DENSE = 13
DLRM = dict(slots=[1000, 500, 2000, 300, 50, 20, 800, 600, 5, 1500, 700, 1200, 400, 30, 900, 1100, 12, 650,
                   350, 6, 1300, 25, 18, 750, 110, 450], vec=16, bottom=[64, 16], top=[64, 32, 1],
            batch=512, batch_eval=2048, train=192 * 512, eval=16 * 2048, iters=384, lr=0.001)
WDL = dict(wide_slots=[40, 60], deep_slots=[1000, 500, 2000, 300, 50, 20, 800, 600, 5, 1500, 700, 1200, 400,
                                            30, 900, 1100, 12, 650, 350, 6, 1300, 25, 18, 750, 110, 450],
           deep_vec=8, hidden=64, dropout=0.5, batch=512, batch_eval=2048, files=4, per_file=48 * 512,
           eval_files=2, iters=384, lr=0.001)


def DL(kind, bottoms, tops, **kw):  # noqa: N802 - reads like a HugeCTR script
    return hugectr.DenseLayer(layer_type=kind, bottom_names=bottoms, top_names=tops, **kw)


def generate_dlrm(data_dir):
    c = DLRM
    return DataGenerator(DataGeneratorParams(
        format=hugectr.DataReaderType_t.RawAsync, label_dim=1, dense_dim=DENSE, num_slot=len(c["slots"]),
        i64_input_key=False, source=f"{data_dir}/train.bin", eval_source=f"{data_dir}/val.bin",
        slot_size_array=c["slots"], num_samples=c["train"], eval_num_samples=c["eval"], float_label_dense=True,
        seed=SEED, label_model="learnable")).generate()


def build_dlrm(data_dir, device="cpu", **solver_extra):
    c = DLRM
    solver = hugectr.CreateSolver(max_eval_batches=c["eval"] // c["batch_eval"], batchsize_eval=c["batch_eval"],
                                  batchsize=c["batch"], lr=c["lr"], vvgpu=[[0]], repeat_dataset=True, seed=SEED,
                                  device=device, **solver_extra)
    reader = hugectr.DataReaderParams(
        data_reader_type=hugectr.DataReaderType_t.RawAsync, source=[f"{data_dir}/train.bin"],
        eval_source=f"{data_dir}/val.bin", check_type=hugectr.Check_t.Non, num_samples=c["train"],
        eval_num_samples=c["eval"], async_param=hugectr.AsyncParam(num_threads=1, num_batches_per_thread=4,
                                                                   shuffle=False, multi_hot_reader=True,
                                                                   is_dense_float=True))
    opt = hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam, update_type=hugectr.Update_t.Global)
    model = hugectr.Model(solver, reader, opt)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=DENSE, dense_name="dense",
                            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True,
                                                                                          len(c["slots"]))]))
    model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
                                      workspace_size_per_gpu_in_mb=4, embedding_vec_size=c["vec"], combiner="sum",
                                      sparse_embedding_name="sparse_embedding1", bottom_name="data1"))
    model.add(DL(hugectr.Layer_t.MLP, ["dense"], ["mlp1"], num_outputs=c["bottom"]))
    model.add(DL(hugectr.Layer_t.Interaction, ["mlp1", "sparse_embedding1"], ["interaction1"]))
    model.add(DL(hugectr.Layer_t.MLP, ["interaction1"], ["mlp2"], num_outputs=c["top"],
                 activations=["Relu"] * (len(c["top"]) - 1) + ["None"]))
    model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, ["mlp2", "label"], ["loss"]))
    return model


def generate_wdl(data_dir):
    c = WDL
    slots = c["wide_slots"] + c["deep_slots"]
    return DataGenerator(DataGeneratorParams(
        format=hugectr.DataReaderType_t.Parquet, label_dim=1, dense_dim=DENSE, num_slot=len(slots),
        i64_input_key=True, source=f"{data_dir}/file_list.txt", eval_source=f"{data_dir}/file_list_test.txt",
        slot_size_array=slots, num_files=c["files"], eval_num_files=c["eval_files"],
        num_samples_per_file=c["per_file"], seed=SEED, label_model="learnable")).generate()


def build_wdl(data_dir, device="cpu"):
    c = WDL
    slots = c["wide_slots"] + c["deep_slots"]
    solver = hugectr.CreateSolver(max_eval_batches=c["eval_files"] * c["per_file"] // c["batch_eval"],
                                  batchsize_eval=c["batch_eval"], batchsize=c["batch"], lr=c["lr"], vvgpu=[[0]],
                                  repeat_dataset=True, i64_input_key=True, seed=SEED, device=device)
    reader = hugectr.DataReaderParams(data_reader_type=hugectr.DataReaderType_t.Parquet,
                                      source=[f"{data_dir}/file_list.txt"],
                                      eval_source=f"{data_dir}/file_list_test.txt",
                                      check_type=hugectr.Check_t.Non, slot_size_array=slots)
    opt = hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam, update_type=hugectr.Update_t.Global,
                                  beta1=0.9, beta2=0.999, epsilon=0.0000001)
    model = hugectr.Model(solver, reader, opt)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=DENSE, dense_name="dense",
                            data_reader_sparse_param_array=[
                                hugectr.DataReaderSparseParam("wide_data", 1, True, len(c["wide_slots"])),
                                hugectr.DataReaderSparseParam("deep_data", 1, True, len(c["deep_slots"]))]))
    model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
                                      workspace_size_per_gpu_in_mb=1, embedding_vec_size=1, combiner="sum",
                                      sparse_embedding_name="sparse_embedding2", bottom_name="wide_data",
                                      optimizer=opt))
    model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
                                      workspace_size_per_gpu_in_mb=2, embedding_vec_size=c["deep_vec"],
                                      combiner="sum", sparse_embedding_name="sparse_embedding1",
                                      bottom_name="deep_data", optimizer=opt))
    n_deep = len(c["deep_slots"]) * c["deep_vec"]
    model.add(DL(hugectr.Layer_t.Reshape, ["sparse_embedding1"], ["reshape1"], leading_dim=n_deep))
    model.add(DL(hugectr.Layer_t.Reshape, ["sparse_embedding2"], ["reshape2"], leading_dim=len(c["wide_slots"])))
    model.add(DL(hugectr.Layer_t.ReduceSum, ["reshape2"], ["wide_redn"], axis=1))
    model.add(DL(hugectr.Layer_t.Concat, ["reshape1", "dense"], ["concat1"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["concat1"], ["fc1"], num_output=c["hidden"]))
    model.add(DL(hugectr.Layer_t.ReLU, ["fc1"], ["relu1"]))
    model.add(DL(hugectr.Layer_t.Dropout, ["relu1"], ["dropout1"], dropout_rate=c["dropout"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dropout1"], ["fc2"], num_output=c["hidden"]))
    model.add(DL(hugectr.Layer_t.ReLU, ["fc2"], ["relu2"]))
    model.add(DL(hugectr.Layer_t.Dropout, ["relu2"], ["dropout2"], dropout_rate=c["dropout"]))
    model.add(DL(hugectr.Layer_t.InnerProduct, ["dropout2"], ["fc3"], num_output=1))
    model.add(DL(hugectr.Layer_t.Add, ["fc3", "wide_redn"], ["add1"]))
    model.add(DL(hugectr.Layer_t.BinaryCrossEntropyLoss, ["add1", "label"], ["loss"]))
    return model
