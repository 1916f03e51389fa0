"""HugeCTR's learning-rate scheduler, exactly as formats.md 3.2."""
from __future__ import annotations

from .errors import ConfigError


class LearningRateScheduler:
    """Warm-up, hold, polynomial decay. ``get_next()`` advances one step and returns the rate.

    Example:
        >>> s = LearningRateScheduler(base_lr=1.0, warmup_steps=2)
        >>> [s.get_next(), s.get_next(), s.get_next()]
        [0.5, 1.0, 1.0]
    """

    def __init__(self, base_lr: float, warmup_steps: int = 1, decay_start: int = 0, decay_steps: int = 1,
                 decay_power: float = 2.0, end_lr: float = 0.0):
        if base_lr < 0 or end_lr < 0:
            raise ConfigError("learning-rate scheduler: base_lr and end_lr must be >= 0")
        if decay_power < 1:
            raise ConfigError(f"learning-rate scheduler: decay_power must be >= 1, got {decay_power}")
        if warmup_steps < 1 or decay_steps < 1 or decay_start < 0:
            raise ConfigError("learning-rate scheduler: warmup_steps and decay_steps must be >= 1, decay_start >= 0")
        self.base_lr, self.warmup_steps, self.decay_start = float(base_lr), int(warmup_steps), int(decay_start)
        self.decay_steps, self.decay_power, self.end_lr = int(decay_steps), float(decay_power), float(end_lr)
        self.step = 0

    def get_next(self) -> float:
        self.step += 1
        step = self.step
        if step <= self.warmup_steps:
            return self.base_lr * step / self.warmup_steps
        if self.decay_start == 0 or step <= self.decay_start:
            return self.base_lr
        if step <= self.decay_start + self.decay_steps:
            frac = (self.decay_start + self.decay_steps - step) / self.decay_steps
            return max(self.base_lr * frac ** self.decay_power, self.end_lr)
        return self.end_lr
