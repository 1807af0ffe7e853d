"""Reading a table file (CSV or Parquet) and saying exactly what is wrong with one.

A file is read where it lives (a client, or the simulation's driver standing
in for it); every problem is a :class:`~fedapp.errors.UsageError` naming the
file: an undecodable byte by its offset and line, a Parquet file behind a
``.csv`` name, a header that pandas would silently rename.

Real exports are read as they come: the separator is sniffed (``,`` ``;``
tab ``|``) and the encoding detected (UTF-8 with or without a byte-order
mark, else cp1252 or Latin-1) unless :class:`ReadOptions` names them; the
spaces around names and values are stripped, and the missing-value markers
are read as missing and counted (:mod:`fedapp.data.columns`). What was
decided is said in :attr:`TableFile.notes`. :func:`iter_table` reads the
same way in chunks of bounded size.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fedapp.data.columns import Counts, mark_missing, retype, strip_text
from fedapp.errors import UsageError
from fedapp.settings import NA_VALUES

PARQUET_SUFFIXES = (".parquet", ".pq")
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
# Every Parquet file starts (and ends) with these four bytes.
_PARQUET_MAGIC = b"PAR1"
_CHUNK = 1 << 20
# How much of a text file its separator is sniffed from.
SNIFF_BYTES = 64 << 10
# The separators sniffed, in the order preferred when several fit.
SEPARATORS = (",", ";", "\t", "|")
# The encodings a file that is not UTF-8 may be in, as charset-normalizer names them.
_CANDIDATES = ("cp1252", "latin_1")
# How much "mess" (odd characters side by side) charset-normalizer may find in a
# candidate's text: its default (0.2) refuses a column of "é€" in every row, while
# bytes that are no text in either (control characters) stay well above this.
_MESS = 0.5
# Rows per chunk when a whole file is read.
_ROWS = 100_000


@dataclass(frozen=True)
class ReadOptions:
    """How to read a text file: its separator, its encoding, its missing-value markers.

    Attributes
    ----------
    sep : str | None
        The column separator; ``None`` sniffs it.
    encoding : str | None
        The text encoding (a Python codec name); ``None`` detects it.
    na_values : tuple[str, ...]
        Values read as missing, besides blanks and pandas' own NaN text
        (see :func:`fedapp.data.columns.mark_missing`).

    """

    sep: str | None = None
    encoding: str | None = None
    na_values: tuple[str, ...] = NA_VALUES


@dataclass(frozen=True)
class TableFile:
    """A file read as a table, and what reading it decided.

    Attributes
    ----------
    frame : pandas.DataFrame
        Names and text stripped, markers missing, columns typed.
    sep, encoding : str | None
        The separator and the codec the text was read with (``None`` for Parquet).
    missing : Counts
        The cells read as missing, per column and marker: ``{column: {marker: n}}``.
    notes : tuple[str, ...]
        The separator and the encoding, when they are not plain ``,`` and UTF-8.

    """

    frame: pd.DataFrame
    sep: str | None
    encoding: str | None
    missing: Counts = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def read_table(path: Path, options: ReadOptions | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file as :func:`read_file` does; the frame alone."""
    return read_file(path, options or ReadOptions()).frame


def read_file(path: Path, options: ReadOptions) -> TableFile:
    """Read a CSV or Parquet file, cleaned and typed.

    Raises
    ------
    UsageError
        For a missing, empty, unreadable or undecodable file, one whose
        content is not what its name says, a header with an empty or a
        repeated column name (once stripped), or a separator that leaves a
        single column where another one splits the file.

    """
    if check_file(path):
        with _reading(path, None):
            frame = pd.read_parquet(path)
        frame, missing = _cleaned(frame, path, options)
        return TableFile(frame, None, None, missing)
    layout = _layout(path, options)
    with _reading(path, layout.encoding):
        frame = pd.read_csv(path, **layout.arguments)
    frame, missing = _cleaned(frame, path, options, layout.header)
    return TableFile(frame, layout.sep, layout.name, missing, layout.notes)


def iter_table(
    path: Path, options: ReadOptions | None = None, chunk_rows: int = _ROWS, typed: bool = True
) -> Iterator[pd.DataFrame]:
    """Read a CSV or Parquet file in chunks of at most ``chunk_rows`` rows.

    Each chunk is read exactly as :func:`read_file` reads the whole file
    (separator, encoding, stripping, markers), so the chunks put together
    are the table :func:`read_table` gives; only a column's type is decided
    per chunk (a column of numbers whose later chunk holds text is text in
    that chunk alone). Memory stays bounded by one chunk: a CSV file is read
    ``chunk_rows`` at a time, a Parquet file in record batches. With
    ``typed=False`` text stays as written (``007`` is not the number 7): for
    a reader that types the columns by a schema of its own.

    Raises
    ------
    UsageError
        As :func:`read_file`, for the file or for the chunk that shows it.

    """
    options = options or ReadOptions()
    rows = 0
    if check_file(path):
        # pyarrow's Parquet reader: paid only by a Parquet file read in chunks.
        import pyarrow.parquet as pq

        with _reading(path, None):
            batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_rows)
            for batch in batches:
                frame, _ = _cleaned(batch.to_pandas(), path, options, None, True, typed)
                rows += len(frame)
                yield frame
    else:
        layout = _layout(path, options)
        with _reading(path, layout.encoding):
            chunks = pd.read_csv(path, chunksize=chunk_rows, **layout.arguments)
            for chunk in chunks:
                frame, _ = _cleaned(chunk, path, options, layout.header, True, typed)
                rows += len(frame)
                yield frame
    if rows == 0:
        raise UsageError(f"{path}: the file has no rows")


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's content, read in chunks (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: Path) -> bool:
    """Whether ``path`` is a Parquet file, checked against what its name says (before reading).

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


@contextlib.contextmanager
def _reading(path: Path, encoding: str | None) -> Iterator[None]:
    """Turn what pandas and pyarrow raise for a bad file into one line naming it."""
    try:
        yield
    except UnicodeDecodeError as err:
        raise UsageError(f"{path}: {_undecodable(path, encoding or 'utf-8', err)}") from None
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, ValueError, OSError) as err:
        if isinstance(err, UsageError):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"{path}: cannot be read as a table: {first}") from None


def _cleaned(
    frame: pd.DataFrame,
    path: Path,
    options: ReadOptions,
    header: Sequence[str] | None = None,
    empty_ok: bool = False,
    typed: bool = True,
) -> tuple[pd.DataFrame, Counts]:
    """Names and text stripped, markers read as missing (and counted), columns typed."""
    names = [_name(n) for n in (frame.columns if header is None else header)]
    _check_names(names, path)
    if len(names) != len(frame.columns):  # rows longer than the header: pandas' own names
        names = [_name(n) for n in frame.columns]
    frame = frame.set_axis(names, axis=1)
    if frame.empty and not empty_ok:
        raise UsageError(f"{path}: the file has no rows")
    frame, missing = mark_missing(strip_text(frame), options.na_values)
    return (retype(frame) if typed else frame), missing


def _name(name: object) -> str:
    # A byte-order mark read as text would stick to the first name.
    return str(name).strip().lstrip("\ufeff").strip()


def _check_names(names: Sequence[str], path: Path) -> None:
    seen: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if not name:
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


# -- a text file's separator and encoding --------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """How a text file is written: what pandas is told, and what is said of it."""

    encoding: str  # the codec read with (utf-8-sig for a BOM)
    name: str  # the encoding as said: utf-8, cp1252, latin-1
    sep: str
    header: tuple[str, ...]  # the header's names as written
    notes: tuple[str, ...]

    @property
    def arguments(self) -> dict[str, Any]:
        """``pandas.read_csv``'s keywords: every cell as text, nothing read as missing yet."""
        return {
            "sep": self.sep, "encoding": self.encoding, "dtype": str, "keep_default_na": False,
            "na_filter": False, "skipinitialspace": True,
        }  # fmt: skip


def _layout(path: Path, options: ReadOptions) -> _Layout:
    encoding, name, notes = _encoding(path, options.encoding)
    sample = _sample(path, encoding)
    if options.sep is not None:
        sep, how = options.sep, "given"
    elif path.suffix.lower() == ".tsv":
        sep, how = "\t", "detected"
    else:
        sep, how = _sniff(sample), "detected"
    _check_split(path, sample, sep, how)
    if how == "detected" and sep != ",":
        notes.append(f"{path}: columns separated by {_said(sep)} (detected)")
    rows = csv.reader(io.StringIO(sample), delimiter=sep, skipinitialspace=True)
    header = tuple(next(rows, []))
    return _Layout(encoding, name, sep, header, tuple(notes))


def _encoding(path: Path, given: str | None) -> tuple[str, str, list[str]]:
    """(the codec to read with, its name as said, the notes saying it)."""
    with path.open("rb") as file:
        head = file.read(4)
    bom = head.startswith(codecs.BOM_UTF8)
    if given is not None:
        utf8 = codecs.lookup(given).name == "utf-8"
        # A byte-order mark read as UTF-8 text would start the first column's name.
        codec = "utf-8-sig" if utf8 and bom else given
        return codec, given, [] if utf8 else [f"{path}: read as {given} (given)"]
    if bom:
        return "utf-8-sig", "utf-8", [f"{path}: read as UTF-8 with a byte-order mark (detected)"]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "utf-16", [f"{path}: read as UTF-16 (detected)"]
    bad = _first_undecodable(path, "utf-8")
    if bad is None:
        return "utf-8", "utf-8", []
    found = _detected(path, bad[0])
    if found is None:
        raise UsageError(
            f"{path}: {_not_utf8(path, *bad)}, nor does it read as cp1252 or latin-1 text; "
            "save it as UTF-8, or pass --encoding"
        )
    return found, found, [f"{path}: read as {found} (detected)"]


def _detected(path: Path, offset: int) -> str | None:
    """cp1252 or latin-1, as charset-normalizer judges the start and the first non-UTF-8 byte."""
    # Paid only by a file that is not UTF-8.
    from charset_normalizer import from_bytes

    with path.open("rb") as file:
        sample = file.read(SNIFF_BYTES)
        file.seek(max(0, offset - SNIFF_BYTES // 2))
        sample += b"\n" + file.read(SNIFF_BYTES)
    best = from_bytes(sample, cp_isolation=list(_CANDIDATES), threshold=_MESS).best()
    if best is None:
        return None
    # Windows' cp1252 is Latin-1 with letters (€, Œ, smart quotes) in 0x80-0x9f; where one
    # of its five unused bytes is found, the file is Latin-1 after all.
    if best.encoding == "cp1252" and _first_undecodable(path, "cp1252") is None:
        return "cp1252"
    return "latin-1"


def _sample(path: Path, encoding: str) -> str:
    """The first complete lines of the file's first :data:`SNIFF_BYTES`, as text."""
    with path.open("rb") as file:
        raw = file.read(SNIFF_BYTES)
        whole = not file.read(1)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(raw, final=whole)
    if not whole and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # a line cut short would count its fields wrong
    return text


def _sniff(sample: str) -> str:
    """The separator of ``sample``, ``,`` when none is clear.

    :class:`csv.Sniffer`'s, if it splits every line into the same number of
    columns (two or more); else the candidate that does into the most.
    """
    try:
        found = csv.Sniffer().sniff(sample, delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        found = None
    if found is not None and _columns(sample, found) > 1:
        return found
    counts = {sep: _columns(sample, sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] > 1 else ","


def _columns(sample: str, sep: str) -> int:
    """The columns ``sep`` splits every line of ``sample`` into (0 if lines differ)."""
    rows = [r for r in csv.reader(io.StringIO(sample), delimiter=sep, skipinitialspace=True) if r]
    widths = {len(r) for r in rows}
    return widths.pop() if len(widths) == 1 else 0


def _check_split(path: Path, sample: str, sep: str, how: str) -> None:
    """Refuse a separator that makes the file one column when another splits it evenly."""
    header = next(csv.reader(io.StringIO(sample), delimiter=sep), [])
    if len(header) != 1:
        return
    for other in SEPARATORS:
        n = _columns(sample, other) if other != sep else 0
        if n > 1:
            raise UsageError(
                f"{path}: separated by {_said(sep)} ({how}) each row is a single column, but "
                f"{_said(other)} splits it into {n} columns: pass --sep {_flag(other)}"
            )


def _said(sep: str) -> str:
    return "tabs" if sep == "\t" else f"'{sep}'"


def _flag(sep: str) -> str:
    return "'\\t'" if sep == "\t" else f"'{sep}'"


# -- a byte that is not text ---------------------------------------------------------


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int] | None:
    """The offset in the whole file and the value of the first byte ``encoding`` cannot decode.

    The reader decodes in buffers, so the offset its error gives counts from
    the start of one buffer, not of the file.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    start = 0
    with path.open("rb") as file:
        while True:
            chunk = file.read(_CHUNK)
            # Bytes of a character cut by the previous chunk's end are held back.
            state = decoder.getstate()
            held = len(state[0]) if isinstance(state, tuple) else 0
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as found:
                offset = start - held + found.start
                return offset, found.object[found.start]
            if not chunk:
                return None
            start += len(chunk)


def _undecodable(path: Path, encoding: str, err: UnicodeDecodeError) -> str:
    """Say where the first byte that is not ``encoding`` text is, in the whole file."""
    bad = _first_undecodable(path, encoding)
    utf8 = codecs.lookup(encoding).name == "utf-8"
    if bad is None:
        return f"not {'UTF-8' if utf8 else encoding} text ({err.reason})"
    if utf8:
        return (
            f"{_not_utf8(path, *bad)}; save it as UTF-8 (it may be Latin-1 or Windows-1252), "
            "or leave --encoding unset to detect which"
        )
    offset, byte = bad
    return (
        f"not {encoding} text (byte 0x{byte:02x} at byte {offset}, line "
        f"{_lines_before(path, offset) + 1}); pass the encoding it is written in with --encoding"
    )


def _not_utf8(path: Path, offset: int, byte: int) -> str:
    line = _lines_before(path, offset) + 1
    return f"not UTF-8 text (byte 0x{byte:02x} at byte {offset}, line {line})"


def _lines_before(path: Path, offset: int) -> int:
    count = 0
    with path.open("rb") as file:
        while offset > 0:
            chunk = file.read(min(_CHUNK, offset))
            count += chunk.count(b"\n")
            offset -= len(chunk)
    return count
