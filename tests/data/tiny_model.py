"""A tiny HugeCTR-style model script for the CLI tests (small DCN on small learnable RawAsync data).

    python tests/data/tiny_model.py --data DIR [--iters 40] [--generate] [--device cpu]
"""
import argparse

import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams

SLOTS, DENSE, TRAIN, EVAL, BATCH = [60, 40, 30, 20], 4, 4096, 1024, 128


def generate(data_dir):
    return DataGenerator(DataGeneratorParams(
        "RawAsync", 1, DENSE, len(SLOTS), False, f"{data_dir}/train.bin", f"{data_dir}/val.bin", SLOTS,
        num_samples=TRAIN, eval_num_samples=EVAL, seed=7, label_model="learnable")).generate()


def build_model(data_dir, device="cpu"):
    solver = hugectr.CreateSolver(batchsize=BATCH, batchsize_eval=256, max_eval_batches=EVAL // 256, lr=0.01,
                                  seed=1, device=device, repeat_dataset=True)
    reader = hugectr.DataReaderParams(
        data_reader_type=hugectr.DataReaderType_t.RawAsync, source=[f"{data_dir}/train.bin"],
        eval_source=f"{data_dir}/val.bin", check_type=hugectr.Check_t.Non, num_samples=TRAIN,
        eval_num_samples=EVAL, async_param=hugectr.AsyncParam(num_threads=1, num_batches_per_thread=2,
                                                              shuffle=False, multi_hot_reader=True,
                                                              is_dense_float=True))
    model = hugectr.Model(solver, reader, hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adam))
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=DENSE, dense_name="dense",
                            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True,
                                                                                          len(SLOTS))]))
    model.add(hugectr.SparseEmbedding(embedding_type=hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
                                      workspace_size_per_gpu_in_mb=1, embedding_vec_size=4, combiner="sum",
                                      sparse_embedding_name="emb", bottom_name="data1"))
    for kind, bottoms, tops, kw in [
            ("Reshape", ["emb"], ["flat"], {"leading_dim": 4 * len(SLOTS)}),
            ("Concat", ["flat", "dense"], ["x"], {}),
            ("MultiCross", ["x"], ["cross"], {"num_layers": 2}),
            ("InnerProduct", ["x"], ["fc1"], {"num_output": 16}),
            ("ReLU", ["fc1"], ["r1"], {}),
            ("Concat", ["r1", "cross"], ["x2"], {}),
            ("InnerProduct", ["x2"], ["fc2"], {"num_output": 1}),
            ("BinaryCrossEntropyLoss", ["fc2", "label"], ["loss"], {})]:
        model.add(hugectr.DenseLayer(layer_type=kind, bottom_names=bottoms, top_names=tops, **kw))
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--generate", action="store_true")
    args = parser.parse_args(argv)
    if args.generate:
        generate(args.data)
    model = build_model(args.data, args.device)
    model.compile()
    return model.fit(max_iter=args.iters, display=max(args.iters // 8, 1), eval_interval=max(args.iters // 4, 1),
                     snapshot=0)


if __name__ == "__main__":
    main()
