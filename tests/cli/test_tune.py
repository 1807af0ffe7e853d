"""``fedapp tune``: one line and exit code 2 for bad input; one small study end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedapp.cli import app
from fedapp.runs import RunView, list_runs
from fedapp.settings import RunConfig

runner = CliRunner()
TINY = ["--clients", "2", "--rounds", "2", "--demo-rows", "400", "--seed", "7", "--no-baseline"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trials", "0"], "error: trials must be > 0, got 0"),
        (["--timeout", "0"], "error: timeout must be > 0 seconds, got 0"),
        (["--timeout", "-5"], "error: timeout must be > 0 seconds, got -5"),
        (["--strategies", "fedavg,nope"], "error: unknown strategy 'nope'; installed: "),
        (["--strategies", ","], "error: --strategies needs one or more strategy names"),
        (["--out", "missing/best.toml"], "error: cannot write missing/best.toml: folder missing"),
        (["--out", "."], "error: cannot write .: it is a folder"),
        (["--rounds", "0"], "error: rounds must be > 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_trial(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare
    monkeypatch.chdir(tmp_path)

    # Execute
    result = runner.invoke(app, ["tune", *TINY, "--study-dir", "study", *args])

    # Assert
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.output
    assert not (tmp_path / "study").exists()


def test_an_out_file_in_a_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    monkeypatch.chdir(tmp_path)
    Path("file").write_text("x", encoding="utf-8")

    # Execute
    result = runner.invoke(app, ["tune", *TINY, "--out", "file/best.toml"])

    # Assert
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot write file/best.toml")


def test_tune_help_loads_neither_optuna_nor_tensorflow() -> None:
    # Execute
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys; from fedapp.cli import app; sys.argv = ['fedapp', 'tune', '--help']\n"
         "try:\n    app()\nexcept SystemExit:\n    pass\n"
         "print('optuna' in sys.modules, 'tensorflow' in sys.modules, file=sys.stderr)"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip

    # Assert
    assert "--strategies" in probe.stdout
    assert probe.stderr.split()[-2:] == ["False", "False"]


@pytest.mark.slow
def test_a_tiny_study_writes_its_runs_and_the_best_trials_settings_as_best_toml(
    tmp_path: Path,
) -> None:
    # Prepare
    fedapp = [sys.executable, "-m", "fedapp"]
    tune = [*fedapp, "tune", *TINY, "--trials", "2", "--strategies", "fedavg,fedprox"]
    tune += ["--study-dir", "runs/study", "--out", "best.toml"]

    # Execute
    tuned = subprocess.run(tune, cwd=tmp_path, capture_output=True, text=True, timeout=900)

    # Assert
    assert tuned.returncode == 0, tuned.stderr
    assert "Top trials" in tuned.stdout and "reproduce it: fedapp simulate" in tuned.stderr
    assert (tmp_path / "runs" / "study" / "study.db").is_file()
    trials = [v for v in list_runs(tmp_path / "runs") if v.run_id.startswith("study/")]
    assert len(trials) == 2 and all(str(v.state) == "finished" for v in trials)
    # best.toml is a trial's whole configuration, as `simulate --config` reads it (a
    # trial is a `simulate` run: running best.toml again repeats that trial).
    best = RunConfig.from_file(tmp_path / "best.toml")
    # A trial's config.json records the round timeout its settings resolved to.
    best = best.replace(round_timeout=best.resolved_round_timeout)
    recorded = [RunView.read(v.path).config for v in trials]
    as_run = [
        RunConfig.from_mapping(c).replace(run_dir=None).to_dict()
        | {"data-sha256": c["data-sha256"], "task": c["task"]}
        for c in recorded
    ]
    assert {**best.to_dict(), "data-sha256": recorded[0]["data-sha256"],
            "task": recorded[0]["task"]} in as_run  # fmt: skip
