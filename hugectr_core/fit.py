"""The ``Model.fit`` loop (formats.md 3.1), reporting through pluggy hooks and TrainingCallbacks.

Non-finite training is caught like HugeCTR does (the loss, at every ``display`` iteration) and, beyond
HugeCTR, before every evaluation and every snapshot: a snapshot is never written from NaN/Inf weights,
so the last one on disk stays the last good one. Ctrl-C (KeyboardInterrupt) stops the reader threads.
"""
from __future__ import annotations

import time

from . import backend
from .arg_types import is_int
from .errors import ConfigError, TrainingError
from .plugins import plugin_manager


class _Loop:
    def __init__(self, model, display, eval_interval, snapshot, snapshot_prefix):
        self.model, self.display, self.eval_interval = model, display, eval_interval
        self.snapshot, self.snapshot_prefix = snapshot, snapshot_prefix
        self.hook = plugin_manager().hook
        self.callbacks = list(model.solver.training_callbacks)
        self.auc_threshold = _auc_threshold(model.solver.metrics_spec)
        self.iteration = 0
        self.window_start = time.perf_counter()
        self.batch = model.runtime.batch_train * model.runtime.device_count
        self.last_metrics = {}

    def log(self, message: str) -> None:
        self.hook.hugectr_log(model=self.model, message=message)

    def step(self) -> bool:
        """Train one iteration; returns False when the (epoch-mode) source is exhausted."""
        model = self.model
        model.set_learning_rate(model.lr_scheduler.get_next())
        if not model.train():
            return False
        self.iteration += 1
        it = self.iteration
        loss = None
        if self.display > 0 and it % self.display == 0:
            self.check_finite("display")
            loss = model.get_current_loss()
            elapsed = time.perf_counter() - self.window_start
            self.log(f"Iter: {it} Time({self.display} iters): {elapsed:.6f}s Loss: {loss:.6f} "
                     f"lr:{model.learning_rate:.6g}")
            self.window_start = time.perf_counter()
        self.hook.hugectr_train_step_end(model=model, iteration=it, samples=self.batch, loss=loss)
        stop = self.eval_interval > 0 and it % self.eval_interval == 0 and self.evaluate()
        if self.snapshot > 0 and it % self.snapshot == 0:
            self.check_finite("snapshot", weights=True)
            model.save_params_to_files(self.snapshot_prefix, it)
            self.log(f"Saved snapshot at iteration {it} with prefix '{self.snapshot_prefix}'")
        return not stop

    def evaluate(self) -> bool:
        """Run one evaluation; True when training should stop (AUC threshold or a callback)."""
        model, it = self.model, self.iteration
        self.check_finite("evaluation", weights=True)
        stop = any(bool(cb.on_eval_start(it)) for cb in self.callbacks)
        start = time.perf_counter()
        metrics = model.evaluate()
        self.last_metrics = metrics
        text = ", ".join(f"{k}: {v:.6f}" for k, v in metrics.items())
        self.log(f"Evaluation, {text} (iteration {it}, {time.perf_counter() - start:.3f}s)")
        self.hook.hugectr_eval_end(model=model, iteration=it, metrics=metrics)
        stop = any([bool(cb.on_eval_end(it, metrics)) for cb in self.callbacks]) or stop
        auc = metrics.get("AUC")
        if auc is not None and auc > self.auc_threshold:
            self.log(f"Hit target AUC {self.auc_threshold} at iteration {it} with AUC {auc:.6f}; stopping")
            stop = True
        return stop

    def check_finite(self, when: str, weights: bool = False) -> None:
        """TrainingError naming the iteration when the last loss (or, with ``weights``, a dense weight) is NaN/Inf."""
        it, model = self.iteration, self.model
        if model.current_loss is not None:
            value = float(backend.to_host(model.current_loss))
            if value != value or value in (float("inf"), float("-inf")):
                raise TrainingError(f"the training loss is {value} at iteration {it} (checked at {when}); training "
                                    f"stopped{self._kept()}. Lower the learning rate or check the data for NaN/Inf "
                                    f"(DataReaderParams(check_type=Check_t.Sum) checks dense values)")
        if weights:
            rt = model.runtime
            master = rt.dense.master
            if master is not None and master.size and not bool(rt.xp.isfinite(master).all()):
                raise TrainingError(f"the dense weights hold NaN/Inf at iteration {it} (checked at {when}); training "
                                    f"stopped{self._kept()}. Lower the learning rate or check the data")

    def _kept(self) -> str:
        last = (self.iteration - 1) // self.snapshot * self.snapshot if self.snapshot > 0 else 0
        where = f"; the last snapshot of this fit is iteration {last}" if last > 0 else ""
        return f" before writing a snapshot from these weights{where}"


def _auc_threshold(metrics_spec) -> float:
    for metric, threshold in metrics_spec.items():
        if getattr(metric, "value", metric) == "AUC":
            return float(threshold)
    return float("inf")


def run_fit(model, num_epochs, max_iter, display, eval_interval, snapshot, snapshot_prefix):
    """Iteration mode when the solver repeats the dataset, epoch mode otherwise."""
    model._rt()
    for name, value in (("num_epochs", num_epochs), ("max_iter", max_iter), ("display", display),
                        ("eval_interval", eval_interval), ("snapshot", snapshot)):
        if not is_int(value):  # display/eval_interval/snapshot <= 0 turn that action off, as in HugeCTR
            raise ConfigError(f"fit: {name} must be an int, got {value!r}")
    if not isinstance(snapshot_prefix, str):
        raise ConfigError(f"fit: snapshot_prefix must be a string (a path prefix), got {snapshot_prefix!r}")
    epoch_mode = not model.solver.repeat_dataset
    if epoch_mode and num_epochs < 1:
        raise ConfigError("fit: epoch mode (repeat_dataset=False) needs num_epochs >= 1")
    if not epoch_mode and max_iter < 1:
        raise ConfigError("fit: iteration mode (repeat_dataset=True) needs max_iter >= 1")
    loop = _Loop(model, display, eval_interval, snapshot, snapshot_prefix)
    model.start_data_reading()
    total = None if epoch_mode else max_iter
    loop.hook.hugectr_fit_start(model=model, total_iterations=total, mode="epoch" if epoch_mode else "iteration")
    for cb in loop.callbacks:
        cb.on_training_start()
    try:
        if epoch_mode:
            _run_epochs(model, loop, num_epochs)
        else:
            while loop.iteration < max_iter and loop.step():
                pass
    except KeyboardInterrupt:
        loop.log(f"Interrupted at iteration {loop.iteration}; stopping the reader threads")
        model.close()  # Ctrl-C: no reader thread may outlive the interrupted fit
        raise
    finally:
        loop.hook.hugectr_fit_end(model=model, iteration=loop.iteration)
    for cb in loop.callbacks:
        cb.on_training_end(loop.iteration)
    return loop.last_metrics


def _run_epochs(model, loop, num_epochs) -> None:
    reader = model.get_data_reader_train()
    for epoch in range(num_epochs):
        if epoch:
            reader.set_source("")
        loop.log(f"Epoch {epoch} begins")
        while True:
            before = loop.iteration
            if not loop.step():
                if loop.iteration > before:  # stopped by a threshold or callback
                    return
                break
