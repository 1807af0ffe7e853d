"""The New run page's logic: describing a table, guessing defaults, checking the form."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import fedapp_ui
from fedapp import registry
from fedapp.errors import UsageError
from fedapp.settings import RunConfig, describe
from fedapp_ui import run_form
from fedapp_ui.run_form import Column


def write_bank(path: Path, rows: int = 60) -> Path:
    """A churn table: an id, a row number, a surname, a country, an age, a binary target."""
    countries = ("France", "Spain", "Germany")
    lines = ["RowNumber,CustomerId,Surname,Geography,Age,HasCard,Exited"]
    for i in range(rows):
        exited = 1 if i % 4 == 0 else 0
        lines.append(
            f"{i + 1},{15600000 + i},Name{i % 7},{countries[i % 3]},{20 + i % 40},{i % 2},{exited}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def col(name: str, distinct: int, unique: bool = False) -> Column:
    return Column(name, distinct, (), unique)


# describe_columns


def test_describe_columns_counts_values_and_spots_unique_columns(tmp_path: Path) -> None:
    # Prepare
    csv = tmp_path / "small.csv"
    csv.write_text(
        "id,city,score,flag\n1,Paris,0.5,yes\n2,Lyon,,no\n3,Paris,0.7,yes\n4,,0.9,no\n",
        encoding="utf-8",
    )

    # Execute
    columns = run_form.describe_columns([csv])

    # Assert
    assert columns == [
        Column("id", 4, ("1", "2", "3", "4"), True, numeric=True, rows=4),
        Column("city", 2, ("Lyon", "Paris"), False, numeric=False, rows=4),  # blanks: no value
        Column("score", 3, ("0.5", "0.7", "0.9"), False, numeric=True, rows=4),
        Column("flag", 2, ("no", "yes"), False, numeric=False, rows=4),
    ]


def test_describe_columns_lists_values_only_for_few_valued_columns(tmp_path: Path) -> None:
    # Prepare
    csv = write_bank(tmp_path / "bank.csv", rows=60)

    # Execute
    columns = {c.name: c for c in run_form.describe_columns([csv])}

    # Assert
    assert columns["CustomerId"].distinct == 60
    assert columns["CustomerId"].values == ()  # more than 50 values: not listed
    assert columns["CustomerId"].unique_per_row
    assert columns["Age"].distinct == 40
    assert len(columns["Age"].values) == 40
    assert not columns["Age"].unique_per_row
    assert columns["Geography"].values == ("France", "Germany", "Spain")
    assert columns["Exited"].values == ("0", "1")


def test_describe_columns_describes_the_first_of_several_files(tmp_path: Path) -> None:
    # Prepare
    first = write_bank(tmp_path / "fr.csv", rows=10)
    second = write_bank(tmp_path / "de.csv", rows=30)

    # Execute
    columns = run_form.describe_columns([first, second])

    # Assert
    assert next(c for c in columns if c.name == "RowNumber").distinct == 10


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name,y\n" + b"\x81\x8d\x8f\x90\x9d" * 8 + b",1\n", "not UTF-8 text ("),
        (b"", "the file is empty"),
        (b"\n\n", "the file is empty"),
        (b"a,y\n", "the file has no rows"),
    ],
    ids=["no-text", "empty", "blank-lines", "header-only"],
)
def test_describe_columns_gives_the_clis_message_for_unreadable_uploads(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    # Prepare
    csv = tmp_path / "upload.csv"
    csv.write_bytes(content)

    # Execute
    with pytest.raises(UsageError) as caught:
        run_form.describe_columns([csv])

    # Assert
    assert str(caught.value).startswith(f"{csv}: {expected}")


def test_describe_columns_checks_every_file(tmp_path: Path) -> None:
    # Prepare
    good = write_bank(tmp_path / "good.csv")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"")

    # Execute
    with pytest.raises(UsageError) as caught:
        run_form.describe_columns([good, bad])

    # Assert
    assert str(caught.value) == f"{bad}: the file is empty"


# guessing defaults


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ([col("HasCard", 2), col("Exited", 2), col("IsActive", 2)], 1),
        ([col("churn", 2), col("x", 5)], 0),
        ([col("a", 2), col("TARGET", 2), col("b", 2)], 1),
        ([col("a", 2), col("b", 2), col("c", 9)], 1),  # no known name: last binary
        ([col("target", 3), col("b", 2), col("c", 9)], 1),  # a known name must be binary
        ([col("a", 3), col("b", 4)], 1),  # no binary column: the last one
    ],
)
def test_guess_target(columns: list[Column], expected: int) -> None:
    # Execute / Assert
    assert run_form.guess_target(columns) == expected


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ([col("Surname", 90), col("CustomerId", 100, unique=True)], "CustomerId"),
        ([col("RowNumber", 100, unique=True), col("x", 3)], "RowNumber"),
        # a row's number says nothing of whom the row is about: the customer's id wins
        ([col("RowNumber", 100, unique=True), col("CustomerId", 100, unique=True)], "CustomerId"),
        ([col("index", 100, unique=True), col("account_id", 100, unique=True)], "account_id"),
        ([col("x", 3), col("id", 100, unique=True)], "id"),
        ([col("customer_id", 100, unique=True)], "customer_id"),
        ([col("CustomerId", 90), col("x", 100, unique=True)], None),  # repeats: not an id
        ([col("Paid", 100, unique=True), col("Valid", 100, unique=True)], None),
        ([], None),
    ],
)
def test_guess_id_column(columns: list[Column], expected: str | None) -> None:
    # Execute / Assert
    assert run_form.guess_id_column(columns) == expected


def test_suggested_drops_are_other_identifiers_and_free_text(tmp_path: Path) -> None:
    # Prepare
    columns = run_form.describe_columns([write_bank(tmp_path / "bank.csv", rows=120)])

    # Execute
    suggested = run_form.suggested_drops(columns, target="Exited", id_column="CustomerId")

    # Assert: Surname has 7 distinct values in 120 rows here, so text alone is not enough
    assert suggested == {"RowNumber": "an identifier (unique per row)"}


def test_suggested_drops_name_free_text_columns() -> None:
    # Prepare
    columns = [
        Column("RowNumber", 900, (), True, numeric=True),
        Column("CustomerId", 900, (), True, numeric=True),
        Column("Surname", 400, (), False, numeric=False),
        Column("Geography", 3, ("France", "Germany", "Spain"), False, numeric=False),
        Column("Balance", 700, (), False, numeric=True),
        Column("Exited", 2, ("0", "1"), False, numeric=True),
    ]

    # Execute
    suggested = run_form.suggested_drops(columns, target="Exited", id_column="CustomerId")

    # Assert: numbers with many values are features; text with many is free text
    assert suggested == {
        "RowNumber": "an identifier (unique per row)",
        "Surname": "free text (400 distinct values)",
    }


def test_describe_columns_tells_numbers_from_text(tmp_path: Path) -> None:
    # Prepare: numbers stored as text with a blank (" ") are still numbers
    csv = tmp_path / "t.csv"
    csv.write_text("charges,name\n1.5,ann\n \n3,bob\n", encoding="utf-8")

    # Execute
    charges, name = run_form.describe_columns([csv])

    # Assert
    assert (charges.numeric, name.numeric) == (True, False)


def test_partition_columns_keeps_two_to_fifty_values_not_excluded() -> None:
    # Prepare
    columns = [
        col("Constant", 1),
        col("Geography", 3),
        col("Gender", 2),
        col("Exited", 2),
        col("Branch", 50),
        col("Age", 51),
        col("CustomerId", 100, unique=True),
    ]

    # Execute
    found = run_form.partition_columns(columns, exclude=["Exited", "CustomerId"])

    # Assert
    assert [c.name for c in found] == ["Geography", "Gender", "Branch"]


# build_config


def test_build_config_leaves_blank_settings_to_the_defaults() -> None:
    # Prepare
    form = {
        "rounds": 4,
        "clients": 3,
        "clients-per-round": None,
        "positive-label": "",
        "drop": [],
        "partition": None,
        "strategy": "fedprox",
        "strategy-params": {"proximal-mu": 0.5},
    }

    # Execute
    cfg = run_form.build_config(form)

    # Assert
    assert cfg == RunConfig(
        rounds=4, clients=3, strategy="fedprox", strategy_params={"proximal-mu": 0.5}
    )
    assert cfg.clients_per_round is None
    assert cfg.positive_label is None
    assert cfg.resolved_partition == "column:institution"


def test_build_config_of_a_file_run(tmp_path: Path) -> None:
    # Prepare
    form = {
        "data": str(tmp_path / "bank.csv"),
        "target": "Exited",
        "id-column": "CustomerId",
        "drop": ["RowNumber", "Surname"],
        "partition": "column:Geography",
        "clients": 3,
        "clients-per-round": 2,
        "strategy": "fedavg",
        "strategy-params": {},
    }

    # Execute
    cfg = run_form.build_config(form)

    # Assert
    assert cfg.data == str(tmp_path / "bank.csv")
    assert cfg.drop == ("RowNumber", "Surname")
    assert (cfg.clients, cfg.sample_size) == (3, 2)
    assert cfg.to_dict()["partition"] == "column:Geography"


def test_build_config_refuses_an_unknown_strategy_listing_the_installed_ones() -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        run_form.build_config({"strategy": "fedmagic"})

    # Assert
    installed = ", ".join(registry.installed())
    assert str(caught.value) == f"unknown strategy 'fedmagic'; installed: {installed}"
    assert {"fedavg", "fedprox", "weighted"} <= set(registry.installed())


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"proximal-mu": -1}, "--proximal-mu must be >= 0, got -1.0"),
        ({"proximal-mu": "lots"}, "--proximal-mu expects float, got 'lots'"),
        ({"mu": 0.1}, "strategy 'fedprox' has no parameter --mu (its parameters: --proximal-mu)"),
    ],
)
def test_build_config_refuses_bad_strategy_parameters(
    params: dict[str, object], expected: str
) -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        run_form.build_config({"strategy": "fedprox", "strategy-params": params})

    # Assert
    assert str(caught.value) == expected


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (
            {"clients": 3, "clients-per-round": 5},
            "clients-per-round (5) must not exceed clients (3)",
        ),
        ({"rounds": 0}, "rounds must be > 0 or auto, got 0"),
        ({"data": "x.csv"}, "--target is required with --data or --client-data"),
        ({"rounds": "ten"}, "form: 'rounds' must be an integer or auto, got 'ten'"),
        ({"colour": "red"}, "form: unknown setting 'colour'"),
    ],
)
def test_build_config_refuses_what_the_cli_refuses(form: dict[str, object], expected: str) -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        run_form.build_config(form)

    # Assert
    assert str(caught.value) == expected


def test_build_config_leaves_a_blank_strategy_parameter_to_its_default() -> None:
    # Prepare
    form = {"strategy": "fedprox", "strategy-params": {"proximal-mu": None}}

    # Execute
    cfg = run_form.build_config(form)

    # Assert: what the engine does with the settings before the run starts
    assert registry.get("fedprox").resolve(cfg.strategy_params) == {"proximal-mu": 0.1}


# check_data


def test_check_data_returns_the_notes_of_a_good_table(tmp_path: Path) -> None:
    # Prepare: enough rows that every client's test set can be scored
    csv = write_bank(tmp_path / "bank.csv", rows=200)
    cfg = RunConfig(
        data=str(csv),
        target="Exited",
        id_column="CustomerId",
        drop=("RowNumber",),
        partition="column:Geography",
        clients=3,
    )

    # Execute
    found = run_form.check_data(cfg)

    # Assert: what `fedapp inspect` shows of it
    assert found.notes == (f"{csv}: positive class of 'Exited' is '1' (inferred)",)
    assert found.warnings == ()
    assert found.headline == (
        "200 rows in 3 institutions; target 'Exited' (binary): 50 positive (25.0%)"
    )
    kinds = dict(zip(found.columns["column"], found.columns["kind"], strict=True))
    assert kinds == {
        "Age": "numeric", "HasCard": "numeric", "Surname": "categorical",
        "Geography": "categorical",
    }  # fmt: skip
    assert list(found.columns.columns) == ["column", "kind", "missing", "summary"]
    clients = found.clients.set_index("institution")
    assert list(clients.index) == ["Geography=France", "Geography=Germany", "Geography=Spain"]
    assert list(clients["rows"]) == [67, 66, 67]  # rows i % 3 == 0, 2, 1
    assert clients["train"].sum() + clients["test"].sum() == 200
    assert found.train_rows == tuple(clients["train"])
    assert clients.loc["Geography=France", "positive rate"] == pytest.approx(
        sum(1 for i in range(0, 200, 3) if i % 4 == 0) / 67
    )


def test_check_data_passes_on_what_the_data_layer_warns_of(tmp_path: Path) -> None:
    # Prepare: the third institution's rows are all negatives
    lines = ["Region,x,y"] + [
        f"{'abc'[i % 3]},{i},{int(i % 3 != 2 and i % 2 == 0)}" for i in range(300)
    ]
    csv = tmp_path / "t.csv"
    csv.write_text("\n".join(lines), encoding="utf-8")
    cfg = RunConfig(data=str(csv), target="y", partition="column:Region", clients=3)

    # Execute
    found = run_form.check_data(cfg)

    # Assert: shown before launch, as `fedapp inspect` and `simulate` say it
    assert any("Region=c" in w and "single class" in w for w in found.warnings), found.warnings


def test_check_data_refuses_a_privacy_budget_no_round_fits_in(tmp_path: Path) -> None:
    # Prepare: record-level DP; a client's ε of one round depends on its rows
    csv = write_bank(tmp_path / "bank.csv")
    cfg = RunConfig(
        data=str(csv), target="Exited", partition="column:Geography", clients=3,
        dp="record", noise_multiplier=0.5, target_epsilon=0.5,
    )  # fmt: skip

    # Execute
    with pytest.raises(UsageError) as caught:
        run_form.check_data(cfg)

    # Assert: the run's own check, before launch
    assert str(caught.value).startswith("target-epsilon must be >= ")
    assert str(caught.value).endswith("got 0.5")


def three_class_csv(folder: Path) -> Path:
    """A small table whose target ``y`` has three classes (a, b, c)."""
    csv = folder / "three.csv"
    rows = "\n".join(f"{i},{i * 0.5},{'abc'[i % 3]}" for i in range(30))
    csv.write_text(f"id,x,y\n{rows}\n", encoding="utf-8")
    return csv


def test_check_data_previews_a_target_with_three_classes_as_multiclass(tmp_path: Path) -> None:
    # Prepare
    csv = three_class_csv(tmp_path)
    cfg = RunConfig(data=str(csv), target="y", clients=2)

    # Execute
    found = run_form.check_data(cfg)

    # Assert: the task and each class's share, and the classes each institution holds
    assert found.headline.startswith("30 rows in 2 institutions; target 'y' (multiclass): ")
    assert all(f"{c} 33.3%" in found.headline for c in "abc"), found.headline
    assert list(found.clients.columns)[-1] == "classes"
    assert list(found.clients["classes"]) == [3, 3]
    assert "positive rate" not in found.clients.columns


def test_check_data_refuses_a_three_class_target_given_as_binary(tmp_path: Path) -> None:
    # Prepare
    csv = three_class_csv(tmp_path)
    cfg = RunConfig(data=str(csv), target="y", task="binary", clients=2)

    # Execute
    with pytest.raises(UsageError) as caught:
        run_form.check_data(cfg)

    # Assert
    assert str(caught.value) == (
        f"{csv}: --task binary needs two values, but 'y' has 3 (a, b, c); use --task multiclass"
    )


def test_check_data_gives_the_message_the_cli_gives(tmp_path: Path) -> None:
    # Prepare
    csv = three_class_csv(tmp_path)
    cfg = RunConfig(data=str(csv), target="y", task="binary", clients=2)
    command = [sys.executable, "-m", "fedapp", "simulate", "--data", str(csv), "--target", "y"]
    command += ["--task", "binary", "--clients", "2", "--run-dir", str(tmp_path / "run")]

    # Execute
    with pytest.raises(UsageError) as caught:
        run_form.check_data(cfg)
    cli = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)

    # Assert
    assert cli.returncode == 2
    assert cli.stderr.strip().splitlines()[-1] == f"error: {caught.value}"
    assert not (tmp_path / "run").exists()


def test_check_data_refuses_junk_in_a_numeric_column(tmp_path: Path) -> None:
    # Prepare
    csv = tmp_path / "junk.csv"
    values = [str(20 + i) for i in range(40)]
    values[7] = "n/a?"
    rows = "\n".join(f"{v},{i % 2}" for i, v in enumerate(values))
    csv.write_text(f"age,y\n{rows}\n", encoding="utf-8")
    cfg = RunConfig(data=str(csv), target="y", clients=2)

    # Execute
    with pytest.raises(UsageError) as caught:
        run_form.check_data(cfg)

    # Assert
    assert str(caught.value) == (
        f"{csv}: column 'age' is numeric but has 1 non-numeric values, e.g. 'n/a?'; "
        "fix them, pass --na-values VALUE if they mean missing, or --categorical age if "
        "it is a category"
    )


def test_check_data_rereads_a_file_that_changed(tmp_path: Path) -> None:
    # Prepare
    csv = write_bank(tmp_path / "bank.csv")
    cfg = RunConfig(data=str(csv), target="Exited", id_column="CustomerId", clients=2)
    run_form.check_data(cfg)
    csv.write_text("CustomerId,Exited\n1,1\n2,1\n", encoding="utf-8")

    # Execute
    with pytest.raises(UsageError) as caught:
        run_form.check_data(cfg)

    # Assert
    assert "target 'Exited' has a single value (1)" in str(caught.value)


# user_message


def test_user_message_names_uploads_as_the_user_named_them(tmp_path: Path) -> None:
    # Prepare
    stored = tmp_path / ".fedapp-ui" / "uploads" / "0123456789abcdef01234567.csv"
    other = tmp_path / ".fedapp-ui" / "uploads" / "fedcba9876543210fedcba98.csv"
    err = UsageError(f"{stored}: column 'age' is missing (present in {other})")

    # Execute
    text = run_form.user_message(err, {stored: "bank_fr.csv", other: "bank_de.csv"})

    # Assert
    assert text == "bank_fr.csv: column 'age' is missing (present in bank_de.csv)"


def test_user_message_without_uploads_is_the_error(tmp_path: Path) -> None:
    # Execute / Assert
    assert run_form.user_message(UsageError("rounds must be > 0, got 0"), {}) == (
        "rounds must be > 0, got 0"
    )


@pytest.mark.parametrize(
    ("kind", "strength", "spec"),
    [("sign-flip", 10.0, "sign-flip:10"), ("gaussian", 0.5, "gaussian:0.5"),
     ("label-flip", 10.0, "label-flip")],
)  # fmt: skip
def test_attack_spec_is_the_clis_attack_value(kind: str, strength: float, spec: str) -> None:
    # Execute
    result = run_form.attack_spec(kind, strength)

    # Assert
    assert result == spec
    assert RunConfig(clients=3, malicious=1, attack=result).attack == spec


def test_attack_spec_refuses_a_strength_the_cli_refuses() -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        run_form.attack_spec("gaussian", 0.0)

    # Assert
    assert str(caught.value) == "attack gaussian: SIGMA must be > 0, got 0"


# widget


def test_widget_of_a_number_comes_from_its_declaration() -> None:
    # Prepare
    entry = describe("eval_every")

    # Execute
    spec = run_form.widget("eval_every")

    # Assert: no min_value, which would make the browser keep the last valid
    # value behind a red box; what is typed reaches the check (setting_error)
    assert (spec.setting, spec.kind, spec.label) == ("eval-every", "number_input", entry.label)
    assert spec.options == {
        "key": "eval_every", "help": entry.help, "value": 1, "step": 1, "placeholder": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "value", "form", "expected"),
    [
        ("rounds", 0, {}, "rounds must be > 0 or auto, got 0"),
        ("rounds", 3, {}, None),
        ("learning-rate", 0.0, {}, "learning-rate must be > 0, got 0.0"),
        ("delta", 1.0, {}, "delta must be in (0, 1), got 1.0"),
        ("target-epsilon", None, {}, None),  # blank: no budget
        ("target-epsilon", -1.0, {}, "target-epsilon must be > 0, got -1.0"),
        (
            "malicious", -1, {"clients": 8},
            "malicious must be in [0, 8] (at most the number of clients), got -1",
        ),
        ("demo-rows", None, {}, "form: 'demo-rows' must be an integer, got None"),
    ],
)  # fmt: skip
def test_setting_error_checks_one_value_against_its_declaration(
    setting: str, value: object, form: dict[str, object], expected: str | None
) -> None:
    # Execute / Assert
    assert run_form.setting_error(setting, value, form) == expected


def test_param_error_checks_a_strategy_parameter_as_the_cli_does() -> None:
    # Prepare
    fedprox = registry.get("fedprox")

    # Execute / Assert
    assert run_form.param_error(fedprox, "proximal-mu", -1.0) == (
        "--proximal-mu must be >= 0, got -1.0"
    )
    assert run_form.param_error(fedprox, "proximal-mu", 0.5) is None


def test_widget_of_an_optional_number_starts_blank_meaning_unset() -> None:
    # Execute
    spec = run_form.widget("target_epsilon")

    # Assert
    assert spec.options["value"] is None
    assert spec.options["placeholder"] == describe("target_epsilon").unset == "no budget"
    assert "min_value" not in spec.options  # > 0 of a float: the config's check says it


def test_widget_of_a_choice_offers_the_declared_choices() -> None:
    # Execute
    spec = run_form.widget("dp")

    # Assert
    assert spec.kind == "radio"
    assert (spec.options["options"], spec.options["index"]) == (("none", "central", "record"), 0)


def test_widget_of_an_optional_choice_starts_unset_and_names_it() -> None:
    # Execute
    spec = run_form.widget("task")

    # Assert: unset (inferred) first, then the declared choices
    assert (spec.setting, spec.kind) == ("task", "radio")
    assert (spec.options["options"], spec.options["index"]) == (
        (None, "binary", "multiclass", "regression"), 0,
    )  # fmt: skip
    name = spec.options["format_func"]
    assert [name(c) for c in spec.options["options"]] == [
        describe("task").unset, "binary", "multiclass", "regression",
    ]  # fmt: skip
    assert run_form.setting_error("task", None, {}) is None


def test_widget_of_a_flag_is_a_toggle_with_its_default() -> None:
    # Execute
    spec = run_form.widget("baseline")

    # Assert
    assert (spec.kind, spec.options["value"]) == ("toggle", True)


BROKEN_PLUGIN = """
    raise ImportError("needs the cuda extra")
"""


def test_new_run_page_warns_of_a_broken_plugin_and_offers_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, install_plugin
) -> None:
    # Prepare
    monkeypatch.setenv("FEDAPP_UI_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("FEDAPP_UI_DATA_DIR", raising=False)
    install_plugin("needscuda", "fedapp_needscuda_ui", BROKEN_PLUGIN)
    page = Path(fedapp_ui.__file__).with_name("app.py")

    # Execute
    at = AppTest.from_file(str(page), default_timeout=30).run()

    # Assert
    assert not at.exception
    [warning] = at.warning
    assert "needscuda" in warning.value and "needs the cuda extra" in warning.value
    assert "fedavg" in at.selectbox(key="strategy").options


# rerun_of (Run again with these settings)


def test_rerun_of_a_demo_run_fills_every_widget_from_config_json() -> None:
    # Prepare: a config.json as `fedapp simulate` writes it
    cfg = RunConfig(
        clients=4, rounds=7, demo_rows=3000, seed=9, strategy="fedprox",
        strategy_params={"proximal-mu": 0.3}, dp="central", noise_multiplier=1.5,
        clip_norm=0.5, target_epsilon=9.0, malicious=1, attack="scale:4", learning_rate=0.01,
        baseline=False,
    )  # fmt: skip
    config = {**cfg.to_dict(), "versions": {"fedapp": "0.1.0"}, "client-sources": ["x"]}

    # Execute
    rerun = run_form.rerun_of("r1", config)

    # Assert
    assert rerun.files == ()
    assert rerun.widgets == {
        "source": "Built-in demo", "demo_rows": 3000, "partition_kind": "column",
        "clients": 4, "clients_per_round": None, "rounds": 7, "eval_every": 1,
        "local_epochs": 1, "batch_size": 32, "learning_rate": 0.01, "seed": 9,
        "strategy": "fedprox", "param.fedprox.proximal-mu": 0.3, "model": "mlp",
        "model.mlp.hidden-units": (64, 32), "model.mlp.dropout": 0.0, "dp": "central",
        "noise_multiplier": 1.5, "clip_norm": 0.5, "target_epsilon": 9.0, "delta": 1e-5,
        "dp_clipping": "server", "secure_aggregation": False, "malicious": 1,
        "attack_kind": "scale", "attack_strength": 4.0, "baseline": False,
        "max_categories": 50, "na_values": ["?", "NA", "N/A", "null", "-", ""],
        "task": None, "max_rounds": None, "patience": 10, "min_delta": 0.0,
        "monitor": "federated_loss", "demo_target": "churned",
    }  # fmt: skip
    assert rerun.carried == {}


def test_rerun_of_a_demo_run_keeps_its_target_and_task() -> None:
    # Prepare: config.json records the task the run resolved
    cfg = RunConfig(target="next_year_spend", task="regression")

    # Execute
    rerun = run_form.rerun_of("r1", cfg.to_dict())

    # Assert
    assert (rerun.widgets["demo_target"], rerun.widgets["task"]) == (
        "next_year_spend", "regression",
    )  # fmt: skip
    assert rerun.carried == {}


def test_rerun_of_a_file_run_keeps_its_files_columns_split_and_other_settings() -> None:
    # Prepare
    cfg = RunConfig(
        data="/data/bank.csv", target="Exited", id_column="CustomerId", drop=("Surname",),
        categorical=("HasCrCard",), partition="dirichlet:0.3", clients=5, test_fraction=0.3,
        min_category_count=3, data_sha256=("ab" * 32,),
    )  # fmt: skip

    # Execute
    rerun = run_form.rerun_of("r2", cfg.to_dict())

    # Assert
    assert rerun.files == ("/data/bank.csv",)
    assert rerun.hashes == ("ab" * 32,)  # goes with the files, not among the kept settings
    assert {k: rerun.widgets[k] for k in (
        "source", "target", "positive_label", "id_column", "drop", "categorical",
        "partition_kind", "alpha",
    )} == {
        "source": run_form.RERUN_SOURCE, "target": "Exited",
        "positive_label": describe("positive_label").unset, "id_column": "CustomerId",
        "drop": ["Surname"], "categorical": ["HasCrCard"], "partition_kind": "dirichlet",
        "alpha": 0.3,
    }  # fmt: skip
    assert rerun.carried == {"test-fraction": 0.3, "min-category-count": 3}


def test_rerun_of_one_file_per_institution_and_a_column_split() -> None:
    # Prepare
    files = RunConfig(client_data=("/d/a.csv", "/d/b.csv"), clients=2, target="y").to_dict()
    column = RunConfig(data="/d/t.csv", target="y", partition="column:Region").to_dict()

    # Execute
    by_files = run_form.rerun_of("r3", files)
    by_column = run_form.rerun_of("r4", column)

    # Assert
    assert by_files.files == ("/d/a.csv", "/d/b.csv")
    assert "partition_kind" not in by_files.widgets
    assert (by_column.widgets["partition_kind"], by_column.widgets["partition_column"]) == (
        "column", "Region",
    )  # fmt: skip


def test_a_list_setting_is_typed_as_comma_separated_values() -> None:
    # Execute
    spec = run_form.widget("na_values")

    # Assert: the form types ?, N/A and -999 as one line
    assert (spec.kind, spec.many) == ("text_input", True)
    assert spec.options["value"] == "?, NA, N/A, null, -"
    assert run_form.split_list(" ?, N/A,, -999 ") == ["?", "N/A", "-999"]
