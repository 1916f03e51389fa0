"""Learning-rate scheduler (formats.md 3.2) and metrics (3.4)."""
import numpy as np
import pytest

from hugectr_core.errors import ConfigError
from hugectr_core.lr_scheduler import LearningRateScheduler
from hugectr_core.metrics import MetricAccumulator, auc, hit_rate, ndcg, smape


def reference_lr(step, base, warmup, start, steps, power, end):
    if step <= warmup:
        return base * step / warmup
    if start == 0 or step <= start:
        return base
    if step <= start + steps:
        return max(base * ((start + steps - step) / steps) ** power, end)
    return end


@pytest.mark.parametrize("cfg", [(0.1, 1, 0, 1, 2.0, 0.0), (1.0, 5, 10, 8, 2.0, 0.05), (24.0, 3, 6, 4, 1.0, 0.0)])
def test_scheduler_matches_formula(cfg):
    sch = LearningRateScheduler(*cfg)
    got = [sch.get_next() for _ in range(30)]
    assert got == pytest.approx([reference_lr(s, *cfg) for s in range(1, 31)])


def test_scheduler_worked_values():
    sch = LearningRateScheduler(1.0, warmup_steps=2, decay_start=3, decay_steps=2, decay_power=2.0, end_lr=0.1)
    assert [sch.get_next() for _ in range(6)] == pytest.approx([0.5, 1.0, 1.0, 0.25, 0.1, 0.1])


@pytest.mark.parametrize("bad", [dict(base_lr=-1), dict(base_lr=1, decay_power=0.5), dict(base_lr=1, end_lr=-1)])
def test_scheduler_validation(bad):
    with pytest.raises(ConfigError):
        LearningRateScheduler(**bad)


def pairwise_auc(pred, label):
    pos, neg = pred[label == 1], pred[label == 0]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / (pos.size * neg.size)


def test_auc_equals_pairwise_definition_with_ties():
    rng = np.random.default_rng(3)
    pred = rng.integers(0, 20, 500) / 20.0
    label = (rng.random(500) < pred).astype(float)
    assert auc(pred, label) == pytest.approx(pairwise_auc(pred, label), abs=1e-12)


def test_auc_edge_cases():
    assert auc(np.array([0.2, 0.9]), np.array([0, 1])) == 1.0
    assert auc(np.array([0.9, 0.2]), np.array([0, 1])) == 0.0
    assert np.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_other_metrics():
    assert hit_rate(np.array([0.9, 0.85, 0.5]), np.array([1, 0, 1])) == 0.5
    assert ndcg(np.array([0.9, 0.1]), np.array([1, 0])) == 1.0
    assert ndcg(np.array([0.1, 0.9]), np.array([1, 0])) == pytest.approx(1 / np.log2(3))
    assert smape(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(0.5)


def test_accumulator_averages_columns_and_losses():
    acc = MetricAccumulator(["AUC", "AverageLoss"])
    acc.add(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([[0, 1], [1, 0]]), 0.5)
    acc.add(np.array([[0.3, 0.4], [0.6, 0.1]]), np.array([[0, 1], [1, 0]]), 0.7)
    out = acc.compute()
    assert out["AverageLoss"] == pytest.approx(0.6)
    col0 = auc(np.array([0.1, 0.8, 0.3, 0.6]), np.array([0, 1, 0, 1]))
    col1 = auc(np.array([0.9, 0.2, 0.4, 0.1]), np.array([1, 0, 1, 0]))
    assert out["AUC"] == pytest.approx((col0 + col1) / 2)
