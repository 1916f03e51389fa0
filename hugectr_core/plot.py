"""``hugectr plot``: a metrics log (JSON lines, see ``metrics_log``) to a PNG of the loss and AUC curves.

matplotlib is an optional extra (``pip install 'hugectr-core[plot]'``); without it ``plot_metrics``
raises a ``ConfigError`` that says so. Only the last ``fit`` of a log is drawn unless ``all_runs``.

Example:
    >>> from hugectr_core.plot import curves
    >>> c = curves([{"event": "train", "iteration": 10, "loss": 0.7},
    ...             {"event": "eval", "iteration": 10, "metrics": {"AUC": 0.6}}])
    >>> c["loss"], c["AUC"]
    (([10], [0.7]), ([10], [0.6]))
"""
from __future__ import annotations

from .errors import ConfigError, DataError
from .metrics_log import read_log


def last_run(records: list[dict]) -> list[dict]:
    """The records of the last ``fit`` in a log (a log may hold several, each opened by ``fit_start``)."""
    starts = [i for i, r in enumerate(records) if r.get("event") == "fit_start"]
    return records[starts[-1]:] if starts else records


def curves(records: list[dict], metric: str = "AUC") -> dict:
    """``{"loss": (iterations, losses), metric: (iterations, values)}`` from log records (nulls dropped)."""
    loss = [(r["iteration"], r["loss"]) for r in records
            if r.get("event") == "train" and r.get("loss") is not None]
    evals = [(r["iteration"], r["metrics"][metric]) for r in records
             if r.get("event") == "eval" and r.get("metrics", {}).get(metric) is not None]
    return {"loss": tuple(map(list, zip(*loss))) or ([], []),
            metric: tuple(map(list, zip(*evals))) or ([], [])}


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError("hugectr plot needs matplotlib, an optional extra: pip install 'hugectr-core[plot]' "
                          "(or pip install matplotlib)") from exc
    matplotlib.use("Agg")   # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_metrics(log_path: str, png_path: str, metric: str = "AUC", all_runs: bool = False, title: str | None = None):
    """Draw the training loss (left) and the evaluation ``metric`` (right) against iterations into ``png_path``.

    Returns the matplotlib ``Figure`` (already saved and closed), whose two axes hold one line each.

    Example:
        >>> fig = plot_metrics("metrics.jsonl", "curves.png")        # doctest: +SKIP
        >>> [ax.get_ylabel() for ax in fig.axes]                       # doctest: +SKIP
        ['loss', 'AUC']
    """
    records = read_log(log_path)
    if not all_runs:
        records = last_run(records)
    data = curves(records, metric)
    if not data["loss"][0] and not data[metric][0]:
        raise DataError(f"{log_path}: no train loss and no eval {metric} records; train with display > 0 and "
                        f"eval_interval > 0 while HUGECTR_METRICS_LOG is set")
    plt = _pyplot()
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)   # one iteration axis
    for ax, key, color, marker in ((ax_loss, "loss", "tab:blue", None), (ax_metric, metric, "tab:orange", "o")):
        xs, ys = data[key]
        ax.plot(xs, ys, color=color, marker=marker, linewidth=1.8, label=key)
        ax.set_xlabel("iteration")
        ax.set_ylabel(key)
        ax.set_title(f"eval {key}" if key == metric else "training loss")
        ax.grid(True, alpha=0.3)
        if not xs:
            ax.text(0.5, 0.5, f"no {key} records", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title or log_path)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return fig
