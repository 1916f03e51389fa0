"""``Model.summary()``: layers, shapes, parameters, the memory plan per device and whether it fits.

The memory plan lists what ``compile()`` placed (formats.md 3.8 for the embeddings): activations and
their gradients per network, layer workspaces, dense weights, their gradients and optimizer states, and
each embedding's table rows, optimizer states and hash table. The device's free memory follows (GPU:
``cudaMemGetInfo``; CPU: available RAM from ``/proc/meminfo`` or ``os.sysconf``).

``MemoryCheck`` (registered as ``hooks:memory_check``) repeats the check when ``fit`` starts and warns
(a ``MemoryPlanWarning`` and a log line) when the plan will not fit. On the CPU NumPy's zero-filled
arenas take RAM only as they are touched, so the warning comes before the memory runs out; on the GPU
the plan is allocated at ``compile()``, so what is checked there is the headroom left for the
library workspaces (cuBLAS, CuPy's pool).

Example:
    >>> from hugectr_core.summary import format_bytes
    >>> format_bytes(3 * 1024 ** 2)
    '3.0 MiB'
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pluggy

from . import backend
from .solver import unused_switches

hookimpl = pluggy.HookimplMarker("hugectr")

GPU_HEADROOM_FRACTION = 0.02   # below 2% of the card free after compile(), cuBLAS/CuPy workspaces may not fit

_POOL_NAMES = {
    "params": "dense weights", "params_fp16": "dense weights, fp16 working copy",
    "param_grads": "dense weight gradients", "param_grads_fp32": "dense weight gradients, fp32",
    "opt_states": "dense optimizer states", "layer_state": "non-trainable layer state",
    "activations": "activations", "grads": "activation gradients", "workspace": "layer workspaces",
    "embedding_fp32": "embedding staging buffers",
}
_EMBEDDING_PURPOSES = {"rows": "table", "optimizer_states": "optimizer states", "hash_table": "hash table"}


class MemoryPlanWarning(ResourceWarning):
    """The memory plan of a compiled model does not fit the device's free memory.

    Example:
        >>> issubclass(MemoryPlanWarning, Warning)
        True
    """


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


_fmt_bytes = format_bytes   # the old private name


def describe_pool(pool: str) -> str:
    """A readable name for a memory pool: ``'train/activations'`` -> ``'activations (train)'``."""
    if pool.startswith("embedding "):
        _, name, purpose = pool.split(" ", 2)
        return f"embedding {name}: {_EMBEDDING_PURPOSES.get(purpose, purpose)}"
    mode, _, kind = pool.rpartition("/")
    text = _POOL_NAMES.get(kind, kind)
    return f"{text} ({mode})" if mode else text


def available_host_memory() -> int:
    """Bytes of RAM the OS can give us now (``MemAvailable``; else free pages from ``os.sysconf``)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))


def device_memory(xp) -> tuple[int, int]:
    """``(free, total)`` bytes of the device that ``xp`` computes on."""
    if backend.is_numpy(xp):
        total = int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        return available_host_memory(), total
    free, total = xp.cuda.runtime.memGetInfo()
    return int(free), int(total)


def memory_plan(model) -> dict[str, int]:
    """Bytes per pool of this device (one device per process in this version)."""
    return dict(model._rt().memory_bytes())


def check_fits(model) -> tuple[bool, str]:
    """Whether the plan fits the device, and a sentence saying why (or why not)."""
    rt = model._rt()
    planned = sum(memory_plan(model).values())
    free, total = device_memory(rt.xp)
    if backend.is_numpy(rt.xp):
        if planned > free:
            return False, (f"the memory plan needs {format_bytes(planned)} but only {format_bytes(free)} of RAM is "
                           "available; lower batchsize or workspace_size_per_gpu_in_mb, or free memory")
        return True, f"the plan ({format_bytes(planned)}) fits the {format_bytes(free)} of available RAM"
    if free < GPU_HEADROOM_FRACTION * total:
        return False, (f"only {format_bytes(free)} of {format_bytes(total)} is free on the GPU after placing the "
                       f"{format_bytes(planned)} plan; cuBLAS and CuPy workspaces may fail to allocate. Lower "
                       "batchsize or workspace_size_per_gpu_in_mb")
    return True, f"the plan ({format_bytes(planned)}) is placed; {format_bytes(free)} stays free"


def _layer_rows(model, rt) -> tuple[list, int]:
    shapes = rt.shapes["train"]
    rows = [("Layer type", "Input name", "Output name", "Output shape", "Params")]
    inp = model.input_layer
    for name in inp.label_names:
        rows.append(("Input", "", name, str(shapes[name]), "0"))
    if inp.dense_dim:
        rows.append(("Input", "", inp.dense_name, str(shapes[inp.dense_name]), "0"))
    for emb in rt.embeddings:
        table = getattr(emb, "rows", None)   # the sparse plugin's table; other embeddings may not expose one
        rows.append((emb.config.type_name, emb.config.bottom_name, emb.name, str(shapes[emb.name]),
                     f"{int(table.size):,} (table capacity)" if table is not None else "-"))
    n_params: dict[str, int] = {}
    for layer_name, spec in rt.param_layout:
        n_params[layer_name] = n_params.get(layer_name, 0) + int(np.prod(spec.shape))
    for node in rt.graph.nodes:
        for i, top in enumerate(node.tops):
            first = i == 0
            rows.append((node.layer.type_name if first else "", ",".join(node.bottoms) if first else "", top,
                         str(shapes[top]), f"{n_params.get(node.layer.name, 0):,}" if first else ""))
    return rows, sum(n_params.values())


def render_summary(model) -> str:
    """The text ``Model.summary()`` prints."""
    rt = model._rt()
    rows, total_params = _layer_rows(model, rt)
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    rule = "=" * (sum(widths) + 8)
    lines = [rule, f"Model summary (per-device batch {rt.batch_train}, device {backend.device_name(rt.xp)})"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines += [f"Dense parameters: {total_params:,}", "",
              f"Memory plan per device ({rt.device_count} device{'s' if rt.device_count > 1 else ''}):"]
    plan = memory_plan(model)
    for pool, nbytes in sorted(plan.items(), key=lambda kv: (kv[0].startswith("embedding"), kv[0])):
        lines.append(f"  {describe_pool(pool):<48} {format_bytes(nbytes):>12}   [{pool}]")
    lines.append(f"  {'total':<48} {format_bytes(sum(plan.values())):>12}")
    free, total = device_memory(rt.xp)
    where = "RAM available" if backend.is_numpy(rt.xp) else "GPU memory free"
    lines.append(f"Device memory: {format_bytes(free)} {where} of {format_bytes(total)}")
    fits, why = check_fits(model)
    lines.append(("OK: " if fits else "WARNING: ") + why)
    lines.append(f"Training step: {rt.network_graphs.describe()}")
    unused = unused_switches(model.solver, model.dense_layers)
    if unused:
        lines.append(f"Not used by this engine yet (no result depends on them): {', '.join(unused)}")
    lines.append(rule)
    return "\n".join(lines)


class MemoryCheck:
    """Warns when ``fit`` starts if the memory plan will not fit the device (see ``check_fits``).

    Example:
        >>> MemoryCheck().hugectr_fit_start.__name__
        'hugectr_fit_start'
    """

    @hookimpl
    def hugectr_fit_start(self, model, total_iterations, mode):
        fits, why = check_fits(model)
        if fits:
            return
        warnings.warn(why, MemoryPlanWarning, stacklevel=2)
        from .plugins import plugin_manager

        plugin_manager().hook.hugectr_log(model=model, message=f"WARNING: {why}")


SUMMARY_ONLY_ENV = "HUGECTR_SUMMARY_ONLY"


class SummaryOnly:
    """With ``HUGECTR_SUMMARY_ONLY=1``, the first ``compile()`` prints the summary and ends the script (exit 0).

    This is how ``hugectr summary script.py`` shows an unchanged HugeCTR script's model without training
    it (registered as ``hooks:summary_only``). Whatever the script does before ``compile()`` still runs.

    Example:
        >>> import os
        >>> os.environ.get("HUGECTR_SUMMARY_ONLY", "0") in ("", "0")   # off unless asked
        True
    """

    @hookimpl
    def hugectr_configure(self, model):
        if os.environ.get(SUMMARY_ONLY_ENV, "0") in ("", "0"):
            return
        model.summary()
        raise SystemExit(0)
