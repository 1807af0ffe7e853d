"""Cleaning a table's cells and finding the columns no model can learn from.

What an export writes around its values (spaces, ``?``, ``N/A``, ``-999``)
is undone here, the same way for a whole file and for each chunk of one:
text is stripped (:func:`strip_text`), missing-value markers become missing
and are counted per column and marker (:func:`mark_missing`), and a text
column whose every value is a number (or true/false) is typed as pandas
would have typed it (:func:`retype`).

A column that is constant, entirely missing or an identifier (a distinct
text value in every row) is left out of the features (:func:`unusable`,
:func:`leave_out`), with a note or, for an identifier, a warning. Over
several client files the decision is taken once for all of them, so that
every file keeps the same columns.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from fedapp.settings import ALWAYS_NA

if TYPE_CHECKING:
    from fedapp.data.sources import TableSpec

# A text column with a different value in each of this many rows (or more) is
# an identifier; in a smaller table distinct values are as likely a category.
MIN_IDENTIFIER_ROWS = 20
# An identifier is text: a column mostly of numbers with a few typos is not one.
_IDENTIFIER_NUMBERS = 0.5
# What pandas reads as True and False in a CSV file.
_BOOLEANS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False,
             "false": False}  # fmt: skip

# Per column, the cells read as missing by the marker they held: {column: {marker: n}}.
Counts = dict[str, dict[str, int]]


def is_text(values: pd.Series) -> bool:
    """Whether a column holds text (or anything else that is neither a number nor a bool)."""
    return not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values))


def strip_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the spaces around every text value removed (a category " yes" is "yes")."""
    stripped = {}
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, pd.StringDtype):
            stripped[column] = values.str.strip()
        elif values.dtype == object:
            text = values.map(lambda v: isinstance(v, str)).astype(bool)
            if text.any():
                values = values.copy()
                values[text] = values[text].str.strip()
            stripped[column] = values
    return frame.assign(**stripped) if stripped else frame


def mark_missing(frame: pd.DataFrame, na_values: Collection[str]) -> tuple[pd.DataFrame, Counts]:
    """Blank every cell holding a missing-value marker; count them per column and marker.

    A text cell matches a marker once stripped (``na_values``, and what pandas
    reads as missing: blanks, ``NaN``, ``NULL``, ...); a marker that is a
    number (``-999``) also matches a number cell or a text cell of that
    value (``-999.0``), and is counted as written. Cells already missing
    are not counted.
    """
    texts = ALWAYS_NA | {m.strip() for m in na_values}
    numbers = _numbers(na_values)
    counts: Counts = {}
    masked = {}
    for column in frame.columns:
        values = frame[column]
        found = _markers(values, texts, numbers)
        if found.notna().any():
            masked[column] = values.mask(found.notna())
            tally = found.value_counts()
            counts[column] = {str(m): int(n) for m, n in tally.items()}
    return (frame.assign(**masked) if masked else frame), counts


def _numbers(na_values: Collection[str]) -> dict[float, str]:
    """The markers that are finite numbers, by value (``-999`` for -999.0 as well)."""
    numbers: dict[float, str] = {}
    for marker in na_values:
        try:
            value = float(marker)
        except ValueError:
            continue
        if math.isfinite(value):
            numbers.setdefault(value, marker.strip())
    return numbers


def _markers(values: pd.Series, texts: Collection[str], numbers: Mapping[float, str]) -> pd.Series:
    """The marker each cell of ``values`` holds, missing where it holds none."""
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(None, index=values.index, dtype=object)
    if pd.api.types.is_numeric_dtype(values):
        return values.map(numbers).astype(object)
    text = values.astype(str).str.strip().where(values.notna())
    found = text.where(text.isin(texts))
    if numbers:
        parsed = pd.to_numeric(text.where(found.isna()), errors="coerce")
        found = found.astype(object).fillna(parsed.map(numbers).astype(object))
    return found.astype(object)


def missing_notes(counts: Counts, source: str, columns: Collection[str] | None = None) -> list[str]:
    """One note per column of ``counts`` (of ``columns``, if given): how many, by which marker."""
    notes = []
    for column, markers in counts.items():
        if columns is not None and column not in columns:
            continue
        ordered = sorted(markers.items(), key=lambda item: (-item[1], item[0]))
        parts = ", ".join(f"{n} {_shown(m)}" for m, n in ordered)
        total = sum(markers.values())
        noun = "value" if total == 1 else "values"
        notes.append(f"{source}: column '{column}': {total} {noun} read as missing ({parts})")
    return notes


def _shown(marker: str) -> str:
    return "blank" if marker == "" else f"'{marker}'"


def retype(frame: pd.DataFrame) -> pd.DataFrame:
    """Type each text column as pandas types a CSV column, now that markers are blank.

    Every value a number: a number column (integers if none is missing);
    every value true or false (as pandas spells them) and none missing: a
    bool column; no value at all: a column of missing numbers. Other text
    columns stay text.
    """
    typed = {}
    for column in frame.columns:
        values = frame[column]
        if not is_text(values) or isinstance(values.dtype, pd.CategoricalDtype):
            continue
        present = values.dropna()
        if present.empty:
            typed[column] = pd.Series(float("nan"), index=values.index)
            continue
        if not all(isinstance(v, str) for v in present.head(1000)):
            continue  # Parquet's dates, decimals or lists: as they are
        try:  # a text column fails at its first word, a number column is parsed once
            typed[column] = pd.to_numeric(values)
        except (ValueError, TypeError):
            text = present.astype(str)
            if len(present) == len(values) and text.isin(list(_BOOLEANS)).all():
                typed[column] = text.map(_BOOLEANS).astype(bool)
    return frame.assign(**typed) if typed else frame


# -- columns no model can learn from ----------------------------------------------


@dataclass(frozen=True)
class Unusable:
    """A column left out of the features for what it holds.

    Attributes
    ----------
    column : str
        Its name.
    reason : str
        ``"constant"``, ``"empty"`` (entirely missing) or ``"identifier"``.
    value : str
        The one value of a constant column, as text.

    """

    column: str
    reason: str
    value: str = ""


def unusable(frames: Sequence[pd.DataFrame], spec: TableSpec) -> tuple[Unusable, ...]:
    """The columns to leave out of every one of ``frames`` (one table, or every client's).

    Over every file together: constant (one value in every row of every
    file), entirely missing, or an identifier: text, not named
    ``--categorical``, a different value in each row of each file, at
    least :data:`MIN_IDENTIFIER_ROWS` values in all. The target, the given
    identifier, the dropped columns and ``spec.keep`` (the split's column)
    are never left out here. A column some file lacks is the schema check's
    to report.
    """
    skip = {spec.target, spec.id_column, *spec.drop, *spec.keep}
    found = []
    for column in frames[0].columns:
        if column in skip or any(column not in f.columns for f in frames):
            continue
        parts = [f[column] for f in frames]
        present = [p.dropna() for p in parts]
        count = sum(len(p) for p in present)
        if count == 0:
            found.append(Unusable(column, "empty"))
            continue
        pooled = pd.concat(present, ignore_index=True)
        if count == sum(len(p) for p in parts) and pooled.nunique() == 1:
            found.append(Unusable(column, "constant", _value(pooled.iloc[0])))
        elif (
            column not in spec.categorical
            and count >= MIN_IDENTIFIER_ROWS
            and all(_identifier(p) for p in present)
        ):
            found.append(Unusable(column, "identifier"))
    return tuple(found)


def _value(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _identifier(values: pd.Series) -> bool:
    """Text values, all distinct, most of them no number."""
    if not is_text(values) or values.nunique() != len(values):
        return False
    numbers = pd.to_numeric(values.astype(str), errors="coerce").notna().mean()
    return bool(numbers < _IDENTIFIER_NUMBERS)


def leave_out(
    frame: pd.DataFrame, columns: Sequence[Unusable], source: str
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """``frame`` without ``columns``, with a note for each (a warning for an identifier)."""
    notes, warnings = [], []
    for found in columns:
        name = found.column
        if found.reason == "empty":
            notes.append(f"{source}: column '{name}' is entirely missing: left out")
        elif found.reason == "constant":
            notes.append(f"{source}: column '{name}' is constant (value '{found.value}'): left out")
        else:
            rows = int(frame[name].notna().sum())
            warnings.append(
                f"{source}: column '{name}' has a different value in each of its {rows} rows, as "
                f"an identifier has: left out of the features; pass --id-column {name} to say "
                f"so, or --categorical {name} to use it as a category"
            )
    frame = frame.drop(columns=[f.column for f in columns if f.column in frame.columns])
    return frame, notes, warnings


def identifier(spec: TableSpec, columns: Sequence[Unusable]) -> str | None:
    """The table's identifier: the one given, else the first column found to be one."""
    if spec.id_column:
        return spec.id_column
    return next((f.column for f in columns if f.reason == "identifier"), None)
