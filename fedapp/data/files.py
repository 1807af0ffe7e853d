"""Reading a table file (CSV or Parquet) and saying exactly what is wrong with one.

A file is read where it lives (a client, or the simulation's driver standing
in for it); every problem is a :class:`~fedapp.errors.UsageError` naming the
file: an undecodable byte by its offset and line, a Parquet file behind a
``.csv`` name, a header that pandas would silently rename.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from fedapp.errors import UsageError

PARQUET_SUFFIXES = (".parquet", ".pq")
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
# Every Parquet file starts (and ends) with these four bytes.
_PARQUET_MAGIC = b"PAR1"
_CHUNK = 1 << 20


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file.

    Raises
    ------
    UsageError
        For a missing, empty, unreadable or undecodable file, one whose
        content is not what its name says, or a header with an empty or a
        repeated column name.

    """
    parquet = check_file(path)
    with read_errors(path):
        if parquet:
            frame = pd.read_parquet(path)
            names: Sequence[object] = list(frame.columns)
        else:
            sep = separator(path)
            frame = pd.read_csv(path, sep=sep, low_memory=False)
            names = _header(path, sep)
    check_names(names, path)
    if frame.empty:
        raise UsageError(f"{path}: the file has no rows")
    return frame


def check_file(path: Path) -> bool:
    """Check what :func:`read_table` checks before reading; return whether ``path`` is Parquet.

    Raises
    ------
    UsageError
        For a missing or empty file, an unknown suffix, or content that is not
        what the name says.

    """
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in (*PARQUET_SUFFIXES, *TEXT_SUFFIXES):
        raise UsageError(f"{path}: unknown format '{suffix}' (use .csv or .parquet)")
    with path.open("rb") as file:
        magic = file.read(len(_PARQUET_MAGIC))
    if not magic:
        raise UsageError(f"{path}: the file is empty")
    parquet = suffix in PARQUET_SUFFIXES
    if parquet and magic != _PARQUET_MAGIC:
        raise UsageError(
            f"{path}: not a Parquet file (it does not start with PAR1); if it is CSV text, "
            f"name it {path.stem}.csv"
        )
    if not parquet and magic == _PARQUET_MAGIC:
        raise UsageError(
            f"{path}: this is a Parquet file, not CSV text; name it {path.stem}.parquet"
        )
    return parquet


def separator(path: Path) -> str:
    """The field separator of a text table: a tab for ``.tsv``, else a comma."""
    return "\t" if path.suffix.lower() == ".tsv" else ","


def check_header(path: Path, sep: str) -> None:
    """Refuse a text table's header with an empty or a repeated name (pandas renames them)."""
    with read_errors(path):
        names = _header(path, sep)
    check_names(names, path)


@contextlib.contextmanager
def read_errors(path: Path) -> Iterator[None]:
    """Turn what reading ``path`` raises into a :class:`UsageError` naming the file."""
    try:
        yield
    except UnicodeDecodeError as err:
        raise UsageError(f"{path}: {_undecodable(path, err)}") from None
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"{path}: cannot be read as a table: {first}") from None


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's content, read in chunks (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _header(path: Path, sep: str) -> list[str]:
    """The header's names as written: pandas renames repeated and empty ones."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        return next(csv.reader(file, delimiter=sep), [])


def check_names(names: Sequence[object], path: Path) -> None:
    """Refuse a header with an empty or a repeated column name, saying which column."""
    seen: dict[str, int] = {}
    for number, name in enumerate(map(str, names), start=1):
        if not name.strip():
            index = " (a saved row index? write the file without it)" if number == 1 else ""
            raise UsageError(
                f"{path}: column {number} has no name in the header; name it, or remove "
                f"the column{index}"
            )
        if name in seen:
            raise UsageError(
                f"{path}: column name '{name}' appears twice in the header (columns "
                f"{seen[name]} and {number}); give each column its own name"
            )
        seen[name] = number


def _undecodable(path: Path, err: UnicodeDecodeError) -> str:
    """Say where the first byte that is not UTF-8 is, in the whole file.

    The reader decodes in buffers, so the offset its error gives counts from
    the start of one buffer, not of the file.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    start = 0
    with path.open("rb") as file:
        while True:
            chunk = file.read(_CHUNK)
            # Bytes of a character cut by the previous chunk's end are held back.
            held = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as found:
                offset = start - held + found.start
                byte = found.object[found.start]
                line = _lines_before(path, offset) + 1
                return (
                    f"not UTF-8 text (byte 0x{byte:02x} at byte {offset}, line {line}); "
                    "save it as UTF-8 (it may be Latin-1 or Windows-1252)"
                )
            if not chunk:
                return f"not UTF-8 text ({err.reason})"
            start += len(chunk)


def _lines_before(path: Path, offset: int) -> int:
    count = 0
    with path.open("rb") as file:
        while offset > 0:
            chunk = file.read(min(_CHUNK, offset))
            count += chunk.count(b"\n")
            offset -= len(chunk)
    return count
