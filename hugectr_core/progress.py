"""Progress reporting: the core's own pluggy hook plugin (registered as ``hooks:progress``).

On a terminal ``fit`` shows a tqdm bar (samples/s, loss, ETA) when tqdm is installed; otherwise, and
always for HugeCTR's ``display`` lines, plain log lines go to stdout so CI logs stay readable.
Set ``HUGECTR_PROGRESS=0`` to silence the bar (log lines stay).
"""
from __future__ import annotations

import os
import sys
import time

import pluggy

hookimpl = pluggy.HookimplMarker("hugectr")


def _want_bar() -> bool:
    if os.environ.get("HUGECTR_PROGRESS", "1") == "0" or not sys.stdout.isatty():
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


class ProgressReporter:
    """Prints HugeCTR-style log lines and drives a progress bar during ``fit``."""

    def __init__(self):
        self.bar = None
        self.start = None
        self.samples = 0
        self.loss = None

    def _print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    @hookimpl
    def hugectr_fit_start(self, model, total_iterations, mode):
        self.start, self.samples, self.loss = time.perf_counter(), 0, None
        if _want_bar():
            from tqdm import tqdm

            self.bar = tqdm(total=total_iterations, unit="it", dynamic_ncols=True, desc="train")

    @hookimpl
    def hugectr_train_step_end(self, model, iteration, samples, loss):
        self.samples += samples
        if loss is not None:
            self.loss = loss
        if self.bar is not None:
            rate = self.samples / max(time.perf_counter() - self.start, 1e-9)
            postfix = {"samples/s": f"{rate:,.0f}"}
            if self.loss is not None:
                postfix["loss"] = f"{self.loss:.4f}"
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(1)

    @hookimpl
    def hugectr_log(self, model, message):
        self._print(f"[HCTR] {message}")

    @hookimpl
    def hugectr_fit_end(self, model, iteration):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elapsed = time.perf_counter() - (self.start or time.perf_counter())
        rate = self.samples / elapsed if elapsed > 0 else 0.0
        self._print(f"[HCTR] Finished {iteration} iterations in {elapsed:.2f}s ({rate:,.0f} samples/s)")
