"""A loaded federation described before a run: what ``fedapp inspect`` and the New run page show.

Built from the loaded :class:`fedapp.data.Federation` (the rows a run would
train and test on), as plain tables; the CLI prints them, the UI draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from fedapp.data.stats import Schema
from fedapp.runs import client_label
from fedapp.settings import Task

if TYPE_CHECKING:
    from fedapp.data import Federation

# Most frequent values listed for a categorical column, and classes for a target.
TOP_VALUES = 3
TOP_CLASSES = 5


@dataclass(frozen=True)
class DataPreview:
    """The data a run would use, described before it starts.

    Attributes
    ----------
    headline : str
        Rows, institutions, the target's task and its balance, in one line.
    columns : pd.DataFrame
        One row per feature: ``column``, ``kind``, ``missing``, ``summary``.
    clients : pd.DataFrame
        One row per institution: ``client``, ``institution`` (its short name),
        ``source`` (where its rows came from), ``rows``, ``train``, ``test``,
        and the target's ``positive rate`` (binary), ``classes`` it holds
        (multiclass) or ``target mean`` (regression).
    notes : tuple[str, ...]
        What loading decided (the positive class, blanks read as missing).
    warnings : tuple[str, ...]
        Likely problems, as the data layer finds them: a leaking feature,
        institutions with one class or too few rows to train or score.
    train_rows : tuple[int, ...]
        Each institution's training rows (record-level DP's sampling rates).
    task : str
        The target's task, as loading settled it.

    """

    headline: str
    columns: pd.DataFrame
    clients: pd.DataFrame
    notes: tuple[str, ...]
    warnings: tuple[str, ...]
    train_rows: tuple[int, ...]
    task: str = "binary"


def describe_federation(loaded: Federation) -> DataPreview:
    """Describe a loaded federation: its columns over the pooled rows, and each institution."""
    target = loaded.schema.target
    pooled = pd.concat([part for c in loaded.clients for part in (c.train, c.test)])
    headline = (
        f"{len(pooled)} rows in {len(loaded.clients)} institutions; target '{target}' "
        f"({loaded.task}): {_target_summary(pooled[target], loaded.schema)}"
    )
    labels = [client_label(c.source) for c in loaded.clients]
    return DataPreview(
        headline=headline,
        columns=pd.DataFrame(
            _column_rows(pooled, loaded.schema.numeric, loaded.schema.categorical)
        ),
        clients=pd.DataFrame(_client_rows(loaded, labels)),
        notes=tuple(loaded.notes),
        warnings=tuple(loaded.warnings),
        train_rows=tuple(len(c.train) for c in loaded.clients),
        task=loaded.task,
    )


def _target_summary(values: pd.Series, schema: Schema) -> str:
    """The target in a few words: the positive share, the class shares, or mean and spread."""
    if schema.task is Task.REGRESSION:
        return (
            f"mean {values.mean():.4g}, std {values.std():.4g}, "
            f"min {values.min():.4g}, max {values.max():.4g}"
        )
    if schema.task is Task.BINARY:
        positives = int(values.sum())
        return f"{positives} positive ({positives / len(values):.1%})"
    shares = values.value_counts(normalize=True)
    shown = ", ".join(f"{c} {share:.1%}" for c, share in shares.head(TOP_CLASSES).items())
    more = f", ... ({len(shares)} classes)" if len(shares) > TOP_CLASSES else ""
    return f"{shown}{more}"


def _column_rows(
    pooled: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name in numeric:
        values = pooled[name]
        summary = (
            f"mean {values.mean():.4g}, std {values.std():.4g}, "
            f"min {values.min():.4g}, max {values.max():.4g}"
        )
        rows.append(_column(name, "numeric", values, summary))
    for name in categorical:
        counts = pooled[name].value_counts()
        shown = ", ".join(f"{value} ({count})" for value, count in counts.head(TOP_VALUES).items())
        more = ", ..." if len(counts) > TOP_VALUES else ""
        rows.append(
            _column(name, "categorical", pooled[name], f"{len(counts)} values: {shown}{more}")
        )
    return rows


def _column(name: str, kind: str, values: pd.Series, summary: str) -> dict[str, object]:
    return {"column": name, "kind": kind, "missing": int(values.isna().sum()), "summary": summary}


def _client_target(values: pd.Series, schema: Schema) -> dict[str, object]:
    """A client's target column of the clients table, by task."""
    if schema.task is Task.REGRESSION:
        return {"target mean": float(values.mean())}
    if schema.task is Task.BINARY:
        return {"positive rate": float(values.mean())}
    return {"classes": int(values.nunique())}


def _client_rows(loaded: Federation, labels: Sequence[str]) -> list[dict[str, object]]:
    target = loaded.schema.target
    rows: list[dict[str, object]] = []
    for pid, (client, label) in enumerate(zip(loaded.clients, labels, strict=True)):
        total = len(client.train) + len(client.test)
        values = pd.concat([client.train[target], client.test[target]])
        rows.append(
            {
                "client": pid, "institution": label, "source": client.source, "rows": total,
                "train": len(client.train), "test": len(client.test),
            } | _client_target(values, loaded.schema)
        )  # fmt: skip
    return rows
