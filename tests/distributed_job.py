"""One training job for the scale-out tests: run it in-process or under ``mpiexec -n N``.

    python tests/distributed_job.py --model dcn|dlrm --embedding distributed|localized --data DIR
        --vvgpu '[[0],[0]]' --steps 12 --out result.json [--save PREFIX] [--load PREFIX] [--device cpu|gpu]
        [--fail-rank R] [--sgd] [--hybrid NVLink_SingleNode|IB_NVLink] [--grouped] [--oneshot]

Every rank writes ``out`` with ``.rank<R>`` appended: the loss of every step, the eval AUC and the
predictions of the first evaluation batch. ``--fail-rank R`` makes rank R raise after two steps
(the other ranks must stop too). ``--model-differs`` gives the last rank a wider first layer.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

import hugectr  # noqa: E402

EMBEDDINGS = {"distributed": hugectr.Embedding_t.DistributedSlotSparseEmbeddingHash,
              "localized": hugectr.Embedding_t.LocalizedSlotSparseEmbeddingHash}


def generate(model: str, data: str) -> None:
    """The model's learnable data set under ``data`` (written once)."""
    if os.path.exists(os.path.join(data, "val.bin")):
        return
    if model == "dlrm":
        import e2e_models  # noqa: PLC0415

        e2e_models.generate_dlrm(data)
    else:
        import dcn_learnable  # noqa: PLC0415

        dcn_learnable.generate(data)


def build(args, vvgpu, rank: int):
    if args.model == "dlrm":
        import e2e_models as builder  # noqa: PLC0415

        model = builder.build_dlrm(args.data, device=args.device)
    else:
        import dcn_learnable as builder  # noqa: PLC0415

        model = builder.build_model(args.data, args.device)
    model.solver.vvgpu = vvgpu
    model.sparse_embeddings[0].embedding_type = EMBEDDINGS[args.embedding]
    if getattr(args, "sgd", False) or getattr(args, "hybrid", None):  # hybrid embedding trains with SGD
        model.opt_params = hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.SGD)
        model.sparse_embeddings[0].optimizer = None
    if getattr(args, "hybrid", None):
        model.sparse_embeddings[0].hybrid_embedding_param = hugectr.HybridEmbeddingParam(
            2, -1, 0.01, 1.3e11, 1.9e11, 1.0, getattr(hugectr.CommunicationType, args.hybrid),
            hugectr.HybridEmbeddingType.Distributed)
        model.solver.num_iterations_statistics = 3
    model.solver.grouped_all_reduce = bool(getattr(args, "grouped", False))
    if getattr(args, "oneshot", False):
        model.solver.all_reduce_algo = hugectr.AllReduceAlgo.OneShot
    if args.model_differs and rank == len(vvgpu) - 1:
        first = next(d for d in model.dense_layers if d.type_name in ("InnerProduct", "MLP"))
        if first.type_name == "MLP":
            outs = list(first.args["num_outputs"])
            first.args["num_outputs"] = [n + 1 for n in outs[:-1]] + outs[-1:]
        else:
            first.args["num_output"] += 1
    return model


def host_rank() -> int:
    for name in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="dlrm", choices=["dlrm", "dcn"])
    parser.add_argument("--embedding", default="distributed", choices=sorted(EMBEDDINGS))
    parser.add_argument("--data", required=True)
    parser.add_argument("--vvgpu", default="[[0]]")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--eval-batches", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True)
    parser.add_argument("--save")
    parser.add_argument("--load")
    parser.add_argument("--fail-rank", type=int, default=-1)
    parser.add_argument("--model-differs", action="store_true")
    parser.add_argument("--sgd", action="store_true", help="SGD instead of the builder's Adam")
    parser.add_argument("--hybrid", choices=["NVLink_SingleNode", "IB_NVLink", "IB_NVLink_Hier"],
                        help="hybrid embedding with this communication type (and SGD)")
    parser.add_argument("--grouped", action="store_true", help="CreateSolver(grouped_all_reduce=True)")
    parser.add_argument("--oneshot", action="store_true", help="CreateSolver(all_reduce_algo=AllReduceAlgo.OneShot)")
    args = parser.parse_args(argv)
    rank = host_rank()
    generate(args.model, args.data)
    model = build(args, json.loads(args.vvgpu), rank)
    model.compile()
    if args.load:
        model.load_dense_weights(f"{args.load}_dense_0.model")
        model.load_sparse_weights([f"{args.load}0_sparse_0.model"])
    losses = []
    for step in range(args.steps):
        if step == 2 and rank == args.fail_rank:
            raise RuntimeError(f"rank {rank} fails on purpose (test)")
        model.train()
        losses.append(model.get_current_loss())
    if args.save:
        model.save_params_to_files(args.save, 0)
    reader = model.get_data_reader_eval()
    first = reader.next_batch()
    reader.set_source("")
    predictions = model._each(lambda rt: rt.eval_step(first))[0][0]
    for _ in range(args.eval_batches):
        model.eval()
    auc = dict(model.get_eval_metrics())["AUC"]
    with open(f"{args.out}.rank{rank}", "w") as f:
        emb = model.runtime.embeddings[0]
        frequent = int(emb.hot_keys.size) if getattr(emb, "hot_keys", None) is not None else None
        json.dump({"losses": losses, "auc": auc, "predictions": np.asarray(predictions).ravel().tolist(),
                   "frequent_categories": frequent}, f)


if __name__ == "__main__":
    main()
