"""Institutions' own tables: loading, typing, and one clear line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

from tables import CHURN, customers, fails, runner, write_csv

from fedapp import data
from fedapp.cli import app
from fedapp.data.sources import TableSpec, prepare, read_table
from fedapp.settings import RunConfig

# -- bad input: exit 2, one line naming the file and the column -------------


def test_missing_file(tmp_path: Path) -> None:
    fails(tmp_path, ["--data", str(tmp_path / "nope.csv"), "--target", "Churn"],
          "nope.csv: no such file")  # fmt: skip


def test_unreadable_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,Churn\nJos\xe9,Yes\nAna,No\n".encode("latin-1"))
    fails(tmp_path, ["--data", str(path), "--target", "Churn", "--encoding", "utf8"],
          "latin1.csv: not UTF-8 text")  # fmt: skip


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    fails(tmp_path, ["--data", str(path), "--target", "Churn"], "empty.csv: the file is empty")


def test_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("tenure,Churn\n")
    fails(tmp_path, ["--data", str(path), "--target", "Churn"], "header.csv: the file has no rows")


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "table.xlsx"
    path.write_text("x")
    fails(tmp_path, ["--data", str(path), "--target", "Churn"], "unknown format '.xlsx'")


def test_target_column_absent(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "c.csv", customers())
    fails(tmp_path, ["--data", path, "--target", "Exited"],
          "c.csv: target column 'Exited' is not in the file")  # fmt: skip


def test_target_required_with_a_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "c.csv", customers())
    fails(tmp_path, ["--data", path], "--target is required")


def test_a_binary_task_of_a_target_with_three_classes(tmp_path: Path) -> None:
    frame = customers()
    frame.loc[:2, "Churn"] = ["Yes", "No", "Maybe"]
    path = write_csv(tmp_path, "c.csv", frame)
    fails(tmp_path, ["--data", path, *CHURN, "--task", "binary"],
          "--task binary needs two values, but 'Churn' has 3 (Maybe, No, Yes); "
          "use --task multiclass")  # fmt: skip


def test_target_with_an_unknown_positive_class(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "c.csv", customers(Churn=["left", "stayed"] * 30))
    fails(tmp_path, ["--data", path, "--target", "Churn"],
          "cannot tell the positive class of 'Churn' (values: left, stayed); "
          "pass --positive-label")  # fmt: skip
    fails(tmp_path, ["--data", path, "--target", "Churn", "--positive-label", "gone"],
          "--positive-label 'gone' is not a value of 'Churn'")  # fmt: skip


def test_no_rows_after_dropping_blank_targets(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "c.csv", customers(Churn=""))
    fails(tmp_path, ["--data", path, "--target", "Churn"],
          "c.csv: no rows left after dropping blank targets")  # fmt: skip


def test_junk_in_a_numeric_column(tmp_path: Path) -> None:
    frame = customers(rows=100)
    frame.loc[7, "charges"] = "n/a?"
    path = write_csv(tmp_path, "c.csv", frame)
    fails(tmp_path, ["--data", path, *CHURN],
          "column 'charges' is numeric but has 1 non-numeric values, e.g. 'n/a?'")  # fmt: skip


def test_dropped_or_id_column_absent(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "c.csv", customers())
    fails(tmp_path, ["--data", path, "--target", "Churn", "--drop", "Surname"],
          "c.csv: column 'Surname' is not in the file")  # fmt: skip
    fails(tmp_path, ["--data", path, "--target", "Churn", "--id-column", "CustomerId"],
          "c.csv: column 'CustomerId' is not in the file")  # fmt: skip


def test_no_feature_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "c.csv", customers()[["customerID", "Churn"]])
    fails(tmp_path, ["--data", path, *CHURN],
          "c.csv: no feature columns left besides the target")  # fmt: skip


def test_column_missing_at_one_client(tmp_path: Path) -> None:
    a = write_csv(tmp_path, "bank_a.csv", customers(seed=1))
    b = write_csv(tmp_path, "bank_b.csv", customers(seed=2).drop(columns=["contract"]))
    fails(tmp_path, ["--client-data", a, "--client-data", b, *CHURN],
          "bank_b.csv: column 'contract' is missing (present in")  # fmt: skip


def test_column_typed_differently(tmp_path: Path) -> None:
    a = write_csv(tmp_path, "bank_a.csv", customers(seed=1))
    b = write_csv(tmp_path, "bank_b.csv", customers(seed=2, tenure=["short", "long"] * 30))
    fails(tmp_path, ["--client-data", a, "--client-data", b, *CHURN],
          "bank_b.csv: column 'tenure' is categorical but numeric in")  # fmt: skip


def test_empty_client_file(tmp_path: Path) -> None:
    a = write_csv(tmp_path, "bank_a.csv", customers(seed=1))
    b = tmp_path / "bank_b.csv"
    b.write_text("")
    fails(tmp_path, ["--client-data", a, "--client-data", str(b), "--target", "Churn"],
          "bank_b.csv: the file is empty")  # fmt: skip


def test_client_file_too_small_to_hold_out(tmp_path: Path) -> None:
    a = write_csv(tmp_path, "bank_a.csv", customers(seed=1))
    b = write_csv(tmp_path, "bank_b.csv", customers(rows=2, seed=2))
    fails(tmp_path, ["--client-data", a, "--client-data", b, *CHURN],
          "bank_b.csv: 2 rows, too few to hold out a test split")  # fmt: skip


def test_clients_must_match_the_files(tmp_path: Path) -> None:
    a = write_csv(tmp_path, "bank_a.csv", customers(seed=1))
    fails(tmp_path, ["--client-data", a, "--clients", "3", "--target", "Churn"],
          "clients (3) must equal the number of --client-data files (1)")  # fmt: skip


def test_partition_column_absent(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "c.csv", customers())
    args = ["--data", path, *CHURN, "--partition", "column:region", "--clients", "2"]
    fails(tmp_path, args, "partition column 'region' is not in the data")


# -- good input --------------------------------------------------------------


def test_text_numbers_with_blanks_become_missing_and_are_reported(tmp_path: Path) -> None:
    frame = customers()
    frame.loc[[3, 4], "charges"] = " "
    path = write_csv(tmp_path, "c.csv", frame)
    fed = data.load_federation(RunConfig(data=path, target="Churn", id_column="customerID",
                                         clients=1))  # fmt: skip
    table = prepare(read_table(Path(path)), TableSpec("Churn", id_column="customerID"), "c.csv")
    assert "charges" in table.schema.numeric and table.frame["charges"].isna().sum() == 2
    assert f"{path}: column 'charges': 2 values read as missing (2 blank)" in fed.notes
    assert "c.csv: positive class of 'Churn' is 'Yes' (inferred)" in table.notes
    assert set(table.frame["Churn"]) == {0, 1}
    assert "customerID" not in table.frame.columns  # an ID is never a feature


def test_categorical_override_and_positive_label(tmp_path: Path) -> None:
    frame = customers(Churn=["left", "stayed"] * 30)
    spec = TableSpec("Churn", positive_label="left", drop=("customerID",),
                     categorical=("tenure",))  # fmt: skip
    table = prepare(frame, spec, "frame")
    assert "tenure" in table.schema.categorical
    assert table.frame["Churn"].tolist()[:2] == [1, 0]


def test_parquet_and_csv_clients_share_one_schema(tmp_path: Path) -> None:
    a = write_csv(tmp_path, "bank_fr.csv", customers(seed=1))
    b = tmp_path / "bank_de.parquet"
    customers(seed=2).to_parquet(b)
    cfg = RunConfig(client_data=(a, str(b)), clients=2, target="Churn", id_column="customerID")
    fed = data.federation(cfg)
    assert [c.source for c in fed.clients] == [a, str(b)]
    assert fed.schema.numeric == ("tenure", "charges")
    assert sum(len(c.train) + len(c.test) for c in fed.clients) == 120


def test_inspect_style_split_of_one_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "c.csv", customers(rows=200))
    cfg = RunConfig(data=path, target="Churn", id_column="customerID", clients=4,
                    partition="dirichlet:0.5")  # fmt: skip
    fed = data.federation(cfg)
    assert len(fed.clients) == 4
    assert sum(len(c.train) + len(c.test) for c in fed.clients) == 200


def test_statistics_never_carry_ids(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "c.csv", customers(rows=200))
    cfg = RunConfig(data=path, target="Churn", id_column="customerID", clients=2)
    client = data.client_share(cfg, 0)
    stats = data.local_statistics(client.train, client.schema, cfg.min_category_count)
    assert "C0-" not in json.dumps(stats)


def test_a_leaking_feature_and_an_identifier_are_flagged(tmp_path: Path) -> None:
    frame = customers(rows=300)
    frame["refund_issued"] = (frame["Churn"] == "Yes").astype(int)  # recorded after churn
    path = write_csv(tmp_path, "c.csv", frame)
    # An identifier kept as a category on purpose (else it is refused: too many values)
    args = ["--data", path, "--target", "Churn", "--clients", "2", "--categorical", "customerID"]
    result = runner.invoke(app, ["inspect", *args])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert any("column 'refund_issued' alone predicts 'Churn' with AUC 1.000" in w
               for w in warnings)  # fmt: skip
    assert any("column 'customerID'" in w for w in warnings)
    assert not any("'tenure'" in w or "'charges'" in w for w in warnings)


def test_demo_data_raises_no_leak_warning() -> None:
    assert data.federation(RunConfig()).warnings == ()
