"""Table files: what is wrong with one, said exactly (a byte, a header, a format, a repeat)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tables import CHURN, customers, fails, write_csv

from fedapp.data.sources import read_table
from fedapp.errors import UsageError

# -- headers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("age,age,Churn", "c.csv: column name 'age' appears twice in the header (columns 1 "
                          "and 2); give each column its own name"),
        ("age,,Churn", "c.csv: column 2 has no name in the header; name it, or remove the "
                       "column"),
        (",age,Churn", "c.csv: column 1 has no name in the header; name it, or remove the "
                       "column (a saved row index? write the file without it)"),
    ],
    ids=["duplicate", "empty", "index"],
)  # fmt: skip
def test_a_header_pandas_would_rename_is_refused(tmp_path: Path, header: str, message: str) -> None:
    # Prepare
    path = tmp_path / "c.csv"
    rows = "\n".join(f"{i},{i % 7},{'Yes' if i % 3 else 'No'}" for i in range(30))
    path.write_text(f"{header}\n{rows}\n", encoding="utf-8")

    # Execute, Assert
    fails(tmp_path, ["--data", str(path), "--target", "Churn"], message)


def test_a_parquet_column_without_a_name_is_refused(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "c.parquet"
    customers(rows=30).rename(columns={"tenure": ""}).to_parquet(path)

    # Execute, Assert
    with pytest.raises(UsageError, match="column 2 has no name in the header"):
        read_table(path)


# -- files -------------------------------------------------------------------------


def test_an_undecodable_byte_is_located_in_the_whole_file(tmp_path: Path) -> None:
    # Prepare: well past the first bytes, where a reader's buffer starts again; read as
    # UTF-8 because it is told so (else it would be detected as cp1252)
    path = tmp_path / "latin1.csv"
    head = "name,Churn\n" + "".join(f"row{i},No\n" for i in range(3000))
    path.write_bytes(head.encode() + "Jos\xe9,Yes\n".encode("latin-1"))
    offset = len(head.encode()) + 3

    # Execute, Assert
    fails(tmp_path, ["--data", str(path), "--target", "Churn", "--encoding", "utf-8"],
          f"latin1.csv: not UTF-8 text (byte 0xe9 at byte {offset}, line 3002); save it as "
          "UTF-8 (it may be Latin-1 or Windows-1252)")  # fmt: skip


def test_a_parquet_file_named_csv_is_said_to_be_parquet(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "bank.csv"
    customers(rows=30).to_parquet(path)

    # Execute, Assert
    fails(tmp_path, ["--data", str(path), "--target", "Churn"],
          "bank.csv: this is a Parquet file, not CSV text; name it bank.parquet")  # fmt: skip


def test_a_csv_file_named_parquet_is_said_to_be_text(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "bank.parquet"
    customers(rows=30).to_csv(path, index=False)

    # Execute, Assert
    fails(tmp_path, ["--data", str(path), "--target", "Churn"],
          "bank.parquet: not a Parquet file (it does not start with PAR1); if it is CSV "
          "text, name it bank.csv")  # fmt: skip


def test_the_same_client_file_twice_is_refused(tmp_path: Path) -> None:
    # Prepare
    a = write_csv(tmp_path, "bank_a.csv", customers(seed=1))
    b = write_csv(tmp_path, "bank_b.csv", customers(seed=2))
    again = os.path.join(tmp_path, ".", "bank_a.csv")  # the same file by another name
    args = ["--client-data", a, "--client-data", b, "--client-data", again, *CHURN]

    # Execute, Assert
    fails(
        tmp_path,
        args,
        f"--client-data names {a} twice (files 1 and 3); each institution's file once",
    )
