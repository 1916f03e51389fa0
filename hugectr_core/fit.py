"""The ``Model.fit`` loop (formats.md 3.1), reporting through pluggy hooks and TrainingCallbacks."""
from __future__ import annotations

import time

from .errors import ConfigError
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
            loss = model.get_current_loss()
            elapsed = time.perf_counter() - self.window_start
            self.log(f"Iter: {it} Time({self.display} iters): {elapsed:.6f}s Loss: {loss:.6f} "
                     f"lr:{model.learning_rate:.6g}")
            self.window_start = time.perf_counter()
        self.hook.hugectr_train_step_end(model=model, iteration=it, samples=self.batch, loss=loss)
        stop = self.eval_interval > 0 and it % self.eval_interval == 0 and self.evaluate()
        if self.snapshot > 0 and it % self.snapshot == 0:
            model.save_params_to_files(self.snapshot_prefix, it)
            self.log(f"Saved snapshot at iteration {it} with prefix '{self.snapshot_prefix}'")
        return not stop

    def evaluate(self) -> bool:
        """Run one evaluation; True when training should stop (AUC threshold or a callback)."""
        model, it = self.model, self.iteration
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


def _auc_threshold(metrics_spec) -> float:
    for metric, threshold in metrics_spec.items():
        if getattr(metric, "value", metric) == "AUC":
            return float(threshold)
    return float("inf")


def run_fit(model, num_epochs, max_iter, display, eval_interval, snapshot, snapshot_prefix):
    """Iteration mode when the solver repeats the dataset, epoch mode otherwise."""
    model._rt()
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
