"""The contents of fit and evaluate events, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from fedapp.flower.reports import (
    ClientFailure,
    ClientReport,
    evaluate_fields,
    failed_clients,
    fit_fields,
    short_reason,
    weighted_means,
)
from fedapp.protection.anomaly import round_signals


def test_weighted_means_weigh_by_examples_and_skip_nans() -> None:
    # Prepare: auc 0.5 on 10 examples and 0.9 on 30; one client's loss is NaN
    reports = [
        ClientReport(0, 10, {"auc": 0.5, "loss": float("nan")}),
        ClientReport(1, 30, {"auc": 0.9, "loss": 0.2}),
    ]

    # Execute
    means = weighted_means(reports)

    # Assert: auc (10·0.5 + 30·0.9) / 40 = 0.8; the loss of the one finite client
    assert means == {"auc": pytest.approx(0.8), "loss": pytest.approx(0.2)}


def test_evaluate_fields_list_each_clients_metrics_and_examples() -> None:
    # Prepare: partition-id and train-loss are no evaluation metrics
    reports = [ClientReport(2, 5, {"partition-id": 2, "accuracy": 0.6, "train-loss": 1.0})]

    # Execute
    metrics, clients, extra = evaluate_fields(reports)

    # Assert
    assert metrics == {"accuracy": 0.6}
    assert clients == {"2": {"accuracy": 0.6, "examples": 5}}
    assert extra["reported"] == 1 and extra["failures"] == 0 and extra["failed"] == []


def test_fit_fields_add_each_clients_signals_and_name_the_flagged() -> None:
    # Prepare: four updates around (1, 0) and one ten times as long, from partitions 3..7
    updates = [(1.0, 0.0), (1.1, 0.0), (0.9, 0.0), (1.0, 0.1), (10.0, 0.0)]
    signals = round_signals([np.zeros(2)], [[np.array(u)] for u in updates], None)
    reports = [ClientReport(3 + i, 10, {"train-loss": 0.1 * (i + 1)}) for i in range(5)]

    # Execute
    metrics, clients, extra = fit_fields(reports, signals, [ClientFailure(9, "gone")])

    # Assert: mean loss (0.1 + ... + 0.5) / 5 = 0.3; partition 7 is flagged
    assert metrics == {"train-loss": pytest.approx(0.3)}
    assert extra == {"failures": 1, "failed": [{"partition": 9, "reason": "gone"}], "flagged": [7]}
    assert clients["7"]["update-norm"] == pytest.approx(10.0)
    assert set(clients["3"]) == {"train-loss", "examples", "update-norm", "cosine",
                                 "update-norm-z", "cosine-z"}  # fmt: skip


def test_fit_fields_under_secure_aggregation_score_nobody() -> None:
    # Prepare: a record-level DP client also reports its ε
    reports = [ClientReport(0, 10, {"train-loss": 0.4, "dp-epsilon": 1.2})]

    # Execute
    _, clients, extra = fit_fields(reports, None, [], secure=True)

    # Assert: no signals and no `flagged`: no update was scored
    assert extra == {"failures": 0, "failed": [], "secure-aggregation": True}
    assert clients == {"0": {"train-loss": 0.4, "examples": 10, "epsilon": 1.2}}


def test_evaluate_fields_say_how_many_clients_each_mean_covers() -> None:
    # Prepare: of three clients, two have too few test rows for an AUC
    reports = [
        ClientReport(0, 2, {"auc": 1.0, "loss": 0.1}),
        ClientReport(1, 1, {"auc": float("nan"), "loss": 0.3}),
        ClientReport(2, 1, {"loss": 0.5}),
    ]

    # Execute
    metrics, _, extra = evaluate_fields(reports)

    # Assert: the weighted AUC is one client's
    assert metrics["auc"] == 1.0
    assert extra["reported"] == 3
    assert extra["coverage"]["auc"] == 1 and extra["coverage"]["loss"] == 3


def test_failed_clients_name_the_partitions_that_gave_no_result() -> None:
    # Prepare: partitions 0-2 asked; 0 answered; 1 and 2 died in transport
    died = (
        "Message contains an Error (reason: ActorDiedError: The actor died unexpectedly "
        "before finishing this task.\n\tclass_name: ClientAppActor). It originated during "
        "client-side execution of a message."
    )

    # Execute
    failed = failed_clients([0, 1, 2], [0], {}, [died, died])

    # Assert
    reason = "ActorDiedError: The actor died unexpectedly before finishing this task."
    assert failed == [ClientFailure(1, reason), ClientFailure(2, reason)]


def test_failed_clients_keep_a_named_failure_and_count_the_unknown() -> None:
    # Execute: partition 3 replied with an error; two failures name no asked partition
    failed = failed_clients([3, None], [], {3: "bad data"}, ["ValueError: x", "OSError: y"])

    # Assert
    assert failed[0] == ClientFailure(3, "bad data")
    assert [f.partition_id for f in failed[1:]] == [None, None]
    assert failed[1].reason == "ValueError: x; OSError: y"


def test_short_reason_is_the_first_line() -> None:
    # Execute / Assert
    assert (
        short_reason("Traceback (most recent call last):\nKeyError: 'x'\n  more") == "KeyError: 'x'"
    )


def test_short_reason_names_a_client_error_as_python_would() -> None:
    # Prepare: how Flower's Ray backend words an actor that died
    said = "<class 'ray.exceptions.ActorDiedError'>:<'The actor died unexpectedly.\n\tpid: 7'>"

    # Execute / Assert
    assert short_reason(said) == "ActorDiedError: The actor died unexpectedly."
