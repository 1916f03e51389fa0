"""Train a DCN, written exactly as a HugeCTR script, on learnable synthetic data.

    python examples/dcn_learnable.py [--device auto|cpu|gpu] [--data ./data/dcn] [--result out.json]

Generates RawAsync data whose labels come from a hidden model (its own AUC is the ceiling),
then trains with Adam and reports loss and AUC. Uses the GPU when CuPy sees one, else NumPy.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dcn_config as C  # noqa: E402

import hugectr  # noqa: E402
from hugectr.tools import DataGenerator, DataGeneratorParams  # noqa: E402


def generate(data_dir):
    params = DataGeneratorParams(
        format=hugectr.DataReaderType_t.RawAsync, label_dim=1, dense_dim=C.DENSE_DIM,
        num_slot=len(C.SLOT_SIZES), i64_input_key=False, source=f"{data_dir}/train.bin",
        eval_source=f"{data_dir}/val.bin", slot_size_array=C.SLOT_SIZES,
        dist_type=hugectr.Distribution_t.PowerLaw, power_law_type=hugectr.PowerLaw_t.Specific, alpha=1.2,
        num_samples=C.TRAIN_SAMPLES, eval_num_samples=C.EVAL_SAMPLES, float_label_dense=True,
        seed=C.SEED, label_model="learnable")
    return DataGenerator(params).generate()


def build_model(data_dir, device):
    solver = hugectr.CreateSolver(max_eval_batches=C.EVAL_SAMPLES // C.BATCH_EVAL, batchsize_eval=C.BATCH_EVAL,
                                  batchsize=C.BATCH, lr=C.LR, vvgpu=[[0]], repeat_dataset=True, seed=C.SEED,
                                  device=device)
    reader = hugectr.DataReaderParams(
        data_reader_type=hugectr.DataReaderType_t.RawAsync, source=[f"{data_dir}/train.bin"],
        eval_source=f"{data_dir}/val.bin", check_type=hugectr.Check_t.Non,
        num_samples=C.TRAIN_SAMPLES, eval_num_samples=C.EVAL_SAMPLES,
        async_param=hugectr.AsyncParam(num_threads=1, num_batches_per_thread=4, shuffle=False,
                                       multi_hot_reader=True, is_dense_float=True))
    optimizer = hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam, update_type=hugectr.Update_t.Global,
                                        beta1=0.9, beta2=0.999, epsilon=0.0000001)
    model = hugectr.Model(solver, reader, optimizer)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=C.DENSE_DIM, dense_name="dense",
                            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True,
                                                                                          len(C.SLOT_SIZES))]))
    model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
                                      workspace_size_per_gpu_in_mb=2, embedding_vec_size=C.VEC, combiner="sum",
                                      sparse_embedding_name="sparse_embedding1", bottom_name="data1",
                                      optimizer=optimizer))
    model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Reshape, bottom_names=["sparse_embedding1"],
                                 top_names=["reshape1"], leading_dim=C.VEC * len(C.SLOT_SIZES)))
    model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Concat, bottom_names=["reshape1", "dense"],
                                 top_names=["concat1"]))
    model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.MultiCross, bottom_names=["concat1"],
                                 top_names=["multicross1"], num_layers=C.CROSS_LAYERS))
    model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.InnerProduct, bottom_names=["concat1"],
                                 top_names=["fc1"], num_output=C.HIDDEN))
    model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.ReLU, bottom_names=["fc1"], top_names=["relu1"]))
    model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Dropout, bottom_names=["relu1"], top_names=["dropout1"],
                                 dropout_rate=C.DROPOUT))
    model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.InnerProduct, bottom_names=["dropout1"],
                                 top_names=["fc2"], num_output=C.HIDDEN))
    model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.ReLU, bottom_names=["fc2"], top_names=["relu2"]))
    model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Dropout, bottom_names=["relu2"], top_names=["dropout2"],
                                 dropout_rate=C.DROPOUT))
    model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.Concat, bottom_names=["dropout2", "multicross1"],
                                 top_names=["concat2"]))
    model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.InnerProduct, bottom_names=["concat2"],
                                 top_names=["fc3"], num_output=1))
    model.add(hugectr.DenseLayer(layer_type=hugectr.Layer_t.BinaryCrossEntropyLoss, bottom_names=["fc3", "label"],
                                 top_names=["loss"]))
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    parser.add_argument("--data", default="./data/dcn")
    parser.add_argument("--iters", type=int, default=C.ITERS)
    parser.add_argument("--result", help="write the final metrics as JSON here")
    args = parser.parse_args(argv)
    info = generate(args.data)
    model = build_model(args.data, args.device)
    model.compile()
    model.summary()
    metrics = model.fit(max_iter=args.iters, display=max(args.iters // 6, 1), eval_interval=args.iters, snapshot=0)
    result = {"auc": metrics.get("AUC"), "ceiling_auc": info.get("ceiling_auc"), "iters": args.iters,
              "device": args.device}
    print(f"Final AUC {result['auc']:.4f} (hidden model's ceiling {result['ceiling_auc']:.4f})")
    if args.result:
        with open(args.result, "w") as f:
            json.dump(result, f)
    return result


if __name__ == "__main__":
    main()
