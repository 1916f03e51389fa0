"""Reader throughput on the DLRM layout (1 label, 13 dense, 26 one-hot keys), from page cache.

    python bench/readers.py [--samples 4194304] [--batch 65536] [--threads 16] [--device gpu|cpu] [--json out.json]

Writes a RawAsync file, a Parquet data set and a Norm data set of the same samples under --dir
(read once first, so they sit in the page cache), then times each reader end to end: next_batch
plus, with --device gpu, the copy of label, dense, keys and row offsets into GPU memory the way the
runtime does it: through one pinned host staging buffer per array, asynchronously on a non-default
stream, and row offsets with ``static_hotness`` set copied once and reused. Prints samples/s per
format next to the machine's core count.
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
    done, made = os.path.join(directory, "done"), f"{samples} {per_file}"
    if os.path.exists(done) and open(done).read() == made:
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
    with open(done, "w") as f:
        f.write(made)


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


class DeviceStager:
    """Copies a batch into GPU memory: per array one pinned host buffer and one device array, reused.

    Host arrays are copied into their pinned buffer, then to the device asynchronously on a
    non-default stream; the next batch waits for those copies before reusing the buffers, so a copy
    overlaps the next ``next_batch``. Row offsets whose ``static_hotness`` (and size) did not change
    since the last batch are already on the device and are not copied again.
    """

    def __init__(self, cp):
        self.cp = cp
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.pinned: dict = {}    # name -> (pinned memory, capacity in bytes)
        self.device: dict = {}    # name -> cupy array of the last batch's shape
        self.static = None        # (static_hotness, size) whose row offsets are on the device

    def copy(self, batch) -> None:
        self.stream.synchronize()  # the previous batch's copies are done: its pinned buffers are free
        sb = batch.sparse["data1"]
        arrays = {"label": batch.label, "dense": batch.dense, "keys": sb.keys}
        static = (tuple(sb.static_hotness), batch.size) if sb.static_hotness is not None else None
        if static is None or static != self.static:
            arrays["row_offsets"] = sb.row_offsets
        for name, host in arrays.items():
            self._put(name, np.ascontiguousarray(host))
        self.static = static

    def _put(self, name: str, host: np.ndarray) -> None:
        mem, capacity = self.pinned.get(name, (None, 0))
        if capacity < host.nbytes:
            capacity = max(host.nbytes, 1)
            mem = self.cp.cuda.alloc_pinned_memory(capacity)
            self.pinned[name] = (mem, capacity)
        staged = np.ndarray(host.shape, dtype=host.dtype, buffer=mem)
        np.copyto(staged, host)
        dev = self.device.get(name)
        if dev is None or dev.shape != host.shape or dev.dtype != host.dtype:
            with self.stream:
                dev = self.device[name] = self.cp.empty(host.shape, dtype=host.dtype)
        dev.set(staged, stream=self.stream)

    def synchronize(self) -> None:
        self.stream.synchronize()


def time_reader(reader, batches: int, xp):
    stager = DeviceStager(xp) if xp is not None else None

    def one():
        b = reader.next_batch()
        if stager is not None:
            stager.copy(b)
        return b.size

    for _ in range(3):
        one()
    if stager is not None:
        stager.synchronize()
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        n += one()
    if stager is not None:
        stager.synchronize()
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
