"""The Tune page through Streamlit's AppTest, on a study written by the test (fake trials)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from streamlit.testing.v1 import AppTest

import fedapp_ui
from fedapp.runs import RunDir
from fedapp.runs.study import METRIC_ATTR, RUN_ATTR, STUDY_NAME, storage_url
from fedapp.settings import RunConfig
from fedapp_ui import launcher, store

APP = Path(fedapp_ui.__file__).with_name("app.py")
TUNE = "app_pages/tune.py"


def write_study(root: Path, name: str = "study-1") -> Path:
    """A study folder with a complete, a pruned and a failed trial, each with its run."""
    folder = root / name
    folder.mkdir()
    study = optuna.create_study(
        storage=storage_url(folder), study_name=STUDY_NAME, direction="maximize"
    )
    study.set_user_attr(METRIC_ATTR, "auc")
    outcomes = [("complete", [0.7, 0.8]), ("pruned", [0.5]), ("fail", [])]
    for number, (state, values) in enumerate(outcomes):
        trial = study.ask()
        lr = trial.suggest_float("learning-rate", 1e-4, 1e-2, log=True)
        run = f"trial-{number:04d}-fedavg"
        trial.set_user_attr(RUN_ATTR, run)
        for step, value in enumerate(values, start=1):
            trial.report(value, step)
        cfg = RunConfig(clients=2, rounds=2, learning_rate=lr)
        made = RunDir.create(folder / run, folder, "fedavg")
        made.write_config(cfg.replace(run_dir=str(made.path)).to_dict())
        made.set_status("finished" if state == "complete" else "stopped", len(values), 2)
        kind = optuna.trial.TrialState[state.upper()]
        study.tell(trial, values[-1] if state == "complete" else None, state=kind)
    return folder


def app(**query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params.update(query)
    at.run()
    at.switch_page(TUNE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_tune_page_lists_trials_charts_them_and_links_the_best_run(runs_root: Path) -> None:
    # Prepare
    write_study(runs_root)

    # Execute
    at = app()

    # Assert
    [table] = at.dataframe
    frame = table.value
    assert list(frame["state"]) == ["complete", "pruned", "fail"]
    assert list(frame["value"])[:2] == [0.8, 0.5]  # a pruned trial's last reported round
    assert frame["run"][0] == "run?run=study-1/trial-0000-fedavg"
    [chart] = at.get("plotly_chart")
    traces = json.loads(chart.proto.spec)["data"]
    assert {t["name"] for t in traces} == {"complete", "pruned", "best so far"}
    [link] = [p for p in at.get("page_link") if "Best" in p.proto.label]
    assert "trial 0" in link.proto.label and "0.8000" in link.proto.label


def test_a_trial_of_a_study_opens_on_the_run_page(runs_root: Path) -> None:
    # Prepare
    write_study(runs_root)

    # Execute
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params.update({"run": "study-1/trial-0000-fedavg"})
    at.run()
    at.switch_page("app_pages/run.py").run()

    # Assert
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "study-1/trial-0000-fedavg"


def test_start_study_launches_fedapp_tune_with_the_forms_settings(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare
    calls: list[dict[str, Any]] = []

    def fake(cfg: RunConfig, root: Path, name: str, trials: int, strategies: Any = ()) -> str:
        calls.append({"cfg": cfg, "name": name, "trials": trials, "strategies": list(strategies)})
        return name

    monkeypatch.setattr(launcher, "launch_study", fake)
    at = app()

    # Execute
    at.number_input(key="demo_rows").set_value(600)
    at.number_input(key="clients").set_value(2)
    at.number_input(key="rounds").set_value(2)
    at.number_input(key="tune_trials").set_value(3)
    at.multiselect(key="tune_strategies").set_value(["fedavg", "krum"])
    at.text_input(key="tune_name").set_value("my-study").run()
    at.button(key="tune_start").click().run()

    # Assert
    [call] = calls
    assert (call["name"], call["trials"], call["strategies"]) == ("my-study", 3, ["fedavg", "krum"])
    assert (call["cfg"].demo_rows, call["cfg"].clients, call["cfg"].rounds) == (600, 2, 2)


def test_a_study_name_that_leaves_the_runs_folder_is_refused(runs_root: Path) -> None:
    # Execute / Assert
    with pytest.raises(Exception, match="not allowed"):
        store.study_path(runs_root, "../elsewhere")


def test_launch_study_starts_fedapp_tune_on_the_study_folder(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare
    commands: list[list[str]] = []

    class Process:
        pid = 4242

    def popen(command: list[str], **_: Any) -> Process:
        commands.append(command)
        return Process()

    monkeypatch.setattr(launcher.subprocess, "Popen", popen)
    cfg = RunConfig(clients=2, rounds=2, demo_rows=600)

    # Execute
    name = launcher.launch_study(cfg, runs_root, "s-1", 4, ["fedavg", "fedprox"])

    # Assert
    [command] = commands
    settings = Path(command[command.index("--config") + 1])
    assert command[2:4] == ["fedapp", "tune"]
    assert command[command.index("--study-dir") + 1] == str(runs_root.resolve() / "s-1")
    assert command[-4:] == ["--trials", "4", "--strategies", "fedavg,fedprox"]
    assert RunConfig.from_file(settings).to_dict() == cfg.to_dict()
    assert name == "s-1" and launcher.launch_of(runs_root, "s-1") is not None
