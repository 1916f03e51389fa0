"""Inference benchmark: samples/s of ``InferenceModel.predict_arrays`` for the dlrm-kaggle model
(/work/shared/bench/README.md) next to plain PyTorch inference of the same model and weights.

    python bench/inference.py [--device auto|cpu|gpu] [--batch 65536] [--batches 8] [--small]
                              [--data ./data/bench_inference] [--result out.json]

Keys follow a bounded power law (alpha 1.2) per slot, with slot offsets. The sparse folder holds
exactly the keys the timed batches use (random vectors): the table is smaller than the full 33.76 M
rows, which matters little for lookup cost and keeps the files small. Both sides start from host
arrays and return host predictions (transfers included). ``--small`` shrinks everything for a CPU.
PyTorch is optional: without it only our figure is reported.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import hugectr  # noqa: E402
from hugectr.inference import InferenceModel, InferenceParams  # noqa: E402
from hugectr_core.datagen import sample_keys  # noqa: E402

FULL = dict(slots=[1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
                   5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572],
            vec=128, bottom=[512, 256, 128], top=[1024, 1024, 512, 256, 1], batch=65536, batches=8)
SMALL = dict(slots=[100, 50, 1000, 300, 20, 5, 400, 60, 3, 900, 70, 800, 40, 7, 90, 600, 10, 50, 20, 4, 700,
                    18, 15, 200, 30, 100], vec=8, bottom=[16, 8], top=[32, 16, 1], batch=512, batches=2)
DENSE = 13


def build_and_save(c, folder, batches):
    """Graph JSON, dense file (random init) and a sparse folder holding the keys of ``batches``."""
    keys = np.unique(np.concatenate([b[1].ravel() for b in batches]))
    mb = math.ceil(keys.size * c["vec"] * 4 * 2 / 2**20) + 1  # rows + SGD needs no state; 2x headroom
    solver = hugectr.CreateSolver(batchsize=64, batchsize_eval=64, lr=0.01, seed=1, device="cpu",
                                  i64_input_key=True)
    reader = hugectr.DataReaderParams(data_reader_type="RawAsync", source=["unused"], eval_source="unused")
    model = hugectr.Model(solver, reader, hugectr.CreateOptimizer(optimizer_type="SGD"))
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=DENSE, dense_name="dense",
                            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True,
                                                                                          len(c["slots"]))]))
    model.add(hugectr.SparseEmbedding(embedding_type="DistributedSlotSparseEmbeddingHash",
                                      workspace_size_per_gpu_in_mb=mb, embedding_vec_size=c["vec"], combiner="sum",
                                      sparse_embedding_name="sparse_embedding1", bottom_name="data1"))
    dl = hugectr.DenseLayer
    model.add(dl("MLP", ["dense"], ["mlp1"], num_outputs=c["bottom"]))
    model.add(dl("Interaction", ["mlp1", "sparse_embedding1"], ["interaction1"]))
    model.add(dl("MLP", ["interaction1"], ["mlp2"], num_outputs=c["top"],
                 activations=["Relu"] * (len(c["top"]) - 1) + ["None"]))
    model.add(dl("BinaryCrossEntropyLoss", ["mlp2", "label"], ["loss"]))
    model.compile()
    os.makedirs(folder, exist_ok=True)
    model.graph_to_json(f"{folder}/dlrm.json")
    model.save_params_to_files(f"{folder}/dlrm", 0)
    sparse = f"{folder}/dlrm0_sparse_0.model"
    keys.astype("<i8").tofile(f"{sparse}/key")
    rng = np.random.default_rng(2)
    rng.uniform(-0.05, 0.05, (keys.size, c["vec"])).astype("<f4").tofile(f"{sparse}/emb_vector")
    return f"{folder}/dlrm.json", f"{folder}/dlrm_dense_0.model", sparse


def make_batches(c, n, seed=0):
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(c["slots"])[:-1]])
    out = []
    for _ in range(n):
        dense = rng.random((c["batch"], DENSE), dtype=np.float32)
        keys = np.stack([sample_keys(rng, s, c["batch"], "PowerLaw", 1.2) for s in c["slots"]], axis=1) + offsets
        out.append((dense, keys.astype(np.int64)))
    return out


def time_ours(inference, batches, repeats):
    inference.predict_arrays(*_args(batches[0]))  # warm-up (kernel compilation)
    start = time.perf_counter()
    preds = [inference.predict_arrays(*_args(b)) for _ in range(repeats) for b in batches]
    seconds = time.perf_counter() - start
    return sum(len(p) for p in preds) / seconds, preds[: len(batches)]


def _args(batch):
    return batch[0], {"data1": batch[1]}


def time_torch(c, graph_dense, sparse, batches, repeats, device):
    try:
        import torch  # noqa: PLC0415
    except ImportError:
        return None, None
    dev = torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")
    flat = np.fromfile(graph_dense, dtype="<f4")
    widths = [DENSE] + c["bottom"]
    n_vec = len(c["slots"]) + 1
    top_in = c["bottom"][-1] + n_vec * (n_vec - 1) // 2 + 1
    layers, pos = [], 0
    for fan_in, fan_out in list(zip(widths[:-1], widths[1:])) + list(zip([top_in] + c["top"][:-1], c["top"])):
        w = torch.tensor(flat[pos:pos + fan_in * fan_out].reshape(fan_in, fan_out), device=dev)
        pos += fan_in * fan_out
        b = torch.tensor(flat[pos:pos + fan_out], device=dev)
        pos += fan_out
        layers.append((w, b))
    keys = np.fromfile(f"{sparse}/key", dtype="<i8")
    table = torch.tensor(np.fromfile(f"{sparse}/emb_vector", dtype="<f4").reshape(keys.size, -1), device=dev)
    sorted_keys = torch.tensor(keys, device=dev)  # keys are written sorted (np.unique)
    rows, cols = np.tril_indices(n_vec, -1)
    rows, cols = torch.tensor(rows, device=dev), torch.tensor(cols, device=dev)
    n_bottom = len(c["bottom"])

    @torch.no_grad()
    def predict(dense, k):
        x = torch.from_numpy(dense).to(dev)
        for i, (w, b) in enumerate(layers[:n_bottom]):
            x = torch.relu(x @ w + b)
        kk = torch.from_numpy(k).to(dev)
        emb = table[torch.searchsorted(sorted_keys, kk)]
        t = torch.cat([x[:, None, :], emb], dim=1)
        z = torch.bmm(t, t.transpose(1, 2))[:, rows, cols]
        h = torch.cat([x, z, torch.zeros_like(x[:, :1])], dim=1)
        for i, (w, b) in enumerate(layers[n_bottom:]):
            h = h @ w + b
            if i < len(layers) - n_bottom - 1:
                h = torch.relu(h)
        return torch.sigmoid(h).cpu().numpy()

    predict(*batches[0])
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    preds = [predict(*b) for _ in range(repeats) for b in batches]
    seconds = time.perf_counter() - start
    return sum(len(p) for p in preds) / seconds, preds[: len(batches)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    parser.add_argument("--small", action="store_true", help="tiny sizes that run on a CPU")
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--batches", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", default="./data/bench_inference")
    parser.add_argument("--result", default="")
    args = parser.parse_args(argv)
    c = dict(SMALL if args.small else FULL)
    c["batch"] = args.batch or c["batch"]
    c["batches"] = args.batches or c["batches"]
    batches = make_batches(c, c["batches"])
    graph, dense, sparse = build_and_save(c, args.data, batches)
    params = InferenceParams(model_name="dlrm", max_batchsize=c["batch"], dense_model_file=dense,
                             sparse_model_files=[sparse], i64_input_key=True, device=args.device)
    inference = InferenceModel(graph, params)
    ours, our_preds = time_ours(inference, batches, args.repeats)
    theirs, their_preds = time_torch(c, dense, sparse, batches, args.repeats, args.device)
    report = {"batch": c["batch"], "config": c, "device": args.device,
              "hugectr_core": {"samples_per_s": ours},
              "pytorch": None if theirs is None else {"samples_per_s": theirs}}
    if their_preds is not None:
        report["max_abs_diff_vs_pytorch"] = float(max(np.abs(a - b).max() for a, b in zip(our_preds, their_preds)))
    print(json.dumps(report, indent=2))
    if args.result:
        with open(args.result, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
