"""Issue 7's benchmark: the "dlrm-kaggle" model through the public API, against the PyTorch peer.

    python bench/dlrm.py [--batch 65536] [--steps 50] [--precision tf32|fp32|mixed] [--e2e]
                         [--peer ../shared/bench/torch_dlrm.py] [--json out.json]
    python bench/dlrm.py --device cpu --small --batch 1024 --steps 5 --e2e      # CPU smoke run

The model (shared/bench/README.md): 13 dense features, 26 one-hot slots (Kaggle cardinalities,
power-law keys, alpha 1.2), DistributedSlotSparseEmbeddingHash vec 128 sum, bottom MLP
13-512-256-128, Interaction, top MLP 1024-1024-512-256-1, BCE, SGD lr 0.01 (dense and sparse).

What is timed:
* resident batches: a few host batches are loaded into the device input tensors once; each step
  then only switches between them (a device copy of label+dense, the keys stay on the device)
  and runs ``Runtime.train_step`` unchanged. CUDA events on GPU, ``time.perf_counter`` on CPU.
* per phase (a second pass with each phase wrapped in events): embedding forward (``_embed``),
  dense forward (``net.forward``), dense backward (``net.backward``), optimizer
  (``dense.update``), embedding backward+update (``_embedding_backward``); reader
  (``next_batch`` + ``_load_batch``) in the end-to-end run. Each phase is set against its floor
  on an H100: bytes at 3.0 TB/s for the embedding and optimizer phases, the model's GEMM FLOPs at
  431 (TF32) / 779 (fp16) / 51 (fp32) TFLOP/s for the dense phases, host-to-device bytes at
  64 GB/s (PCIe 5.0 x16 peak) for the reader.
* ``--e2e``: a RawAsync file from ``hugectr.tools.DataGenerator`` (power-law keys), read by the
  model's own reader through ``Model.train()``.
* ``--peer PATH``: the PyTorch peer (torch_dlrm.py) as a subprocess, before our model takes GPU memory.
* memory: CuPy's pool ``total_bytes`` (GPU) or the process RSS (CPU), after the first and the
  last step and its peak: steady-state steps must not grow it.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import numpy as np

KAGGLE = [1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27,
          14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572]
SMALL_CARD_CAP = 2000                 # --small: every table at most this many rows
DENSE_DIM, VEC = 13, 128
BOTTOM, TOP = [512, 256, VEC], [1024, 1024, 512, 256, 1]
ALPHA, LR, SEED = 1.2, 0.01, 2026
COPY_BW = 3.0e12                      # H100 device copy, measured (shared/bench/README.md)
H2D_BW = 64e9                         # PCIe 5.0 x16 peak: the reader's floor
GEMM_PEAK = {"tf32": 431e12, "mixed": 779e12, "fp32": 51e12}  # H100, measured (docs/performance.md)
MIXED_SCALER = 1024.0                 # static loss scale of HugeCTR's mixed-precision DLRM samples


# -- data --------------------------------------------------------------------------------------
def power_law_keys(rng, cards, batch, alpha=ALPHA):
    """(batch, slots) uint32 keys, slot offsets added (as DataGenerator writes them), key 0 the hottest."""
    offsets = np.concatenate([[0], np.cumsum(cards)[:-1]])
    cols = []
    for size, off in zip(cards, offsets):
        u = rng.random(batch)
        y = ((size ** (1 - alpha) - 1) * u + 1) ** (1 / (1 - alpha)) if size > 1 else np.ones(batch)
        cols.append(np.clip(np.floor(y).astype(np.int64) - 1, 0, size - 1) + off)
    return np.stack(cols, 1).astype(np.uint32)


def host_batches(count, batch, cards, seed=SEED):
    """``count`` host batches in the reader's Batch form (one-hot: static row offsets)."""
    from hugectr_core.contracts.reader import Batch, SparseBatch, static_row_offsets

    rng = np.random.default_rng(seed)
    hotness = (1,) * len(cards)
    out = []
    for _ in range(count):
        keys = power_law_keys(rng, cards, batch).reshape(-1)
        label = (rng.random((batch, 1)) < 0.25).astype(np.float32)
        dense = rng.random((batch, DENSE_DIM)).astype(np.float32)
        sparse = {"data1": SparseBatch(static_row_offsets(hotness, batch), keys, hotness)}
        out.append(Batch(size=batch, label=label, dense=dense, sparse=sparse))
    return out


def generate_raw(data_dir, batch, batches, cards):
    """A RawAsync training file of ``batches`` batches (and a one-batch eval file) from DataGenerator."""
    import hugectr
    from hugectr.tools import DataGenerator, DataGeneratorParams

    DataGenerator(DataGeneratorParams(
        format=hugectr.DataReaderType_t.RawAsync, label_dim=1, dense_dim=DENSE_DIM, num_slot=len(cards),
        i64_input_key=False, source=f"{data_dir}/train.bin", eval_source=f"{data_dir}/val.bin",
        slot_size_array=cards, num_samples=batch * batches, eval_num_samples=batch, float_label_dense=True,
        alpha=ALPHA, seed=SEED, label_model="learnable")).generate()
    return f"{data_dir}/train.bin", f"{data_dir}/val.bin"


# -- the model ---------------------------------------------------------------------------------
def build_model(args, cards, train_file, eval_file):
    """dlrm-kaggle through ``import hugectr``, as HugeCTR's DLRM sample writes it."""
    import hugectr

    def dense_layer(kind, bottoms, tops, **kw):
        return hugectr.DenseLayer(layer_type=kind, bottom_names=bottoms, top_names=tops, **kw)

    solver = hugectr.CreateSolver(
        batchsize=args.batch, batchsize_eval=args.batch, max_eval_batches=1, lr=LR,
        vvgpu=getattr(args, "vvgpu", [[0]]),  # bench/scaling.py trains on several GPUs
        repeat_dataset=True, seed=SEED, device=args.device, i64_input_key=False,
        use_cuda_graph=getattr(args, "cuda_graph", "on") == "on",
        grouped_all_reduce=getattr(args, "grouped_all_reduce", False),  # bench/scaling.py --grouped-all-reduce
        enable_tf32_compute=args.precision == "tf32", use_mixed_precision=args.precision == "mixed",
        scaler=MIXED_SCALER if args.precision == "mixed" else 1.0)
    reader = hugectr.DataReaderParams(
        data_reader_type=hugectr.DataReaderType_t.RawAsync, source=[train_file], eval_source=eval_file,
        check_type=hugectr.Check_t.Non, num_samples=args.batch * args.e2e_batches, eval_num_samples=args.batch,
        async_param=hugectr.AsyncParam(num_threads=max(1, min(16, os.cpu_count() or 1)), num_batches_per_thread=4,
                                       shuffle=False, multi_hot_reader=True, is_dense_float=True))
    optimizer = hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.SGD, update_type=hugectr.Update_t.Local,
                                        atomic_update=False)
    model = hugectr.Model(solver, reader, optimizer)
    model.add(hugectr.Input(label_dim=1, label_name="label", dense_dim=DENSE_DIM, dense_name="dense",
                            data_reader_sparse_param_array=[hugectr.DataReaderSparseParam("data1", 1, True,
                                                                                          len(cards))]))
    table_mb = int(np.ceil(sum(cards) * 1.05 * 4 * VEC / 2**20)) + 1  # SGD keeps no optimizer state
    embedding = getattr(args, "embedding", "DistributedSlotSparseEmbeddingHash")
    hybrid = None
    if embedding == "hybrid":  # bench/scaling.py --embedding hybrid: frequent categories data parallel
        embedding = "DistributedSlotSparseEmbeddingHash"
        hybrid = hugectr.HybridEmbeddingParam(2, -1, 0.01, 1.3e11, 1.9e11, 1.0,
                                              hugectr.CommunicationType.NVLink_SingleNode,
                                              hugectr.HybridEmbeddingType.Distributed)
    model.add(hugectr.SparseEmbedding(embedding_type=embedding, workspace_size_per_gpu_in_mb=table_mb,
                                      embedding_vec_size=VEC, combiner="sum", sparse_embedding_name="sparse_embedding1",
                                      bottom_name="data1", hybrid_embedding_param=hybrid))
    model.add(dense_layer(hugectr.Layer_t.MLP, ["dense"], ["mlp1"], num_outputs=BOTTOM))
    model.add(dense_layer(hugectr.Layer_t.Interaction, ["mlp1", "sparse_embedding1"], ["interaction1"]))
    model.add(dense_layer(hugectr.Layer_t.MLP, ["interaction1"], ["mlp2"], num_outputs=TOP,
                          activations=["Relu"] * (len(TOP) - 1) + ["None"]))
    model.add(dense_layer(hugectr.Layer_t.BinaryCrossEntropyLoss, ["mlp2", "label"], ["loss"]))
    model.compile()
    return model


# -- timing ------------------------------------------------------------------------------------
class Clock:
    """Intervals on the device stream (CUDA events) or on the host (perf_counter) on NumPy."""

    def __init__(self, xp, gpu: bool):
        self.xp, self.gpu = xp, gpu

    def mark(self, host=False):
        if self.gpu and not host:
            event = self.xp.cuda.Event()
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, start, end) -> float:
        if isinstance(start, float):
            return end - start
        end.synchronize()
        return self.xp.cuda.get_elapsed_time(start, end) * 1e-3

    def sync(self):
        if self.gpu:
            self.xp.cuda.Device().synchronize()


class PhaseTimer:
    """Wrap bound methods so each call records an interval under a phase name; ``restore`` unwraps."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.intervals = defaultdict(list)
        self._patched = []

    def wrap(self, obj, attr, phase, host=False):
        original = getattr(obj, attr)
        own = attr in vars(obj)  # already an instance attribute (e.g. the resident loader): put it back

        def timed(*a, **kw):
            start = self.clock.mark(host)
            try:
                return original(*a, **kw)
            finally:
                self.intervals[phase].append((start, self.clock.mark(host)))

        setattr(obj, attr, timed)
        self._patched.append((obj, attr, original if own else None))

    def restore(self):
        for obj, attr, original in reversed(self._patched):
            if original is None:
                delattr(obj, attr)
            else:
                setattr(obj, attr, original)
        self._patched = []

    def ms_per_step(self, steps) -> dict:
        self.clock.sync()
        return {phase: 1e3 * sum(self.clock.seconds(s, e) for s, e in pairs) / steps
                for phase, pairs in self.intervals.items()}


class ResidentInputs:
    """Keep several batches' inputs on the device: ``Runtime._load_batch`` becomes a switch between them.

    Each batch is loaded once by the runtime's own ``_load_batch``; we keep a device copy of its
    label/dense tensors and the CSR the runtime built (device keys). Switching copies ~B*14*4 bytes
    device to device and points ``_csr`` at the kept one. Other batches still load normally.
    """

    def __init__(self, rt, batches):
        self.rt, self.original = rt, rt._load_batch
        net = rt.networks["train"]
        inp = rt.input_layer
        names = list(inp.label_names) + ([inp.dense_name] if inp.dense_dim else [])
        self.kept, self.current = {}, None
        for batch in batches:
            self.original(net, batch, rt.batch_train)
            self.kept[id(batch)] = ({n: net.tensors[n].copy() for n in names}, rt._csr)

    def load(self, net, batch, size):
        kept = self.kept.get(id(batch)) if net.mode == "train" else None
        if kept is None:
            self.current = None
            return self.original(net, batch, size)
        if self.current is not batch:
            tensors, csr = kept
            for name, value in tensors.items():
                net.tensors[name][...] = value
            self.rt._csr = csr
            self.current = batch
        return None

    def __enter__(self):
        self.rt._load_batch = self.load
        return self

    def __exit__(self, *exc):
        del self.rt._load_batch


class MemoryProbe:
    """Device memory held (CuPy pools' total_bytes: the default one and the CUDA graphs') on GPU; process
    RSS on CPU."""

    def __init__(self, xp, gpu, graphs=None):
        self.xp, self.gpu, self.graphs = xp, gpu, graphs
        self.kind = "CuPy memory pools total_bytes" if gpu else "process RSS (CPU run)"
        self.samples = []

    def now(self) -> int:
        if self.gpu:
            graph_bytes = self.graphs.pool_bytes() if self.graphs is not None else 0
            return int(self.xp.get_default_memory_pool().total_bytes()) + graph_bytes
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def sample(self):
        self.samples.append(self.now())

    def report(self) -> dict:
        peak = max(self.samples)
        if not self.gpu:  # RSS high-water mark of the whole run (kB on Linux)
            peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        first, last = self.samples[0], self.samples[-1]
        return {"kind": self.kind, "after_first_step": first, "after_last_step": last, "peak": peak,
                "growth": last - first}


def run_steps(model, batches, steps, warmup, clock, memory=None, timer=None):
    """``warmup`` + ``steps`` training steps on resident batches; returns seconds per timed step."""
    rt = model.runtime
    lr = model.learning_rate
    loss = None
    for i in range(warmup):
        loss = rt.train_step(batches[i % len(batches)], lr)
        if memory is not None and i == 0:
            clock.sync()
            memory.sample()
    if timer is not None:
        _wrap_phases(timer, rt)
    try:
        start = clock.mark()
        for i in range(steps):
            loss = rt.train_step(batches[i % len(batches)], lr)
            if memory is not None:
                memory.sample()
        end = clock.mark()
        seconds = clock.seconds(start, end) / steps
    finally:
        if timer is not None:
            timer.restore()
    return seconds, float(np.asarray(_host(loss)).reshape(-1)[0])


def run_soak(model, batches, steps, clock, memory) -> dict:
    """``steps`` more resident steps: the memory held after step 10 and after the last must match."""
    rt, lr, held = model.runtime, model.learning_rate, {}
    for i in range(1, steps + 1):
        rt.train_step(batches[i % len(batches)], lr)
        if i in (10, steps):
            clock.sync()
            held[i] = memory.now()
    first, last = held[min(10, steps)], held[steps]
    return {"steps": steps, "after_step_10": first, "after_last_step": last, "growth": last - first}


def _host(value):
    from hugectr_core import backend

    return backend.to_host(value)


def network_phases(rt) -> list:
    """(object, method, phase) of the dense network: its forward and backward when they run eagerly, the
    one replay when they come from a CUDA graph (use_cuda_graph)."""
    if rt.network_graphs.why_eager is None:
        return [(rt.network_graphs, "run", "dense forward+backward (CUDA graph)")]
    net = rt.networks["train"]
    return [(net, "forward", "dense forward"), (net, "backward", "dense backward")]


def _wrap_phases(timer, rt):
    timer.wrap(rt, "_embed", "embedding forward")
    for obj, attr, phase in network_phases(rt):
        timer.wrap(obj, attr, phase)
    timer.wrap(rt.dense, "update", "optimizer")
    timer.wrap(rt, "_embedding_backward", "embedding backward+update")


def run_e2e(model, steps, warmup, clock):
    """Train from the RawAsync file through ``Model.train()``; returns (s/step, reader ms/step)."""
    reader = model.get_data_reader_train()
    for _ in range(warmup):
        model.train()
    timer = PhaseTimer(clock)
    timer.wrap(reader, "next_batch", "reader: next_batch (host)", host=True)
    timer.wrap(model.runtime, "_load_batch", "reader: _load_batch")
    try:
        start = clock.mark()
        for _ in range(steps):
            if not model.train():
                raise RuntimeError("the RawAsync reader ran dry in iteration mode")
        end = clock.mark()
        seconds = clock.seconds(start, end) / steps
    finally:
        timer.restore()
    phases = timer.ms_per_step(steps)
    return seconds, sum(phases.values())


# -- floors --------------------------------------------------------------------------------------
def dense_flops(rt) -> tuple[float, float]:
    """(forward, backward) FLOPs of the model's GEMMs per step: 2*M*N*K each.

    Fully connected weights (K, N): forward 2BKN; backward 2BKN for dW and 2BKN for dX unless the
    layer's input needs no gradient. Interaction: Z = T*T^T forward, dZ*T backward, 2*B*V*V*d each.
    """
    shapes = rt.shapes["train"]
    fwd = bwd = 0.0
    for node in rt.graph.nodes:
        kind = node.layer.type_name
        in_shapes = [shapes[b] for b in node.bottoms]
        batch = in_shapes[0][0] if in_shapes and in_shapes[0] else 0
        if kind in ("InnerProduct", "FusedInnerProduct", "MLP"):
            weights = [s.shape for s in node.layer.param_specs(in_shapes) if s.name.startswith("weight")]
            for i, (k, n) in enumerate(weights):
                fwd += 2.0 * batch * k * n
                needs_dx = i > 0 or bool(rt.graph.needs_grad.get(node.bottoms[0]))
                bwd += 2.0 * batch * k * n * (2 if needs_dx else 1)
        elif kind == "Interaction":
            (b, d), vectors = in_shapes[0], in_shapes[1][1] + 1
            fwd += 2.0 * b * vectors * vectors * d
            bwd += 2.0 * b * vectors * vectors * d
    return fwd, bwd


def floors(rt, args, cards) -> dict:
    """Phase name -> (floor ms, basis)."""
    batch, slots = args.batch, len(cards)
    keys = batch * slots  # one-hot
    emb_bytes = keys * VEC * 4 + batch * slots * VEC * 4  # rows read + output written (fp32 tables)
    fwd, bwd = dense_flops(rt)
    peak = GEMM_PEAK[args.precision]
    params = int(rt.dense.master.size) if rt.dense.master is not None else 0
    opt_bytes = 3 * 4 * params + (2 * params if args.precision == "mixed" else 0)  # w, g read; w (+fp16 copy) written
    reader_bytes = batch * (1 + DENSE_DIM) * 4 + keys * 4  # label + dense float32, uint32 keys
    return {
        "embedding forward": (emb_bytes / COPY_BW * 1e3, f"{emb_bytes / 1e9:.3f} GB at 3.0 TB/s"),
        "dense forward": (fwd / peak * 1e3, f"{fwd / 1e9:.1f} GFLOP at {peak / 1e12:.0f} TFLOP/s"),
        "dense backward": (bwd / peak * 1e3, f"{bwd / 1e9:.1f} GFLOP at {peak / 1e12:.0f} TFLOP/s"),
        "dense forward+backward (CUDA graph)": ((fwd + bwd) / peak * 1e3,
                                                f"{(fwd + bwd) / 1e9:.1f} GFLOP at {peak / 1e12:.0f} TFLOP/s"),
        "optimizer": (opt_bytes / COPY_BW * 1e3, f"{opt_bytes / 1e6:.1f} MB at 3.0 TB/s"),
        "embedding backward+update": (emb_bytes / COPY_BW * 1e3, f"{emb_bytes / 1e9:.3f} GB at 3.0 TB/s"),
        "reader": (reader_bytes / H2D_BW * 1e3, f"{reader_bytes / 1e6:.1f} MB host-to-device at 64 GB/s"),
    }


# -- the peer ------------------------------------------------------------------------------------
def run_peer(args) -> list[dict]:
    """Rows of the PyTorch peer: one per variant, or one saying why it did not run."""
    if not args.peer:
        return [{"name": "peer", "note": "not run (no --peer PATH)"}]
    if not os.path.isfile(args.peer):
        return [{"name": "peer", "note": f"missing: {args.peer} does not exist"}]
    if args.device != "gpu":
        return [{"name": "peer", "note": f"not run: {os.path.basename(args.peer)} needs a CUDA GPU (--device cpu)"}]
    amp = "1" if args.precision == "mixed" else "0"
    cmd = [sys.executable, args.peer, "--variants", args.peer_variants, "--amp", amp, "--steps", str(args.steps),
           "--batch", str(args.batch)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.peer_timeout)
    except subprocess.TimeoutExpired:
        return [{"name": "peer", "note": f"timed out after {args.peer_timeout} s: {' '.join(cmd)}"}]
    rows = parse_peer_output(done.stdout, amp == "1")
    if not rows:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        rows = [{"name": "peer", "note": f"failed (exit {done.returncode}): {' | '.join(tail)}"}]
    return rows


def parse_peer_output(text: str, amp: bool) -> list[dict]:
    """torch_dlrm.py prints a 'device ...' line, then one JSON object per variant."""
    rows, card = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("device "):
            card = line[len("device "):]
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        name = f"peer {r.get('variant', '?')} ({'bf16 autocast' if r.get('amp', amp) else 'TF32'})"
        if "error" in r:
            rows.append({"name": name, "note": f"error: {r['error']}"})
        else:
            rows.append({"name": name, "samples_per_s": float(r["samples_per_s"]), "step_ms": float(r["step_ms"]),
                         "note": card or ""})
    return rows


# -- report --------------------------------------------------------------------------------------
def _rate(x):
    return "" if x is None else f"{x / 1e6:.2f} M" if x >= 1e5 else f"{x:,.0f}"


def _num(x, digits=3):
    return "" if x is None else f"{x:.{digits}f}"


def render(result) -> str:
    head = ["row", "samples/s", "ms", "floor ms", "of floor", "note"]
    lines = []
    for row in result["rows"]:
        lines.append([row["name"], _rate(row.get("samples_per_s")), _num(row.get("step_ms")), "", "",
                      row.get("note", "")])
    for ph in result["phases"]:
        share = f"{ph['floor_ms'] / ph['ms']:.0%}" if ph.get("ms") and ph.get("floor_ms") is not None else ""
        lines.append([f"phase: {ph['phase']}", "", _num(ph.get("ms")), _num(ph.get("floor_ms")), share,
                      ph.get("basis", "")])
    mem = result["memory"]
    gb = 1e9
    lines.append(["memory: peak", "", "", "", "",
                  f"{mem['peak'] / gb:.3f} GB ({mem['kind']}); after step 1 {mem['after_first_step'] / gb:.3f} GB, "
                  f"after the last {mem['after_last_step'] / gb:.3f} GB (growth {mem['growth'] / 1e6:+.1f} MB)"])
    soak = result.get("soak")
    if soak:
        lines.append([f"memory: {soak['steps']}-step soak", "", "", "", "",
                      f"after step 10 {soak['after_step_10'] / gb:.3f} GB, after step {soak['steps']} "
                      f"{soak['after_last_step'] / gb:.3f} GB (growth {soak['growth'] / 1e6:+.1f} MB)"])
    widths = [max(len(str(r[i])) for r in lines + [head]) for i in range(len(head))]
    fmt = "| " + " | ".join(f"{{:{'<' if i in (0, 5) else '>'}{w}}}" for i, w in enumerate(widths)) + " |"
    out = [result["title"], fmt.format(*head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt.format(*r) for r in lines]
    return "\n".join(out)


def card_name(xp, gpu) -> str:
    if not gpu:
        return f"CPU (NumPy, {os.cpu_count()} cores)"
    name = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)["name"]
    return name.decode() if isinstance(name, bytes) else name


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=65536)
    p.add_argument("--steps", type=int, default=50, help="timed steps (resident, phases, end to end)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed steps first (default: --resident-batches, so every batch's keys are inserted)")
    p.add_argument("--precision", choices=["tf32", "fp32", "mixed"], default=None,
                   help="tf32: enable_tf32_compute; mixed: use_mixed_precision (default tf32 on GPU, fp32 on CPU)")
    p.add_argument("--cards", default=None, help="comma-separated slot cardinalities (default: Criteo Kaggle)")
    p.add_argument("--small", action="store_true", help=f"cap every table at {SMALL_CARD_CAP} rows (CPU smoke runs)")
    p.add_argument("--resident-batches", type=int, default=4)
    p.add_argument("--peer", default=None, help="path of torch_dlrm.py (run as a subprocess)")
    p.add_argument("--peer-variants", default="per-table,fused,compiled")
    p.add_argument("--peer-timeout", type=int, default=1800)
    p.add_argument("--e2e", action="store_true", help="also train from a generated RawAsync file")
    p.add_argument("--e2e-batches", type=int, default=16, help="batches in the generated file (read repeatedly)")
    p.add_argument("--data-dir", default=None, help="where to write the RawAsync file (default: a temp dir)")
    p.add_argument("--device", choices=["gpu", "cpu"], default="gpu")
    p.add_argument("--soak", type=int, default=0,
                   help="also run this many resident steps and report the pool after step 10 and after the last")
    p.add_argument("--cuda-graph", choices=["on", "off"], default="on",
                   help="CreateSolver(use_cuda_graph=...): replay the dense network from a CUDA graph")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.warmup is None:
        args.warmup = max(1, args.resident_batches)
    if args.precision is None:
        args.precision = "tf32" if args.device == "gpu" else "fp32"
    if args.precision == "tf32" and args.device == "cpu":
        p.error("--precision tf32 needs --device gpu (NumPy has no TF32); use fp32 on the CPU")
    return args


def slot_cards(args) -> list[int]:
    cards = [int(c) for c in args.cards.split(",")] if args.cards else list(KAGGLE)
    return [min(c, SMALL_CARD_CAP) for c in cards] if args.small else cards


def main(argv=None) -> dict:
    args = parse_args(argv)
    cards = slot_cards(args)
    peer_rows = run_peer(args)  # first: the peer gets the card before our tables take its memory
    tmp = tempfile.TemporaryDirectory(prefix="dlrm_bench_") if args.e2e and not args.data_dir else None
    data_dir = args.data_dir or (tmp.name if tmp else None)
    try:
        if args.e2e:
            os.makedirs(data_dir, exist_ok=True)
            train_file, eval_file = generate_raw(data_dir, args.batch, args.e2e_batches, cards)
        else:
            train_file, eval_file = "unused-train.bin", "unused-val.bin"
        result = measure(args, cards, train_file, eval_file, peer_rows)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(render(result), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


def measure(args, cards, train_file, eval_file, peer_rows) -> dict:
    from hugectr_core import backend

    model = build_model(args, cards, train_file, eval_file)
    rt = model.runtime
    gpu = not backend.is_numpy(rt.xp)
    clock, memory = Clock(rt.xp, gpu), MemoryProbe(rt.xp, gpu, rt.network_graphs)
    batches = host_batches(args.resident_batches, args.batch, cards)
    with ResidentInputs(rt, batches):
        step_s, loss = run_steps(model, batches, args.steps, args.warmup, clock, memory=memory)
        timer = PhaseTimer(clock)
        phase_step_s, _ = run_steps(model, batches, args.steps, 0, clock, memory=memory, timer=timer)
        soak = run_soak(model, batches, args.soak, clock, memory) if args.soak else None
    phase_ms = timer.ms_per_step(args.steps)
    if not np.isfinite(loss):
        raise RuntimeError(f"training loss is {loss} after the resident steps")
    rows = [{"name": "ours, resident batches", "samples_per_s": args.batch / step_s, "step_ms": step_s * 1e3,
             "loss": loss}]
    reader_ms = None
    if args.e2e:
        e2e_s, reader_ms = run_e2e(model, args.steps, args.warmup, clock)
        memory.sample()
        rows.append({"name": "ours, end to end (RawAsync)", "samples_per_s": args.batch / e2e_s,
                     "step_ms": e2e_s * 1e3, "note": f"{step_s / e2e_s:.0%} of resident"})
    best = max((r for r in peer_rows if r.get("samples_per_s")), key=lambda r: r["samples_per_s"], default=None)
    if best is not None:
        rows[0]["ratio_to_best_peer"] = rows[0]["samples_per_s"] / best["samples_per_s"]
        rows[0]["note"] = f"{rows[0]['ratio_to_best_peer']:.2f}x the best peer ({best['name']})"
    else:
        rows[0]["note"] = "no peer figure to compare with"
    rows += peer_rows
    limits = floors(rt, args, cards)
    phases = []
    network = [phase for _, _, phase in network_phases(rt)]
    for name in ("embedding forward", *network, "optimizer", "embedding backward+update"):
        phases.append({"phase": name, "ms": phase_ms.get(name, 0.0), "floor_ms": limits[name][0],
                       "basis": limits[name][1]})
    phases.append({"phase": "other (loss, casts, launch gaps)",
                   "ms": max(phase_step_s * 1e3 - sum(p["ms"] for p in phases), 0.0), "floor_ms": None, "basis": ""})
    if reader_ms is not None:
        phases.append({"phase": "reader", "ms": reader_ms, "floor_ms": limits["reader"][0],
                       "basis": limits["reader"][1]})
    card = card_name(rt.xp, gpu)
    title = (f"dlrm-kaggle on {card}: batch {args.batch}, {args.precision}, {len(cards)} slots "
             f"({sum(cards) / 1e6:.2f} M rows) x {VEC}, {args.steps} timed steps, CUDA graph {args.cuda_graph}; "
             "floors are an H100's")
    return {"title": title, "card": card, "date": time.strftime("%Y-%m-%d"),
            "config": {"batch": args.batch, "steps": args.steps, "precision": args.precision, "cards": cards,
                       "cuda_graph": args.cuda_graph,
                       "device": args.device, "e2e": args.e2e, "small": args.small},
            "rows": rows, "phases": phases, "memory": memory.report(), "soak": soak}


if __name__ == "__main__":
    main()
