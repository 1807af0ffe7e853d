"""Reading institutions' tables: CSV or Parquet, typed, with their target.

Everything here runs where the data lives (a client, or the simulation's
driver standing in for it) and raises :class:`~fedapp.errors.UsageError`
naming the file and the column when a table cannot be used.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fedapp.data.columns import Unusable, identifier, leave_out, mark_missing, missing_notes
from fedapp.data.columns import unusable as unusable_columns
from fedapp.data.files import read_table
from fedapp.data.stats import MAX_MAGNITUDE, Schema
from fedapp.data.target import TargetInfo, decide, read_target, target_text
from fedapp.errors import UsageError
from fedapp.settings import Task

__all__ = [
    "Table", "TableSpec", "check_present", "check_same_schema", "federation_target", "prepare",
    "read_table", "target_values", "typed_features", "typed_target",
]  # fmt: skip

# A text column is numeric when at least this share of its non-blank values
# parse as numbers (the rest is junk to fix); below that it is categorical.
_NUMERIC_SHARE = 0.95
# Text that tables use for "no value": named as such when it spoils a numeric
# column (and is not one of the na-values markers, which are read as missing).
_MARKERS = {
    "?", "??", "???", "-", "--", "---", ".", "..", "missing", "unknown", "n.a.", "n.a",
    "nil", "none", "na", "n/a", "null", "#n/a", "nan", "empty", "blank", "(blank)", "tbd",
    "not available",
}  # fmt: skip
# What pandas reads as a boolean column, numeric to fedapp: new rows read as
# text say them as words.
_BOOLEANS = {"True": 1.0, "TRUE": 1.0, "true": 1.0, "False": 0.0, "FALSE": 0.0, "false": 0.0}


@dataclass(frozen=True)
class TableSpec:
    """How to read a table: which column is the target and which to leave out.

    Attributes
    ----------
    target : str
        The column to predict.
    positive_label : str | None
        The binary target's value meaning "positive"; ``None`` infers it.
    id_column : str | None
        An identifier column, never used as a feature.
    drop : tuple[str, ...]
        Further columns never used as features.
    categorical : tuple[str, ...]
        Columns to treat as categorical even if they look numeric.
    missing_values : tuple[str, ...]
        Values read as missing (the ``na-values`` setting: ``?``, ``-999``),
        besides blanks and pandas' own NaN text.
    max_categories : int | None
        Most distinct values of a column typed categorical by inference (and
        classes of a text target); ``None`` for no limit.
    task : Task | None
        The target's task; ``None`` infers it from the values.
    keep : tuple[str, ...]
        Columns kept whatever they hold (the split's column): never left out
        as constant, entirely missing or an identifier.

    """

    target: str
    positive_label: str | None = None
    id_column: str | None = None
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    missing_values: tuple[str, ...] = ()
    max_categories: int | None = None
    task: Task | None = None
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """A table ready for the federation: features typed, the target read for its task.

    ``notes`` say what was decided (the positive class, blanks read as
    missing, a constant column left out); ``warnings`` what may not be what
    the user meant (a column of numbers read as categorical, one read as an
    identifier). ``id_column`` is the given identifier column, else the one
    found and left out (never in ``frame``), else ``None``.
    """

    frame: pd.DataFrame
    schema: Schema
    notes: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())
    id_column: str | None = None


def prepare(
    frame: pd.DataFrame,
    spec: TableSpec,
    source: str,
    target: TargetInfo | None = None,
    unusable: Sequence[Unusable] | None = None,
) -> Table:
    """Drop non-features, type the columns and read the target for its task.

    Parameters
    ----------
    frame : pandas.DataFrame
        The raw table.
    spec : TableSpec
        Target and column choices.
    source : str
        The file's name, for messages.
    target : TargetInfo | None
        The target over every client's file (:func:`federation_target`), when
        this table is one of several: a file holding one class is then
        accepted, its class read as positive or negative from the others.
        ``None`` decides it from this table alone.
    unusable : Sequence[Unusable] | None
        The columns to leave out for what they hold, decided over every
        client's file (:func:`fedapp.data.columns.unusable`); ``None``
        decides on this table alone.

    Raises
    ------
    UsageError
        Naming the file and the column: an absent column, an unusable
        target, junk or an infinite or overflowing value in a numeric
        column, a categorical one with more than ``max_categories`` values.

    """
    notes: list[str] = []
    warnings: list[str] = []
    check_columns(frame, spec, source)
    frame = frame.drop(columns=[c for c in (spec.id_column, *spec.drop) if c])
    frame.columns = [str(c) for c in frame.columns]
    frame, counts = mark_missing(frame, spec.missing_values)
    notes += missing_notes(counts, source)
    left_out = unusable_columns([frame], spec) if unusable is None else unusable
    frame, said, warned = leave_out(frame, left_out, source)
    notes += said
    warnings += warned

    blank_target = _blank(frame[spec.target])
    if blank_target.any():
        notes.append(f"{source}: {int(blank_target.sum())} rows with a blank target left out")
        frame = frame.loc[~blank_target]
    if frame.empty:
        raise UsageError(f"{source}: no rows left after dropping blank targets")
    if target is None:
        target, note = federation_target([frame[spec.target]], spec, source)
        notes += [note] if note else []
    values, target, note = read_target(
        frame[spec.target], target, spec.target, source, spec.positive_label
    )
    notes += note

    features = {}
    numeric, categorical = [], []
    for column in frame.columns:
        if column == spec.target:
            continue
        typed = _typed(frame[column], column, spec, source)
        features[column] = typed.values
        (numeric if typed.kind == "numeric" else categorical).append(column)
        notes += typed.notes
        warnings += typed.warnings
    if not features:
        raise UsageError(f"{source}: no feature columns left besides the target")
    table = pd.DataFrame(features, index=frame.index)
    table[spec.target] = values
    table = table.reset_index(drop=True)
    schema = Schema(tuple(numeric), tuple(categorical), spec.target, target.task, target.classes)
    return Table(table, schema, tuple(notes), tuple(warnings), identifier(spec, left_out))


def check_columns(frame: pd.DataFrame, spec: TableSpec, source: str) -> None:
    """Check that every column ``spec`` names is in the table."""
    for column in (spec.id_column, *spec.drop, *spec.categorical):
        if column and column not in frame.columns:
            raise UsageError(f"{source}: column '{column}' is not in the file")
    if spec.target not in frame.columns:
        raise UsageError(
            f"{source}: target column '{spec.target}' is not in the file "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )


def check_present(frame: pd.DataFrame, needed: dict[str, str], source: str) -> None:
    """Refuse a table that lacks any column of ``needed`` (column -> what it is), naming each."""
    absent = [f"{c} ({what})" for c, what in needed.items() if c not in frame.columns]
    if absent:
        raise UsageError(
            f"{source}: {len(absent)} column(s) the run needs are missing: {', '.join(absent)}"
        )


def typed_features(
    frame: pd.DataFrame, schema: Schema, spec: TableSpec, source: str
) -> pd.DataFrame:
    """New rows' feature columns, typed by a run's ``schema`` as :func:`prepare` types them.

    The kinds are the run's, never inferred from the values, so that any slice
    of a file (a chunk whose numeric column happens to be all blank) is typed
    alike: numeric columns become floats, categorical ones stripped text, with
    blanks and ``spec.missing_values`` missing. Other columns are left out,
    and the order of the columns does not matter.

    Raises
    ------
    UsageError
        Naming every feature column the table lacks, a numeric column holding
        text (with its data row), or an infinite or overflowing number.

    """
    check_present(frame, dict.fromkeys(schema.features, "feature"), source)
    features = frame[list(schema.features)]
    features, _ = mark_missing(features, spec.missing_values)
    typed = {c: _numbers(features[c], c, source) for c in schema.numeric}
    typed |= {c: _text(features[c]) for c in schema.categorical}
    return pd.DataFrame(typed, index=frame.index)[list(schema.features)]


def typed_target(frame: pd.DataFrame, schema: Schema, spec: TableSpec, source: str) -> pd.Series:
    """New rows' target, read for the run's task as :func:`prepare` reads it.

    Returns the rows that have a value (blanks and ``spec.missing_values``
    left out, their index kept): 0/1 for a binary target (1 for the run's
    positive class), the class as text for a multiclass one, a float for
    regression.

    Raises
    ------
    UsageError
        For a class the run was not trained on, or text in a regression target.

    """
    values = frame[schema.target]
    present = values[~(_blank(values) | _marked(values, spec.missing_values))]
    if schema.task is Task.REGRESSION:
        return _numbers(present, schema.target, source)
    text = target_text(present)
    # A class written as a number another way ("1.0" for 1) is that class.
    numbers = pd.to_numeric(text, errors="coerce")
    written = numbers.map(lambda v: f"{v:g}", na_action="ignore")
    text = text.where(text.isin(schema.classes) | written.isna(), written)
    unseen = sorted(set(text[~text.isin(schema.classes)]))
    if unseen:
        shown = ", ".join(repr(c) for c in unseen[:5]) + (", ..." if len(unseen) > 5 else "")
        raise UsageError(
            f"{source}: target '{schema.target}' holds {shown}, not a class the run was "
            f"trained on (classes: {', '.join(schema.classes)})"
        )
    if schema.task is Task.BINARY:
        return (text == schema.classes[1]).astype(np.int64)
    return text


def target_values(frame: pd.DataFrame, spec: TableSpec, source: str) -> pd.Series:
    """The target's non-blank values in one raw table, as :func:`prepare` reads them."""
    check_columns(frame, spec, source)
    values = frame[spec.target]
    missing = _blank(values) | _marked(values, spec.missing_values)
    return values[~missing]


def federation_target(
    values: Sequence[pd.Series], spec: TableSpec, source: str
) -> tuple[TargetInfo, str]:
    """The target of tables read together: its task (given or inferred) and classes.

    Returns the target and a note saying what it is (empty for a binary one,
    whose note names the positive class instead).
    """
    pooled = pd.concat([v.dropna() for v in values], ignore_index=True)
    if pooled.empty:
        raise UsageError(f"{source}: target '{spec.target}' has no values")
    return decide(pooled, spec.target, source, spec.task, spec.max_categories or 50)


def check_same_schema(tables: Sequence[Table], sources: Sequence[str]) -> Schema:
    """Check that every client's table has the same features of the same kinds.

    Returns
    -------
    Schema
        The schema all tables share.

    """
    first, name = tables[0].schema, sources[0]
    kinds = first.kinds
    for table, source in zip(tables[1:], sources[1:], strict=True):
        other = table.schema.kinds
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


def _marked(values: pd.Series, markers: Sequence[str]) -> pd.Series:
    """Where ``values`` hold one of the missing-value ``markers``.

    Text cells match a marker as written (stripped); number cells match a
    marker that is a number (``-999``), since the reader has parsed them.
    """
    if not markers or pd.api.types.is_bool_dtype(values):
        return pd.Series(False, index=values.index)
    if pd.api.types.is_numeric_dtype(values):
        numbers = pd.to_numeric(pd.Series(markers), errors="coerce").dropna()
        return values.isin(numbers.to_numpy())
    return values.notna() & values.astype(str).str.strip().isin(markers)


@dataclass(frozen=True)
class _Typed:
    """One column as a feature: its values, its kind and what to tell about it."""

    values: pd.Series
    kind: str
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def _typed(values: pd.Series, column: str, spec: TableSpec, source: str) -> _Typed:
    """Numbers as float, categories as text; said when the choice may surprise."""
    if column in spec.categorical:
        return _Typed(_text(values), "categorical")
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return _Typed(_finite(values.astype(float), source, column), "numeric")
    blanks = _blank(values)
    present = values[~blanks].astype(str).str.strip()
    parsed = pd.to_numeric(present, errors="coerce")
    numbers = int(parsed.notna().sum())
    if len(present) and numbers == len(present):
        notes: tuple[str, ...] = ()
        text_blanks = int(blanks.sum() - values.isna().sum())
        if text_blanks:
            notes = (
                f"{source}: column '{column}': {text_blanks} blank text values read as missing",
            )
        numeric = pd.to_numeric(values.where(~blanks), errors="coerce")
        return _Typed(_finite(numeric, source, column), "numeric", notes)
    junk = present[parsed.isna()]
    if numbers >= _NUMERIC_SHARE * len(present):
        raise _junk(junk, source, column, spec.missing_values)
    text = (
        f"{len(junk)} of its {len(present)} values ({len(junk) / len(present):.0%}) are not "
        f"numbers, e.g. {junk.iloc[0]!r}"
    )
    distinct = present.nunique()
    if spec.max_categories is not None and distinct > spec.max_categories:
        if numbers:
            why = f"it is read as categorical because {text}: fix those if it is numeric, "
        elif distinct == len(present):
            why = f"one per row: an identifier? Pass --id-column {column}, "
        else:
            why = ""
        raise UsageError(
            f"{source}: column '{column}' has {distinct} distinct values, more than "
            f"max-categories ({spec.max_categories}) for a categorical column; {why}leave it "
            f"out with --drop {column}, or pass --categorical {column} if it is a category"
        )
    warnings: tuple[str, ...] = ()
    if numbers:
        warnings = (
            f"{source}: column '{column}' is read as categorical: {text}; fix them if it is "
            f"numeric, or pass --categorical {column} to say it is a category",
        )
    return _Typed(present.reindex(values.index), "categorical", warnings=warnings)


def _text(values: pd.Series) -> pd.Series:
    """A categorical column: its values as stripped text, blanks missing."""
    return values.astype(str).str.strip().where(~_blank(values), None)


def _numbers(values: pd.Series, column: str, source: str) -> pd.Series:
    """A column the run holds numeric, as floats: blanks missing, any other text refused."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return _finite(values.astype(float), source, column)
    text = values[~_blank(values)].astype(str).str.strip()
    parsed = pd.to_numeric(text.replace(_BOOLEANS), errors="coerce")
    junk = text[parsed.isna()]
    if len(junk):
        raise UsageError(
            f"{source}: column '{column}' is numeric in the run but has {len(junk)} "
            f"non-numeric values, e.g. {junk.iloc[0]!r} in data row {_data_row(junk.index[0])}; "
            "fix them or leave the cells blank"
        )
    return _finite(parsed.astype(float).reindex(values.index), source, column)


def _junk(junk: pd.Series, source: str, column: str, markers: Sequence[str]) -> UsageError:
    """The error for a numeric column with a few values that are not numbers."""
    found = f"{source}: column '{column}' is numeric but has {len(junk)} non-numeric values"
    kinds = sorted(set(junk))
    if all(k.lower() in _MARKERS for k in kinds):
        listed = " or ".join(f"'{k}'" for k in kinds)
        flags = " ".join(f"--na-values {shlex.quote(k)}" for k in kinds)
        which = "looks like a missing-value marker" if len(kinds) == 1 else "look like markers"
        now = ", ".join(m if m else "''" for m in markers) or "none"
        return UsageError(
            f"{found}, all {listed}, which {which}: read {'it' if len(kinds) == 1 else 'them'} "
            f"as missing with {flags}, repeating --na-values for each marker to keep (now {now})"
        )
    return UsageError(
        f"{found}, e.g. {junk.iloc[0]!r}; fix them, pass --na-values VALUE if they mean "
        f"missing, or --categorical {column} if it is a category"
    )


def _finite(values: pd.Series, source: str, column: str) -> pd.Series:
    """``values``, checked to leave the column's mean and variance finite numbers."""
    magnitude = values.abs()
    if np.isinf(magnitude).any():
        row = magnitude.index[np.isinf(magnitude)][0]
        raise UsageError(
            f"{source}: column '{column}' has an infinite value ({values[row]:g}) in data "
            f"row {_data_row(row)}; replace it with a number or leave the cell blank"
        )
    if (magnitude > MAX_MAGNITUDE).any():
        row = magnitude.index[magnitude > MAX_MAGNITUDE][0]
        raise UsageError(
            f"{source}: column '{column}' has a value of magnitude {magnitude[row]:g} in data "
            f"row {_data_row(row)}, beyond {MAX_MAGNITUDE:g}, the largest whose mean and "
            f"variance stay finite numbers; rescale the column or leave it out with "
            f"--drop {column}"
        )
    return values


def _data_row(label: object) -> object:
    """The 1-based row under the header of a row labelled by its position as read."""
    return label + 1 if isinstance(label, int | np.integer) else label
