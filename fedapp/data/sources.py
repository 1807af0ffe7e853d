"""Reading institutions' tables: CSV or Parquet, typed, with a binary target.

Everything here runs where the data lives (a client, or the simulation's
driver standing in for it) and raises :class:`~fedapp.errors.UsageError`
naming the file and the column when a table cannot be used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fedapp.data.stats import Schema
from fedapp.errors import UsageError

# Two-valued targets whose positive class is unambiguous.
_POSITIVE = {"1", "yes", "true", "y", "t", "1.0"}
_NEGATIVE = {"0", "no", "false", "n", "f", "0.0"}
# A text column is numeric when at least this share of its non-blank values
# parse as numbers; below that it is categorical.
_NUMERIC_SHARE = 0.95


@dataclass(frozen=True)
class TableSpec:
    """How to read a table: which column is the target and which to leave out.

    Attributes
    ----------
    target : str
        Binary target column.
    positive_label : str | None
        The target value meaning "positive"; ``None`` infers it.
    id_column : str | None
        An identifier column, never used as a feature.
    drop : tuple[str, ...]
        Further columns never used as features.
    categorical : tuple[str, ...]
        Columns to treat as categorical even if they look numeric.

    """

    target: str
    positive_label: str | None = None
    id_column: str | None = None
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """A table ready for the federation: features typed, target 0/1."""

    frame: pd.DataFrame
    schema: Schema
    notes: tuple[str, ...]


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file.

    Raises
    ------
    UsageError
        For a missing, empty, unreadable or undecodable file.

    """
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ".tsv"):
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", low_memory=False)
        else:
            raise UsageError(f"{path}: unknown format '{suffix}' (use .csv or .parquet)")
    except UnicodeDecodeError as err:
        raise UsageError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, ValueError, OSError) as err:
        if isinstance(err, UsageError):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"{path}: cannot be read as a table: {first}") from None
    if frame.empty:
        raise UsageError(f"{path}: the file has no rows")
    return frame


def prepare(frame: pd.DataFrame, spec: TableSpec, source: str) -> Table:
    """Drop non-features, type the columns and encode the target as 0/1.

    Parameters
    ----------
    frame : pandas.DataFrame
        The raw table.
    spec : TableSpec
        Target and column choices.
    source : str
        The file's name, for messages.

    """
    notes: list[str] = []
    excluded = [c for c in (spec.id_column, *spec.drop) if c]
    for column in (*excluded, *spec.categorical):
        if column not in frame.columns:
            raise UsageError(f"{source}: column '{column}' is not in the file")
    if spec.target not in frame.columns:
        raise UsageError(
            f"{source}: target column '{spec.target}' is not in the file "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    frame = frame.drop(columns=excluded)
    frame.columns = [str(c) for c in frame.columns]

    blank_target = _blank(frame[spec.target])
    if blank_target.any():
        notes.append(f"{source}: {int(blank_target.sum())} rows with a blank target left out")
        frame = frame.loc[~blank_target]
    if frame.empty:
        raise UsageError(f"{source}: no rows left after dropping blank targets")
    target, note = _binary_target(frame[spec.target], spec, source)
    notes.append(note)

    features = {}
    numeric, categorical = [], []
    for column in frame.columns:
        if column == spec.target:
            continue
        values, kind, note = _typed(frame[column], column in spec.categorical, source, column)
        features[column] = values
        (numeric if kind == "numeric" else categorical).append(column)
        if note:
            notes.append(note)
    if not features:
        raise UsageError(f"{source}: no feature columns left besides the target")
    typed = pd.DataFrame(features, index=frame.index)
    typed[spec.target] = target
    typed = typed.reset_index(drop=True)
    schema = Schema(tuple(numeric), tuple(categorical), spec.target)
    return Table(typed, schema, tuple(notes))


def check_same_schema(tables: Sequence[Table], sources: Sequence[str]) -> Schema:
    """Check that every client's table has the same features of the same kinds.

    Returns
    -------
    Schema
        The schema all tables share.

    """
    first, name = tables[0].schema, sources[0]
    kinds = {c: "numeric" for c in first.numeric} | {c: "categorical" for c in first.categorical}
    for table, source in zip(tables[1:], sources[1:], strict=True):
        other = {c: "numeric" for c in table.schema.numeric}
        other |= {c: "categorical" for c in table.schema.categorical}
        for column in kinds.keys() - other.keys():
            raise UsageError(f"{source}: column '{column}' is missing (present in {name})")
        for column in other.keys() - kinds.keys():
            raise UsageError(f"{source}: column '{column}' is not in {name}")
        for column, kind in kinds.items():
            if other[column] != kind:
                raise UsageError(
                    f"{source}: column '{column}' is {other[column]} but {kind} in {name}; "
                    f"pass --categorical {column} if it is a category"
                )
    return first


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | values.astype(str).str.strip().eq("")


def _binary_target(values: pd.Series, spec: TableSpec, source: str) -> tuple[np.ndarray, str]:
    text = values.astype(str).str.strip()
    if pd.api.types.is_float_dtype(values):
        text = values.map(lambda v: f"{v:g}")
    classes = sorted(text.unique())
    if len(classes) < 2:
        raise UsageError(
            f"{source}: target '{spec.target}' has a single value ({classes[0]}) "
            f"in {len(text)} rows"
        )
    if len(classes) > 2:
        shown = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
        raise UsageError(
            f"{source}: target '{spec.target}' has {len(classes)} classes ({shown}); "
            "only binary targets are supported"
        )
    if spec.positive_label is not None:
        if spec.positive_label not in classes:
            raise UsageError(
                f"{source}: --positive-label '{spec.positive_label}' is not a value of "
                f"'{spec.target}' (values: {', '.join(classes)})"
            )
        positive = spec.positive_label
        note = f"{source}: positive class of '{spec.target}' is '{positive}' (given)"
    else:
        lowered = {c.lower() for c in classes}
        found = [c for c in classes if c.lower() in _POSITIVE]
        if len(found) == 1 and lowered - {found[0].lower()} <= _NEGATIVE:
            positive = found[0]
            note = f"{source}: positive class of '{spec.target}' is '{positive}' (inferred)"
        else:
            raise UsageError(
                f"{source}: cannot tell the positive class of '{spec.target}' "
                f"(values: {', '.join(classes)}); pass --positive-label"
            )
    return (text == positive).to_numpy(dtype=np.int64), note


def _typed(
    values: pd.Series, force_categorical: bool, source: str, column: str
) -> tuple[pd.Series, str, str | None]:
    """Return ``(values, kind, note)``: numbers as float, categories as text."""
    if force_categorical:
        blanks = _blank(values)
        return values.astype(str).str.strip().where(~blanks, None), "categorical", None
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float), "numeric", None
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float), "numeric", None
    blanks = _blank(values)
    present = values[~blanks].astype(str).str.strip()
    parsed = pd.to_numeric(present, errors="coerce")
    share = parsed.notna().mean() if len(present) else 0.0
    if share == 1.0:
        note = None
        text_blanks = int(blanks.sum() - values.isna().sum())
        if text_blanks:
            note = f"{source}: column '{column}': {text_blanks} blank text values read as missing"
        return pd.to_numeric(values.where(~blanks), errors="coerce"), "numeric", note
    if share >= _NUMERIC_SHARE:
        junk = present[parsed.isna()]
        raise UsageError(
            f"{source}: column '{column}' is numeric but has {len(junk)} non-numeric "
            f"values, e.g. {junk.iloc[0]!r}; fix them or pass --categorical {column}"
        )
    return present.reindex(values.index), "categorical", None
