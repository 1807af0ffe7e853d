"""Baselines: the centralized model and each client's local-only model."""

from __future__ import annotations

import math

import pytest

from fedapp import data
from fedapp.data.stats import Preprocessor
from fedapp.learning.baselines import (
    GlobalTestTrainer,
    centralized,
    gap,
    local_only,
    shuffle_seed,
)
from fedapp.learning.model import build_model, evaluate, train
from fedapp.runs import METRIC_NAMES
from fedapp.settings import RunConfig

CFG = RunConfig(clients=3, rounds=2, demo_rows=900, seed=7)


@pytest.fixture(scope="module")
def prep() -> Preprocessor:
    """The federated preprocessing, fitted as the server fits it."""
    return data.federated_preprocessor(CFG)


@pytest.fixture(scope="module")
def trainer(prep: Preprocessor) -> GlobalTestTrainer:
    return GlobalTestTrainer(CFG, prep)


@pytest.fixture(scope="module")
def local(prep: Preprocessor, trainer: GlobalTestTrainer) -> dict[str, dict[str, float]]:
    return local_only(CFG, prep, trainer)


def _alone(prep: Preprocessor, pid: int) -> dict[str, float]:
    """Client ``pid``'s model by hand: a fresh model trained on its rows only."""
    x, y = prep.transform(data.client_share(CFG, pid).train)
    model = build_model(prep.n_features, CFG.learning_rate, CFG.seed, params=CFG.model_params)
    train(
        model, x, y,
        epochs=CFG.rounds * CFG.local_epochs, batch_size=CFG.batch_size,
        seed=shuffle_seed(CFG, pid),
    )  # fmt: skip
    return evaluate(model, *prep.transform(data.global_test(CFG)))


def test_local_only_scores_every_client_with_every_metric(local) -> None:
    assert list(local) == ["0", "1", "2"]
    for metrics in local.values():
        assert tuple(metrics) == METRIC_NAMES
        assert all(math.isfinite(v) for v in metrics.values())  # global test holds both classes
    # Different rows, different models.
    assert len({m["loss"] for m in local.values()}) == 3


@pytest.mark.parametrize("pid", [0, 2])
def test_local_only_model_is_training_on_that_clients_rows(local, prep, pid: int) -> None:
    # The shared, reused model (trained for clients 0 and 1 before client 2)
    # scores exactly what a fresh model trained on that client alone scores:
    # training is deterministic (seeded order, one thread), so equality is exact.
    assert local[str(pid)] == _alone(prep, pid)


def test_reused_trainer_gives_the_standalone_centralized_baseline(local, prep, trainer) -> None:
    # `local` ran first on `trainer`: no weights or optimizer state carry over.
    shared = centralized(CFG, prep, trainer)
    assert shared == centralized(CFG, prep)
    assert all(shared["loss"] != m["loss"] for m in local.values())


def test_baseline_seeds_are_distinct_streams() -> None:
    seeds = [shuffle_seed(CFG)] + [shuffle_seed(CFG, pid) for pid in range(CFG.clients)]
    assert len({tuple(s) for s in seeds}) == len(seeds)
    # Above any round, so no baseline replays a client's federated row order.
    assert all(s[1] > 10_000 for s in seeds)


def test_gap_is_federated_minus_centralized_per_metric() -> None:
    # Execute
    got = gap({"auc": 0.85, "loss": 0.40}, {"auc": 0.90, "loss": 0.35, "f1": 0.7})

    # Assert: per metric of the federated model, what federation costs
    assert got == {"auc": pytest.approx(-0.05), "loss": pytest.approx(0.05)}


def test_an_automatic_runs_baselines_train_as_many_rounds_as_its_kept_model(prep, trainer) -> None:
    # Prepare: an automatic run (at most 30 rounds) whose kept model is of round 2
    auto = CFG.replace(rounds="auto", max_rounds=30)

    # Execute
    matched = GlobalTestTrainer(auto, prep, rounds=2)

    # Assert: as a run of 2 fixed rounds
    assert (matched.rounds, trainer.rounds) == (2, CFG.rounds)
    assert centralized(auto, prep, matched) == centralized(CFG, prep, trainer)
