"""Partitioners: split one table's rows into one index array per client.

Every partitioner is a pure function of its inputs and a seeded generator, so
each simulated client can recompute its own share without any coordination.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fedapp.data.target import strata
from fedapp.errors import UsageError
from fedapp.settings import Task
from fedapp.settings.specs import PartitionSpec

MIN_PARTITION_ROWS = 10
_DIRICHLET_TRIES = 100


def partition(
    frame: pd.DataFrame,
    spec: PartitionSpec,
    clients: int,
    target: str,
    seed: int,
    task: Task = Task.BINARY,
) -> list[np.ndarray]:
    """Split ``frame``'s row positions into ``clients`` index arrays.

    ``dirichlet:ALPHA`` skews the classes of a classification ``task``, and
    the quantile bins of a regression target (:func:`fedapp.data.target.strata`).

    Raises
    ------
    UsageError
        When the split is impossible or leaves a client without rows.

    """
    rng = np.random.default_rng(seed)
    if spec.kind == "iid":
        parts = iid(len(frame), clients, rng)
    elif spec.kind == "dirichlet":
        assert spec.alpha is not None
        parts = dirichlet(strata(frame[target].to_numpy(), task), clients, spec.alpha, rng)
    elif spec.kind == "quantity":
        assert spec.alpha is not None
        parts = quantity(len(frame), clients, spec.alpha, rng)
    elif spec.kind == "column" and spec.column is not None:
        parts = by_column(frame, spec.column, clients)
    else:  # `nodes`: a deployed federation, whose SuperNodes each read their own file
        raise UsageError(f"partition {spec} splits no table; each SuperNode's file is one client")
    for pid, rows in enumerate(parts):
        if len(rows) == 0:
            raise UsageError(f"partition {spec.kind} left client {pid} with no rows")
    return parts


def iid(rows: int, clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle the rows and deal them into equal shares."""
    if rows < clients:
        raise UsageError(f"iid: {rows} rows cannot fill {clients} clients")
    return [np.sort(p) for p in np.array_split(rng.permutation(rows), clients)]


def dirichlet(
    labels: np.ndarray, clients: int, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Label skew: each class is spread over clients with Dirichlet(alpha) shares.

    Draws again until every client has at least ``MIN_PARTITION_ROWS`` rows.
    """
    minimum = min(MIN_PARTITION_ROWS, len(labels) // clients)
    smallest = 0
    for _ in range(_DIRICHLET_TRIES):
        shares: list[list[np.ndarray]] = [[] for _ in range(clients)]
        for label in np.unique(labels):
            rows = rng.permutation(np.flatnonzero(labels == label))
            cuts = np.cumsum(_shares(clients, alpha, rng, "dirichlet")) * len(rows)
            for pid, chunk in enumerate(np.split(rows, cuts.astype(int)[:-1])):
                shares[pid].append(chunk)
        parts = [np.sort(np.concatenate(s)) for s in shares]
        smallest = min(len(p) for p in parts)
        if smallest >= max(minimum, 1):
            return parts
    raise UsageError(
        f"dirichlet:{alpha:g} could not give each of {clients} clients "
        f"{max(minimum, 1)} rows (smallest got {smallest}); "
        "use a larger alpha or fewer clients"
    )


def quantity(rows: int, clients: int, alpha: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Size skew: shuffled rows dealt in Dirichlet(alpha) shares.

    Labels stay balanced in expectation; only how much data each client holds
    varies. Draws again until every client has at least ``MIN_PARTITION_ROWS``.
    """
    minimum = max(min(MIN_PARTITION_ROWS, rows // clients), 1)
    smallest = 0
    for _ in range(_DIRICHLET_TRIES):
        cuts = (np.cumsum(_shares(clients, alpha, rng, "quantity")) * rows).astype(int)[:-1]
        parts = [np.sort(p) for p in np.split(rng.permutation(rows), cuts)]
        smallest = min(len(p) for p in parts)
        if smallest >= minimum:
            return parts
    raise UsageError(
        f"quantity:{alpha:g} could not give each of {clients} clients {minimum} rows "
        f"(smallest got {smallest}); use a larger alpha or fewer clients"
    )


def _shares(clients: int, alpha: float, rng: np.random.Generator, kind: str) -> np.ndarray:
    """Dirichlet(alpha) shares of ``clients``, refused when NumPy cannot draw them."""
    shares = rng.dirichlet(np.full(clients, alpha))
    # Past ~1e308 / clients the draw's normalising sum overflows and every share is 0.
    if not np.isclose(shares.sum(), 1.0):
        raise UsageError(
            f"{kind}:{alpha:g}: alpha is too large to draw shares from (so large an alpha is "
            "an even split: use iid)"
        )
    return shares


def by_column(frame: pd.DataFrame, column: str, clients: int) -> list[np.ndarray]:
    """One client per distinct value of ``column`` (in sorted value order)."""
    if column not in frame.columns:
        raise UsageError(f"partition column '{column}' is not in the data")
    values = frame[column]
    if values.isna().any():
        raise UsageError(f"partition column '{column}' has blank values")
    groups = values.groupby(values, sort=True).indices
    if len(groups) != clients:
        raise UsageError(
            f"partition column:{column} gives {len(groups)} clients "
            f"but clients is {clients}; pass --clients {len(groups)}"
        )
    return [np.asarray(rows) for rows in groups.values()]


def stratified_split(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``test_fraction`` of each class; return (train, test) positions."""
    test: list[np.ndarray] = []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        take = round(test_fraction * len(rows))
        if len(rows) > 1:
            take = min(max(take, 1), len(rows) - 1)
        test.append(rows[:take])
    test_rows = np.sort(np.concatenate(test))
    train_rows = np.setdiff1d(np.arange(len(labels)), test_rows)
    return train_rows, test_rows
