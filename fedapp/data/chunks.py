"""Tables a chunk at a time: new rows read in slices, predictions written the same way.

:func:`read_chunks` is the one place that reads a table in chunks, so that
memory stays bounded however long the file is; :class:`TableWriter` writes
CSV or Parquet chunk by chunk into a temporary file that takes the output's
name only once every chunk is written, so a failure leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pandas as pd

from fedapp.data import files
from fedapp.errors import UsageError

OUTPUT_SUFFIXES = (".csv", ".parquet")


def read_chunks(
    path: Path, chunk_rows: int, options: files.ReadOptions | None = None
) -> Iterator[pd.DataFrame]:
    """The rows of a CSV or Parquet file, ``chunk_rows`` at a time, numbered from 0 across chunks.

    Read as :func:`fedapp.data.files.iter_table` reads them (separator,
    encoding, stripped names and values, ``options``' missing-value markers),
    its text left as written: the caller types the columns by a run's
    schema, never by the rows a chunk happens to hold.

    Raises
    ------
    UsageError
        As :func:`fedapp.data.files.read_table` does: a missing, empty or
        undecodable file, a header pandas would rename, a file of no rows.

    """
    rows = 0
    for frame in files.iter_table(path, options, chunk_rows, typed=False):
        frame.index = pd.RangeIndex(rows, rows + len(frame))
        rows += len(frame)
        yield frame


def check_output(path: Path, force: bool) -> None:
    """Refuse an output that is not ``.csv`` or ``.parquet``, or that exists (unless ``force``)."""
    _check_suffix(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a directory; name the output file")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise UsageError(f"{path.parent}: no such directory for the output")


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"{path}: the output must be a .csv or .parquet file")


class TableWriter:
    """Write a CSV or Parquet file chunk by chunk: whole on :meth:`commit`, or not at all.

    Chunks go to a hidden temporary file beside ``path``, renamed to ``path``
    once all are written; :meth:`discard` (or leaving a ``with`` block on an
    exception) removes it. The file gets the mode of any new file of the
    process (from its umask).
    """

    def __init__(self, path: Path) -> None:
        _check_suffix(path)
        self.path = path
        self.parquet = path.suffix.lower() == ".parquet"
        self.tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        fd = os.open(self.tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        self._handle = os.fdopen(fd, "wb")
        self._parquet_writer = None
        self._schema = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame``'s rows; the first chunk sets the columns (and Parquet's types)."""
        if self.parquet:
            self._write_parquet(frame)
        else:
            frame.to_csv(self._handle, header=self.rows == 0, index=False)
        self.rows += len(frame)

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        # pyarrow: only a Parquet output is written with it.
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._parquet_writer is None:
            inferred = pa.Schema.from_pandas(frame, preserve_index=False)
            # A column all blank in the first chunk has no type yet: text.
            self._schema = pa.schema(
                [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in inferred]
            ).remove_metadata()
            self._parquet_writer = pq.ParquetWriter(self._handle, self._schema)
        table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
        self._parquet_writer.write_table(table)

    def commit(self) -> None:
        """Finish the file and give it its name."""
        if self._parquet_writer is not None:
            self._parquet_writer.close()
        self._handle.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        """Remove what was written: the output is left as it was."""
        try:
            if self._parquet_writer is not None:
                self._parquet_writer.close()
        except Exception:  # a half-written file is removed whatever closing it says
            pass
        self._handle.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()
