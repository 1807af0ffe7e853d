"""Splits that run but cannot mean much: said before the run, naming the clients."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from tables import CHURN, customers, runner, write_csv

from fedapp import data
from fedapp.cli import app
from fedapp.data.checks import MIN_TEST_ROWS, MIN_TRAIN_ROWS
from fedapp.settings import RunConfig


def _warnings(args: list[str]) -> list[str]:
    """``fedapp inspect ARGS``'s warnings, each on one line; the command must succeed."""
    result = runner.invoke(app, ["inspect", *args], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


def test_a_single_class_client_file_is_accepted_with_a_warning(tmp_path: Path) -> None:
    # Prepare
    a = write_csv(tmp_path, "bank_a.csv", customers(seed=1))
    b = write_csv(tmp_path, "bank_b.csv", customers(seed=2, Churn="No"))

    # Execute
    warnings = _warnings(["--client-data", a, "--client-data", b, *CHURN])

    # Assert
    assert (
        "warning: 1 of 2 clients hold a single class of 'Churn': #1 bank_b.csv (no "
        "positives); each trains on that class alone and its test AUC is undefined"
    ) in warnings


def test_a_single_class_client_by_partition_gets_the_same_warning(tmp_path: Path) -> None:
    # Prepare: every customer of the north region stayed
    frame = customers(rows=120, region=["north", "south"] * 60)
    frame.loc[frame["region"] == "north", "Churn"] = "No"
    path = write_csv(tmp_path, "c.csv", frame)

    # Execute
    warnings = _warnings(["--data", path, *CHURN, "--partition", "column:region", "--clients", "2"])

    # Assert
    assert (
        "warning: 1 of 2 clients hold a single class of 'Churn': #0 region=north (no "
        "positives); each trains on that class alone and its test AUC is undefined"
    ) in warnings


def test_a_file_of_positives_only_is_read_as_positive(tmp_path: Path) -> None:
    # Prepare
    a = write_csv(tmp_path, "bank_a.csv", customers(seed=1))
    b = write_csv(tmp_path, "bank_b.csv", customers(seed=2, Churn="Yes"))
    cfg = RunConfig(client_data=(a, b), clients=2, target="Churn", id_column="customerID")

    # Execute
    fed = data.load_federation(cfg)

    # Assert
    rows = pd.concat([fed.clients[1].train, fed.clients[1].test])
    assert set(rows["Churn"]) == {1}
    assert f"{b}: every row of 'Churn' is 'Yes', the positive class (inferred)" in fed.notes


def test_a_large_test_fraction_is_warned_about(tmp_path: Path) -> None:
    # Prepare
    path = write_csv(tmp_path, "c.csv", customers(rows=300))

    # Execute
    warnings = _warnings(["--data", path, *CHURN, "--test-fraction", "0.99", "--clients", "2"])

    # Assert: 300 rows, 3 or 4 of them left to train on
    fed = data.load_federation(
        RunConfig(data=path, target="Churn", id_column="customerID", test_fraction=0.99, clients=2)
    )
    trained = sum(len(c.train) for c in fed.clients)
    assert (
        f"warning: test-fraction 0.99 holds out more rows than it trains on: {trained} "
        "training rows in all"
    ) in warnings
    assert any(
        w.startswith(f"warning: 2 of 2 clients train on fewer than {MIN_TRAIN_ROWS} rows: #0 (")
        for w in warnings
    )


def test_tiny_clients_test_sets_are_named(tmp_path: Path) -> None:
    # Prepare: 40 rows over 12 clients: 3 or 4 rows each, 1 of them held out
    path = write_csv(tmp_path, "c.csv", customers(rows=40))
    cfg = RunConfig(data=path, target="Churn", id_column="customerID", clients=12)

    # Execute
    warnings = _warnings(["--data", path, *CHURN, "--clients", "12"])

    # Assert: every client is named whose test rows are too few or of one class
    tests = [c.test["Churn"] for c in data.load_federation(cfg).clients]
    unscorable = [i for i, t in enumerate(tests) if len(t) < MIN_TEST_ROWS or t.nunique() < 2]
    [line] = [w for w in warnings if "test sets too small or single-class" in w]
    assert line.startswith(
        f"warning: {len(unscorable)} of 12 clients have test sets too small or single-class "
        f"to score (fewer than {MIN_TEST_ROWS} rows, or one class: AUC undefined): "
    )
    named = re.findall(r"#(\d+) \((\d+) rows?(, one class)?\)", line)
    assert [int(pid) for pid, _, _ in named] == unscorable == list(range(12))
    assert [(int(n), bool(one)) for _, n, one in named] == [
        (len(t), t.nunique() < 2) for t in tests
    ]


def test_one_small_client_file_is_named_and_the_others_are_not(tmp_path: Path) -> None:
    # Prepare: bank_b's 6 rows hold out 1, a negative
    small = customers(rows=6, seed=2)
    small["Churn"] = ["Yes", "No", "No", "No", "No", "No"]
    a = write_csv(tmp_path, "bank_a.csv", customers(rows=200, seed=1))
    b = write_csv(tmp_path, "bank_b.csv", small)

    # Execute
    warnings = _warnings(["--client-data", a, "--client-data", b, *CHURN])

    # Assert
    [line] = [w for w in warnings if "test sets" in w]
    assert line.startswith("warning: 1 of 2 clients have test sets too small")
    assert line.endswith(": #1 bank_b.csv (1 row, one class); use fewer clients or more rows")


def test_a_sound_split_has_no_split_warning() -> None:
    # Execute
    fed = data.load_federation(RunConfig(clients=3, demo_rows=900, seed=7))

    # Assert
    assert fed.warnings == ()
    assert min(len(c.test) for c in fed.clients) >= MIN_TEST_ROWS
    assert all(np.unique(c.test["churned"]).size == 2 for c in fed.clients)
