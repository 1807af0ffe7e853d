"""The tuner: its search space from the declarations, the study with a fake simulation.

The fake ``simulate`` records a run as the real one does (its directory,
events through a Recorder, a stop ended by ``end_unfinished``), with scores
the test chooses, so a study of many trials takes a second.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fedapp import simulation, tuning
from fedapp.errors import UsageError
from fedapp.flower.outcome import end_unfinished
from fedapp.registry import Param
from fedapp.runs import Recorder, RunDir, RunView, Scope, Stage, list_runs
from fedapp.runs.study import read_trials
from fedapp.settings import RunConfig, describe

Scores = Callable[[int, RunConfig], list[float]]


@pytest.fixture
def base() -> RunConfig:
    return RunConfig(clients=2, rounds=3, demo_rows=600, seed=7, baseline=False)


def fake_simulate(monkeypatch: pytest.MonkeyPatch, scores: Scores) -> list[RunConfig]:
    """Replace ``simulate``: call ``i`` reports ``scores(i, cfg)`` as the clients' AUC per round."""
    calls: list[RunConfig] = []

    def simulate(cfg: RunConfig, root: Path, on_event: Any = None, verbose: bool = False):
        calls.append(cfg)
        per_round = scores(len(calls) - 1, cfg)
        run = RunDir.create(Path(cfg.run_dir or root / "x"), root, cfg.strategy)
        run.write_config(cfg.to_dict())
        run.mark_started(cfg.rounds)
        recorder = Recorder(run, cfg.rounds, on_event)
        try:
            for number, auc in enumerate(per_round, start=1):
                recorder.event(number, Stage.EVALUATE, Scope.FEDERATED, {"auc": auc})
                recorder.progress(number)
        except BaseException as err:
            stop = end_unfinished(recorder, err, lambda: None)
            if stop is None:
                raise
            raise simulation.RunStopped(stop, run) from None
        summary = {"federated_evaluation": {"auc": per_round[-1]}, "federated": {"auc": 0.0}}
        recorder.finish(summary, cfg.rounds, None)
        return run, summary

    monkeypatch.setattr(simulation, "simulate", simulate)
    return calls


# --- The search space ------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        # log-uniform a tenth to ten times the default
        (Param("mu", float, 0.1, "", minimum=0.0), ("float", 0.01, 1.0, True)),
        (Param("eta", float, 2.0, "", minimum=0.0), ("float", 0.2, 20.0, True)),
        # cut to the declared bounds
        (Param("eta", float, 2.0, "", minimum=1.0, less_than=5.0), ("float", 1.0, 5.0, True)),
        # an exclusive lower bound is never drawn either
        (Param("eta", float, 2.0, "", greater_than=1.0, less_than=5.0), ("float", 1.0, 5.0, True)),
        # integers: a quarter to four times
        (Param("width", int, 32, "", minimum=1), ("int", 8, 128, True)),
        # an off switch with an upper bound: uniform up to half-way
        (Param("dropout", float, 0.0, "", minimum=0, less_than=1), ("float", 0.0, 0.5, False)),
    ],
)
def test_a_numbers_range_follows_from_its_declaration(param: Param, expected: tuple) -> None:
    # Execute
    dim = tuning.param_dimension(param, "s")

    # Assert
    assert dim is not None and dim.name == f"s.{param.name}"
    kind, low, high, log = expected
    assert (dim.kind, dim.log) == (kind, log)
    assert math.isclose(dim.low, low) and math.isclose(dim.high, high, rel_tol=1e-9)
    if param.less_than is not None:
        assert dim.high < param.less_than  # the exclusive bound itself is never drawn
    if param.greater_than is not None:
        assert dim.low > param.greater_than


def test_a_fraction_without_an_upper_bound_stays_below_one() -> None:
    # Execute
    dim = tuning.param_dimension(Param("beta-1", float, 0.9, "", minimum=0.0), "fedadam")

    # Assert
    assert dim is not None and math.isclose(dim.low, 0.09) and dim.high < 1.0


@pytest.mark.parametrize(
    ("param", "choices"),
    [
        (Param("on", bool, False, ""), (False, True)),
        (Param("policy", str, "a", "", choices=("a", "b")), ("a", "b")),
        (Param("units", int, (64, 32), "", minimum=1, many=True), ("32,16", "64,32", "128,64")),
    ],
)
def test_booleans_choices_and_lists_are_choices(param: Param, choices: tuple) -> None:
    # Execute
    dim = tuning.param_dimension(param, "m")

    # Assert
    assert dim is not None and (dim.kind, dim.choices) == ("choice", choices)


@pytest.mark.parametrize(
    "param",
    [
        Param("tag", str, "x", ""),  # free text
        Param("count", int, 0, "", minimum=0),  # an off count with no upper bound
        Param("fixed", int, 3, "", minimum=3, less_than=4),  # a single allowed value
    ],
)
def test_what_has_no_range_is_not_searched(param: Param) -> None:
    # Execute / Assert
    assert tuning.param_dimension(param, "s") is None


def test_the_space_has_the_training_settings_strategies_and_plugin_params(base: RunConfig) -> None:
    # Execute
    space = tuning.search_space(base, "binary", ["fedavg", "fedprox"])

    # Assert
    names = [d.name for d in space.dimensions]
    assert names[:5] == [
        "strategy", "local-epochs", "learning-rate", "batch-size", "label-skew-correction",
    ]  # fmt: skip
    assert {"fedprox.proximal-mu", "model.hidden-units", "model.dropout"} <= set(names)
    lr = next(d for d in space.dimensions if d.name == "learning-rate")
    default = describe("learning_rate").default
    assert (lr.low, lr.high, lr.log) == (pytest.approx(default / 10), default * 10, True)


def test_label_skew_correction_is_not_searched_for_regression(base: RunConfig) -> None:
    # Execute
    space = tuning.search_space(base, "regression", ["fedavg"])

    # Assert
    assert "label-skew-correction" not in [d.name for d in space.dimensions]
    assert "strategy" not in [d.name for d in space.dimensions]  # one strategy: nothing to pick


def test_an_unknown_strategy_is_refused_naming_the_installed_ones(base: RunConfig) -> None:
    # Execute / Assert
    with pytest.raises(UsageError, match=r"unknown strategy 'nope'; installed: .*fedavg"):
        tuning.search_space(base, "binary", ["fedavg", "nope"])


# --- The study, with a fake simulation -----------------------------------------------


def test_best_toml_is_the_best_trials_config_and_simulate_reads_it(
    base: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: the larger the learning rate, the better
    calls = fake_simulate(monkeypatch, lambda _, cfg: [0.5, 0.6, 0.5 + 10 * cfg.learning_rate])
    study = tmp_path / "study"

    # Execute
    found = tuning.tune(base, study, trials=4, strategies=["fedavg", "fedprox"])
    best = tuning.write_best(tmp_path / "best.toml", study)

    # Assert
    assert [t.state for t in found.trials] == ["complete"] * 4
    top = max(calls, key=lambda c: c.learning_rate)
    assert best.run == Path(str(top.run_dir)).name
    written = RunConfig.from_file(tmp_path / "best.toml")
    run_config = RunView.read(study / str(best.run)).config
    assert written.to_dict() == RunConfig.from_mapping(run_config).replace(run_dir=None).to_dict()
    assert written.run_dir is None and "run-dir" not in (tmp_path / "best.toml").read_text()


def test_a_trial_worse_than_the_median_is_pruned_and_its_run_says_so(
    base: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: two good trials, then one that gets worse each round
    good, worse = [0.8, 0.8, 0.8], [0.5, 0.4, 0.3]
    fake_simulate(monkeypatch, lambda i, _: good if i < 2 else worse)
    study = tmp_path / "study"

    # Execute
    found = tuning.tune(base, study, trials=3, strategies=["fedavg"], prune_after_trials=2)

    # Assert
    assert [t.state for t in found.trials] == ["complete", "complete", "pruned"]
    assert found.trials[2].intermediate == {1: 0.5, 2: 0.4}
    view = RunView.read(study / str(found.trials[2].run))
    assert str(view.state) == "stopped"
    assert "pruned by the tuner at round 2" in str(view.error)


def test_a_failed_trial_is_recorded_in_the_study_and_its_run_and_the_study_goes_on(
    base: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: the first trial is refused before its run starts, the second fails in it
    def scores(i: int, _: RunConfig) -> list[float]:
        if i == 0:
            raise UsageError("--proximal-mu does not fit")
        if i == 1:
            raise RuntimeError("round 1: no client finished fitting")
        return [0.7, 0.7, 0.7]

    fake_simulate(monkeypatch, scores)
    study = tmp_path / "study"

    # Execute
    found = tuning.tune(base, study, trials=3, strategies=["fedavg"])

    # Assert
    assert [t.state for t in found.trials] == ["fail", "fail", "complete"]
    assert found.trials[0].error == "--proximal-mu does not fit"
    assert "no client finished fitting" in str(found.trials[1].error)
    first = RunView.read(study / str(found.trials[0].run))
    assert (str(first.state), first.error) == ("failed", "--proximal-mu does not fit")


def test_the_same_study_folder_continues_the_study_and_its_trials_are_runs(
    base: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare
    fake_simulate(monkeypatch, lambda i, _: [0.6, 0.6, 0.6 + i / 100])
    study = tmp_path / "runs" / "study"
    tuning.tune(base, study, trials=2, strategies=["fedavg"])

    # Execute
    found = tuning.tune(base, study, trials=1, strategies=["fedavg"])

    # Assert
    assert [t.number for t in found.trials] == [0, 1, 2]
    listed = {v.run_id for v in list_runs(tmp_path / "runs")}
    assert listed == {f"study/{t.run}" for t in found.trials}
    assert read_trials(study).best == found.trials[2]


def test_bad_counts_are_refused_before_any_trial(base: RunConfig, tmp_path: Path) -> None:
    # Execute / Assert
    with pytest.raises(UsageError, match="trials must be > 0, got 0"):
        tuning.tune(base, tmp_path / "s", trials=0)
    with pytest.raises(UsageError, match="timeout must be > 0 seconds, got -1"):
        tuning.tune(base, tmp_path / "s", trials=1, timeout=-1)
    assert not (tmp_path / "s").exists()


def test_settings_toml_reads_back_as_the_same_settings() -> None:
    # Prepare
    cfg = RunConfig(
        clients=2, strategy="fedprox", strategy_params={"proximal-mu": 0.25},
        model_params={"hidden-units": [16, 8]}, drop=("a b", 'say "x"'), sep=";",
    )  # fmt: skip

    # Execute
    text = tuning.settings_toml(cfg.to_dict(), "heading")

    # Assert
    import tomllib

    assert RunConfig.from_mapping(tomllib.loads(text)).to_dict() == cfg.to_dict()
