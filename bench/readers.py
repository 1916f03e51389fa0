"""Reader throughput on the DLRM layout (1 label, 13 dense, 26 one-hot keys), from page cache.

    python bench/readers.py [--samples 4194304] [--batch 65536] [--threads 16] [--device gpu|cpu] [--json out.json]

Writes a RawAsync file, a Parquet data set and a Norm data set of the same samples under --dir
(read once first, so they sit in the page cache), then times each reader end to end: next_batch
plus, with --device gpu, the copy of label, dense, keys and row offsets into GPU memory. Prints
samples/s per format next to the machine's core count.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import hugectr
from hugectr.tools import DataGenerator, DataGeneratorParams
from hugectr_core.plugins import registry

SLOTS = [1000] * 26


def make_data(directory: str, samples: int, per_file: int) -> None:
    if os.path.exists(os.path.join(directory, "done")):
        return
    common = dict(label_dim=1, dense_dim=13, num_slot=26, i64_input_key=False, slot_size_array=SLOTS, seed=1)
    DataGenerator(DataGeneratorParams(format="RawAsync", source=f"{directory}/raw/train.bin",
                                      eval_source=f"{directory}/raw/val.bin", num_samples=samples,
                                      eval_num_samples=per_file, float_label_dense=True, **common)).generate()
    for fmt in ("Parquet", "Norm"):
        DataGenerator(DataGeneratorParams(format=fmt, source=f"{directory}/{fmt}/file_list.txt",
                                          eval_source=f"{directory}/{fmt}/file_list_test.txt",
                                          num_files=samples // per_file, eval_num_files=1,
                                          num_samples_per_file=per_file, check_type=hugectr.Check_t.Non,
                                          **common)).generate()
    open(os.path.join(directory, "done"), "w").close()


def reader_for(fmt: str, directory: str, batch: int, threads: int, samples: int):
    async_param = hugectr.AsyncParam(num_threads=threads, num_batches_per_thread=2, shuffle=False,
                                     multi_hot_reader=True, is_dense_float=True)
    source = {"RawAsync": f"{directory}/raw/train.bin", "Parquet": f"{directory}/Parquet/file_list.txt",
              "Norm": f"{directory}/Norm/file_list.txt"}[fmt]
    params = hugectr.DataReaderParams(data_reader_type=fmt, source=[source], eval_source=source,
                                      check_type=hugectr.Check_t.Non, num_samples=samples, num_workers=threads,
                                      async_param=async_param)
    inp = hugectr.Input(label_dim=1, label_name="label", dense_dim=13, dense_name="dense",
                        data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True, 26)])
    return registry("readers").load(fmt)(params, inp, batch_size=batch, source=source, repeat=True,
                                         num_samples=samples if fmt == "RawAsync" else 0)


def time_reader(reader, batches: int, xp):
    def one():
        b = reader.next_batch()
        if xp is not None:
            sb = b.sparse["data1"]
            for a in (b.label, b.dense, sb.keys, sb.row_offsets):
                xp.asarray(a)
        return b.size

    for _ in range(3):
        one()
    if xp is not None:
        xp.cuda.Device().synchronize()
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        n += one()
    if xp is not None:
        xp.cuda.Device().synchronize()
    return n / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1 << 22)
    parser.add_argument("--per-file", type=int, default=1 << 18)
    parser.add_argument("--batch", type=int, default=65536)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--threads", type=int, default=min(16, os.cpu_count() or 1))
    parser.add_argument("--device", default="gpu", choices=["gpu", "cpu"])
    parser.add_argument("--dir", default="/tmp/hugectr-reader-bench")
    parser.add_argument("--formats", default="RawAsync,Parquet,Norm")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    xp = None
    if args.device == "gpu":
        import cupy as xp
    make_data(args.dir, args.samples, args.per_file)
    rows = []
    for fmt in args.formats.split(","):
        reader = reader_for(fmt, args.dir, args.batch, args.threads, args.samples)
        try:
            rate = time_reader(reader, args.batches, xp)
        finally:
            reader.close()
        rows.append({"format": fmt, "samples_per_s": rate})
    where = "into GPU memory" if xp is not None else "host only"
    print(f"Reader throughput, batch {args.batch}, {args.threads} threads, {os.cpu_count()} cores, {where}")
    for r in rows:
        print(f"{r['format']:10} {r['samples_per_s'] / 1e6:8.2f} M samples/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cores": os.cpu_count(), "threads": args.threads, "batch": args.batch, "where": where,
                       "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
