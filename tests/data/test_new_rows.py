"""New rows to score: typed by a run's schema (never by inference), read and written in chunks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedapp.data.chunks import TableWriter, check_output, read_chunks
from fedapp.data.sources import TableSpec, typed_features, typed_target
from fedapp.data.stats import Schema
from fedapp.errors import UsageError
from fedapp.settings import Task

SCHEMA = Schema(("age", "charges"), ("plan",), "Churn", Task.BINARY, ("No", "Yes"))
SPEC = TableSpec("Churn", missing_values=("?", "-999"))


def text_rows(**columns: list[object]) -> pd.DataFrame:
    """A chunk as the chunk reader gives a CSV's: every cell text, blanks missing."""
    return pd.DataFrame(columns, dtype="str")


# -- typing by the run's schema ---------------------------------------------------


def test_a_numeric_column_whose_chunk_is_all_blank_stays_numeric() -> None:
    # Prepare
    rows = text_rows(plan=["gold", " basic "], age=[None, None], charges=["12.5", " 3 "])

    # Execute
    typed = typed_features(rows, SCHEMA, SPEC, "new.csv")

    # Assert
    assert list(typed.columns) == ["age", "charges", "plan"]
    assert typed["age"].dtype == np.float64 and typed["age"].isna().all()
    assert typed["charges"].tolist() == [12.5, 3.0]
    assert typed["plan"].tolist() == ["gold", "basic"]


def test_markers_blanks_and_booleans_are_read_as_the_run_read_them() -> None:
    # Prepare
    rows = text_rows(age=["?", "-999", "true", " "], charges=["1", "2", "False", "4"],
                     plan=["?", " ", "x", None])  # fmt: skip

    # Execute
    typed = typed_features(rows, SCHEMA, SPEC, "new.csv")

    # Assert
    assert typed["age"].iloc[:2].isna().all() and typed["age"].iloc[2] == 1.0
    assert np.isnan(typed["age"].iloc[3])
    assert typed["charges"].tolist() == [1.0, 2.0, 0.0, 4.0]
    assert typed["plan"].isna().tolist() == [True, True, False, True]


def test_typed_parquet_columns_keep_their_numbers() -> None:
    # Prepare
    rows = pd.DataFrame({"age": [40, 50], "charges": [1.5, np.nan], "plan": [1, 2], "x": [0, 0]})

    # Execute
    typed = typed_features(rows, SCHEMA, SPEC, "new.parquet")

    # Assert
    assert typed["age"].tolist() == [40.0, 50.0]
    assert typed["plan"].tolist() == ["1", "2"]
    assert "x" not in typed


def test_every_missing_feature_column_is_named() -> None:
    # Execute, Assert
    with pytest.raises(UsageError, match=r"new.csv: 2 column\(s\) the run needs are missing: "
                       r"age \(feature\), plan \(feature\)"):  # fmt: skip
        typed_features(text_rows(charges=["1"]), SCHEMA, SPEC, "new.csv")


def test_text_in_a_numeric_column_is_refused_with_its_row() -> None:
    # Prepare
    rows = text_rows(age=["1", "2", "old"], charges=["1", "2", "3"], plan=["a", "b", "c"])
    rows.index = pd.RangeIndex(10, 13)  # the third chunk of five rows

    # Execute, Assert
    with pytest.raises(UsageError, match=re.escape("column 'age' is numeric in the run but has "
                       "1 non-numeric values, e.g. 'old' in data row 13")):  # fmt: skip
        typed_features(rows, SCHEMA, SPEC, "new.csv")


def test_the_target_is_read_by_the_runs_classes() -> None:
    # Prepare
    rows = text_rows(Churn=["Yes", "No", None, "?", " Yes"])

    # Execute
    target = typed_target(rows, SCHEMA, SPEC, "new.csv")

    # Assert: blank and marked targets are left out, their rows' labels kept
    assert target.index.tolist() == [0, 1, 4]
    assert target.tolist() == [1, 0, 1]


def test_a_class_written_as_another_number_is_that_class() -> None:
    # Prepare
    schema = Schema(("age",), (), "y", Task.MULTICLASS, ("1", "2", "10"))

    # Execute
    target = typed_target(text_rows(y=["1.0", "2", "10.00"]), schema, TableSpec("y"), "f")

    # Assert
    assert target.tolist() == ["1", "2", "10"]


@pytest.mark.parametrize(
    ("schema", "values", "message"),
    [
        (SCHEMA, ["Yes", "Maybe"], "target 'Churn' holds 'Maybe', not a class the run was "
                                   "trained on (classes: No, Yes)"),
        (Schema(("age",), (), "Churn", Task.REGRESSION), ["1.5", "lots"],
         "column 'Churn' is numeric in the run but has 1 non-numeric values, e.g. 'lots'"),
    ],
    ids=["unseen-class", "regression-text"],
)  # fmt: skip
def test_a_target_the_run_cannot_read_is_refused(
    schema: Schema, values: list[str], message: str
) -> None:
    # Execute, Assert
    with pytest.raises(UsageError, match=re.escape(message)):
        typed_target(text_rows(Churn=values), schema, SPEC, "new.csv")


# -- chunks -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunks_cover_the_file_numbered_across_chunks(tmp_path: Path, suffix: str) -> None:
    # Prepare
    frame = pd.DataFrame({"id": [f"00{i}" for i in range(10)], "x": np.arange(10.0)})
    path = tmp_path / f"rows{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)

    # Execute
    chunks = list(read_chunks(path, 4))

    # Assert: a CSV's cells stay text as written (leading zeros and all)
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert chunks[2].index.tolist() == [8, 9]
    assert pd.concat(chunks)["id"].tolist() == frame["id"].tolist()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\n", "rows.csv: the file has no rows"),
        ("a,a\n1,2\n", "column name 'a' appears twice in the header"),
        ("", "rows.csv: the file is empty"),
    ],
    ids=["header-only", "repeated-name", "empty"],
)
def test_an_unusable_file_is_refused_as_read_table_refuses_it(
    tmp_path: Path, content: str, message: str
) -> None:
    # Prepare
    path = tmp_path / "rows.csv"
    path.write_text(content, encoding="utf-8")

    # Execute, Assert
    with pytest.raises(UsageError, match=message):
        list(read_chunks(path, 10))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_writer_leaves_the_whole_file_or_nothing(tmp_path: Path, suffix: str) -> None:
    # Prepare
    out = tmp_path / f"out{suffix}"
    chunk = pd.DataFrame({"id": ["a", None], "p": [0.25, 0.5]})

    # Execute: one writer finishes, another fails mid-way
    with TableWriter(out) as writer:
        writer.write(chunk)
        writer.write(chunk.assign(id=["b", "c"]))
    with pytest.raises(RuntimeError), TableWriter(tmp_path / f"failed{suffix}") as writer:
        writer.write(chunk)
        raise RuntimeError("the third chunk failed")

    # Assert
    back = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert back["p"].tolist() == [0.25, 0.5, 0.25, 0.5]
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


@pytest.mark.parametrize(
    ("name", "force", "message"),
    [
        ("out.txt", False, "out.txt: the output must be a .csv or .parquet file"),
        ("taken.csv", False, "taken.csv already exists; pass --force to replace it"),
        ("no/such/out.csv", False, "no such directory for the output"),
    ],
)
def test_an_unusable_output_is_refused(
    tmp_path: Path, name: str, force: bool, message: str
) -> None:
    # Prepare
    (tmp_path / "taken.csv").write_text("x\n1\n", encoding="utf-8")

    # Execute, Assert
    with pytest.raises(UsageError, match=message):
        check_output(tmp_path / name, force)
    check_output(tmp_path / "taken.csv", force=True)  # replaced only when asked
