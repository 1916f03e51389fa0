"""The ``hugectr`` command: plugins, generate, train, summary, predict, export-onnx, bench, plot.

Every subcommand has ``--help``. Exit codes scripts can rely on: 0 success, 1 a HugeCTR error (the
message on stderr; also a model script that failed), 2 a usage error (bad flags, missing files).

Example:
    >>> build_parser().parse_args(["generate", "--slot-sizes", "10,20", "--output", "d"]).slot_sizes
    [10, 20]
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import time
import traceback

from .errors import HugeCTRError

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
SUMMARY_ONLY_ENV = "HUGECTR_SUMMARY_ONLY"


class UsageError(Exception):
    """A usage problem found after parsing (a missing file): exit code 2."""


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


# -- plugins -------------------------------------------------------------------------------------
def _cmd_plugins(args) -> int:
    from .plugins import list_plugins, registry

    rows = [("kind", "name", "distribution", "version", "cuda kernels")]
    for e in list_plugins():
        if args.kind and e.kind != args.kind:
            continue
        rows.append((e.kind, e.name, e.distribution, e.version, "yes" if e.ships_kernels else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for kind in ("layers", "embeddings", "readers", "optimizers", "filesystems"):
        for name, entries in registry(kind)._conflicts.items():
            print(f"CONFLICT {kind}:{name} provided by {', '.join(e.distribution for e in entries)}", file=sys.stderr)
    return EXIT_OK


# -- generate ------------------------------------------------------------------------------------
def generator_params(args):
    """``DataGeneratorParams`` from the ``generate`` flags (file names default under ``--output``)."""
    from .datagen import DataGeneratorParams

    parquet = args.format == "Parquet"
    source = args.source or os.path.join(args.output, "file_list.txt" if parquet else "train.bin")
    eval_source = args.eval_source or os.path.join(args.output, "file_list_test.txt" if parquet else "val.bin")
    nnz = args.nnz * len(args.slot_sizes) if args.nnz and len(args.nnz) == 1 else (args.nnz or [])
    return DataGeneratorParams(
        args.format, args.label_dim, args.dense_dim, len(args.slot_sizes), args.i64, source, eval_source,
        args.slot_sizes, nnz_array=nnz, dist_type=args.dist, power_law_type=args.power_law, alpha=args.alpha,
        num_files=args.num_files, eval_num_files=args.eval_num_files, num_samples_per_file=args.samples_per_file,
        num_samples=args.num_samples, eval_num_samples=args.eval_num_samples,
        float_label_dense=args.float_label_dense, num_threads=args.threads, seed=args.seed,
        label_model="learnable" if args.learnable else "random")


def _cmd_generate(args) -> int:
    from .datagen import DataGenerator

    result = DataGenerator(generator_params(args)).generate()
    print(json.dumps(result, indent=1))
    return EXIT_OK


# -- scripts: train and summary -------------------------------------------------------------------
def _run_script(script: str, script_args: list[str]) -> int:
    """Run a model script as ``__main__`` with ``sys.argv = [script, *script_args]``."""
    if not os.path.isfile(script):
        raise UsageError(f"model script '{script}' not found")
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [script, *script_args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
        return EXIT_OK
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_ERROR)
    except HugeCTRError:
        raise
    except Exception:  # noqa: BLE001 - a failing user script is reported, never a crash of the CLI
        traceback.print_exc()
        return EXIT_ERROR
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


class _env:
    """Set one environment variable for the duration of a ``with`` block (None: leave it alone)."""

    def __init__(self, name: str, value: str | None):
        self.name, self.value, self.saved = name, value, None

    def __enter__(self):
        self.saved = os.environ.get(self.name)
        if self.value is not None:
            os.environ[self.name] = self.value

    def __exit__(self, *exc):
        if self.saved is None:
            os.environ.pop(self.name, None)
        else:
            os.environ[self.name] = self.saved


def _cmd_train(args) -> int:
    if args.graph and args.script:
        raise UsageError("train takes either a model script or --graph, not both")
    if not args.graph and not args.script:
        raise UsageError("train needs a model script (hugectr train model.py [args]) or --graph graph.json")
    with _env("HUGECTR_METRICS_LOG", args.metrics_log):
        return _train_graph(args) if args.graph else _run_script(args.script, args.script_args)


def _train_graph(args) -> int:
    import hugectr

    from .model import Model

    if not os.path.isfile(args.graph):
        raise UsageError(f"graph JSON '{args.graph}' not found")
    if not hasattr(Model, "construct_from_json"):
        raise HugeCTRError("training from a graph JSON arrives with the model-lifecycle work (issue 6): this "
                           "version's Model has no construct_from_json; train with a Python model script meanwhile")
    if not args.source or not args.eval_source:
        raise UsageError("train --graph needs --source and --eval-source (the data the graph trains on)")
    solver = hugectr.CreateSolver(batchsize=args.batchsize, batchsize_eval=args.batchsize_eval, lr=args.lr,
                                  max_eval_batches=args.max_eval_batches, repeat_dataset=True, device=args.device,
                                  seed=args.seed, i64_input_key=args.i64)
    reader = hugectr.DataReaderParams(
        data_reader_type=args.reader, source=[args.source], eval_source=args.eval_source,
        check_type=hugectr.Check_t.Non, slot_size_array=args.slot_sizes or [],
        async_param=hugectr.AsyncParam(num_threads=1, num_batches_per_thread=4, shuffle=False,
                                       multi_hot_reader=True, is_dense_float=True))
    model = Model(solver, reader, hugectr.CreateOptimizer(optimizer_type=args.optimizer))
    model.construct_from_json(args.graph, True)
    model.compile()
    if args.dense_model:
        model.load_dense_weights(args.dense_model)
    model.summary()
    metrics = model.fit(max_iter=args.max_iter, display=args.display, eval_interval=args.eval_interval,
                        snapshot=args.snapshot, snapshot_prefix=args.snapshot_prefix)
    print(json.dumps({"iterations": args.max_iter, "metrics": metrics}))
    return EXIT_OK


def _cmd_summary(args) -> int:
    """Run the script with HUGECTR_SUMMARY_ONLY=1: the first compile() prints the summary and stops it."""
    with _env(SUMMARY_ONLY_ENV, "1"):
        return _run_script(args.script, args.script_args)


def _cmd_predict(args) -> int:
    from .inference import cli_predict

    pred = cli_predict(args.graph, args.dense, args.sparse, args.source, args.format, args.num_batches,
                       args.batch_size, output=args.output, device=args.device, i64_input_key=args.i64,
                       slot_size_array=args.slot_sizes, num_samples=args.num_samples)
    print(json.dumps({"predictions": int(pred.shape[0]), "output": args.output or None,
                      "mean": float(pred.mean()) if pred.size else None}))
    return EXIT_OK


def _cmd_export_onnx(args) -> int:
    from .inference import cli_export_onnx

    path = cli_export_onnx(args.onnx, args.graph, args.dense, args.sparse, ntp_file=args.ntp,
                           convert_embedding=not args.no_embedding)
    print(json.dumps({"onnx": path}))
    return EXIT_OK


# -- bench ---------------------------------------------------------------------------------------
def _bench_model(data_dir: str, args):
    """A small DCN (formats.md 4.4 (2)) over generated RawAsync data."""
    import hugectr
    from hugectr.tools import DataGenerator, DataGeneratorParams

    slots, dense = args.slot_sizes, 13
    samples = args.batch * 8
    DataGenerator(DataGeneratorParams("RawAsync", 1, dense, len(slots), False, f"{data_dir}/train.bin",
                                      f"{data_dir}/val.bin", slots, num_samples=samples, eval_num_samples=args.batch,
                                      seed=0, label_model="learnable")).generate()
    solver = hugectr.CreateSolver(batchsize=args.batch, batchsize_eval=args.batch, max_eval_batches=1, lr=0.001,
                                  device=args.device, seed=0)
    reader = hugectr.DataReaderParams(
        data_reader_type="RawAsync", source=[f"{data_dir}/train.bin"], eval_source=f"{data_dir}/val.bin",
        check_type=hugectr.Check_t.Non, num_samples=samples, eval_num_samples=args.batch,
        async_param=hugectr.AsyncParam(num_threads=1, num_batches_per_thread=4, shuffle=False,
                                       multi_hot_reader=True, is_dense_float=True))
    model = hugectr.Model(solver, reader, hugectr.CreateOptimizer(optimizer_type="Adam"))
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=dense, dense_name="dense",
                            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True,
                                                                                          len(slots))]))
    model.add(hugectr.SparseEmbedding(embedding_type="DistributedSlotSparseEmbeddingHash",
                                      workspace_size_per_gpu_in_mb=max(1, sum(slots) * args.vec * 12 // 2 ** 20 + 1),
                                      embedding_vec_size=args.vec, combiner="sum",
                                      sparse_embedding_name="emb", bottom_name="data1"))
    layers = [("Reshape", ["emb"], ["flat"], {"leading_dim": args.vec * len(slots)}),
              ("Concat", ["flat", "dense"], ["x"], {}), ("MultiCross", ["x"], ["cross"], {"num_layers": 3}),
              ("InnerProduct", ["x"], ["fc1"], {"num_output": args.hidden}), ("ReLU", ["fc1"], ["r1"], {}),
              ("Concat", ["r1", "cross"], ["x2"], {}), ("InnerProduct", ["x2"], ["fc2"], {"num_output": 1}),
              ("BinaryCrossEntropyLoss", ["fc2", "label"], ["loss"], {})]
    for kind, bottoms, tops, kw in layers:
        model.add(hugectr.DenseLayer(layer_type=kind, bottom_names=bottoms, top_names=tops, **kw))
    model.compile()
    return model


def _cmd_bench(args) -> int:
    import tempfile

    from . import backend

    if args.iters < 1 or args.warmup < 0 or args.batch < 1:
        raise UsageError("bench needs --iters >= 1, --warmup >= 0 and --batch >= 1")
    with tempfile.TemporaryDirectory(prefix="hugectr-bench-") as data_dir:
        model = _bench_model(data_dir, args)
        model.start_data_reading()
        for _ in range(args.warmup):
            model.train()
        model.get_current_loss()   # reading the loss waits for the device
        start = time.perf_counter()
        for _ in range(args.iters):
            model.train()
        loss = model.get_current_loss()
        seconds = time.perf_counter() - start
    result = {"device": backend.device_name(model.runtime.xp), "batch": args.batch, "iterations": args.iters,
              "seconds": round(seconds, 6), "ms_per_iteration": round(1000 * seconds / args.iters, 4),
              "samples_per_s": round(args.batch * args.iters / seconds, 1), "loss": loss}
    print(json.dumps(result) if args.json else
          f"bench: {result['device']}, batch {args.batch}, {args.iters} iterations: "
          f"{result['samples_per_s']:,.0f} samples/s ({result['ms_per_iteration']:.3f} ms/iteration)")
    return EXIT_OK


# -- plot ----------------------------------------------------------------------------------------
def _cmd_plot(args) -> int:
    from .plot import plot_metrics

    if not os.path.isfile(args.log):
        raise UsageError(f"metrics log '{args.log}' not found (write one with HUGECTR_METRICS_LOG=path)")
    out = args.output or os.path.splitext(args.log)[0] + ".png"
    plot_metrics(args.log, out, metric=args.metric, all_runs=args.all_runs)
    print(f"wrote {out}")
    return EXIT_OK


# -- parser --------------------------------------------------------------------------------------
def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="write a synthetic data set (hugectr.tools.DataGenerator)",
                       description="Write a synthetic data set with hugectr.tools.DataGenerator.")
    p.add_argument("--format", default="RawAsync", choices=["RawAsync", "Raw", "Parquet"])
    p.add_argument("--slot-sizes", type=_int_list, required=True, help="vocabulary per slot, e.g. 1000,500,20")
    p.add_argument("--dense-dim", type=int, default=13)
    p.add_argument("--label-dim", type=int, default=1)
    p.add_argument("--num-samples", type=int, default=65536, help="training samples (Raw, RawAsync)")
    p.add_argument("--eval-num-samples", type=int, default=16384, help="evaluation samples (Raw, RawAsync)")
    p.add_argument("--num-files", type=int, default=4, help="training files (Parquet)")
    p.add_argument("--eval-num-files", type=int, default=1, help="evaluation files (Parquet)")
    p.add_argument("--samples-per-file", type=int, default=16384, help="samples per file (Parquet)")
    p.add_argument("--nnz", type=_int_list, help="keys per sample: one value for every slot, or one per slot")
    p.add_argument("--dist", default="PowerLaw", choices=["PowerLaw", "Uniform"])
    p.add_argument("--power-law", default="Specific", choices=["Long", "Medium", "Short", "Specific"])
    p.add_argument("--alpha", type=float, default=1.2, help="power-law exponent for --power-law Specific")
    p.add_argument("--seed", type=int, help="makes the data reproducible (default: fresh entropy, as HugeCTR)")
    p.add_argument("--learnable", action="store_true", help="labels from a hidden model (reports its ceiling AUC)")
    p.add_argument("--i64", action="store_true", help="int64 keys (default uint32)")
    p.add_argument("--float-label-dense", action=argparse.BooleanOptionalAction, default=True,
                   help="Raw only: float32 label and dense (default) or integers")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--output", "-o", default="./data", help="folder for the default file names")
    p.add_argument("--source", help="training file (Raw/RawAsync) or file list (Parquet); default under --output")
    p.add_argument("--eval-source", help="evaluation file or file list; default under --output")
    p.set_defaults(func=_cmd_generate)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train: run a Python model script, or a saved graph JSON",
                       description="Run a HugeCTR Python model script as __main__ (arguments after the script "
                                   "go to it), or train a graph JSON written by Model.graph_to_json.")
    p.add_argument("--metrics-log", help="write the JSON-lines metrics log here (sets HUGECTR_METRICS_LOG)")
    p.add_argument("--graph", help="graph JSON (Model.graph_to_json) to train instead of a script")
    g = p.add_argument_group("--graph mode")
    g.add_argument("--source", help="training data (RawAsync file, Parquet file list, ...)")
    g.add_argument("--eval-source", help="evaluation data")
    g.add_argument("--reader", default="RawAsync", help="data reader type (default RawAsync)")
    g.add_argument("--slot-sizes", type=_int_list, help="slot_size_array (Parquet)")
    g.add_argument("--batchsize", type=int, default=2048)
    g.add_argument("--batchsize-eval", type=int, default=2048)
    g.add_argument("--max-eval-batches", type=int, default=100)
    g.add_argument("--lr", type=float, default=0.001)
    g.add_argument("--optimizer", default="Adam")
    g.add_argument("--max-iter", type=int, default=1000)
    g.add_argument("--display", type=int, default=100)
    g.add_argument("--eval-interval", type=int, default=1000)
    g.add_argument("--snapshot", type=int, default=0)
    g.add_argument("--snapshot-prefix", default="")
    g.add_argument("--dense-model", help="dense weights to start from")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--i64", action="store_true", help="int64 keys")
    p.add_argument("script", nargs="?", help="the model script")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    p.set_defaults(func=_cmd_train)


def _model_files(p) -> None:
    p.add_argument("--graph", required=True, help="graph JSON written by Model.graph_to_json")
    p.add_argument("--dense", required=True, help="<prefix>_dense_<iter>.model")
    p.add_argument("--sparse", nargs="*", default=[], help="<prefix><k>_sparse_<iter>.model folders, in order")


def _add_others(sub) -> None:
    p = sub.add_parser("summary", help="print a model script's summary and memory plan without training",
                       description=f"Run the script with {SUMMARY_ONLY_ENV}=1: its first model.compile() prints "
                                   "model.summary() (layers, shapes, parameters, memory plan, free memory) and "
                                   "stops the script before any training.")
    p.add_argument("script")
    p.add_argument("script_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_summary)
    p = sub.add_parser("predict", help="predictions of a saved model (graph JSON + weights) on a data source",
                       description="Load graph JSON, dense file and sparse folders; predict on --source; "
                                   "print a JSON summary and save the predictions as .npy with --output.")
    _model_files(p)
    p.add_argument("--source", required=True, help="Raw file or Parquet/Norm file list")
    p.add_argument("--format", default="RawAsync", help="data reader type (RawAsync, Parquet, ...)")
    p.add_argument("--num-batches", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--num-samples", type=int, default=0, help="samples in a Raw file (0: from its size)")
    p.add_argument("--slot-sizes", type=_int_list, default=None, help="slot_size_array for Parquet offsets")
    p.add_argument("--i64", action="store_true", help="int64 keys (i64_input_key)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--output", default="", help="write predictions to this .npy file")
    p.set_defaults(func=_cmd_predict)
    p = sub.add_parser("export-onnx", help="convert a saved model to ONNX (needs the hugectr2onnx plugin)",
                       description="HugeCTR's hugectr2onnx converter: graph JSON + dense/sparse files -> ONNX.")
    _model_files(p)
    p.add_argument("--onnx", required=True, help="output .onnx path")
    p.add_argument("--ntp", default=None, help=".ntp.json with BatchNorm running statistics")
    p.add_argument("--no-embedding", action="store_true", help="leave embeddings out (their outputs become inputs)")
    p.set_defaults(func=_cmd_export_onnx)
    p = sub.add_parser("bench", help="time training steps of a small generated DCN",
                       description="Generate a small data set, build a DCN and time --iters training steps.")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--slot-sizes", type=_int_list, default=[10000] * 26)
    p.add_argument("--vec", type=int, default=16)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_bench)
    p = sub.add_parser("plot", help="draw loss and AUC curves from a metrics log into a PNG (needs matplotlib)",
                       description="Draw the training loss and an eval metric from a metrics log (JSON lines, "
                                   "HUGECTR_METRICS_LOG) into a PNG. Needs matplotlib: pip install "
                                   "'hugectr-core[plot]'.")
    p.add_argument("log")
    p.add_argument("-o", "--output", help="PNG path (default: the log's name with .png)")
    p.add_argument("--metric", default="AUC")
    p.add_argument("--all-runs", action="store_true", help="draw every fit in the log, not only the last")
    p.set_defaults(func=_cmd_plot)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hugectr", description="HugeCTR-compatible training on NumPy or CuPy. "
                                     "Exit codes: 0 ok, 1 HugeCTR error, 2 usage error.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plugins", help="list installed layers, embeddings, readers, optimizers, filesystems, hooks")
    p.add_argument("--kind", choices=["layers", "embeddings", "readers", "optimizers", "filesystems", "hooks"])
    p.set_defaults(func=_cmd_plugins)
    _add_generate(sub)
    _add_train(sub)
    _add_others(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"hugectr {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HugeCTRError as exc:
        print(f"hugectr: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
