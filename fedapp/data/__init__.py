"""The data layer: load a table, split it into clients, hold out test rows.

Data flows one way: ``load_table`` → ``Schema`` → per-client splits →
federated statistics (:mod:`fedapp.data.stats`) → a fitted ``Preprocessor``.
A simulated client calls :func:`client_data` for its own share only; the
driver uses :func:`global_test` and :func:`pooled_train` for the centralized
comparison that a simulation can afford and a real federation cannot.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fedapp.config import DEMO_DATA, RunConfig
from fedapp.data.partition import PartitionSpec, partition, stratified_split
from fedapp.data.stats import Preprocessor, Schema, local_statistics, merge_statistics
from fedapp.data.synthetic import make_churn_table
from fedapp.errors import UsageError

__all__ = [
    "ClientData",
    "Preprocessor",
    "Schema",
    "client_data",
    "client_splits",
    "fit_preprocessor",
    "global_test",
    "load_table",
    "local_statistics",
    "merge_statistics",
    "pooled_train",
]


@dataclass(frozen=True)
class ClientData:
    """One institution's rows: what it trains on and what it holds out."""

    train: pd.DataFrame
    test: pd.DataFrame
    schema: Schema


@dataclass(frozen=True)
class _DataKey:
    """The settings that decide the split; the cache key of :func:`_splits`."""

    data: str
    demo_rows: int
    clients: int
    seed: int
    partition: str
    target: str
    test_fraction: float

    @classmethod
    def of(cls, cfg: RunConfig) -> _DataKey:
        return cls(
            cfg.data, cfg.demo_rows, cfg.clients, cfg.seed,
            cfg.resolved_partition, cfg.target, cfg.test_fraction,
        )  # fmt: skip

    def load(self) -> pd.DataFrame:
        if self.data != DEMO_DATA:  # RunConfig rejects this already
            raise UsageError(f"data '{self.data}' is not supported")
        if self.demo_rows < self.clients:
            raise UsageError(
                f"demo-rows ({self.demo_rows}) must be at least clients ({self.clients})"
            )
        # One institution per client, so `column:institution` always fits.
        table = make_churn_table(rows=self.demo_rows, institutions=self.clients, seed=self.seed)
        if self.target not in table.columns:
            raise UsageError(f"target column '{self.target}' is not in the data")
        return table


def load_table(cfg: RunConfig) -> pd.DataFrame:
    """Load the run's table (today: the built-in demo table)."""
    return _DataKey.of(cfg).load()


@functools.lru_cache(maxsize=4)
def _splits(key: _DataKey) -> tuple[ClientData, ...]:
    table = key.load()
    schema = Schema.infer(table, key.target)
    spec = PartitionSpec.parse(key.partition)
    parts = partition(table, spec, key.clients, key.target, key.seed)
    out = []
    for pid, rows in enumerate(parts):
        local = table.iloc[rows].reset_index(drop=True)
        rng = np.random.default_rng([key.seed, pid])
        train, test = stratified_split(local[key.target].to_numpy(), key.test_fraction, rng)
        if len(train) == 0 or len(test) == 0:
            raise UsageError(f"client {pid} has {len(rows)} rows: too few to hold out a test split")
        out.append(ClientData(local.iloc[train], local.iloc[test], schema))
    for name, frames in (("training", [c.train for c in out]), ("held-out", [c.test for c in out])):
        if pd.concat(frames)[key.target].nunique() < 2:
            raise UsageError(f"the {name} rows hold a single class of '{key.target}'")
    return tuple(out)


def client_splits(cfg: RunConfig) -> tuple[ClientData, ...]:
    """Every client's data, computed once per process and settings."""
    return _splits(_DataKey.of(cfg))


def client_data(cfg: RunConfig, partition_id: int) -> ClientData:
    """The rows of one client (what a SuperNode would read from its own disk)."""
    splits = client_splits(cfg)
    if not 0 <= partition_id < len(splits):
        raise UsageError(f"partition id {partition_id} is outside 0..{len(splits) - 1}")
    return splits[partition_id]


def global_test(cfg: RunConfig) -> pd.DataFrame:
    """The union of all clients' held-out rows: the common yardstick."""
    return pd.concat([c.test for c in client_splits(cfg)], ignore_index=True)


def pooled_train(cfg: RunConfig) -> pd.DataFrame:
    """All clients' training rows pooled, for the centralized baseline."""
    return pd.concat([c.train for c in client_splits(cfg)], ignore_index=True)


def fit_preprocessor(stats: list[dict], schema: Schema, cfg: RunConfig) -> Preprocessor:
    """Merge clients' statistics and fit the shared preprocessing from them."""
    return Preprocessor.fit(merge_statistics(stats), schema, cfg.min_category_count)
