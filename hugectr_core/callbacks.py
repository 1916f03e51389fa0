"""``hugectr.TrainingCallback``: user hooks around training (formats.md 1.5)."""


class TrainingCallback:
    """Subclass and pass instances in ``CreateSolver(training_callbacks=[...])``.

    Returning True from ``on_eval_start``/``on_eval_end`` stops training.

    Example:
        >>> class StopAtAuc(TrainingCallback):
        ...     def on_eval_end(self, iteration, results):
        ...         return results.get("AUC", 0.0) > 0.8
    """

    def on_training_start(self):
        pass

    def on_training_end(self, iteration):
        pass

    def on_eval_start(self, iteration):
        return False

    def on_eval_end(self, iteration, results):
        return False
