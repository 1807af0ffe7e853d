"""The model card: rendered from a run's records alone, written when the run finishes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from run_files import CONFIG

from fedapp.runs import Recorder, RunDir, kept_model_text, model_card, skipped_rounds_text

PREPROCESSING = {
    "numeric": [["age", 42.5, 12.25], ["balance", 41079.53, 44249.4]],
    "categorical": [["plan", ["basic", "premium", "standard"]]],
    "target": "churned",
    "encoding": {"task": "binary", "classes": ["0", "1"], "mean": 0.0, "std": 1.0},
}
SUMMARY = {
    "federated": {"auc": 0.71, "accuracy": 0.75, "loss": 0.51},
    "federated_evaluation": {"auc": 0.7, "accuracy": 0.74, "loss": 0.52},
    "centralized": {"auc": 0.76, "accuracy": 0.76, "loss": 0.49},
    "gap": {"auc": -0.05, "accuracy": -0.01, "loss": 0.02},
    "local_only": {"0": {"auc": 0.66}, "1": {"auc": 0.73}},
    "rounds": 2,
    "strategy": "fedavg",
    "target": "churned",
    "task": "binary",
    "classes": ["0", "1"],
    "clients": {"0": {"train": 640, "test": 160}, "1": {"train": 960, "test": 240}},
}


def test_the_card_says_what_the_model_is_from_what_and_how_good() -> None:
    # Execute
    card = model_card(CONFIG, SUMMARY, PREPROCESSING)

    # Assert
    assert card.startswith("# Model card: x\n")
    for line in [
        "- Target: `churned` (binary classification)",
        "- Positive class: `1` (negative: `0`)",
        "| 0 | institution=inst-0 | 640 | 160 |",
        "| 1 | institution=inst-1 | 960 | 240 |",
        "| age | numeric | standardised, (x - 42.5) / 12.25; missing values take",
        "| plan | categorical | one-hot over `basic`, `premium`, `standard`, plus",
        "| strategy | fedavg |",
        "| local-epochs | 1 |",
        "| metric | federated | centralized | gap | clients' own test sets |",
        "| AUC | 0.7100 | 0.7600 | -0.0500 | 0.7000 |",
        "| 0 institution=inst-0 | 0.6600 | 0.7100 | +0.0500 |",
        "No differential privacy",
        "fedapp 0.1.0, flwr 1.42.0",
        "fedapp predict runs/x --data new.csv --out predictions.csv",
    ]:
        assert line in card, line


@pytest.mark.parametrize(
    ("task", "encoding", "expected"),
    [
        ("multiclass", {"task": "multiclass", "classes": ["a", "b", "c"], "mean": 0, "std": 1},
         "- Classes (3): `a`, `b`, `c`; the model gives each class's probability"),
        ("regression", {"task": "regression", "classes": [], "mean": 500.0, "std": 25.0},
         "- The model predicts the standardised target, (y - 500) / 25"),
    ],
)  # fmt: skip
def test_the_card_says_each_tasks_output(task: str, encoding: dict, expected: str) -> None:
    # Prepare
    summary = {"federated": {"rmse": 12.5}, "rounds": 2, "strategy": "fedavg", "task": task,
               "target": "y", "classes": encoding["classes"]}  # fmt: skip

    # Execute
    card = model_card({**CONFIG, "task": task}, summary, {**PREPROCESSING, "encoding": encoding})

    # Assert
    assert expected in card
    if task == "regression":
        assert "| RMSE | 12.5000 |" in card


def test_the_card_says_the_privacy_spent() -> None:
    # Prepare
    private = {"mode": "central", "epsilon": 2.53, "delta": 1e-05, "noise_multiplier": 1.0,
               "clip_norm": 0.5, "target_epsilon": 3.0}  # fmt: skip

    # Execute
    card = model_card(CONFIG, {**SUMMARY, "privacy": private}, PREPROCESSING)

    # Assert
    assert "- Differential privacy: client-level (central), noise multiplier 1" in card
    assert "- ε = 2.5300 at δ = 1e-05 (budget ε = 3)" in card


def test_a_finished_run_has_its_card_before_it_says_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare
    run = RunDir(tmp_path)
    run.write_config({**CONFIG, "run-dir": str(tmp_path)})
    run.preprocessing_file.write_text(json.dumps(PREPROCESSING), encoding="utf-8")
    run.mark_started(2)
    seen: list[bool] = []
    write = RunDir.set_status

    def set_status(self: RunDir, *args: object, **kwargs: object) -> None:
        seen.append(self.model_card_file.exists())
        write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(RunDir, "set_status", set_status)

    # Execute
    Recorder(run, 2).finish(SUMMARY, 2, None)

    # Assert
    assert seen == [True]
    assert run.model_card_file.read_text("utf-8") == model_card(
        run.read_config(), SUMMARY, PREPROCESSING
    )


def test_a_card_that_cannot_be_written_never_keeps_a_run_from_finishing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare: no config.json to read
    run = RunDir(tmp_path)
    run.mark_started(2)

    # Execute
    Recorder(run, 2).finish(SUMMARY, 2, None)

    # Assert
    assert run.read_status()["state"] == "finished"
    assert not run.model_card_file.exists()
    assert "fedapp: could not write model_card.md" in capsys.readouterr().err


def test_a_run_recorded_before_client_rows_lists_its_clients_alone() -> None:
    # Execute
    card = model_card(CONFIG, {k: v for k, v in SUMMARY.items() if k != "clients"})

    # Assert
    assert "| client | source |\n| --- | --- |\n| 0 | institution=inst-0 |" in card
    assert "| training rows |" not in card
    assert "## Features and their preprocessing" not in card  # no preprocessing.json given


def test_the_card_lists_the_training_settings_the_config_records() -> None:
    # Prepare: a config that names its model and its parameters instead of hidden units
    config = {k: v for k, v in CONFIG.items() if k != "hidden-units"}
    config |= {"model": "mlp", "model-params": {"hidden-units": [128, 64], "dropout": 0.1}}

    # Execute
    card = model_card(config, SUMMARY, PREPROCESSING)

    # Assert
    assert "| model | mlp |" in card
    assert "| model-params | hidden-units = 128, 64, dropout = 0.1 |" in card
    assert "| hidden-units |" not in card


def test_the_card_gives_the_threshold_and_the_fine_tuned_column() -> None:
    # Prepare
    at = {"accuracy": 0.7, "f1": 0.6, "precision": 0.5, "recall": 0.75}
    summary = {
        **SUMMARY,
        "threshold": {"value": 0.3, "source": "calibrated", "metric": "cost:1,5",
                      "score": 0.42, "rows": 400, "metrics": at},
        "centralized_threshold": {"value": 0.35, "source": "calibrated", "metric": "cost:1,5",
                                  "score": 0.4, "rows": 400, "metrics": at},
        "personalized": {"epochs": 1, "clients": {"0": {"fine_tuned": {"auc": 0.8}}},
                         "mean": {"federated": {"auc": 0.7}, "fine_tuned": {"auc": 0.75}}},
    }  # fmt: skip

    # Execute
    card = model_card(CONFIG, summary, PREPROCESSING)

    # Assert
    for line in [
        "| institution | alone | federated | federated + fine-tuned | gain |",
        "| 0 institution=inst-0 | 0.6600 | 0.7100 | 0.8000 | +0.0500 |",
        "| 1 institution=inst-1 | 0.7300 | 0.7100 | - | -0.0200 |",
        "(mean AUC 0.7500, vs 0.7000 for the federated model there)",
        "| metric | federated at 0.5 | federated at 0.3 | centralized at 0.5 | centralized at "
        "0.35 |",
        "| accuracy | 0.7500 | 0.7000 | 0.7600 | 0.7000 |",
        "- Threshold 0.3: calibrated on the clients' held-out rows (400 rows), the least cost "
        "(cost:1,5) 0.4200",
    ]:
        assert line in card, line


# --- rounds auto ------------------------------------------------------------

AUTO = {"monitor": "federated_loss", "best_round": 5, "best": 0.31234, "rounds_run": 7,
        "converged": True, "patience": 2, "min_delta": 0.0, "max_rounds": 30}  # fmt: skip


@pytest.mark.parametrize(
    ("auto", "summary", "expected"),
    [
        ({}, {"reason": "converged at round 5"},
         "the model of round 5, the best federated_loss (0.3123); converged: no improvement "
         "in the 2 rounds after it, 7 rounds run of at most 30"),
        ({"min_delta": 0.01}, {"reason": "converged at round 5"},
         "converged: no gain of more than 0.01 in the 2 rounds after it"),
        ({"converged": False}, {"reason": "privacy budget reached"},
         "the model of round 5, the best federated_loss (0.3123); not converged when the run "
         "ended after round 7 (privacy budget reached)"),
        ({"converged": False, "rounds_run": 30}, {"rounds": 30},
         "the model of round 5, the best federated_loss (0.3123); not converged within "
         "max-rounds 30"),
        ({"best_round": 0, "best": None}, {},
         "the model of round 7, the last: no round had a finite federated_loss"),
    ],
    ids=["converged", "min-delta", "budget", "max-rounds", "no-score"],
)  # fmt: skip
def test_the_kept_model_of_an_automatic_run_is_said_with_its_round(
    auto: dict, summary: dict, expected: str
) -> None:
    # Prepare
    done = {**SUMMARY, "rounds": 7, "auto_rounds": AUTO | auto, **summary}

    # Execute
    said = kept_model_text(done)

    # Assert
    assert said is not None and expected in said


def test_a_run_of_fixed_rounds_says_nothing_of_a_kept_round() -> None:
    # Execute / Assert
    assert kept_model_text(SUMMARY) is None


def test_skipped_rounds_are_said_on_the_card_and_not_when_there_are_none() -> None:
    # Prepare
    summary = {**SUMMARY, "skipped_rounds": [2, 5]}

    # Execute
    said = skipped_rounds_text(summary)
    card = model_card(CONFIG, summary, PREPROCESSING)

    # Assert
    assert said == (
        "rounds 2, 5 had fewer training results than min-fit-results and kept the previous "
        "global model"
    )
    assert f"| skipped rounds | {said} |" in card
    assert skipped_rounds_text(SUMMARY) is None
    assert "skipped rounds" not in model_card(CONFIG, SUMMARY, PREPROCESSING)


def test_the_card_of_an_automatic_run_says_its_rounds_and_the_round_it_kept() -> None:
    # Prepare
    config = {**CONFIG, "rounds": "auto", "max-rounds": 30}
    summary = {**SUMMARY, "rounds": 7, "reason": "converged at round 5", "auto_rounds": AUTO}

    # Execute
    card = model_card(config, summary, PREPROCESSING)

    # Assert
    assert "| rounds | auto |" in card
    assert "| rounds run | 7 (converged at round 5) |" in card
    assert "| kept model | the model of round 5, the best federated_loss (0.3123); " in card


def test_a_run_that_held_validation_rows_out_says_its_clients_evaluated_on_those() -> None:
    # Prepare: the summary of such a run counts each client's validation rows
    summary = SUMMARY | {
        "clients": {"0": {"train": 512, "validation": 128}, "1": {"train": 768, "validation": 192}}
    }

    # Execute
    card = model_card(CONFIG | {"validation-fraction": 0.2}, summary, PREPROCESSING)

    # Assert
    assert "| client | source | training rows | validation rows |" in card
    assert "| 0 | institution=inst-0 | 512 | 128 |" in card
    assert "| metric | federated | centralized | gap | clients' own validation sets |" in card
    assert "test rows |" not in card
