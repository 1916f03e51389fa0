"""Per-layer forward+backward benchmark at the DLRM sizes of shared/bench/README.md (batch 65 536).

    python bench/layers.py [--batch 65536] [--dtype float32|float16] [--tf32] [--repeat 20] [--json out.json]

Each row: median time of forward+backward (CUDA events), the work it must do (FLOP for GEMM-bound
layers, bytes read+written once for memory-bound ones), and the achieved rate against the card's
ceiling measured the same day (DESIGN.md section 8: copy 3.0 TB/s, fp32 51, TF32 431, fp16 779 TFLOP/s).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from hugectr_core.contracts.layer import StepContext
from hugectr_core.testing import init_params, make_layer

CEILING = {"bytes": 3.0e12, "float32": 51e12, "tf32": 431e12, "float16": 779e12}


def cases(B):
    """(label, type, bottom shapes, layer args, flop count or None for memory-bound)."""
    gemm = lambda k, n: 3 * 2 * B * k * n  # noqa: E731 - fwd + dgrad + wgrad
    mlp_flops = sum(gemm(a, b) for a, b in [(13, 512), (512, 256), (256, 128)])
    return [
        ("InnerProduct 479->1024", "InnerProduct", [(B, 479)], {"num_output": 1024}, gemm(479, 1024)),
        ("InnerProduct 1024->1024", "InnerProduct", [(B, 1024)], {"num_output": 1024}, gemm(1024, 1024)),
        ("MLP 13-512-256-128", "MLP", [(B, 13)], {"num_outputs": [512, 256, 128]}, mlp_flops),
        ("ReLU (B,1024)", "ReLU", [(B, 1024)], {}, None),
        ("Dropout (B,1024)", "Dropout", [(B, 1024)], {"dropout_rate": 0.5}, None),
        ("Concat (B,128)+(B,351)", "Concat", [(B, 128), (B, 351)], {}, None),
        ("Interaction (B,128)+(B,26,128)", "Interaction", [(B, 128), (B, 26, 128)], {}, None),
        ("MultiCross v1 x3 (B,479)", "MultiCross", [(B, 479)], {"num_layers": 3}, None),
        ("BinaryCrossEntropyLoss (B,1)", "BinaryCrossEntropyLoss", [(B, 1), (B, 1)], {}, None),
    ]


def bytes_moved(bottoms, tops, params, dtype) -> int:
    """Fewest bytes: read bottoms+params, write tops (forward); read top grads+bottoms, write bottom+param grads."""
    n = lambda shapes: sum(int(np.prod(s)) for s in shapes)  # noqa: E731
    return np.dtype(dtype).itemsize * (2 * n(bottoms) + 2 * n(tops) + 3 * n(params) + n(bottoms))


def bench_one(xp, label, kind, shapes, args, flops, dtype, repeat, tf32):
    layer = make_layer(kind, [f"b{i}" for i in range(len(shapes))], ["t"], **args)
    rng = np.random.default_rng(0)
    bottoms = [xp.asarray(rng.standard_normal(s).astype(dtype)) for s in shapes]
    if kind == "BinaryCrossEntropyLoss":
        bottoms[1] = xp.asarray((rng.random(shapes[1]) < 0.25).astype(dtype))
    tops = [xp.empty(s, dtype) for s in layer.infer_shapes(shapes)]
    params = init_params(layer, shapes, xp=xp, dtype=dtype)
    grads = [xp.empty_like(p) for p in params]
    top_grads = [xp.asarray(rng.standard_normal(t.shape).astype(dtype)) for t in tops]
    bottom_grads = [xp.empty_like(b) if layer.bottom_needs_grad(i) else None for i, b in enumerate(bottoms)]
    ws = {w.name: xp.empty(w.shape, w.dtype or dtype) for w in layer.workspace_specs(shapes)}
    ctx = StepContext(xp=xp, training=True, rng=xp.random.default_rng(0), batch_size=shapes[0][0],
                      current_batchsize=shapes[0][0], step=1)

    def step():
        layer.forward(ctx, bottoms, tops, params, ws)
        layer.backward(ctx, bottoms, tops, top_grads, bottom_grads, params, grads, ws)

    for _ in range(3):
        step()
    times = []
    for _ in range(repeat):
        start, end = xp.cuda.Event(), xp.cuda.Event()
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(xp.cuda.get_elapsed_time(start, end) * 1e-3)
    t = float(np.median(times))
    if flops is not None:
        ceiling = CEILING["tf32" if tf32 and dtype == np.float32 else np.dtype(dtype).name]
        return {"layer": label, "ms": t * 1e3, "work": f"{flops / 1e9:.1f} GFLOP", "rate": f"{flops / t / 1e12:.1f} TFLOP/s",
                "of_ceiling": flops / t / ceiling}
    moved = bytes_moved(shapes, [x.shape for x in tops], [p.shape for p in params], dtype)
    return {"layer": label, "ms": t * 1e3, "work": f"{moved / 1e6:.0f} MB", "rate": f"{moved / t / 1e9:.0f} GB/s",
            "of_ceiling": moved / t / CEILING["bytes"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=65536)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    parser.add_argument("--tf32", action="store_true")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    import cupy as xp
    from cupy._core import _routines_linalg as linalg

    linalg.set_compute_type(xp.float32, linalg.COMPUTE_TYPE_TF32 if args.tf32 else linalg.COMPUTE_TYPE_DEFAULT)
    dtype = np.dtype(args.dtype)
    rows = []
    for label, kind, shapes, layer_args, flops in cases(args.batch):
        try:
            rows.append(bench_one(xp, label, kind, shapes, layer_args, flops, dtype, args.repeat, args.tf32))
        except Exception as exc:  # a layer without fp16 support: report, keep going
            rows.append({"layer": label, "ms": float("nan"), "work": "-", "rate": f"error: {exc}"[:60], "of_ceiling": 0})
    props = xp.cuda.runtime.getDeviceProperties(0)
    card = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    mode = args.dtype + (" TF32" if args.tf32 else "")
    print(f"Layer forward+backward, batch {args.batch}, {mode}, {card}")
    print(f"{'layer':34} {'ms':>8} {'work':>12} {'achieved':>16} {'of ceiling':>10}")
    for r in rows:
        print(f"{r['layer']:34} {r['ms']:8.3f} {r['work']:>12} {r['rate']:>16} {r['of_ceiling']:10.0%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"card": card, "mode": mode, "batch": args.batch, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
