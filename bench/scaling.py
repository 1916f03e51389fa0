"""Weak scaling of the dlrm-kaggle benchmark: a fixed per-GPU batch on 1, 2, 4 ... GPUs of one host.

    python bench/scaling.py [--per-gpu-batch 65536] [--gpus 1,2,4] [--steps 20] [--precision tf32]
                            [--embedding LocalizedSlotSparseEmbeddingHash] [--grouped-all-reduce]
                            [--cuda-graph on|off] [--json out.json]
    python bench/scaling.py --device cpu --small --per-gpu-batch 512 --gpus 1,2 --steps 3   # smoke run

One process drives every GPU (``vvgpu=[[0, ..., n-1]]``, one thread per GPU, NCCL between them),
the way a HugeCTR user runs it. Each configuration trains on resident batches (bench/dlrm.py's
``ResidentInputs`` on every worker) and prints samples/s and the speed-up over one GPU, all in one run.

``--mpi`` measures one configuration with one process per GPU instead (``vvgpu=[[0], [1], ...]``, one
list per rank, NCCL bootstrapped through MPI): run it under ``mpirun -np N`` for N = 1, 2, 4 in one
job and compare the printed rates (rank 0 prints and writes ``--json``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlrm  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-gpu-batch", type=int, default=65536)
    p.add_argument("--gpus", default="1,2,4")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--precision", choices=["tf32", "fp32", "mixed"], default="tf32")
    p.add_argument("--embedding", default="LocalizedSlotSparseEmbeddingHash",
                   help="DistributedSlotSparseEmbeddingHash, LocalizedSlotSparseEmbeddingHash or hybrid")
    p.add_argument("--device", choices=["gpu", "cpu"], default="gpu")
    p.add_argument("--small", action="store_true")
    p.add_argument("--mpi", action="store_true", help="one process per GPU (run under mpirun -np N)")
    p.add_argument("--phases", action="store_true", help="--mpi: also time each phase of rank 0's step")
    p.add_argument("--grouped-all-reduce", action="store_true",
                   help="CreateSolver(grouped_all_reduce=True), as HugeCTR's DLRM sample sets it with hybrid "
                        "embedding: the frequent gradients travel in the dense all-reduce")
    p.add_argument("--cuda-graph", choices=["on", "off"], default="on",
                   help="CreateSolver(use_cuda_graph=...); one process per GPU (--mpi) records the network")
    p.add_argument("--json")
    return p.parse_args(argv)


def mpi_size_and_rank() -> tuple[int, int]:
    from mpi4py import MPI  # noqa: PLC0415 - only for --mpi

    return MPI.COMM_WORLD.Get_size(), MPI.COMM_WORLD.Get_rank()


def sync_all(model) -> None:
    model._each(lambda rt: rt.xp.cuda.Device().synchronize() if hasattr(rt.xp, "cuda") else None)


def measure(args, gpus: int, vvgpu=None) -> dict:
    conf = argparse.Namespace(batch=args.per_gpu_batch * gpus, precision=args.precision, device=args.device,
                              e2e_batches=1, vvgpu=vvgpu or [list(range(gpus))], embedding=args.embedding,
                              grouped_all_reduce=args.grouped_all_reduce, cuda_graph=args.cuda_graph)
    cards = dlrm.KAGGLE if not args.small else [min(c, dlrm.SMALL_CARD_CAP) for c in dlrm.KAGGLE]
    model = dlrm.build_model(conf, cards, "unused-train.bin", "unused-val.bin")
    batches = dlrm.host_batches(2, conf.batch, cards)
    # hybrid embedding: the statistics Model.train() would gather first, from these batches
    model._each(lambda rt: [e.plan(batches) for e in rt.embeddings if getattr(e, "needs_statistics", False)])
    residents = model._each(lambda rt: dlrm.ResidentInputs(rt, batches).__enter__())
    lr = model.learning_rate
    try:
        for i in range(args.warmup):
            model._each(lambda rt, b=batches[i % 2]: rt.train_step(b, lr))
        sync_all(model)
        start = time.perf_counter()
        for i in range(args.steps):
            losses = model._each(lambda rt, b=batches[i % 2]: rt.train_step(b, lr))
        sync_all(model)
        seconds = (time.perf_counter() - start) / args.steps
    finally:
        for resident in residents:
            resident.__exit__()
    phases = time_phases(model, batches, lr, args) if args.phases else None
    loss = float(dlrm._host(losses[0]))
    solver, network = model.solver, model.runtime.network_graphs.describe()
    model.close()
    model.workers.close()
    return {"gpus": gpus, "global_batch": conf.batch, "step_ms": seconds * 1e3,
            "samples_per_s": conf.batch / seconds, "loss": loss, "phases_ms": phases,
            "grouped_all_reduce": solver.grouped_all_reduce, "network": network}


def time_phases(model, batches, lr, args, steps: int = 10) -> dict:
    """ms per step of each phase of this process's (first) worker, on its device stream; "host step" is
    the Python time of one train_step call (launches, syncs)."""
    from hugectr_core import backend  # noqa: PLC0415

    rt = model.runtime
    clock = dlrm.Clock(rt.xp, not backend.is_numpy(rt.xp))
    timer = dlrm.PhaseTimer(clock)
    network = tuple((obj, attr, name, False) for obj, attr, name in dlrm.network_phases(rt))
    for obj, attr, name, host in ((rt, "_embed", "embedding forward (with exchange)", False), *network,
                                  (rt.dense, "update", "optimizer", False),
                                  (rt, "_embedding_backward", "embedding backward (with exchange)", False),
                                  (rt.comm, "alltoall", "all-to-all (inside the embedding phases)", False),
                                  (rt.comm, "reduce_scatter_sum", "reduce-scatter (inside embedding forward)", False),
                                  (rt.comm, "allgather", "all-gather (inside embedding backward)", False),
                                  (rt.comm, "allreduce_sum", "all-reduce (gradients, loss)", False),
                                  (rt, "train_step", "host time of train_step", True)):
        timer.wrap(obj, attr, name, host)
    try:
        for i in range(steps):
            model._each(lambda worker, b=batches[i % 2]: worker.train_step(b, lr))
    finally:
        timer.restore()
    return timer.ms_per_step(steps)


def main_mpi(args) -> dict:
    from mpi4py import MPI  # noqa: PLC0415 - only for --mpi

    size, rank = mpi_size_and_rank()
    row = measure(args, size, vvgpu=[[r] for r in range(size)])
    every_rank = MPI.COMM_WORLD.gather(row["phases_ms"] or {}, root=0)
    if rank == 0:
        print(f"MPI, {size} process(es), one GPU each: {row['samples_per_s'] / 1e6:.3f} M samples/s, "
              f"step {row['step_ms']:.1f} ms, global batch {row['global_batch']}", flush=True)
        print(f"  training step: {row['network']}; grouped_all_reduce={row['grouped_all_reduce']}", flush=True)
        for name, ms in (row["phases_ms"] or {}).items():
            # the spread over ranks: a collective's time includes waiting for the slowest rank
            spread = [p.get(name, float("nan")) for p in every_rank]
            print(f"  {name:45} {ms:8.3f} ms/step  (ranks {min(spread):.3f} .. {max(spread):.3f})", flush=True)
        row["phases_ms_by_rank"] = every_rank
        if args.json:
            with open(args.json, "w") as f:
                json.dump(row, f, indent=1)
    return row


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.mpi:
        return main_mpi(args)
    rows = []
    for gpus in (int(g) for g in args.gpus.split(",")):
        rows.append(measure(args, gpus))
        print(f"{gpus} GPU(s): {rows[-1]['samples_per_s'] / 1e6:.3f} M samples/s, "
              f"step {rows[-1]['step_ms']:.1f} ms", flush=True)
    base = rows[0]["samples_per_s"] / rows[0]["gpus"]
    for row in rows:
        row["speedup_over_one"] = row["samples_per_s"] / base
    from hugectr_core import backend  # noqa: PLC0415

    card = dlrm.card_name(backend.resolve(args.device), args.device == "gpu")
    print(f"\nWeak scaling, dlrm-kaggle, {args.per_gpu_batch} samples per GPU, {args.precision}, "
          f"{args.embedding}, {card}")
    print(f"{'GPUs':>4} {'global batch':>12} {'M samples/s':>12} {'step ms':>8} {'speed-up':>8}")
    for r in rows:
        print(f"{r['gpus']:>4} {r['global_batch']:>12} {r['samples_per_s'] / 1e6:>12.3f} {r['step_ms']:>8.1f} "
              f"{r['speedup_over_one']:>7.2f}x")
    result = {"card": card, "date": time.strftime("%Y-%m-%d"), "precision": args.precision,
              "embedding": args.embedding, "per_gpu_batch": args.per_gpu_batch, "rows": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
