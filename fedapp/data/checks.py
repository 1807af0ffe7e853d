"""Checks a data team wants before trusting a federated model.

Each check runs on one client's own rows; only its verdict (a column name and
a score, a client and its row counts) is shared, never the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from fedapp.data.stats import Schema
from fedapp.settings import Task

LEAK_AUC = 0.99
# A client's held-out rows below this many score too noisily to compare.
MIN_TEST_ROWS = 10
# A client training on fewer rows than this learns next to nothing locally.
MIN_TRAIN_ROWS = 10
# Too few rows of a class make any single-feature AUC meaningless.
_MIN_CLASS_ROWS = 10
# Clients named in one warning; the rest are counted.
_NAMED = 12


@dataclass(frozen=True)
class Split:
    """One client's split, as the split checks see it.

    Attributes
    ----------
    label : str
        How messages name the client (``#3``, ``#0 region=north``, ``#1 bank_b.csv``).
    train, test : pandas.Series
        The target of its training and held-out rows.

    """

    label: str
    train: pd.Series
    test: pd.Series


def single_feature_auc(frame: pd.DataFrame, schema: Schema) -> dict[str, float]:
    """How well each feature alone separates the classes: max(AUC, 1 - AUC).

    Numeric columns are scored by their value (blanks at the median);
    categorical ones by their category's positive rate, so an identifier-like
    column with one row per value scores 1.0. Empty when a class has fewer
    than ten rows.
    """
    # scikit-learn (half a second to import) only when the leak check runs, not in a client.
    from sklearn.metrics import roc_auc_score

    y = frame[schema.target].to_numpy()
    if min((y == 1).sum(), (y == 0).sum()) < _MIN_CLASS_ROWS:
        return {}
    scores: dict[str, float] = {}
    for column in schema.numeric:
        values = frame[column].astype(float)
        values = values.fillna(values.median() if values.notna().any() else 0.0)
        scores[column] = _strength(roc_auc_score(y, values))
    for column in schema.categorical:
        # Blanks are a category of their own here, as they are for the model.
        values = frame[column].astype(object).fillna("").astype(str)
        rate = pd.Series(y, index=values.index).groupby(values).transform("mean")
        scores[column] = _strength(roc_auc_score(y, rate))
    return scores


def leak_warnings(
    clients: list[tuple[str, pd.DataFrame]], schema: Schema, threshold: float = LEAK_AUC
) -> list[str]:
    """Name the features that alone predict a binary target almost perfectly at some client.

    (A multiclass or regression target has no single-feature AUC; it is not checked.)

    Parameters
    ----------
    clients : list[tuple[str, pandas.DataFrame]]
        Each client's name and training rows.
    schema : Schema
        Feature columns and target.
    threshold : float
        AUC above which a feature is suspicious.

    """
    if schema.task is not Task.BINARY:
        return []
    worst: dict[str, tuple[float, str]] = {}
    for name, frame in clients:
        for column, auc in single_feature_auc(frame, schema).items():
            if auc > threshold and auc > worst.get(column, (0.0, ""))[0]:
                worst[column] = (auc, name)
    return [
        f"column '{column}' alone predicts '{schema.target}' with AUC {auc:.3f} "
        f"({name}): a leak or an identifier? Leave it out with --drop {column}"
        for column, (auc, name) in sorted(worst.items())
    ]


def _strength(auc: float) -> float:
    return float(max(auc, 1.0 - auc))


def split_warnings(
    splits: Sequence[Split], target: str, test_fraction: float, task: Task = Task.BINARY
) -> list[str]:
    """Say which clients' data cannot give a meaningful model or score.

    Parameters
    ----------
    splits : Sequence[Split]
        Every client's split, in partition order.
    target : str
        The target column, for the messages.
    test_fraction : float
        The held-out share of each client's rows.
    task : Task
        The target's task: classes are only checked for classification.

    Returns
    -------
    list[str]
        One warning per kind of problem, naming how many clients and which:
        a single class, a class only one client holds (multiclass), too few
        training rows, test sets too small or of one class to score, a test
        fraction above one half.

    """
    n = len(splits)
    if task is Task.REGRESSION:
        return _size_warnings(splits, test_fraction, n, classes=False)
    warnings = []
    if task is Task.MULTICLASS:
        warnings += _lone_classes(splits, target)
        single = [
            f"{s.label} (only '{rows.iloc[0]}')"
            for s in splits
            if (rows := pd.concat([s.train, s.test])).nunique() < 2
        ]
    else:
        single = [
            f"{s.label} (no {'negatives' if rows.all() else 'positives'})"
            for s in splits
            if (rows := pd.concat([s.train, s.test])).nunique() < 2
        ]
    if single:
        warnings.append(
            f"{len(single)} of {n} clients hold a single class of '{target}': "
            f"{_listed(single)}; each trains on that class alone"
            + (" and its test AUC is undefined" if task is Task.BINARY else "")
        )
    return warnings + _size_warnings(splits, test_fraction, n, classes=task is Task.BINARY)


def _lone_classes(splits: Sequence[Split], target: str) -> list[str]:
    """Multiclass: the classes only one client holds (the others never learn them locally)."""
    holders: dict[str, list[str]] = {}
    for s in splits:
        for value in pd.concat([s.train, s.test]).unique():
            holders.setdefault(str(value), []).append(s.label)
    lone = [f"'{c}' ({who[0]})" for c, who in sorted(holders.items()) if len(who) == 1]
    if not lone or len(splits) < 2:
        return []
    return [
        f"{len(lone)} class(es) of '{target}' are held by one client only: {_listed(lone)}; "
        "the federated model learns them from that client alone"
    ]


def _size_warnings(
    splits: Sequence[Split], test_fraction: float, n: int, classes: bool
) -> list[str]:
    """Too few rows to train or score, and a test fraction above one half."""
    warnings = []
    trained = sum(len(s.train) for s in splits)
    if test_fraction > 0.5:
        warnings.append(
            f"test-fraction {test_fraction:g} holds out more rows than it trains on: "
            f"{trained} training rows in all"
        )
    few = [f"{s.label} ({_rows(len(s.train))})" for s in splits if len(s.train) < MIN_TRAIN_ROWS]
    if few:
        warnings.append(
            f"{len(few)} of {n} clients train on fewer than {MIN_TRAIN_ROWS} rows: {_listed(few)}"
        )
    unscorable = [
        f"{s.label} ({_rows(len(s.test))}{', one class' if one else ''})"
        for s in splits
        if (one := classes and s.test.nunique() < 2) or len(s.test) < MIN_TEST_ROWS
    ]
    if unscorable and classes:
        warnings.append(
            f"{len(unscorable)} of {n} clients have test sets too small or single-class to "
            f"score (fewer than {MIN_TEST_ROWS} rows, or one class: AUC undefined): "
            f"{_listed(unscorable)}; use fewer clients or more rows"
        )
    elif unscorable:
        warnings.append(
            f"{len(unscorable)} of {n} clients have test sets too small to score (fewer than "
            f"{MIN_TEST_ROWS} rows): {_listed(unscorable)}; use fewer clients or more rows"
        )
    return warnings


def _rows(n: int) -> str:
    return "1 row" if n == 1 else f"{n} rows"


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_NAMED])
    return shown if len(items) <= _NAMED else f"{shown} and {len(items) - _NAMED} more"
