"""``Model.summary()``: layers, shapes, parameters and the memory plan, as a text table."""
from __future__ import annotations

import numpy as np

from . import backend


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)


def render_summary(model) -> str:
    rt = model._rt()
    shapes = rt.shapes["train"]
    rows = [("Layer type", "Input name", "Output name", "Output shape", "Params")]
    inp = model.input_layer
    for name, dim in zip(inp.label_names, inp.label_dims):
        rows.append(("Input", "", name, str(shapes[name]), "0"))
    if inp.dense_dim:
        rows.append(("Input", "", inp.dense_name, str(shapes[inp.dense_name]), "0"))
    for emb in rt.embeddings:
        rows.append((emb.config.type_name, emb.config.bottom_name, emb.name, str(shapes[emb.name]), "-"))
    n_params = {}
    for layer_name, spec in rt.param_layout:
        n_params[layer_name] = n_params.get(layer_name, 0) + int(np.prod(spec.shape))
    for node in rt.graph.nodes:
        for i, top in enumerate(node.tops):
            rows.append((node.layer.type_name if i == 0 else "", ",".join(node.bottoms) if i == 0 else "", top,
                         str(shapes[top]), str(n_params.get(node.layer.name, 0)) if i == 0 else ""))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    lines = ["=" * (sum(widths) + 8), f"Model summary (per-device batch {rt.batch_train}, "
             f"device {backend.device_name(rt.xp)})"]
    for r in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)))
    total = sum(n_params.values())
    lines += [f"Dense parameters: {total:,}", "Memory plan:"]
    for pool, nbytes in sorted(rt.memory_bytes().items()):
        lines.append(f"  {pool:<40} {_fmt_bytes(nbytes)}")
    lines.append(f"  {'total':<40} {_fmt_bytes(sum(rt.memory_bytes().values()))}")
    if not backend.is_numpy(rt.xp):
        free, dev_total = rt.xp.cuda.runtime.memGetInfo()
        lines.append(f"Device memory: {_fmt_bytes(free)} free of {_fmt_bytes(dev_total)}")
    lines.append("=" * (sum(widths) + 8))
    return "\n".join(lines)
