"""A hidden click model for synthetic data whose labels can be learnt (``label_model="learnable"``).

logit = bias + scale * standardised(first-order key weights + pairwise slot interactions + dense terms),
label ~ Bernoulli(sigmoid(logit)). Key weights and interaction vectors are hashes of (seed, label,
slot, key): no tables, so any cardinality costs nothing. The scale is calibrated once on a
calibration sample so the model's own AUC (the ceiling a learner can reach) is about 0.8.
"""
from __future__ import annotations

import numpy as np

_MASK = (1 << 64) - 1
LOGIT_STD = 1.4   # std of the logit: a Bernoulli(sigmoid) task with ceiling AUC ~0.8
LOGIT_BIAS = -0.5  # about 40% positives
VEC_DIM = 4        # size of the hidden per-key vectors of the interaction terms
MAX_PAIRS = 6


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _salt(*parts: int) -> np.uint64:
    value = 0x243F6A8885A308D3
    for p in parts:
        value = int(_mix64(np.array([(value ^ (int(p) & _MASK)) & _MASK], dtype=np.uint64))[0])
    return np.uint64(value)


def hash_uniform(salt: np.uint64, keys: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random values in [-sqrt(3), sqrt(3)) (mean 0, variance 1), one per key."""
    h = _mix64(keys.astype(np.uint64, copy=False) ^ salt)
    unit = (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return (2.0 * unit - 1.0) * np.sqrt(3.0)


def _row_mean(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (K,) or (K, V) over CSR rows given by ``lengths`` (N,)."""
    if np.all(lengths == 1):
        return values
    rows = np.repeat(np.arange(lengths.size), lengths)
    if values.ndim == 1:
        return np.bincount(rows, weights=values, minlength=lengths.size) / lengths
    out = np.stack([np.bincount(rows, weights=values[:, j], minlength=lengths.size)
                    for j in range(values.shape[1])], axis=1)
    return out / lengths[:, None]


class HiddenModel:
    """The label model behind ``label_model="learnable"`` data.

    Args:
        seed: everything (key weights, pairs, dense weights, calibration) derives from it.
        num_slot: categorical slots.
        dense_dim: dense features (the values the reader hands to the model).
        label_dim: label columns, each with its own hidden model.

    Example:
        >>> import numpy as np
        >>> m = HiddenModel(seed=1, num_slot=2, dense_dim=1, label_dim=1)
        >>> slots = [(np.ones(3, np.int64), np.array([0, 1, 2])), (np.ones(3, np.int64), np.array([5, 5, 7]))]
        >>> m.calibrate(np.random.default_rng(0).random((3, 1)), slots)
        >>> m.probabilities(np.zeros((3, 1)), slots).shape
        (3, 1)
    """

    def __init__(self, seed: int, num_slot: int, dense_dim: int, label_dim: int):
        self.seed, self.num_slot, self.dense_dim, self.label_dim = seed, num_slot, dense_dim, label_dim
        rng = np.random.default_rng([seed, 7])
        all_pairs = [(a, b) for a in range(num_slot) for b in range(a + 1, num_slot)]
        picks = rng.permutation(len(all_pairs))[:min(MAX_PAIRS, len(all_pairs))]
        self.pairs = [all_pairs[i] for i in sorted(picks)]
        self.dense_weights = rng.normal(size=(label_dim, dense_dim))
        self.group_weights = np.array([0.65, 0.5, 0.55])  # first order, interactions, dense
        self._center = np.zeros((label_dim, 3))
        self._scale = np.ones((label_dim, 3))
        self._total = np.ones(label_dim)

    def _groups(self, dense: np.ndarray, slots: list, label: int) -> np.ndarray:
        """(N, 3) raw group scores for one label column."""
        n = dense.shape[0]
        first = np.zeros(n)
        for s, (lengths, keys) in enumerate(slots):
            first += _row_mean(hash_uniform(_salt(self.seed, label, 1, s), keys), lengths)
        inter = np.zeros(n)
        for a, b in self.pairs:
            va, vb = (self._vectors(label, s, *slots[s]) for s in (a, b))
            inter += np.einsum("nv,nv->n", va, vb)
        dense_term = dense @ self.dense_weights[label] if self.dense_dim else np.zeros(n)
        if self.dense_dim >= 2:  # one non-linear dense term, so an MLP has something to find
            dense_term = dense_term + 2.0 * dense[:, 0] * dense[:, 1]
        return np.stack([first, inter, dense_term], axis=1)

    def _vectors(self, label: int, slot: int, lengths: np.ndarray, keys: np.ndarray) -> np.ndarray:
        vec = np.stack([hash_uniform(_salt(self.seed, label, 2, slot, j), keys) for j in range(VEC_DIM)], axis=1)
        return _row_mean(vec, lengths) / np.sqrt(VEC_DIM)

    def calibrate(self, dense: np.ndarray, slots: list) -> None:
        """Fix the standardisation from a calibration sample (same distribution as the data)."""
        for label in range(self.label_dim):
            g = self._groups(dense, slots, label)
            self._center[label] = g.mean(axis=0)
            std = g.std(axis=0)
            self._scale[label] = np.where(std > 1e-12, std, 1.0)
            total = ((g - self._center[label]) / self._scale[label]) @ self.group_weights
            self._total[label] = max(total.std(), 1e-12)

    def logits(self, dense: np.ndarray, slots: list) -> np.ndarray:
        """(N, label_dim) logits. ``slots``: one ``(lengths (N,), slot-local keys)`` pair per slot."""
        n = slots[0][0].size if slots else len(dense)
        dense = np.asarray(dense, dtype=np.float64).reshape(n, self.dense_dim)
        out = np.empty((n, self.label_dim))
        for label in range(self.label_dim):
            g = (self._groups(dense, slots, label) - self._center[label]) / self._scale[label]
            out[:, label] = LOGIT_BIAS + LOGIT_STD * (g @ self.group_weights) / self._total[label]
        return out

    def probabilities(self, dense: np.ndarray, slots: list) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(dense, slots)))
