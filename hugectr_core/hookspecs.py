"""The few cross-cutting events, as pluggy hook specifications (all prefixed ``hugectr_``).

Names (layers, readers, ...) are looked up through entry-point registries, not hooks; hooks carry
events that many plugins may want to observe: progress reporting, logging, profiling.
"""
import pluggy

hookspec = pluggy.HookspecMarker("hugectr")


@hookspec
def hugectr_configure(model):
    """Called at the end of ``Model.compile()`` with the compiled model."""


@hookspec
def hugectr_fit_start(model, total_iterations, mode):
    """``fit`` begins. ``total_iterations`` is None in epoch mode; ``mode`` is 'iteration' or 'epoch'."""


@hookspec
def hugectr_train_step_end(model, iteration, samples, loss):
    """One training step finished. ``loss`` is a float when it was read this step, else None."""


@hookspec
def hugectr_eval_end(model, iteration, metrics):
    """An evaluation finished; ``metrics`` maps metric names to values."""


@hookspec
def hugectr_log(model, message):
    """A HugeCTR-style log line (display interval, evaluation results, snapshots)."""


@hookspec
def hugectr_fit_end(model, iteration):
    """``fit`` ended after ``iteration`` steps."""


@hookspec
def hugectr_eval_start(model, iteration, batches):
    """An evaluation of ``batches`` batches begins after training iteration ``iteration``."""


@hookspec
def hugectr_eval_batch_end(model, batch):
    """Evaluation batch number ``batch`` (1-based) finished."""
