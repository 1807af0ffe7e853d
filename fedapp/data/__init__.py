"""The data layer: load tables, split them into clients, hold out test rows.

Data flows one way: tables (built-in, one file split by a partitioner, or one
file per institution) → typed features and a target read for its task
(:mod:`fedapp.data.target`) → per-client splits
→ federated statistics (:mod:`fedapp.data.stats`) → a fitted
``Preprocessor``. A simulated client calls :func:`client_share` for its own
share only; the driver uses :func:`global_test` and :func:`pooled_train` for
the comparisons a simulation can afford and a real federation cannot.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedapp.data.checks import Split, leak_warnings, split_warnings
from fedapp.data.columns import missing_notes, unusable
from fedapp.data.files import ReadOptions, TableFile, file_digest, read_file
from fedapp.data.partition import partition, stratified_split
from fedapp.data.sources import (
    Table,
    TableSpec,
    check_same_schema,
    federation_target,
    prepare,
    target_values,
)  # fmt: skip
from fedapp.data.stats import (
    Preprocessor,
    Schema,
    TargetEncoding,
    local_statistics,
    merge_statistics,
)  # fmt: skip
from fedapp.data.synthetic import TARGETS, make_churn_table
from fedapp.data.target import strata
from fedapp.errors import UsageError
from fedapp.settings import DEMO_DATA, RunConfig
from fedapp.settings.specs import PartitionSpec

__all__ = [
    "ClientShare",
    "Federation",
    "Preprocessor",
    "ReadOptions",
    "Schema",
    "TargetEncoding",
    "client_share",
    "client_splits",
    "federated_preprocessor",
    "federation",
    "fit_preprocessor",
    "global_test",
    "load_federation",
    "local_statistics",
    "merge_statistics",
    "pooled_evaluation",
    "pooled_train",
    "recorded_settings",
    "table_spec",
]


@dataclass(frozen=True)
class ClientShare:
    """One institution's rows: what it trains on and what it holds out.

    ``validation`` is the part of its training rows held out for validation
    (``validation-fraction``; empty without it): its own evaluation, the
    threshold calibration and tuning score those, and ``test`` stays the
    yardstick nothing is chosen on.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    schema: Schema
    source: str
    validation: pd.DataFrame | None = None

    @property
    def evaluation(self) -> pd.DataFrame:
        """The rows the client's own evaluation scores: its validation rows, else its test rows."""
        return self.validation if self.validation is not None else self.test


@dataclass(frozen=True)
class Federation:
    """Every client's data, the shared schema, and what loading noticed.

    ``notes`` say what was decided (the positive class, blanks read as
    missing, a file's separator and encoding, a constant column left out);
    ``warnings`` point at likely problems (a leaking feature, a column read
    as an identifier); ``digests`` are the SHA-256 of the data files read,
    in order (none for the built-in table). ``id_column`` names the rows:
    the given ``id-column``, else the column found to be an identifier and
    left out of the features, else ``None``.
    """

    clients: tuple[ClientShare, ...]
    schema: Schema
    notes: tuple[str, ...]
    warnings: tuple[str, ...]
    digests: tuple[str, ...] = ()
    id_column: str | None = None

    @property
    def task(self) -> str:
        """The target's task (``binary``, ``multiclass`` or ``regression``)."""
        return str(self.schema.task)


@dataclass(frozen=True)
class _DataKey:
    """The settings that decide the data; the cache key of :func:`federation`."""

    data: str
    client_data: tuple[str, ...]
    demo_rows: int
    clients: int
    seed: int
    partition: PartitionSpec | None
    spec: TableSpec
    test_fraction: float
    data_sha256: tuple[str, ...]
    read: ReadOptions
    validation_fraction: float = 0.0

    @classmethod
    def of(cls, cfg: RunConfig) -> _DataKey:
        return cls(
            cfg.data, cfg.client_data, cfg.demo_rows, cfg.clients, cfg.seed,
            cfg.partition_spec, table_spec(cfg), cfg.test_fraction, cfg.data_sha256,
            read_options(cfg), cfg.validation_fraction,
        )  # fmt: skip

    @property
    def files(self) -> tuple[str, ...]:
        """The data files read: every client's, or the one table's (none for the demo)."""
        return self.client_data or (() if self.data == DEMO_DATA else (self.data,))

    def tables(self) -> tuple[list[Table], list[str]]:
        """Load and type every table: one per client, or one to be partitioned."""
        if self.client_data:
            _check_distinct(self.client_data)
            files = [read_file(Path(p), self.read) for p in self.client_data]
            named = [(f.frame, p) for f, p in zip(files, self.client_data, strict=True)]
            # A file may hold one class; the others say which values the target takes.
            values = [target_values(f, self.spec, p) for f, p in named]
            target, note = federation_target(values, self.spec, "the client-data files")
            # A column is left out of every file or of none: their schemas must agree.
            left_out = unusable([f for f, _ in named], self.spec)
            tables = [
                _noted(prepare(f, self.spec, p, target, left_out), file, p)
                for (f, p), file in zip(named, files, strict=True)
            ]
            if note:
                tables[0] = dataclasses.replace(tables[0], notes=(note, *tables[0].notes))
            return tables, list(self.client_data)
        if self.data == DEMO_DATA:
            if self.demo_rows < self.clients:
                raise UsageError(
                    f"demo-rows ({self.demo_rows}) must be at least clients ({self.clients})"
                )
            # One institution per client, so `column:institution` always fits.
            frame = make_churn_table(self.demo_rows, self.clients, self.seed)
            # The demo's other outcomes are not known when predicting this one.
            others = [t for t in TARGETS if t != self.spec.target and t not in self.spec.drop]
            spec = dataclasses.replace(self.spec, drop=(*self.spec.drop, *others))
            table = prepare(frame, spec, "demo data")
            if others:
                note = f"demo data: the other outcomes ({', '.join(others)}) are not features"
                table = dataclasses.replace(table, notes=(*table.notes, note))
            return [table], ["demo data"]
        file = read_file(Path(self.data), self.read)
        return [_noted(prepare(file.frame, self.spec, self.data), file, self.data)], [self.data]


def _noted(table: Table, file: TableFile, source: str) -> Table:
    """``table`` with what reading its file decided first among its notes.

    The cells read as missing are said of the columns the table kept.
    """
    read = missing_notes(file.missing, source, table.frame.columns)
    return dataclasses.replace(table, notes=(*file.notes, *read, *table.notes))


def table_spec(cfg: RunConfig) -> TableSpec:
    """How ``cfg`` reads its tables: the target, the columns left out, the markers of blanks."""
    split = cfg.partition_spec
    return TableSpec(
        cfg.resolved_target, cfg.positive_label, cfg.id_column, cfg.drop, cfg.categorical,
        cfg.na_values, cfg.max_categories, cfg.task,
        keep=(split.column,) if split and split.column else (),
    )  # fmt: skip


def read_options(cfg: RunConfig) -> ReadOptions:
    """How ``cfg`` reads its files: the separator, the encoding, the missing-value markers."""
    return ReadOptions(cfg.sep, cfg.encoding, cfg.na_values)


def _load(key: _DataKey) -> Federation:
    tables, sources = key.tables()
    target = key.spec.target
    if key.client_data:
        schema = check_same_schema(tables, sources)
        locals_ = [(t.frame, s) for t, s in zip(tables, sources, strict=True)]
        labels = [f"#{pid} {Path(s).name}" for pid, s in enumerate(sources)]
    else:
        [table] = tables
        schema = table.schema
        spec = key.partition
        assert spec is not None  # one table to split: the config resolved how
        rows = partition(table.frame, spec, key.clients, target, key.seed, schema.task)
        locals_, labels = [], []
        for pid, r in enumerate(rows):
            local = table.frame.iloc[r].reset_index(drop=True)
            name = f"{spec.column}={local[spec.column].iloc[0]}" if spec.column else f"#{pid}"
            locals_.append((local, f"{sources[0]} ({name})"))
            labels.append(f"#{pid} {name}" if spec.column else name)
    clients = []
    for pid, (local, source) in enumerate(locals_):
        rng = np.random.default_rng([key.seed, pid])
        groups = strata(local[target].to_numpy(), schema.task)
        train, test = stratified_split(groups, key.test_fraction, rng)
        if len(train) == 0 or len(test) == 0:
            raise UsageError(f"{source}: {len(local)} rows, too few to hold out a test split")
        validation = None
        if key.validation_fraction > 0:
            kept, held = stratified_split(groups[train], key.validation_fraction, rng)
            if len(kept) == 0 or len(held) == 0:
                raise UsageError(
                    f"{source}: {len(train)} training rows, too few to hold out a validation split"
                )
            train, validation = train[kept], local.iloc[train[held]]
        clients.append(ClientShare(local.iloc[train], local.iloc[test], schema, source, validation))
    for name, frames in (
        ("training", [c.train for c in clients]),
        ("held-out", [c.test for c in clients]),
    ):
        if pd.concat(frames)[target].nunique() < 2:
            what = "a single value" if schema.task == "regression" else "a single class"
            raise UsageError(f"the {name} rows hold {what} of '{target}'")
    notes = tuple(n for t in tables for n in t.notes)
    warnings = [w for t in tables for w in t.warnings]
    splits = [
        Split(label, c.train[target], c.test[target])
        for label, c in zip(labels, clients, strict=True)
    ]
    warnings += split_warnings(splits, target, key.test_fraction, schema.task)
    warnings += leak_warnings([(c.source, c.train) for c in clients], schema)
    digests = tuple(file_digest(Path(p)) for p in key.files)
    warnings += _changed_files(key.files, key.data_sha256, digests)
    identifier = tables[0].id_column
    return Federation(tuple(clients), schema, notes, tuple(warnings), digests, identifier)


def _changed_files(
    paths: tuple[str, ...], recorded: tuple[str, ...], digests: tuple[str, ...]
) -> list[str]:
    """Warn of each file whose content is not the one a recorded config was run on."""
    return [
        f"{path}: its content differs from the file this config was recorded with (sha256 "
        f"{then[:12]}... then, {now[:12]}... now); results may differ from that run's"
        for path, then, now in zip(paths, recorded, digests, strict=False)
        if then != now
    ]


def recorded_settings(cfg: RunConfig, loaded: Federation) -> dict[str, Any]:
    """The data settings a run directory records: files resolved, with their hashes.

    Run again from another folder, the config then reads the same files, and
    says so when one of them has changed since.
    """
    if cfg.client_data:
        files: dict[str, Any] = {"client_data": tuple(_resolved(p) for p in cfg.client_data)}
    elif cfg.is_demo:
        return {}
    else:
        files = {"data": _resolved(cfg.data)}
    return files | {"data_sha256": loaded.digests}


def _resolved(path: str) -> str:
    return str(Path(path).resolve())


def _check_distinct(paths: tuple[str, ...]) -> None:
    """Refuse a file given twice: one institution's rows would count double."""
    seen: dict[Path, int] = {}
    for number, path in enumerate(paths, start=1):
        resolved = Path(path).resolve()
        if resolved in seen:
            raise UsageError(
                f"--client-data names {paths[seen[resolved] - 1]} twice (files "
                f"{seen[resolved]} and {number}); each institution's file once"
            )
        seen[resolved] = number


_cached = functools.lru_cache(maxsize=4)(_load)


def federation(cfg: RunConfig) -> Federation:
    """Every client's data, computed once per process and settings."""
    return _cached(_DataKey.of(cfg))


def load_federation(cfg: RunConfig) -> Federation:
    """Load and check every client's data afresh, caching nothing.

    For a long-lived process (the UI) that checks settings before launching a
    run: files may change between calls, and nothing is kept in memory.
    """
    return _load(_DataKey.of(cfg))


def client_splits(cfg: RunConfig) -> tuple[ClientShare, ...]:
    """Every client's data (see :func:`federation`)."""
    return federation(cfg).clients


def client_share(cfg: RunConfig, partition_id: int) -> ClientShare:
    """The rows of one client (what a SuperNode would read from its own disk)."""
    splits = client_splits(cfg)
    if not 0 <= partition_id < len(splits):
        raise UsageError(f"partition id {partition_id} is outside 0..{len(splits) - 1}")
    return splits[partition_id]


def global_test(cfg: RunConfig) -> pd.DataFrame:
    """The union of all clients' held-out rows: the common yardstick."""
    return pd.concat([c.test for c in client_splits(cfg)], ignore_index=True)


def pooled_evaluation(cfg: RunConfig) -> pd.DataFrame:
    """The union of the rows the clients' own evaluation scores (validation rows, else test)."""
    return pd.concat([c.evaluation for c in client_splits(cfg)], ignore_index=True)


def pooled_train(cfg: RunConfig) -> pd.DataFrame:
    """All clients' training rows pooled, for the centralized baseline."""
    return pd.concat([c.train for c in client_splits(cfg)], ignore_index=True)


def fit_preprocessor(stats: list[dict], schema: Schema, cfg: RunConfig) -> Preprocessor:
    """Merge clients' statistics and fit the shared preprocessing from them."""
    return Preprocessor.fit(merge_statistics(stats), schema, cfg.min_category_count)


def federated_preprocessor(cfg: RunConfig) -> Preprocessor:
    """The preprocessing a run with ``cfg`` fits, computed in this one process.

    Every client's statistics, in partition order as the server merges them;
    for benchmarks and tests that need the run's preprocessing without a run.
    """
    clients = client_splits(cfg)
    stats = [local_statistics(c.train, c.schema, cfg.min_category_count) for c in clients]
    return fit_preprocessor(stats, clients[0].schema, cfg)
