"""The metrics log: one JSON object per line, written during ``fit`` (registered as ``hooks:metrics_log``).

Where it writes, first match wins:

* ``model.metrics_log_path`` (an attribute; ``Model.fit(..., metrics_log=path)`` sets it),
* the environment variable ``HUGECTR_METRICS_LOG=path``.

With neither, nothing is written. The first ``fit`` of a process that writes to a path truncates it;
later ``fit`` calls append, each starting with a ``fit_start`` record. Records (``event`` names the kind):

* ``{"event": "fit_start", "mode", "total_iterations", "batch_size", "device", "time"}``
* ``{"event": "train", "iteration", "loss", "lr", "samples_per_s", "wall_time"}`` each time the loop
  read the loss (every ``display`` iterations: reading the loss syncs the device, so we never force it);
  ``samples_per_s`` is over the iterations since the previous train record, ``wall_time`` is seconds
  since ``fit`` began.
* ``{"event": "eval", "iteration", "metrics": {"AUC": ..., ...}, "lr", "wall_time"}`` after each evaluation.
* ``{"event": "fit_end", "iteration", "samples", "samples_per_s", "wall_time"}``.

``hugectr plot LOG -o curves.png`` draws loss and AUC from it.

Example:
    >>> import io, json
    >>> rows = [json.loads(line) for line in io.StringIO('{"event": "train", "iteration": 10, "loss": 0.6}\\n')]
    >>> rows[0]["loss"]
    0.6
"""
from __future__ import annotations

import json
import math
import os
import time

import pluggy

from . import backend

hookimpl = pluggy.HookimplMarker("hugectr")

ENV_VAR = "HUGECTR_METRICS_LOG"


def log_path(model) -> str | None:
    """Where ``model``'s metrics go: its ``metrics_log_path`` attribute, else ``$HUGECTR_METRICS_LOG``."""
    return getattr(model, "metrics_log_path", None) or os.environ.get(ENV_VAR) or None


def read_log(path: str) -> list[dict]:
    """Every record of a metrics log, in order (blank lines skipped).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "m.jsonl")
        >>> _ = open(p, "w").write('{"event": "eval", "iteration": 5, "metrics": {"AUC": 0.7}}\\n')
        >>> read_log(p)[0]["metrics"]["AUC"]
        0.7
    """
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    from .errors import DataError

                    raise DataError(f"{path}, line {number}: not a JSON object ({exc}); is this a metrics log "
                                    f"written with {ENV_VAR}?") from exc
    return records


def _number(value):
    """JSON has no NaN/Inf: write them as null so every line stays valid JSON."""
    value = float(value)
    return value if math.isfinite(value) else None


class MetricsLogger:
    """Writes the JSON-lines metrics log during ``fit`` (see the module docstring for the records)."""

    _opened_paths: set = set()   # paths this process has truncated already (later fits append)

    def __init__(self):
        self.file = None
        self.start = self.window_start = 0.0
        self.samples = self.window_samples = 0

    def _write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def _wall(self) -> float:
        return round(time.perf_counter() - self.start, 6)

    @hookimpl
    def hugectr_fit_start(self, model, total_iterations, mode):
        path = log_path(model)
        if not path or not getattr(model, "is_lead_process", True):  # under mpirun: one writer, not N
            return
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        first = os.path.abspath(path) not in MetricsLogger._opened_paths
        MetricsLogger._opened_paths.add(os.path.abspath(path))
        self.file = open(path, "w" if first else "a", encoding="utf-8")
        self.start = self.window_start = time.perf_counter()
        self.samples = self.window_samples = 0
        rt = getattr(model, "runtime", None)
        batch = rt.batch_train * rt.device_count if rt is not None else None
        device = backend.device_name(rt.xp) if rt is not None else None
        self._write({"event": "fit_start", "mode": mode, "total_iterations": total_iterations,
                     "batch_size": batch, "device": device, "time": time.time()})

    @hookimpl
    def hugectr_train_step_end(self, model, iteration, samples, loss):
        if self.file is None:
            return
        self.samples += samples
        self.window_samples += samples
        if loss is None:
            return
        now = time.perf_counter()
        rate = self.window_samples / max(now - self.window_start, 1e-9)
        self._write({"event": "train", "iteration": iteration, "loss": _number(loss),
                     "lr": _number(model.learning_rate), "samples_per_s": round(rate, 3),
                     "wall_time": self._wall()})
        self.window_start, self.window_samples = now, 0

    @hookimpl
    def hugectr_eval_end(self, model, iteration, metrics):
        if self.file is None:
            return
        self._write({"event": "eval", "iteration": iteration,
                     "metrics": {str(k): _number(v) for k, v in metrics.items()},
                     "lr": _number(model.learning_rate), "wall_time": self._wall()})

    @hookimpl
    def hugectr_fit_end(self, model, iteration):
        if self.file is None:
            return
        wall = self._wall()
        self._write({"event": "fit_end", "iteration": iteration, "samples": self.samples,
                     "samples_per_s": round(self.samples / wall, 3) if wall > 0 else None, "wall_time": wall})
        self.file.close()
        self.file = None
