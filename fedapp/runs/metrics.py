"""The scores of a model, per task: their names, how people read them, which way is better.

``metrics.jsonl`` and ``summary.json`` hold a run's scores by these names;
readers (the CLI, the UI, the benchmarks) take the run's task from its
``config.json`` and show :func:`metric_names` of it.
"""

from __future__ import annotations

from collections.abc import Iterable

# In display order. Binary: the thresholded scores cut probabilities at the
# run's threshold (0.5) and `loss` is the log-loss. Multiclass: macro means
# over the classes, `macro_auc` one-vs-rest, `loss` the log-loss, and one
# `recall:<class>` per class. Regression: in the target's own units, `loss`
# the mean squared error of the standardised target (what training minimises).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "pr_auc", "accuracy", "f1", "precision", "recall", "loss"),
    "multiclass": ("accuracy", "macro_f1", "macro_auc", "loss"),
    "regression": ("rmse", "mae", "r2", "loss"),
}
# The one score a task's progress, gaps and gains are told in.
PRIMARY: dict[str, str] = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}
# Scores where less is better (a gain is then a drop).
LOWER_IS_BETTER = frozenset({"loss", "rmse", "mae", "train-loss"})
# A multiclass run's recall of one class: `recall:<class>`.
CLASS_RECALL = "recall:"

METRIC_LABELS = {
    "auc": "AUC",
    "pr_auc": "PR-AUC",
    "accuracy": "accuracy",
    "f1": "F1",
    "precision": "precision",
    "recall": "recall",
    "macro_f1": "macro-F1",
    "macro_auc": "macro AUC (one-vs-rest)",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
    "loss": "loss",
    "train-loss": "training loss",
}
# The loss means something different per task.
_LOSS_LABELS = {"binary": "log-loss", "multiclass": "log-loss", "regression": "MSE (standardised)"}


def task_of(config: dict, summary: dict | None = None) -> str:
    """A run's task from its ``config.json`` or ``summary.json`` (binary for runs before tasks).

    A deployed run's config says the task only when it was given; its summary
    says the one the clients settled.
    """
    for source in (config, summary or {}):
        task = source.get("task")
        if task in TASK_METRICS:
            return task
    return "binary"


def metric_names(task: str, present: Iterable[str] = ()) -> tuple[str, ...]:
    """The scores of ``task`` in display order, then each class's recall among ``present``."""
    recalls = sorted(m for m in present if m.startswith(CLASS_RECALL))
    return (*TASK_METRICS[task], *recalls)


def metric_label(name: str, task: str = "binary") -> str:
    """How people read a score's name: ``AUC``, ``RMSE``, ``recall (premium)``."""
    if name == "loss":
        return _LOSS_LABELS.get(task, "loss")
    if name.startswith(CLASS_RECALL):
        return f"recall ({name.removeprefix(CLASS_RECALL)})"
    return METRIC_LABELS.get(name, name)


def higher_is_better(name: str) -> bool:
    """Whether a larger value of score ``name`` is better."""
    return name not in LOWER_IS_BETTER


def primary(task: str) -> str:
    """The score a task's progress and comparisons are told in."""
    return PRIMARY[task]
