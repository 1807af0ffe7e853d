"""The command line: listings, and one clear line with exit code 2 for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedapp.cli import app
from fedapp.cli import run as run_command
from fedapp.registry import Param, StrategyPlugin
from fedapp.settings import DATA_SECTIONS, RunConfig, fields

runner = CliRunner()


def test_strategies_lists_plugins_and_parameters() -> None:
    result = runner.invoke(app, ["strategies", "--json"])
    assert result.exit_code == 0
    listing = {p["name"]: p for p in json.loads(result.stdout)}
    assert {"fedavg", "fedprox", "weighted"} <= set(listing)
    [mu] = listing["fedprox"]["params"]
    assert (mu["name"], mu["type"], mu["default"]) == ("proximal-mu", "float", 0.1)
    table = runner.invoke(app, ["strategies"])
    assert "proximal-mu" in table.stdout and "server-learning-rate" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--strategy", "nope"],
            "unknown strategy 'nope'; installed: bulyan, fedadagrad, fedadam, fedavg, fedavgm, "
            "fedmedian, fednova, fedprox, fedtrimmedavg, fedyogi, krum, multikrum, scaffold, "
            "weighted",
        ),
        (["--rounds", "0"], "rounds must be > 0"),
        (["--eval-every", "0"], "eval-every must be > 0, got 0"),
        (["--clients", "0"], "clients must be > 0"),
        (["--clients", "-2"], "clients must be > 0"),
        (["--strategy", "fedprox", "--proximal-mu", "-0.1"], "--proximal-mu must be >= 0"),
        (["--partition", "dirichlet:0"], "dirichlet alpha must be > 0"),
        (["--partition", "dirichlet:-1"], "dirichlet alpha must be > 0"),
        (
            ["--partition", "shuffle"],
            "is not one of: iid, dirichlet:ALPHA, quantity:ALPHA, column:NAME",
        ),
        (["--partition", "column:region"], "partition column 'region' is not in the data"),
        (["--clients", "5", "--demo-rows", "3"], "demo-rows (3) must be at least clients (5)"),
        (
            ["--partition", "dirichlet:0.0001", "--clients", "8", "--demo-rows", "200"],
            "use a larger alpha or fewer clients",
        ),
        (["--clients-per-round", "4"], "clients-per-round (4) must not exceed clients (3)"),
        (["--proximal-mu", "0.1"], "strategy 'fedavg' has no parameter --proximal-mu"),
        (["--strategy", "weighted", "--policy", "best"], "--policy must be one of"),
        (
            ["--strategy", "scaffold", "--secure-aggregation"],
            "strategy 'scaffold' cannot run with --secure-aggregation: SecAgg+ only sums the "
            "weights, so the control variates cannot travel masked",
        ),
        (
            ["--strategy", "scaffold", "--dp", "central"],
            "strategy 'scaffold' cannot run with --dp central: central DP clips and noises the "
            "weights alone",
        ),
        (
            ["--strategy", "fednova", "--secure-aggregation"],
            "strategy 'fednova' cannot run with --secure-aggregation: SecAgg+ hides each "
            "client's update, which FedNova divides by that client's own local steps",
        ),
        (
            ["--strategy", "fednova", "--dp", "central"],
            "strategy 'fednova' cannot run with --dp central: the noise is calibrated",
        ),
        (
            ["--strategy", "scaffold", "--local-learning-rate", "0"],
            "--local-learning-rate must be > 0, got 0.0",
        ),
        (
            ["--strategy", "weighted", "--policy", "custom", "--client-weights", "1,2"],
            "one value per client (3), got 2",
        ),
        (["--learning-rate", "0"], "learning-rate must be > 0"),
        (["--learning-rate", "inf"], "learning-rate must be a finite number > 0, got inf"),
        (["--seed", "-1"], "seed must be in [0, 4294967295], got -1"),
        (["--seed", "99999999999999999999"], "seed must be in [0, 4294967295], got 9999"),
        (["--drop", "churned"], "--drop churned: 'churned' is the target column"),
        (["--id-column", "churned"], "--id-column churned: 'churned' is the target column"),
        (["--partition", "column:churned"], "partition column:churned splits by the target"),
        (["--roundz", "3"], "has no parameter --roundz"),
        (["--model", "nope"], "unknown model 'nope'; installed: mlp"),
        (["--hidden-units", "8,0"], "--hidden-units must be >= 1, got 0"),
        (["--dp", "central", "--noise-multiplier", "-0.5"], "noise-multiplier must be >= 0"),
        (["--dp", "record", "--clip-norm", "0"], "clip-norm must be > 0"),
        (["--dp", "central", "--delta", "1"], "delta must be in (0, 1)"),
        (["--dp", "central", "--delta", "0"], "delta must be in (0, 1)"),
        (["--dp", "central", "--target-epsilon", "-1"], "target-epsilon must be > 0"),
        (["--dp", "laplace"], "dp must be one of none, central, record"),
        (["--dp", "central", "--dp-clipping", "both"], "dp-clipping must be one of server, client"),
        (["--threshold", "1"], "threshold must be auto or a probability strictly between 0 and 1"),
        (["--threshold", "0"], "threshold must be auto or a probability strictly between 0 and 1"),
        (["--threshold", "half"], "threshold must be auto or a probability strictly between"),
        (["--threshold", "auto", "--threshold-metric", "cost:1"], "cost:FP,FN needs two numbers"),
        (["--threshold", "auto", "--threshold-metric", "cost:0,0"], "not both 0"),
        (["--threshold", "auto", "--threshold-metric", "cost:-1,2"], "two numbers >= 0"),
        (["--threshold", "auto", "--threshold-metric", "cost:a,b"], "cost:FP,FN needs two"),
        (["--threshold", "auto", "--threshold-metric", "auc"], "threshold-metric must be one of"),
        (["--threshold-metric", "f1"], "--threshold-metric needs --threshold auto"),
        (
            ["--task", "multiclass", "--target", "next_plan", "--threshold", "0.3"],
            "--threshold is for binary targets: the target 'next_plan' is multiclass",
        ),
        (
            ["--target", "next_year_spend", "--threshold", "auto"],
            "--threshold is for binary targets: the target 'next_year_spend' is regression",
        ),
        (["--dropout-rate", "1"], "dropout-rate must be in [0, 1), got 1"),
        (["--dropout-rate", "-0.1"], "dropout-rate must be in [0, 1)"),
        (["--straggler-rate", "1.5"], "straggler-rate must be in [0, 1)"),
        (["--straggler-delay", "0"], "straggler-delay must be > 0, got 0"),
        (["--round-timeout", "-5"], "round-timeout must be > 0"),
        (["--min-fit-results", "0"], "min-fit-results must be >= 1"),
        (
            ["--clients", "4", "--clients-per-round", "2", "--min-fit-results", "3"],
            "min-fit-results (3) must not exceed the clients sampled per round (2)",
        ),
        (["--min-available-clients", "4"], "min-available-clients (4) must not exceed clients (3)"),
        (["--personalize-epochs", "-1"], "personalize-epochs must be >= 0"),
        (["--personalize-epochs", "1", "--dp", "record"], "--personalize-epochs needs --dp none"),
        (["--target-epsilon", "3"], "target-epsilon needs --dp central or --dp record"),
        (
            ["--target", "next_year_spend", "--label-skew-correction"],
            "--label-skew-correction shifts class probabilities: it needs a binary or multiclass",
        ),
        (["--task", "regression", "--label-skew-correction"], "this one is a regression target"),
        (
            ["--dp", "central", "--target-epsilon", "0.5", "--demo-rows", "600"],
            "target-epsilon must be >= 4.729 (the ε of one round",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["simulate", "--runs-dir", str(tmp_path / "runs"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # nothing that looks like a run


def test_malformed_toml_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("rounds = [\n", encoding="utf-8")
    result = runner.invoke(app, ["simulate", "--config", str(config)])
    assert result.exit_code == 2 and "malformed TOML" in result.stderr
    config.write_text('strategy = "fedprox"\n[strategy-params]\nproximal-mu = -1\n')
    result = runner.invoke(app, ["simulate", "--config", str(config)])
    assert result.exit_code == 2 and "--proximal-mu must be >= 0" in result.stderr


def test_existing_run_dir_is_never_overwritten(tmp_path: Path) -> None:
    run_dir = tmp_path / "exp"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text("{}")
    result = runner.invoke(app, ["simulate", "--run-dir", str(run_dir)])
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert (run_dir / "summary.json").read_text() == "{}"


def _help_row(help_text: str, flag: str) -> str:
    """The ``--help`` row of ``flag``, its wrapped lines joined."""
    rows = [line.strip("│ ") for line in help_text.splitlines()]
    start = next(i for i, row in enumerate(rows) if row.startswith(f"{flag} "))
    end = next((i for i in range(start + 1, len(rows)) if rows[i].startswith("--")), len(rows))
    return " ".join(" ".join(rows[start:end]).split())


def test_simulate_help_names_the_flags_of_the_installed_strategies(register_plugin) -> None:
    # Prepare: a plugin no entry point knows, with a parameter no other strategy has
    register_plugin(
        StrategyPlugin(
            name="knobbly",
            summary="A strategy for this test.",
            build=lambda common, params: None,
            params=(Param("zeta-knob-17", float, 0.5, "A knob no other strategy has."),),
        )
    )

    # Execute
    result = runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": "200"})

    # Assert
    assert result.exit_code == 0, result.output
    assert "knobbly: --zeta-knob-17" in result.stdout
    assert "fedprox: --proximal-mu" in result.stdout


def test_simulate_help_has_a_flag_per_declared_setting_with_its_default_and_range() -> None:
    # Execute
    help_text = runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": "200"}).stdout

    # Assert
    for entry in fields():
        assert (f"--{entry.key} " in help_text) is entry.cli, entry.key
    row = _help_row(help_text, "--eval-every")
    assert row.startswith("--eval-every INTEGER Central evaluation of the global model every N")
    assert row.endswith("[> 0] [default: 1]")
    assert _help_row(help_text, "--dp").endswith("[one of none, central, record] [default: none]")
    assert "--baseline --no-baseline" in _help_row(help_text, "--baseline")


def test_inspect_takes_only_the_settings_that_decide_the_data() -> None:
    # Execute
    help_text = runner.invoke(app, ["inspect", "--help"], env={"COLUMNS": "200"}).stdout

    # Assert
    flags = {entry.key for entry in fields() if f"--{entry.key} " in help_text}
    assert flags == {entry.key for entry in fields(*DATA_SECTIONS) if entry.cli}


def test_eval_every_flag_reaches_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: stop at the config the run would get
    seen: list[RunConfig] = []

    def record(cfg: RunConfig, as_json: bool, verbose: bool) -> None:
        seen.append(cfg)

    monkeypatch.setattr(run_command, "run_simulation", record)

    # Execute
    result = runner.invoke(app, ["simulate", "--eval-every", "3", "--runs-dir", "elsewhere"])

    # Assert
    assert result.exit_code == 0, result.output
    [cfg] = seen
    assert (cfg.eval_every, cfg.runs_dir) == (3, "elsewhere")


def test_importing_the_cli_loads_neither_tensorflow_nor_ray() -> None:
    # Execute
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys, fedapp.cli, fedapp.registry; fedapp.registry.installed();"
         "print('tensorflow' in sys.modules, 'ray' in sys.modules)"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip

    # Assert
    assert probe.stdout.split() == ["False", "False"]


def test_ui_refuses_a_busy_port_and_a_missing_data_dir(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(
            app, ["ui", "--runs-dir", str(tmp_path / "r"), "--port", str(port), "--no-browser"]
        )
    assert result.exit_code == 2
    assert f"cannot serve on 127.0.0.1:{port}" in result.output and "--port" in result.output
    result = runner.invoke(
        app, ["ui", "--runs-dir", str(tmp_path / "r"), "--data-dir", str(tmp_path / "nope")]
    )
    assert result.exit_code == 2 and "is not a folder" in result.output
    assert runner.invoke(app, ["ui", "--port", "0"]).exit_code == 2
