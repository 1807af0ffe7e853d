"""Values no model can use, and how a column's kind is decided and said."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tables import CHURN, customers, fails, runner, write_csv

from fedapp.cli import app
from fedapp.data.sources import Table, TableSpec, prepare
from fedapp.errors import UsageError


def _table(frame: pd.DataFrame, **spec: Any) -> Table:
    return prepare(frame, TableSpec("Churn", id_column="customerID", **spec), "c.csv")


# -- values no mean or variance survives: exit 2, nothing written -------------


@pytest.mark.parametrize("command", ["inspect", "simulate"])
@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [("tenure", np.inf, "inf"), ("tenure", -np.inf, "-inf"), ("charges", "Infinity", "inf")],
    ids=["inf", "minus-inf", "text-infinity"],
)
def test_an_infinite_value_names_the_file_column_and_row(
    tmp_path: Path, command: str, column: str, value: object, shown: str
) -> None:
    # Prepare
    frame = customers(rows=80)
    frame[column] = frame[column].astype(object)
    frame.loc[5, column] = value
    path = write_csv(tmp_path, "c.csv", frame)

    # Execute, Assert
    fails(tmp_path, ["--data", path, *CHURN],
          f"c.csv: column '{column}' has an infinite value ({shown}) in data row 6; "
          "replace it with a number or leave the cell blank", command)  # fmt: skip


@pytest.mark.parametrize("command", ["inspect", "simulate"])
def test_a_value_whose_mean_overflows_is_refused_with_the_largest_allowed(
    tmp_path: Path, command: str
) -> None:
    # Prepare: two values of 1e308 already sum to infinity
    frame = customers(rows=80)
    frame["tenure"] = frame["tenure"].astype(float)
    frame.loc[[3, 9], "tenure"] = 1e308
    path = write_csv(tmp_path, "c.csv", frame)

    # Execute, Assert
    fails(tmp_path, ["--data", path, *CHURN],
          "c.csv: column 'tenure' has a value of magnitude 1e+308 in data row 4, beyond "
          "1e+100, the largest whose mean and variance stay finite numbers; rescale the "
          "column or leave it out with --drop tenure", command)  # fmt: skip


def test_large_but_usable_values_are_kept() -> None:
    # Prepare
    frame = customers(rows=40)
    frame["tenure"] = frame["tenure"] * 1e98

    # Execute
    table = _table(frame)

    # Assert
    assert table.frame["tenure"].abs().max() > 1e99  # up to 71 · 1e98


# -- missing-value markers ---------------------------------------------------


def test_a_missing_value_marker_in_a_numeric_column_is_named_as_one(tmp_path: Path) -> None:
    # Prepare
    frame = customers(rows=100)
    frame.loc[[4, 8], "charges"] = "??"
    path = write_csv(tmp_path, "c.csv", frame)

    # Execute
    line = fails(tmp_path, ["--data", path, *CHURN],
                 "c.csv: column 'charges' is numeric but has 2 non-numeric values, all '??', "
                 "which looks like a missing-value marker: read it as missing with "
                 "--na-values '??', repeating --na-values for each marker to keep (now ?, NA, "
                 "N/A, null, -, '')")  # fmt: skip

    # Assert: '?' is no category
    assert "--categorical" not in line


def test_missing_value_markers_are_read_as_blanks_and_said() -> None:
    # Prepare
    frame = customers(rows=100)
    frame.loc[[4, 8], "charges"] = "?"
    frame["tenure"] = frame["tenure"].astype(float)
    frame.loc[[1, 2, 3], "tenure"] = -999.0
    frame.loc[7, "contract"] = "?"

    # Execute
    table = _table(frame, missing_values=("?", "-999"))

    # Assert
    assert "charges" in table.schema.numeric and "tenure" in table.schema.numeric
    assert table.frame["charges"].isna().sum() == 2
    assert table.frame["tenure"].isna().sum() == 3
    assert table.frame["contract"].isna().sum() == 1
    assert "c.csv: column 'charges': 2 values read as missing (2 '?')" in table.notes
    assert "c.csv: column 'tenure': 3 values read as missing (3 '-999')" in table.notes


def test_junk_that_is_no_marker_still_suggests_every_way_out(tmp_path: Path) -> None:
    # Prepare
    frame = customers(rows=100)
    frame.loc[7, "charges"] = "12,50"
    path = write_csv(tmp_path, "c.csv", frame)

    # Execute, Assert
    fails(tmp_path, ["--data", path, *CHURN],
          "c.csv: column 'charges' is numeric but has 1 non-numeric values, e.g. '12,50'; "
          "fix them, pass --na-values VALUE if they mean missing, or --categorical "
          "charges if it is a category")  # fmt: skip


# -- a column's kind: said when it changes, refused when it cannot be one-hot --


def test_a_mostly_numeric_column_read_as_categorical_is_said(tmp_path: Path) -> None:
    # Prepare: a third of a number column is text, few distinct values
    frame = customers(rows=90, charges=["10", "20", "call us"] * 30)
    path = write_csv(tmp_path, "c.csv", frame)

    # Execute
    result = runner.invoke(app, ["inspect", "--data", path, *CHURN])

    # Assert
    assert result.exit_code == 0, result.output
    assert (
        f"warning: {path}: column 'charges' is read as categorical: 30 of its 90 values "
        "(33%) are not numbers, e.g. 'call us'; fix them if it is numeric, or pass "
        "--categorical charges to say it is a category"
    ) in " ".join(result.stderr.split())


def test_a_column_named_categorical_is_not_warned_about() -> None:
    # Execute
    table = _table(customers(rows=90, charges=["10", "20", "call us"] * 30),
                   categorical=("charges",))  # fmt: skip

    # Assert
    assert "charges" in table.schema.categorical and table.warnings == ()


def test_a_mistyped_number_column_with_many_values_is_not_one_hot_encoded(tmp_path: Path) -> None:
    # Prepare: 20% of the charges are text, so it is no number column
    frame = customers(rows=200)
    frame.loc[frame.index % 5 == 0, "charges"] = "call us"
    path = write_csv(tmp_path, "c.csv", frame)

    # Execute, Assert
    fails(tmp_path, ["--data", path, *CHURN],
          f"c.csv: column 'charges' has {frame['charges'].nunique()} distinct values, more "
          "than max-categories (50) "
          "for a categorical column; it is read as categorical because 40 of its 200 values "
          "(20%) are not numbers, e.g. 'call us': fix those if it is numeric, leave it out "
          "with --drop charges, or pass --categorical charges if it is a category")  # fmt: skip


def test_an_identifier_of_a_small_table_beyond_max_categories_is_refused(tmp_path: Path) -> None:
    # Prepare: too few rows to tell an identifier from a category (see test_messy_files)
    path = write_csv(tmp_path, "c.csv", customers(rows=15))

    # Execute, Assert
    fails(tmp_path, ["--data", path, "--target", "Churn", "--max-categories", "10"],
          "c.csv: column 'customerID' has 15 distinct values, more than max-categories "
          "(10) for a categorical column; one per row: an identifier? Pass --id-column "
          "customerID, leave it out with --drop customerID, or pass --categorical "
          "customerID if it is a category")  # fmt: skip


def test_categorical_and_max_categories_let_a_many_valued_column_in() -> None:
    # Prepare: 199 values in 200 rows (one repeated: no identifier)
    frame = customers(rows=200)
    plans = frame["customerID"].where(frame.index != 1, frame["customerID"][0])

    # Execute
    named = _table(frame.assign(plan=plans), categorical=("plan",))
    raised = _table(frame.assign(plan=plans), max_categories=199)

    # Assert
    assert "plan" in named.schema.categorical and "plan" in raised.schema.categorical
    with pytest.raises(UsageError, match="more than max-categories \\(198\\)"):
        _table(frame.assign(plan=plans), max_categories=198)
