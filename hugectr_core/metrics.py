"""Evaluation metrics (formats.md 3.4), accumulated over the batches of one evaluation."""
from __future__ import annotations

import numpy as np


def auc(pred: np.ndarray, label: np.ndarray) -> float:
    """Exact, tie-aware ROC AUC (equals sklearn's roc_auc_score); soft labels allowed.

    Example:
        >>> auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
        0.75
    """
    pred = np.asarray(pred, dtype=np.float64).ravel()
    label = np.asarray(label, dtype=np.float64).ravel()
    order = np.argsort(-pred, kind="mergesort")
    pred, label = pred[order], label[order]
    tp, fp = np.cumsum(label), np.cumsum(1.0 - label)
    last_of_run = np.r_[pred[1:] != pred[:-1], True]  # ties: only the end of each run is a ROC point
    tp, fp = np.r_[0.0, tp[last_of_run]], np.r_[0.0, fp[last_of_run]]
    if tp[-1] == 0 or fp[-1] == 0:
        return float("nan")
    return float(np.trapezoid(tp / tp[-1], fp / fp[-1]))


def hit_rate(pred, label, threshold: float = 0.8) -> float:
    """HugeCTR's HitRate: among predictions above 0.8, the fraction whose label is 1."""
    pred, label = np.ravel(pred), np.ravel(label)
    checked = pred > threshold
    return float((label[checked] == 1).sum() / checked.sum()) if checked.any() else 0.0


def ndcg(pred, label) -> float:
    pred, label = np.ravel(pred).astype(np.float64), np.ravel(label).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(pred.size) + 2.0)
    dcg = (label[np.argsort(-pred, kind="mergesort")] * discounts).sum()
    ideal = (np.sort(label)[::-1] * discounts).sum()
    return float(dcg / ideal) if ideal > 0 else 0.0


def smape(pred, label) -> float:
    pred, label = np.ravel(pred).astype(np.float64), np.ravel(label).astype(np.float64)
    denom = (pred + label) / 2.0
    ok = denom != 0
    return float(np.mean(np.abs(pred - label)[ok] / denom[ok])) if ok.any() else 0.0


class MetricAccumulator:
    """Collects predictions, labels and loss values of one evaluation, then computes the metrics."""

    def __init__(self, metric_names):
        self.metric_names = list(metric_names)
        self.reset()

    def reset(self) -> None:
        self._preds, self._labels, self._losses = [], [], []

    def add(self, pred: np.ndarray, label: np.ndarray, loss: float) -> None:
        self._preds.append(np.asarray(pred, dtype=np.float64).reshape(len(pred), -1))
        self._labels.append(np.asarray(label, dtype=np.float64).reshape(len(label), -1))
        self._losses.append(float(loss))

    @property
    def batches(self) -> int:
        return len(self._losses)

    def _per_column(self, fn, pred, label) -> float:
        values = [fn(pred[:, j], label[:, j]) for j in range(pred.shape[1])]
        return float(np.mean(values))

    def compute(self) -> dict:
        if not self._preds:
            return {}
        pred, label = np.concatenate(self._preds), np.concatenate(self._labels)
        fns = {"AUC": auc, "HitRate": hit_rate, "NDCG": ndcg, "SMAPE": smape}
        out = {}
        for name in self.metric_names:
            if name == "AverageLoss":
                out[name] = float(np.mean(self._losses))
            else:
                out[name] = self._per_column(fns[name], pred, label)
        return out
