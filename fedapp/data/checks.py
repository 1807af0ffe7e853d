"""Checks a data team wants before trusting a federated model.

Each check runs on one client's own rows; only its verdict (a column name and
a score) is shared, never the rows.
"""

from __future__ import annotations

import pandas as pd

from fedapp.data.stats import Schema

LEAK_AUC = 0.99
# Too few rows of a class make any single-feature AUC meaningless.
_MIN_CLASS_ROWS = 10


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
    """Name the features that alone predict the target almost perfectly at some client.

    Parameters
    ----------
    clients : list[tuple[str, pandas.DataFrame]]
        Each client's name and training rows.
    schema : Schema
        Feature columns and target.
    threshold : float
        AUC above which a feature is suspicious.

    """
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
