"""Embedding benchmark at the dlrm-kaggle sizes of shared/bench/README.md (issue 4's acceptance).

    python bench/embedding.py [--batch 65536] [--vec 128] [--alpha 1.2] [--scale 1.0] [--json out.json]

26 one-hot slots (33.76 M rows at --scale 1), power-law keys, DistributedSlotSparseEmbeddingHash with
SGD. Times (CUDA events, median): hash-table find; the training forward (insert-or-find, lookup,
combine, backward plan); the evaluation forward (find + gather); backward + fused SGD update.
Each is set against its bytes floor and the measured device copy bandwidth.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from hugectr_core.contracts import EmbeddingConfig, StepContext
from hugectr_core.params import CreateOptimizer
from hugectr_core.plugins import registry

KAGGLE = [1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27,
          14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572]


def power_law_keys(rng, sizes, batch, alpha):
    """Global keys (slot offsets added), sample-major (B, S), key 0 of each slot the hottest."""
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cols = []
    for size, off in zip(sizes, offsets):
        u = rng.random(batch)
        y = ((size ** (1 - alpha) - 1) * u + 1) ** (1 / (1 - alpha))
        cols.append(np.clip(np.floor(y).astype(np.int64) - 1, 0, size - 1) + off)
    return np.stack(cols, 1).astype(np.uint32)


def timed(xp, fn, repeat):
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeat):
        start, end = xp.cuda.Event(), xp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(xp.cuda.get_elapsed_time(start, end) * 1e-3)
    return float(np.median(times))


def copy_bandwidth(xp, nbytes=2 << 30):
    a = xp.empty(nbytes // 4, xp.float32)
    b = xp.empty_like(a)
    t = timed(xp, lambda: b.__setitem__(Ellipsis, a), 10)
    return 2 * nbytes / t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=65536)
    parser.add_argument("--vec", type=int, default=128)
    parser.add_argument("--alpha", type=float, default=1.2)
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the tables (e.g. 0.01 for a quick run)")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    import cupy as xp

    sizes = [max(1, int(s * args.scale)) for s in KAGGLE]
    rows, S, B, E = sum(sizes), len(sizes), args.batch, args.vec
    mb = int(np.ceil(rows * 1.05 * 4 * E / 2**20)) + 1  # SGD: no optimizer state
    cfg = EmbeddingConfig("DistributedSlotSparseEmbeddingHash", "bench", "data1", E, "sum", mb, S, (1,) * S)
    emb = registry("embeddings").load(cfg.type_name)(cfg, registry("optimizers").load("SGD")(
        CreateOptimizer(optimizer_type="SGD", update_type="Local", atomic_update=False)))
    emb.allocate(xp, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    batches = [xp.asarray(power_law_keys(rng, sizes, B, args.alpha).ravel()) for _ in range(args.batches)]
    offsets = xp.arange(B * S + 1, dtype=xp.int64)
    out = xp.empty((B, S, E), xp.float32)
    grad = xp.asarray(rng.standard_normal((B, S, E)).astype(np.float32) * 1e-3)
    train = StepContext(xp=xp, training=True, batch_size=B, current_batchsize=B, step=1)
    evalc = StepContext(xp=xp, training=False, batch_size=B, current_batchsize=B, step=1)
    for keys in batches:  # insert every key the timed batches use
        emb.forward(train, offsets, keys, out)
    keys = batches[0]
    unique = int(xp.unique(keys).size)
    bw = copy_bandwidth(xp)
    n = B * S
    gather_bytes = n * E * 4 * 2                       # read each looked-up row, write the output once
    backward_bytes = n * E * 4 + 2 * unique * E * 4    # read the gradient once, read+write each unique row
    results = {
        "hash find": (timed(xp, lambda: emb.table.find(keys), args.repeat), None, n),
        "forward (eval: find + gather)": (timed(xp, lambda: emb.forward(evalc, offsets, keys, out), args.repeat),
                                          gather_bytes, None),
        "forward (train: insert-or-find + gather + plan)": (
            timed(xp, lambda: emb.forward(train, offsets, keys, out), args.repeat), gather_bytes, None),
    }

    def backward():
        emb.forward(train, offsets, keys, out)
        emb.backward(train, grad, 1e-3)

    t_fwd = results["forward (train: insert-or-find + gather + plan)"][0]
    results["backward + fused SGD (excl. forward)"] = (max(timed(xp, backward, args.repeat) - t_fwd, 1e-9),
                                                       backward_bytes, None)
    props = xp.cuda.runtime.getDeviceProperties(0)
    card = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"Embedding benchmark: {card}, {rows / 1e6:.2f} M rows x {E}, batch {B}, {S} slots, alpha {args.alpha}, "
          f"{unique} unique keys in the batch; device copy {bw / 1e12:.2f} TB/s")
    print(f"{'phase':50} {'ms':>8} {'achieved':>14} {'of copy bw':>10}")
    table = []
    for name, (t, nbytes, keys_n) in results.items():
        if keys_n:
            rate, frac = f"{keys_n / t / 1e9:.2f} G keys/s", None
        else:
            rate, frac = f"{nbytes / t / 1e12:.2f} TB/s", nbytes / t / bw
        print(f"{name:50} {t * 1e3:8.3f} {rate:>14} {'' if frac is None else f'{frac:.0%}':>10}")
        table.append({"phase": name, "ms": t * 1e3, "rate": rate, "of_copy_bandwidth": frac})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"card": card, "rows": rows, "vec": E, "batch": B, "unique": unique,
                       "copy_bw": bw, "phases": table}, f, indent=2)


if __name__ == "__main__":
    main()
