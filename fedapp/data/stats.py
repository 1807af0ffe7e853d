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

from fedapp.data.target import class_order
from fedapp.errors import UsageError
from fedapp.settings import Task

# The largest magnitude of a numeric value. The server's M2 sums squared
# differences over every client's rows, up to (2·1e100)² per row: finite in
# float64 (below 1.8e308) for any table smaller than 4e107 rows.
MAX_MAGNITUDE = 1e100


@dataclass(frozen=True)
class Schema:
    """Which columns are features of which kind, and which is the target, of which task.

    ``classes`` are a binary target's ``(negative, positive)`` names and the
    classes a multiclass target's tables hold; empty for regression.
    """

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    target: str
    task: Task = Task.BINARY
    classes: tuple[str, ...] = ()

    @classmethod
    def infer(cls, frame: pd.DataFrame, target: str) -> Schema:
        """Numeric dtypes are numeric features; everything else is categorical."""
        features = [c for c in frame.columns if c != target]
        numeric = tuple(c for c in features if pd.api.types.is_numeric_dtype(frame[c]))
        categorical = tuple(c for c in features if c not in numeric)
        return cls(numeric=numeric, categorical=categorical, target=target)

    @property
    def features(self) -> tuple[str, ...]:
        """Every feature column, numeric ones first."""
        return (*self.numeric, *self.categorical)

    @property
    def kinds(self) -> dict[str, str]:
        """Each feature's kind: ``numeric`` or ``categorical``."""
        return {c: "numeric" for c in self.numeric} | {c: "categorical" for c in self.categorical}


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
        ``{"rows", "target", "numeric": {col: [count, mean, m2]},
        "categorical": {col: {value: count}}}``, JSON-serialisable; ``m2`` is
        the sum of squared deviations from ``mean``, and both are 0 for a
        column without values. ``target`` is ``{"task", "classes",
        "counts"}`` for a classification target (every class's count: the
        model needs every class, however rare) and ``{"task", "moments"}``
        for a regression one.

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
        "target": _target_statistics(frame[schema.target], schema),
        "numeric": numeric,
        "categorical": categorical,
    }


def _target_statistics(values: pd.Series, schema: Schema) -> dict[str, Any]:
    if schema.task is Task.REGRESSION:
        return {"task": str(schema.task), "moments": _moments(values.to_numpy(dtype=np.float64))}
    if schema.task is Task.BINARY:
        positives = int(values.sum())
        negative, positive = schema.classes or ("0", "1")
        counts = {negative: len(values) - positives, positive: positives}
        return {"task": str(schema.task), "classes": [negative, positive], "counts": counts}
    else:
        counts = {str(c): int(n) for c, n in values.value_counts().items()}
    return {"task": str(schema.task), "classes": list(schema.classes), "counts": counts}


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

    Raises
    ------
    UsageError
        When the clients read the target as different tasks (a client whose
        file holds two of the classes infers binary), or a binary target
        with different class names.

    """
    merged: dict[str, Any] = {"rows": 0, "target": None, "numeric": {}, "categorical": {}}
    for pid, part in enumerate(parts):
        merged["rows"] += part["rows"]
        merged["target"] = _merge_target(merged["target"], part["target"], pid)
        for column, moments in part["numeric"].items():
            acc = merged["numeric"].get(column, [0.0, 0.0, 0.0])
            merged["numeric"][column] = merge_moments(acc, moments)
        for column, counts in part["categorical"].items():
            acc = merged["categorical"].setdefault(column, {})
            for value, n in counts.items():
                acc[value] = acc.get(value, 0) + n
    return merged


def _merge_target(acc: dict[str, Any] | None, part: dict[str, Any], pid: int) -> dict[str, Any]:
    if acc is None:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in part.items()}
    if acc["task"] != part["task"]:
        raise UsageError(
            f"the clients read the target as different tasks ({acc['task']} up to client "
            f"{pid - 1}, {part['task']} at client {pid}); pass --task to say which it is"
        )
    if part["task"] == Task.REGRESSION:
        return {**acc, "moments": merge_moments(acc["moments"], part["moments"])}
    if part["task"] == Task.BINARY and acc["classes"] != part["classes"]:
        raise UsageError(
            f"the clients name the binary target's classes differently ({acc['classes']} "
            f"and {part['classes']} at client {pid}, as negative and positive)"
        )
    counts = dict(acc["counts"])
    for value, n in part["counts"].items():
        counts[value] = counts.get(value, 0) + n
    return {**acc, "counts": counts}


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
class TargetEncoding:
    """How the target becomes the model's ``y``, and the model's output becomes a prediction.

    Attributes
    ----------
    task : Task
        Binary, multiclass or regression.
    classes : tuple[str, ...]
        Binary: ``(negative, positive)``; multiclass: the classes, whose
        position is the code the model predicts; regression: empty.
    mean, std : float
        A regression target's federated mean and standard deviation: the
        model learns ``(y - mean) / std`` (0 and 1 otherwise).
    prior : tuple[float, ...]
        A classification target's share of each class over the federation's
        training rows, in the order of :attr:`classes` (from the class counts
        the statistics query already collects); empty for regression and for
        preprocessing written before it was kept.

    """

    task: Task
    classes: tuple[str, ...] = ()
    mean: float = 0.0
    std: float = 1.0
    prior: tuple[float, ...] = ()

    @classmethod
    def fit(cls, stats: dict[str, Any]) -> TargetEncoding:
        """From the merged target statistics (:func:`merge_statistics`)."""
        task = Task(stats["task"])
        if task is Task.REGRESSION:
            count, mean, m2 = stats["moments"]
            return cls(task, (), mean, (math.sqrt(m2 / count) if count else 0.0) or 1.0)
        counts = stats["counts"]
        if task is Task.BINARY:
            classes = tuple(stats["classes"])
        else:
            # Every class any client holds, however rare: the model needs an output for each.
            classes = class_order(c for c, n in counts.items() if n > 0)
        total = sum(counts.get(c, 0) for c in classes)
        prior = tuple(counts.get(c, 0) / total for c in classes) if total else ()
        return cls(task, classes, prior=prior)

    @property
    def outputs(self) -> int:
        """Width of the model's output: one per class of a multiclass target, else 1."""
        return len(self.classes) if self.task is Task.MULTICLASS else 1

    def encode(self, values: pd.Series) -> np.ndarray:
        """The model's ``y`` of a table's target column (as :mod:`~fedapp.data.target` reads it).

        Raises
        ------
        UsageError
            For a multiclass value that is not one of :attr:`classes`.

        """
        if self.task is Task.REGRESSION:
            y = (values.to_numpy(dtype=np.float64) - self.mean) / self.std
            return y.astype(np.float32)
        if self.task is Task.BINARY:
            return values.to_numpy(dtype=np.float32)
        index = {c: i for i, c in enumerate(self.classes)}
        codes = values.map(index)
        if codes.isna().any():
            unseen = sorted(set(values[codes.isna()].astype(str)))
            raise UsageError(
                f"target class(es) {', '.join(unseen[:5])} were not seen in training "
                f"(classes: {', '.join(self.classes)})"
            )
        return codes.to_numpy(dtype=np.float32)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """A regression model's output (or ``y``) in the target's own units."""
        return np.asarray(y, dtype=np.float64) * self.std + self.mean

    def to_dict(self) -> dict[str, Any]:
        """JSON form (inside ``preprocessing.json``)."""
        return {"task": str(self.task), "classes": list(self.classes), "mean": self.mean,
                "std": self.std, "prior": list(self.prior)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetEncoding:
        """Inverse of :meth:`to_dict`."""
        return cls(Task(data["task"]), tuple(data["classes"]), float(data["mean"]),
                   float(data["std"]), tuple(data.get("prior", ())))  # fmt: skip


# A 0/1 target: what a preprocessing without an encoding (written before
# targets had tasks) and a model scored without one stand for.
BINARY = TargetEncoding(Task.BINARY, ("0", "1"))


@dataclass(frozen=True)
class Preprocessor:
    """Standardise numeric columns, one-hot encode categorical ones, encode the target.

    Missing numbers are imputed with the federated mean (so they become 0
    after standardisation); missing or rare categories map to "other".
    """

    numeric: tuple[tuple[str, float, float], ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]
    target: str
    encoding: TargetEncoding = BINARY

    @classmethod
    def fit(cls, stats: dict[str, Any], schema: Schema, min_count: int) -> Preprocessor:
        """Fit means, standard deviations, vocabularies and the target's encoding."""
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
        encoding = TargetEncoding.fit(stats["target"])
        return cls(tuple(numeric), tuple(categorical), schema.target, encoding)

    @property
    def task(self) -> Task:
        """The target's task."""
        return self.encoding.task

    @property
    def features(self) -> tuple[str, ...]:
        """The feature columns a table must have, numeric ones first."""
        return tuple(c for c, _, _ in self.numeric) + tuple(c for c, _ in self.categorical)

    @property
    def schema(self) -> Schema:
        """The columns and target this preprocessing was fitted on: what new rows must have."""
        numeric = tuple(c for c, _, _ in self.numeric)
        categorical = tuple(c for c, _ in self.categorical)
        return Schema(numeric, categorical, self.target, self.task, self.encoding.classes)

    @property
    def n_features(self) -> int:
        """Width of the transformed matrix."""
        return len(self.numeric) + sum(len(v) + 1 for _, v in self.categorical)

    def features_of(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's input of ``frame``'s feature columns, float32."""
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
            blocks.append(np.eye(len(vocab) + 1, dtype=np.float32)[codes])
        if not blocks:
            return np.zeros((len(frame), 0), dtype=np.float32)
        return np.hstack(blocks).astype(np.float32)

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(x, y)`` as float32 arrays (``y`` as :meth:`TargetEncoding.encode` gives it)."""
        return self.features_of(frame), self.encoding.encode(frame[self.target])

    def to_json(self) -> str:
        """Serialise (for the run directory and for clients' round configs)."""
        return json.dumps(
            {
                "numeric": [list(n) for n in self.numeric],
                "categorical": [[c, list(v)] for c, v in self.categorical],
                "target": self.target,
                "encoding": self.encoding.to_dict(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Preprocessor:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        # A run directory written before targets had tasks holds a 0/1 target.
        encoding = data.get("encoding")
        return cls(
            numeric=tuple((c, float(m), float(s)) for c, m, s in data["numeric"]),
            categorical=tuple((c, tuple(v)) for c, v in data["categorical"]),
            target=data["target"],
            encoding=TargetEncoding.from_dict(encoding) if encoding else BINARY,
        )
