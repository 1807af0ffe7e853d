"""The typed events of metrics.jsonl: written as the readers expect, read back whole."""

from __future__ import annotations

from typing import Any

import pytest

from fedapp.runs import Event, Scope, Stage


def test_to_dict_is_the_json_line() -> None:
    # Prepare
    event = Event(2, Stage.FIT, Scope.FEDERATED, {"train-loss": 0.3}, {"1": {"examples": 40}},
                  time=4.25, extra={"failures": 0})  # fmt: skip

    # Execute
    line = event.to_dict()

    # Assert
    assert line == {
        "round": 2, "stage": "fit", "scope": "federated", "metrics": {"train-loss": 0.3},
        "clients": {"1": {"examples": 40}}, "failures": 0, "time": 4.25,
    }  # fmt: skip
    assert type(line["stage"]) is str and type(line["scope"]) is str


def test_to_dict_leaves_out_empty_clients() -> None:
    # Prepare
    event = Event(0, Stage.EVALUATE, Scope.CENTRALIZED, {"auc": 0.5})

    # Execute
    line = event.to_dict()

    # Assert
    assert "clients" not in line


def test_from_dict_reads_back_what_to_dict_wrote() -> None:
    # Prepare
    event = Event(3, Stage.PRIVACY, Scope.FEDERATED, {"epsilon": 1.2}, {"0": {"epsilon": 1.1}},
                  time=9.0, extra={"flagged": ["2"]})  # fmt: skip

    # Execute
    back = Event.from_dict(event.to_dict())

    # Assert
    assert back == event
    assert back.stage is Stage.PRIVACY and back.scope is Scope.FEDERATED


def test_from_dict_defaults_missing_optional_keys() -> None:
    # Execute
    event = Event.from_dict({"round": 1, "stage": "evaluate", "scope": "centralized"})

    # Assert
    assert (event.metrics, event.clients, event.time, event.extra) == ({}, {}, 0.0, {})


@pytest.mark.parametrize(
    "line",
    [
        {"round": 1, "metrics": {}},
        {"stage": "fit", "scope": "federated"},
        {"round": 1, "stage": "train", "scope": "federated"},
        {"round": 1, "stage": "fit", "scope": "everyone"},
        {"round": None, "stage": "fit", "scope": "federated"},
    ],
    ids=["no-stage", "no-round", "odd-stage", "odd-scope", "null-round"],
)
def test_from_dict_refuses_a_line_that_is_not_an_event(line: dict[str, Any]) -> None:
    # Execute / Assert
    with pytest.raises(ValueError):
        Event.from_dict(line)
