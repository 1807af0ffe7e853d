"""The Run page's model card and "Score a file" box, driven through Streamlit's AppTest.

The box runs ``fedapp predict`` as a process of its own; the fast tests
record its calls instead, the slow one lets it score for real.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scoring_runs import make_scorable_run, raw_rows, task_config
from streamlit.testing.v1 import AppTest

import fedapp_ui
from fedapp import data
from fedapp.errors import UsageError
from fedapp.runs import model_card
from fedapp_ui import scoring

APP = Path(fedapp_ui.__file__).with_name("app.py")
RUN = "app_pages/run.py"


@pytest.fixture
def finished(runs_root: Path, tmp_path: Path) -> tuple[Any, bytes]:
    """A finished binary run with its model card, and its global test rows as CSV bytes."""
    cfg = task_config("binary", tmp_path)
    run = make_scorable_run(runs_root, cfg, "scored-run")
    summary = {**run.read_summary(), "target": "Churn", "task": "binary"}
    run.write_summary(summary)
    prep = json.loads(run.preprocessing_file.read_text(encoding="utf-8"))
    run.model_card_file.write_text(model_card(run.read_config(), summary, prep), "utf-8")
    rows = raw_rows(data.global_test(cfg), cfg).to_csv(index=False).encode()
    return run, rows


def page(run: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["run"] = run
    at.run()
    at.switch_page(RUN).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_run_page_shows_and_offers_the_model_card(finished: tuple[Any, bytes]) -> None:
    # Prepare
    run, _ = finished

    # Execute
    at = page(run.run_id)

    # Assert
    [card] = [e for e in at.expander if e.label == "Model card"]
    shown = "\n".join(m.value for m in card.markdown)
    text = run.model_card_file.read_text(encoding="utf-8")
    assert shown == scoring.card_markdown(text)
    assert "# Model card" not in shown and "#### Task" in shown  # under the expander's title
    assert shown.replace("#### ", "## ") in text
    [button] = [b for b in at.get("download_button") if b.label == "model_card.md"]
    assert button is not None


def test_the_box_scores_an_upload_and_offers_the_predictions(
    finished: tuple[Any, bytes], runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: record the command's calls, answering as `fedapp predict --json` does
    run, rows = finished
    calls: list[tuple[Path, Path, Path, bool]] = []

    def fake_score(run_path: Path, upload: Path, out: Path, evaluate: bool) -> dict[str, Any]:
        calls.append((run_path, upload, out, evaluate))
        out.write_text("customerID,Churn_probability,Churn_predicted\nT1,0.7,Yes\n", "utf-8")
        columns = ["customerID", "Churn_probability", "Churn_predicted"]
        metrics = {"auc": 0.75, "loss": 0.5}
        return {"rows": 1, "out": str(out), "columns": columns, "metrics": metrics, "evaluated": 1}

    monkeypatch.setattr(scoring, "score_file", fake_score)
    at = page(run.run_id)

    # Execute
    at.file_uploader(key="score_upload").set_value(("new rows.csv", rows, "text/csv")).run()
    at.button(key="score_start").click().run()

    # Assert: scored as a process would, with --evaluate since the file has the target
    [(run_path, upload, out, evaluate)] = calls
    assert run_path == run.path and evaluate
    assert upload.name == "new rows.csv" and upload.read_bytes() == rows
    assert out.parent == runs_root / ".fedapp-ui" / "predictions" and out.suffix == ".csv"
    [download] = [b for b in at.get("download_button") if b.label == "Predictions (csv)"]
    assert download is not None
    metrics = scored_metrics(at)
    assert list(metrics["metric"]) == ["AUC", "PR-AUC", "accuracy", "F1", "precision",
                                       "recall", "log-loss"]  # fmt: skip
    assert "Scored 1 rows of new rows.csv." in [s.value for s in at.success]


def test_the_box_shows_why_a_file_cannot_be_scored(
    finished: tuple[Any, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare
    run, rows = finished
    said: list[bool] = []

    def refuse(run_path: Path, upload: Path, out: Path, evaluate: bool) -> dict[str, Any]:
        said.append(evaluate)
        raise UsageError(f"{upload}: 1 column(s) the run needs are missing: tenure (feature)")

    monkeypatch.setattr(scoring, "score_file", refuse)
    without = pd.read_csv(io.BytesIO(rows)).drop(columns=["tenure", "Churn"])
    at = page(run.run_id)

    # Execute
    at.file_uploader(key="score_upload").set_value(
        ("rows.parquet", _parquet(without), "application/octet-stream")
    ).run()
    at.segmented_control(key="score_format").set_value("Parquet").run()
    at.button(key="score_start").click().run()

    # Assert: no target in the file, so no --evaluate; the command's line is shown
    assert said == [False]
    assert any("tenure (feature)" in e.value for e in at.error)
    assert not [b for b in at.get("download_button") if b.label.startswith("Predictions")]


def test_the_ui_scores_without_loading_tensorflow() -> None:
    # Execute: a fresh process imports the page's scoring module
    code = "import sys, fedapp_ui.scoring; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    # Assert
    assert done.stdout.strip() == "False"


@pytest.mark.slow
def test_the_box_scores_for_real_as_fedapp_predict_does(
    finished: tuple[Any, bytes], tmp_path: Path
) -> None:
    # Prepare
    run, rows = finished
    upload = tmp_path / "rows.csv"
    upload.write_bytes(rows)
    cli = scoring.score_file(run.path, upload, tmp_path / "cli.csv", evaluate=True)
    at = page(run.run_id)

    # Execute
    at.file_uploader(key="score_upload").set_value(("rows.csv", rows, "text/csv")).run()
    at.button(key="score_start").click().run()

    # Assert
    assert not at.error, [e.value for e in at.error]
    [download] = [b for b in at.get("download_button") if b.label == "Predictions (csv)"]
    assert download is not None
    [out] = (run.path.parent / ".fedapp-ui" / "predictions").iterdir()
    assert out.read_bytes() == (tmp_path / "cli.csv").read_bytes()
    metrics = scored_metrics(at)
    assert dict(zip(metrics["metric"], metrics["value"], strict=True))["AUC"] == pytest.approx(
        cli["metrics"]["auc"]
    )


def scored_metrics(at: AppTest) -> pd.DataFrame:
    """The box's table of metrics (the page's other tables have no ``metric`` column)."""
    [table] = [d.value for d in at.dataframe if "value" in d.value.columns]
    return table


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()
