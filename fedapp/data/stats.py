"""Preprocessing fitted from federated statistics.

Each client summarises its own training rows (:func:`local_statistics`): per
numeric column the count, mean and sum of squared deviations from that mean
(M2), and category counts of at least ``min_count``. Only those aggregates
leave the client; the server merges them (:func:`merge_statistics`, Chan et
al.'s parallel algorithm) and fits a :class:`Preprocessor` from the result.

Count, mean and M2 say exactly what count, sum and sum of squares say (sum =
count·mean, sum of squares = M2 + count·mean²), so the privacy ledger is the
same; they are sent instead because the variance from raw sums cancels
catastrophically on a column with a large offset and a small spread
(millisecond timestamps within one second), where M2 stays exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# The largest magnitude of a numeric value. The server's M2 sums squared
# differences over every client's rows, up to (2·1e100)² per row: finite in
# float64 (below 1.8e308) for any table smaller than 4e107 rows.
MAX_MAGNITUDE = 1e100


@dataclass(frozen=True)
class Schema:
    """Which columns are features of which kind, and which is the target."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str

    @classmethod
    def infer(cls, frame: pd.DataFrame, target: str) -> Schema:
        """Numeric dtypes are numeric features; everything else is categorical."""
        features = [c for c in frame.columns if c != target]
        numeric = tuple(c for c in features if pd.api.types.is_numeric_dtype(frame[c]))
        categorical = tuple(c for c in features if c not in numeric)
        return cls(numeric=numeric, categorical=categorical, target=target)


def local_statistics(frame: pd.DataFrame, schema: Schema, min_count: int) -> dict[str, Any]:
    """Summarise a client's rows into aggregates that are safe to share.

    Parameters
    ----------
    frame : pandas.DataFrame
        The client's own training rows.
    schema : Schema
        Feature columns to summarise.
    min_count : int
        Category counts below this are not reported (they fold into "other").

    Returns
    -------
    dict
        ``{"rows", "positives", "numeric": {col: [count, mean, m2]},
        "categorical": {col: {value: count}}}``, JSON-serialisable; ``m2`` is
        the sum of squared deviations from ``mean``, and both are 0 for a
        column without values.

    """
    numeric: dict[str, list[float]] = {}
    for column in schema.numeric:
        values = frame[column].to_numpy(dtype=np.float64)
        present = values[~np.isnan(values)]
        numeric[column] = _moments(present)
    categorical: dict[str, dict[str, int]] = {}
    for column in schema.categorical:
        counts = frame[column].dropna().astype(str).value_counts()
        categorical[column] = {str(value): int(n) for value, n in counts.items() if n >= min_count}
    return {
        "rows": len(frame),
        "positives": int(frame[schema.target].sum()),
        "numeric": numeric,
        "categorical": categorical,
    }


def _moments(values: np.ndarray) -> list[float]:
    """``[count, mean, m2]`` of ``values``, exact to their own precision.

    Taken relative to the first value: a large common offset would otherwise
    round the mean, and every deviation with it.
    """
    if not len(values):
        return [0.0, 0.0, 0.0]
    shifted = values - values[0]
    centre = shifted.mean()
    return [float(len(values)), float(values[0] + centre), float(np.square(shifted - centre).sum())]


def merge_statistics(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Merge clients' statistics (the only thing the server learns of the data).

    Counts add up; each numeric column's ``[count, mean, m2]`` merge by
    :func:`merge_moments`, as if computed over the clients' rows pooled.
    """
    merged: dict[str, Any] = {"rows": 0, "positives": 0, "numeric": {}, "categorical": {}}
    for part in parts:
        merged["rows"] += part["rows"]
        merged["positives"] += part["positives"]
        for column, moments in part["numeric"].items():
            acc = merged["numeric"].get(column, [0.0, 0.0, 0.0])
            merged["numeric"][column] = merge_moments(acc, moments)
        for column, counts in part["categorical"].items():
            acc = merged["categorical"].setdefault(column, {})
            for value, n in counts.items():
                acc[value] = acc.get(value, 0) + n
    return merged


def merge_moments(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Chan et al.'s pairwise update: the ``[count, mean, m2]`` of two sets of values pooled.

    With ``n = n_a + n_b`` and ``δ = mean_b - mean_a``::

        mean = mean_a + δ · n_b / n
        m2   = m2_a + m2_b + δ² · n_a · n_b / n

    Only the difference of the means is squared, never a raw value, so a
    large common offset cancels exactly.
    """
    count_a, mean_a, m2_a = a
    count_b, mean_b, m2_b = b
    count = count_a + count_b
    if not count:
        return [0.0, 0.0, 0.0]
    delta = mean_b - mean_a
    return [
        count,
        mean_a + delta * count_b / count,
        m2_a + m2_b + delta * delta * count_a * count_b / count,
    ]


@dataclass(frozen=True)
class Preprocessor:
    """Standardise numeric columns, one-hot encode categorical ones.

    Missing numbers are imputed with the federated mean (so they become 0
    after standardisation); missing or rare categories map to "other".
    """

    numeric: tuple[tuple[str, float, float], ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]
    target: str

    @classmethod
    def fit(cls, stats: dict[str, Any], schema: Schema, min_count: int) -> Preprocessor:
        """Fit means, standard deviations and vocabularies from merged statistics."""
        numeric = []
        for column in schema.numeric:
            count, mean, m2 = stats["numeric"][column]
            var = m2 / count if count else 0.0
            numeric.append((column, mean, math.sqrt(var) or 1.0))
        categorical = []
        for column in schema.categorical:
            counts = stats["categorical"].get(column, {})
            vocab = tuple(sorted(v for v, n in counts.items() if n >= min_count))
            categorical.append((column, vocab))
        return cls(tuple(numeric), tuple(categorical), schema.target)

    @property
    def n_features(self) -> int:
        """Width of the transformed matrix."""
        return len(self.numeric) + sum(len(v) + 1 for _, v in self.categorical)

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x, y)`` as float32 arrays."""
        blocks = []
        for column, mean, std in self.numeric:
            values = frame[column].to_numpy(dtype=np.float64)
            values = np.where(np.isnan(values), mean, values)
            blocks.append(((values - mean) / std)[:, None])
        for column, vocab in self.categorical:
            index = {v: i for i, v in enumerate(vocab)}
            other = len(vocab)
            codes = np.fromiter(
                (index.get(v, other) for v in frame[column].astype(str)),
                dtype=np.int64,
                count=len(frame),
            )
            codes[frame[column].isna().to_numpy()] = other
            blocks.append(np.eye(len(vocab) + 1)[codes])
        x = np.hstack(blocks).astype(np.float32) if blocks else np.zeros((len(frame), 0))
        y = frame[self.target].to_numpy(dtype=np.float32)
        return x, y

    def to_json(self) -> str:
        """Serialise (for the run directory and for clients' round configs)."""
        return json.dumps(
            {
                "numeric": [list(n) for n in self.numeric],
                "categorical": [[c, list(v)] for c, v in self.categorical],
                "target": self.target,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Preprocessor:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        return cls(
            numeric=tuple((c, float(m), float(s)) for c, m, s in data["numeric"]),
            categorical=tuple((c, tuple(v)) for c, v in data["categorical"]),
            target=data["target"],
        )
