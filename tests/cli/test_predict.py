"""``fedapp predict``: bad input stops with one line and exit code 2, writing nothing; real
runs of each task score their own global test rows as their summary says (slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from scoring_runs import make_scorable_run, raw_rows, task_config
from typer.testing import CliRunner

from fedapp import data
from fedapp.cli import app
from fedapp.data.synthetic import TARGETS, make_churn_table
from fedapp.learning.scoring import DEFAULT_CHUNK_ROWS
from fedapp.runs import RunView
from fedapp.settings import RunConfig

runner = CliRunner()


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished binary run with an id column, and its global test rows as a file."""
    root = tmp_path_factory.mktemp("predict")
    cfg = task_config("binary", root)
    run = make_scorable_run(root / "runs", cfg, "run")
    rows = root / "rows.csv"
    raw_rows(data.global_test(cfg), cfg).to_csv(rows, index=False)
    return run.path, rows


def refused(args: list[str], message: str, out: Path | None = None) -> None:
    """``fedapp predict ARGS`` exits 2 with one line holding ``message``, leaving no output."""
    result = runner.invoke(app, ["predict", *args])
    assert result.exit_code == 2, result.output
    # Progress lines of the chunks scored before the bad one may come first.
    said = [line for line in result.stderr.splitlines() if not line.startswith("scored ")]
    assert len(said) == 1 and message in said[0], result.stderr
    if out is not None:
        assert not out.exists()
        assert not list(out.parent.glob(f".{out.name}.*")), "a temporary file was left"


def test_the_cli_default_chunk_is_the_scorers() -> None:
    # Execute
    help_text = runner.invoke(app, ["predict", "--help"], terminal_width=200).stdout

    # Assert
    assert f"[default: {DEFAULT_CHUNK_ROWS}]" in help_text


def test_scores_a_file_and_says_so_as_json(binary_run: tuple[Path, Path], tmp_path: Path) -> None:
    # Prepare
    run, rows = binary_run
    out = tmp_path / "p.csv"

    # Execute
    result = runner.invoke(
        app, ["predict", str(run), "--data", str(rows), "--out", str(out), "--json",
              "--evaluate", "--chunk-rows", "10"],
    )  # fmt: skip

    # Assert
    assert result.exit_code == 0, result.output
    said = json.loads(result.stdout)
    total = len(pd.read_csv(rows))
    assert said["rows"] == said["evaluated"] == total and said["out"] == str(out)
    assert said["columns"] == ["customerID", "Churn_probability", "Churn_predicted"]
    assert set(said["metrics"]) == {"auc", "pr_auc", "accuracy", "f1", "precision", "recall",
                                    "loss"}  # fmt: skip
    assert f"scored {total:,} rows" in result.stderr  # progress, past the first chunk
    assert len(pd.read_csv(out)) == total


def test_an_existing_output_is_replaced_only_with_force(
    binary_run: tuple[Path, Path], tmp_path: Path
) -> None:
    # Prepare
    run, rows = binary_run
    out = tmp_path / "p.parquet"
    out.write_bytes(b"old")
    args = ["predict", str(run), "--data", str(rows), "--out", str(out)]

    # Execute
    refused(args[1:], f"{out} already exists; pass --force to replace it")
    replaced = runner.invoke(app, [*args, "--force"])

    # Assert
    assert replaced.exit_code == 0, replaced.output
    assert "wrote" in replaced.stderr and len(pd.read_parquet(out)) == len(pd.read_csv(rows))


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        (lambda f: f.drop(columns=["tenure", "contract"]), [],
         "2 column(s) the run needs are missing: tenure (feature), contract (feature)"),
        (lambda f: f.drop(columns=["customerID"]), [],
         "1 column(s) the run needs are missing: customerID (the run's id column)"),
        (lambda f: f.drop(columns=["Churn"]), ["--evaluate"],
         "1 column(s) the run needs are missing: Churn (the target, to evaluate)"),
        (lambda f: f.astype({"tenure": object}).assign(tenure=lambda g: g.tenure.where(
            g.index != 25, "ten")), ["--chunk-rows", "10"],
         "column 'tenure' is numeric in the run but has 1 non-numeric values, e.g. 'ten' in "
         "data row 26"),
        (lambda f: f.assign(Churn="Maybe"), ["--evaluate"],
         "target 'Churn' holds 'Maybe', not a class the run was trained on"),
        (lambda f: f.iloc[:0], [], "the file has no rows"),
    ],
    ids=["features", "id-column", "target", "text-in-numbers", "unseen-class", "no-rows"],
)  # fmt: skip
def test_a_file_that_does_not_match_the_run_is_refused(
    binary_run: tuple[Path, Path], tmp_path: Path, change, extra: list[str], message: str
) -> None:
    # Prepare
    run, rows = binary_run
    changed = tmp_path / "changed.csv"
    change(pd.read_csv(rows)).to_csv(changed, index=False)
    out = tmp_path / "p.csv"

    # Execute, Assert: nothing half written, even after chunks that were fine
    refused([str(run), "--data", str(changed), "--out", str(out), *extra], message, out)


def test_bad_arguments_are_refused_before_the_model_loads(
    binary_run: tuple[Path, Path], tmp_path: Path
) -> None:
    # Prepare
    run, rows = binary_run
    out = str(tmp_path / "p.csv")

    # Execute, Assert
    refused([str(tmp_path / "nope"), "--data", str(rows), "--out", out],
            f"{tmp_path / 'nope'}: no such run directory")  # fmt: skip
    refused([str(tmp_path), "--data", str(rows), "--out", out],
            f"{tmp_path}: not a run directory (it has no config.json)")  # fmt: skip
    refused([str(run), "--data", str(tmp_path / "none.csv"), "--out", out],
            f"{tmp_path / 'none.csv'}: no such file")  # fmt: skip
    refused([str(run), "--data", str(rows), "--out", str(tmp_path / "p.json")],
            "p.json: the output must be a .csv or .parquet file")  # fmt: skip
    refused([str(run), "--data", str(rows)],
            "give --out FILE (.csv or .parquet) for the predictions, or --evaluate")  # fmt: skip


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("running", "run unfinished has not finished (it is running): it has no model"),
        ("failed", "run unfinished has not finished (it is failed: boom): it has no model"),
    ],
)
def test_a_run_that_did_not_finish_has_no_model_to_score(
    tmp_path: Path, state: str, message: str
) -> None:
    # Prepare
    cfg = task_config("binary", tmp_path)
    run = make_scorable_run(tmp_path / "runs", cfg, "unfinished")
    run.set_status(state, 1, 2, error="boom" if state == "failed" else None)
    rows = tmp_path / "rows.csv"
    pd.read_csv(cfg.data).to_csv(rows, index=False)

    # Execute, Assert
    refused([str(run.path), "--data", str(rows), "--out", str(tmp_path / "p.csv")], message)


# -- real runs, one per task (slow) ------------------------------------------------


def global_test_file(cfg: RunConfig, raw: pd.DataFrame, path: Path) -> Path:
    """The run's global test rows as the raw table holds them (every column), as a CSV.

    ``data.global_test`` gives them typed and without the columns the run left
    out; their raw rows are found by their values (features and target).
    """
    test = data.global_test(cfg)
    found = raw.merge(test, on=list(test.columns), how="inner")
    assert len(found) == len(test)
    found.sample(frac=1.0, random_state=0).to_csv(path, index=False)  # any order will do
    return path


@pytest.fixture(scope="module", params=["binary", "multiclass", "regression"])
def real_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A short real federation of each task, and its global test rows as a raw CSV."""
    # The simulation engine: only these slow tests start it.
    from fedapp.simulation import simulate

    root = tmp_path_factory.mktemp(f"real-{request.param}")
    raw = make_churn_table(1500, 3, 42)
    if request.param == "binary":
        # A file with an identifier, split by its institution column.
        raw.insert(0, "customer_id", [f"C{i:05d}" for i in range(len(raw))])
        source = root / "customers.csv"
        raw.to_csv(source, index=False)
        raw = pd.read_csv(source)
        cfg = RunConfig(
            data=str(source), target="churned", id_column="customer_id", drop=TARGETS[1:],
            partition="column:institution", rounds=2, seed=42,
        )  # fmt: skip
    else:
        target = {"multiclass": "next_plan", "regression": "next_year_spend"}[request.param]
        cfg = RunConfig(target=target, rounds=2, demo_rows=1500, baseline=False, seed=42)
    run, _ = simulate(cfg, root / "runs")
    view = RunView.read(run.path)
    assert view.task == request.param
    return view, global_test_file(cfg, raw, root / "test.csv")


@pytest.mark.slow
def test_evaluate_reproduces_the_runs_federated_metrics(real_run, tmp_path: Path) -> None:
    # Prepare
    view, rows = real_run
    out = tmp_path / "p.parquet"

    # Execute
    result = runner.invoke(
        app, ["predict", str(view.path), "--data", str(rows), "--evaluate", "--json",
              "--out", str(out), "--chunk-rows", "97"],
    )  # fmt: skip

    # Assert
    assert result.exit_code == 0, result.output
    said = json.loads(result.stdout)
    expected = view.summary["federated"]
    assert said["metrics"].keys() == expected.keys()
    for name, value in expected.items():
        if value is None:
            assert said["metrics"][name] is None, name
        else:
            assert said["metrics"][name] == pytest.approx(value, abs=1e-6), name
    predictions = pd.read_parquet(out)
    target = view.summary["target"]
    assert list(predictions.columns)[-1] == f"{target}_predicted"
    if view.task == "binary":
        assert list(predictions.columns) == ["customer_id", "churned_probability",
                                             "churned_predicted"]  # fmt: skip
        assert predictions["customer_id"].tolist() == pd.read_csv(rows)["customer_id"].tolist()
    elif view.task == "multiclass":
        classes = view.summary["classes"]
        assert list(predictions.columns) == [
            *(f"next_plan_probability_{c}" for c in classes),
            "next_plan_predicted",
        ]
        assert set(predictions["next_plan_predicted"]) <= set(classes)
    else:
        assert list(predictions.columns) == ["next_year_spend_predicted"]
        # In the target's units, as the RMSE is.
        actual = pd.read_csv(rows)["next_year_spend"]
        rmse = ((predictions["next_year_spend_predicted"] - actual) ** 2).mean() ** 0.5
        assert rmse == pytest.approx(expected["rmse"], rel=1e-6)


@pytest.mark.slow
def test_a_finished_run_writes_its_model_card_with_each_clients_rows(real_run) -> None:
    # Prepare
    view, _ = real_run
    cfg = RunConfig.from_mapping(view.config)
    labels = view.client_labels(short=False)

    # Execute
    card = view.run_dir.model_card_file.read_text(encoding="utf-8")

    # Assert
    assert f"- Target: `{view.summary['target']}`" in card
    for pid, client in enumerate(data.client_splits(cfg)):
        rows = {"train": len(client.train), "test": len(client.test)}
        assert view.summary["clients"][str(pid)] == rows
        assert f"| {pid} | {labels[str(pid)]} | {rows['train']} | {rows['test']} |" in card
    assert ("| federated | centralized | gap |" in card) == cfg.baseline


def test_a_stopped_run_scores_with_the_model_it_kept(tmp_path: Path) -> None:
    # Prepare: stopped after round 1 of 2, its model of round 1 kept
    cfg = task_config("binary", tmp_path)
    run = make_scorable_run(tmp_path / "runs", cfg, "stopped")
    run.write_summary({"federated": {}, "partial": True, "round": 1})
    run.set_status("stopped", 1, 2, error="stopped (SIGTERM)")
    rows = tmp_path / "rows.csv"
    pd.read_csv(cfg.data).to_csv(rows, index=False)

    # Execute
    result = runner.invoke(
        app, ["predict", str(run.path), "--data", str(rows), "--out", str(tmp_path / "p.csv")]
    )

    # Assert
    assert result.exit_code == 0, result.output
    assert "run stopped was stopped: this is its model of round 1" in result.stderr


def test_predict_decides_at_the_runs_recorded_threshold(
    binary_run: tuple[Path, Path], tmp_path: Path
) -> None:
    # Prepare: the same model, its summary recording a calibrated threshold
    from fedapp.learning.threshold import metrics_at

    run, rows = binary_run
    calibrated = tmp_path / "calibrated"
    shutil.copytree(run, calibrated)
    summary = json.loads((calibrated / "summary.json").read_text())
    summary["threshold"] = {"value": 0.47, "source": "calibrated", "metric": "f1"}
    (calibrated / "summary.json").write_text(json.dumps(summary))
    outs = {name: tmp_path / f"{name}.csv" for name in ("plain", "calibrated")}

    # Execute
    args = ["--data", str(rows), "--evaluate", "--json"]
    said = {
        name: runner.invoke(app, ["predict", str(path), *args, "--out", str(outs[name])])
        for name, path in (("plain", run), ("calibrated", calibrated))
    }

    # Assert
    assert all(r.exit_code == 0 for r in said.values()), said
    plain, tuned = (json.loads(said[n].stdout) for n in ("plain", "calibrated"))
    assert (plain["threshold"], tuned["threshold"]) == (0.5, 0.47)
    assert "probability >= 0.47 (the run's, calibrated for F1)" in said["calibrated"].stderr
    predicted = pd.read_csv(outs["calibrated"])
    positive = predicted["Churn_probability"] >= 0.47
    assert (predicted["Churn_predicted"] == positive.map({True: "Yes", False: "No"})).all()
    assert (pd.read_csv(outs["plain"])["Churn_predicted"] == "Yes").sum() < positive.sum()
    truth = (pd.read_csv(rows)["Churn"] == "Yes").to_numpy()
    expected = metrics_at(truth, predicted["Churn_probability"].to_numpy(), 0.47)
    assert tuned["metrics"]["accuracy"] == pytest.approx(expected["accuracy"])
    assert tuned["metrics"]["auc"] == pytest.approx(plain["metrics"]["auc"])
