"""The target column: which task it is, and its values as the federation reads them.

A table's target is read where the table lives. Its task is the one given
(``--task``) or inferred from the values (:func:`infer_task`); the column is
then held as

* ``binary``: 0/1, the positive class chosen by name (``yes``, ``true``,
  ``1``) or by ``--positive-label``;
* ``multiclass``: the class as text (``"2"`` for a number); the codes the
  model uses come from the federated class counts
  (:class:`~fedapp.data.stats.TargetEncoding`), so every client numbers the
  classes alike;
* ``regression``: a float, standardised for training from the federated mean
  and standard deviation.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fedapp.errors import UsageError
from fedapp.settings import Task

__all__ = ["TargetInfo", "class_order", "infer_task", "read_target", "strata", "target_text"]

# Two-valued targets whose positive class is unambiguous.
_POSITIVE = {"1", "yes", "true", "y", "t", "1.0"}
_NEGATIVE = {"0", "no", "false", "n", "f", "0.0"}
# Whole numbers with at most this many values are classes (a count of
# products, a rating); with more, a quantity to predict.
MAX_NUMERIC_CLASSES = 10
# Quantile bins a numeric target is cut into where classes are needed: the
# label skew of `dirichlet:ALPHA` and the stratified test split.
TARGET_BINS = 10


@dataclass(frozen=True)
class TargetInfo:
    """What the federation's target is.

    Attributes
    ----------
    task : Task
        Binary, multiclass or regression.
    classes : tuple[str, ...]
        Binary: ``(negative, positive)`` as written in the files; multiclass:
        every class seen, in :func:`class_order`; regression: empty.
    how : str
        ``"given"`` or ``"inferred"``, for the notes.

    """

    task: Task
    classes: tuple[str, ...] = ()
    how: str = "inferred"


def target_text(values: pd.Series) -> pd.Series:
    """The target's values as text, as classes are named (``2`` for the float 2.0)."""
    if pd.api.types.is_float_dtype(values):
        return values.map(lambda v: f"{v:g}")
    return values.astype(str).str.strip()


def class_order(classes: Collection[str]) -> tuple[str, ...]:
    """Classes sorted as numbers when they all are, else as text (``2`` before ``10``)."""
    names = sorted(set(classes))
    numbers = pd.to_numeric(pd.Series(names, dtype=object), errors="coerce")
    if numbers.notna().all():
        return tuple(c for _, c in sorted(zip(numbers, names, strict=True)))
    return tuple(names)


def _numbers(values: pd.Series) -> pd.Series | None:
    """The values as floats when every one is a number, else ``None``."""
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    parsed = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    return parsed if parsed.notna().all() else None


def infer_task(values: pd.Series, name: str, source: str, max_classes: int) -> tuple[Task, str]:
    """The task a target's (non-blank) values call for, and why, for the note.

    Two values are binary; text with up to ``max_classes`` values, or at
    most :data:`MAX_NUMERIC_CLASSES` whole numbers, multiclass; any other
    numbers regression.

    Raises
    ------
    UsageError
        For a single value, or text with more than ``max_classes`` values.

    """
    text = target_text(values)
    distinct = text.nunique()
    if distinct < 2:
        shown = text.iloc[0] if len(text) else "none"
        raise UsageError(f"{source}: target '{name}' has a single value ({shown})")
    if distinct == 2:
        return Task.BINARY, "two values"
    numbers = _numbers(values)
    if numbers is None:
        if distinct > max_classes:
            raise UsageError(
                f"{source}: target '{name}' has {distinct} distinct text values, more than "
                f"max-categories ({max_classes}) classes: is it the column to predict?"
            )
        return Task.MULTICLASS, f"{distinct} classes of text"
    whole = bool(np.all(np.isclose(numbers, np.round(numbers))))
    if whole and distinct <= MAX_NUMERIC_CLASSES:
        return Task.MULTICLASS, (
            f"{distinct} whole-number values; pass --task regression to predict it as a number"
        )
    return Task.REGRESSION, f"numbers with {distinct} distinct values"


def decide(
    values: pd.Series, name: str, source: str, task: Task | None, max_classes: int
) -> tuple[TargetInfo, str]:
    """The federation's target from every client's (non-blank) values, and a note.

    Parameters
    ----------
    values : pandas.Series
        The target's values over every table read (all clients' files).
    name, source : str
        Column and where it came from, for messages.
    task : Task | None
        The task given, or ``None`` to infer it.
    max_classes : int
        Most classes a text target may have.

    Raises
    ------
    UsageError
        When the values contradict the given task (regression on text, a
        binary task of three values), or hold a single value.

    """
    text = target_text(values)
    distinct = text.nunique()
    if task is None:
        task, why = infer_task(values, name, source, max_classes)
        how = "inferred"
    else:
        why, how = "given", "given"
        if distinct < 2:
            raise UsageError(f"{source}: target '{name}' has a single value ({text.iloc[0]})")
    if task is Task.REGRESSION:
        if _numbers(values) is None:
            junk = text[pd.to_numeric(text, errors="coerce").isna()].iloc[0]
            raise UsageError(
                f"{source}: --task regression needs a numeric target, but '{name}' holds "
                f"text such as {junk!r}; use --task multiclass, or fix the column"
            )
        info = TargetInfo(Task.REGRESSION, (), how)
        return info, f"{source}: target '{name}' is a regression target ({why})"
    classes = class_order(set(text))
    if task is Task.BINARY and distinct != 2:
        shown = ", ".join(classes[:5]) + (", ..." if distinct > 5 else "")
        raise UsageError(
            f"{source}: --task binary needs two values, but '{name}' has {distinct} "
            f"({shown}); use --task multiclass"
        )
    if task is Task.MULTICLASS:
        shown = ", ".join(classes[:8]) + (", ..." if distinct > 8 else "")
        info = TargetInfo(Task.MULTICLASS, classes, how)
        return info, f"{source}: target '{name}' is multiclass, {distinct} classes: {shown} ({why})"
    return TargetInfo(Task.BINARY, classes, how), ""


def read_target(
    values: pd.Series,
    info: TargetInfo,
    name: str,
    source: str,
    positive_label: str | None,
) -> tuple[np.ndarray, TargetInfo, list[str]]:
    """One table's target column as the federation holds it, for ``info``'s task.

    Binary targets are settled here: ``info.classes`` (every client's values)
    are ordered ``(negative, positive)``, the positive one given or told by
    its name, and a table holding one class reads it as positive or negative
    by that name.

    Returns
    -------
    tuple[numpy.ndarray, TargetInfo, list[str]]
        The column (0/1, class text or float), the target with binary
        classes in order, and notes.

    Raises
    ------
    UsageError
        When the positive class cannot be told, or is not a value.

    """
    if info.task is Task.REGRESSION:
        numbers = _numbers(values)
        assert numbers is not None  # decide() refused text
        return numbers.to_numpy(dtype=np.float64), info, []
    text = target_text(values)
    if info.task is Task.MULTICLASS:
        return text.to_numpy(dtype=object), info, []
    negative, positive, how = _positive(info.classes, name, source, positive_label)
    ordered = TargetInfo(Task.BINARY, (negative, positive), info.how)
    notes = []
    present = set(text)
    if len(present) == 1:
        [value] = present
        kind = "positive" if value == positive else "negative"
        notes.append(f"{source}: every row of '{name}' is '{value}', the {kind} class ({how})")
    else:
        notes.append(f"{source}: positive class of '{name}' is '{positive}' ({how})")
    return (text == positive).to_numpy(dtype=np.int64), ordered, notes


def _positive(
    classes: Sequence[str], name: str, source: str, positive_label: str | None
) -> tuple[str, str, str]:
    """``(negative, positive, how)`` of a two-class target."""
    if positive_label is not None:
        if positive_label not in classes:
            raise UsageError(
                f"{source}: --positive-label '{positive_label}' is not a value of "
                f"'{name}' (values: {', '.join(classes)})"
            )
        [negative] = [c for c in classes if c != positive_label]
        return negative, positive_label, "given"
    found = [c for c in classes if c.lower() in _POSITIVE]
    others = [c for c in classes if c not in found]
    if len(found) == 1 and all(c.lower() in _NEGATIVE for c in others):
        return others[0], found[0], "inferred"
    raise UsageError(
        f"{source}: cannot tell the positive class of '{name}' "
        f"(values: {', '.join(classes)}); pass --positive-label"
    )


def strata(labels: np.ndarray, task: Task) -> np.ndarray:
    """Labels to stratify or skew by: the classes, or a numeric target's quantile bins."""
    if task is not Task.REGRESSION:
        return labels
    values = np.asarray(labels, dtype=np.float64)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, TARGET_BINS + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right")
