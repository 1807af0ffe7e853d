"""A loaded federation described before a run: what ``fedapp inspect`` and the New run page show.

Built from the loaded :class:`fedapp.data.Federation` (the rows a run would
train and test on), as plain tables; the CLI prints them, the UI draws them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from fedapp.runs import client_label

if TYPE_CHECKING:
    from fedapp.data import Federation

# Most frequent values listed for a categorical column.
TOP_VALUES = 3


@dataclass(frozen=True)
class DataPreview:
    """The data a run would use, described before it starts.

    Attributes
    ----------
    headline : str
        Rows, institutions and the target's positive rate, in one line.
    columns : pd.DataFrame
        One row per feature: ``column``, ``kind``, ``missing``, ``summary``.
    clients : pd.DataFrame
        One row per institution: ``client``, ``institution`` (its short name),
        ``source`` (where its rows came from), ``rows``, ``train``, ``test``,
        ``positive rate``.
    notes : tuple[str, ...]
        What loading decided (the positive class, blanks read as missing).
    warnings : tuple[str, ...]
        Likely problems, as the data layer finds them: a leaking feature,
        institutions with one class or too few rows to train or score.
    train_rows : tuple[int, ...]
        Each institution's training rows (record-level DP's sampling rates).

    """

    headline: str
    columns: pd.DataFrame
    clients: pd.DataFrame
    notes: tuple[str, ...]
    warnings: tuple[str, ...]
    train_rows: tuple[int, ...]


def describe_federation(loaded: Federation) -> DataPreview:
    """Describe a loaded federation: its columns over the pooled rows, and each institution."""
    target = loaded.schema.target
    pooled = pd.concat([part for c in loaded.clients for part in (c.train, c.test)])
    positives = int(pooled[target].sum())
    headline = (
        f"{len(pooled)} rows in {len(loaded.clients)} institutions; target '{target}': "
        f"{positives} positive ({positives / len(pooled):.1%})"
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
    )


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


def _client_rows(loaded: Federation, labels: Sequence[str]) -> list[dict[str, object]]:
    target = loaded.schema.target
    rows: list[dict[str, object]] = []
    for pid, (client, label) in enumerate(zip(loaded.clients, labels, strict=True)):
        total = len(client.train) + len(client.test)
        positives = int(client.train[target].sum() + client.test[target].sum())
        rows.append(
            {
                "client": pid, "institution": label, "source": client.source, "rows": total,
                "train": len(client.train), "test": len(client.test),
                "positive rate": positives / total,
            }
        )  # fmt: skip
    return rows
