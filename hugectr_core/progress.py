"""Progress reporting: the core's own pluggy hook plugin (registered as ``hooks:progress``).

On a terminal ``fit`` shows a tqdm bar (samples/s, loss, ETA) when tqdm is installed; otherwise, and
always for HugeCTR's ``display`` lines, plain log lines go to stdout so CI logs stay readable.
Without a bar a plain progress line (iterations, samples/s, loss, ETA) is printed at most every
``HUGECTR_PROGRESS_SECONDS`` seconds (default 30). Set ``HUGECTR_PROGRESS=0`` to silence the bar and
the progress lines (HugeCTR's log lines stay).

Example:
    >>> format_eta(3725.2)
    '1:02:05'
"""
from __future__ import annotations

import os
import sys
import time

import pluggy

hookimpl = pluggy.HookimplMarker("hugectr")


def format_eta(seconds: float) -> str:
    """Seconds as ``H:MM:SS``."""
    seconds = int(round(max(seconds, 0)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _line_interval() -> float | None:
    """Seconds between plain progress lines, or None when they are switched off."""
    if os.environ.get("HUGECTR_PROGRESS", "1") == "0":
        return None
    try:
        return float(os.environ.get("HUGECTR_PROGRESS_SECONDS", "30"))
    except ValueError:
        return 30.0


def _want_bar() -> bool:
    if os.environ.get("HUGECTR_PROGRESS", "1") == "0" or not sys.stdout.isatty():
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


class ProgressReporter:
    """Prints HugeCTR-style log lines and drives a progress bar during ``fit``.

    Example:
        >>> reporter = ProgressReporter()
        >>> reporter.bar is None
        True
    """

    def __init__(self):
        self.bar = None
        self.eval_bar = None
        self.start = None
        self.samples = 0
        self.loss = None
        self.total = None
        self.interval = None
        self.last_line = 0.0
        self.quiet = False  # a process other than the one holding worker 0 of a multi-process job

    def _print(self, text: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    @hookimpl
    def hugectr_fit_start(self, model, total_iterations, mode):
        self.start, self.samples, self.loss = time.perf_counter(), 0, None
        self.total, self.last_line = total_iterations, self.start
        # under mpirun only the process holding worker 0 reports, as HugeCTR's rank 0 does
        self.quiet = not getattr(model, "is_lead_process", True)
        self.interval = None if _want_bar() else _line_interval()
        if _want_bar() and not self.quiet:
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
        elif self.interval is not None and time.perf_counter() - self.last_line >= self.interval:
            self._progress_line(iteration)

    def _progress_line(self, iteration: int) -> None:
        now = time.perf_counter()
        self.last_line = now
        elapsed = max(now - self.start, 1e-9)
        text = f"progress: iteration {iteration}"
        if self.total:
            eta = (self.total - iteration) * elapsed / max(iteration, 1)
            text += f"/{self.total} ({100 * iteration / self.total:.0f}%)"
        text += f", {self.samples / elapsed:,.0f} samples/s"
        if self.loss is not None:
            text += f", loss {self.loss:.4f}"
        if self.total:
            text += f", ETA {format_eta(eta)}"
        self._print(f"[HCTR] {text}")

    @hookimpl
    def hugectr_eval_start(self, model, iteration, batches):
        if _want_bar() and not self.quiet:
            from tqdm import tqdm

            self.eval_bar = tqdm(total=batches, unit="batch", dynamic_ncols=True, desc="eval", leave=False)

    @hookimpl
    def hugectr_eval_batch_end(self, model, batch):
        if self.eval_bar is not None:
            self.eval_bar.update(1)
            if self.eval_bar.n >= self.eval_bar.total:
                self.eval_bar.close()
                self.eval_bar = None

    @hookimpl
    def hugectr_eval_end(self, model, iteration, metrics):
        if self.eval_bar is not None:   # an evaluation that ran out of data early
            self.eval_bar.close()
            self.eval_bar = None

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
