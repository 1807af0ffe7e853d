"""The run strategy: Flower's methods delegate to the plugin and record the run (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import MagicMock

import keras
import numpy as np
import pytest
from flwr.common import (
    Code,
    EvaluateRes,
    FitRes,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)

from fedapp import data
from fedapp.errors import UsageError
from fedapp.flower.client_manager import SeededClientManager
from fedapp.flower.strategy import RunStrategy
from fedapp.learning.model import build_model
from fedapp.protection import privacy
from fedapp.runs import Event, Recorder, RunDir
from fedapp.settings import RunConfig

UPDATES = [(3.0, 4.0), (4.0, 3.0), (0.0, 6.0), (8.0, 0.0), (-6.0, -8.0)]


def _strategy(
    cfg: RunConfig,
    tmp_path: Path,
    events: list[Event] | None = None,
    manager: SeededClientManager | None = None,
) -> RunStrategy:
    """A run strategy recording into ``tmp_path``, sharing ``manager`` as Flower's server does."""
    run_dir = RunDir(tmp_path)
    run_dir.write_config(cfg.to_dict())
    run_dir.mark_started(cfg.rounds)
    recorder = Recorder(run_dir, cfg.rounds, None if events is None else events.append)
    return RunStrategy(cfg, recorder, manager or SeededClientManager(cfg.seed))


def _lines(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]


def _fit_res(update: tuple[float, float], pid: int, examples: int = 10, **metrics) -> FitRes:
    return FitRes(
        status=Status(Code.OK, ""),
        parameters=ndarrays_to_parameters([np.array(update, dtype=np.float64)]),
        num_examples=examples,
        metrics={"partition-id": pid, "train-loss": 0.5, **metrics},
    )


def _evaluate_res(pid: int, examples: int, auc: float) -> EvaluateRes:
    metrics = {"partition-id": pid, "auc": auc, "loss": 1 - auc}
    return EvaluateRes(Status(Code.OK, ""), 1 - auc, examples, metrics)


def test_the_strategy_records_signals_whatever_the_plugin(tmp_path: Path) -> None:
    # Prepare: FedAvg over the five updates above (global model at 0, equal example counts);
    # the aggregate update is their mean (1.8, 1.0), written to metrics.jsonl as the reference
    cfg = RunConfig(clients=5, strategy="fedavg")
    events: list[Event] = []
    run = _strategy(cfg, tmp_path, events)
    run.inner = run.plugin.build({}, run.params)
    manager = MagicMock()
    manager.num_available.return_value = 5
    manager.sample.return_value = []
    run.configure_fit(1, ndarrays_to_parameters([np.zeros(2)]), manager)
    # results arrive in any order: recorded by partition id
    results = [(MagicMock(), _fit_res(u, pid)) for pid, u in reversed(list(enumerate(UPDATES)))]
    # Execute
    run.aggregate_fit(1, results, [])
    # Assert
    [event] = _lines(tmp_path)
    assert event["stage"] == "fit" and list(event["clients"]) == ["0", "1", "2", "3", "4"]
    mean = np.mean(UPDATES, axis=0)
    for pid, update in enumerate(UPDATES):
        entry = event["clients"][str(pid)]
        assert entry["update-norm"] == pytest.approx(np.linalg.norm(update))
        want = np.dot(update, mean) / (np.linalg.norm(update) * np.linalg.norm(mean))
        assert entry["cosine"] == pytest.approx(want)
        assert entry["examples"] == 10 and entry["train-loss"] == 0.5
    assert event["flagged"] == [4]
    assert events[0].to_dict()["flagged"] == [4]


def test_set_up_queries_the_clients_and_starts_from_the_seeded_model(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare
    manager = connect(small_cfg)
    run = _strategy(small_cfg, tmp_path, manager=manager)

    # Execute
    initial = run.initialize_parameters(manager)

    # Assert: the model every client starts from, the preprocessing of all clients' statistics
    prep = data.federated_preprocessor(small_cfg)
    seeded = build_model(prep.n_features, params=small_cfg.model_params, seed=small_cfg.seed)
    assert initial is not None
    for got, want in zip(parameters_to_ndarrays(initial), seeded.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert (tmp_path / "preprocessing.json").read_text() == prep.to_json()
    assert manager.partition_of == {"node-9": 0, "node-8": 1, "node-7": 2}
    assert run.largest_client == max(len(data.client_share(small_cfg, p).train) for p in range(3))


def test_every_round_config_carries_the_preprocessing_and_the_round(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare
    manager = connect(small_cfg)
    run = _strategy(small_cfg, tmp_path, manager=manager)
    initial = run.initialize_parameters(manager)

    # Execute
    fits = run.configure_fit(2, initial, manager)
    evaluations = run.configure_evaluate(2, initial, manager)

    # Assert
    assert len(fits) == len(evaluations) == 3
    for _, ins in [*fits, *evaluations]:
        assert ins.config["fedapp-preprocessing"] == run.preprocessing
        assert ins.config["fedapp-round"] == 2
    assert run.configure_fit(3, initial, manager) == []  # past the last round: idle


def test_central_evaluation_runs_every_n_rounds_and_after_the_last(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare: 5 rounds, scored every 2
    cfg = small_cfg.replace(rounds=5, eval_every=2)
    run = _strategy(cfg, tmp_path)
    initial = run.initialize_parameters(connect(cfg))
    weights = parameters_to_ndarrays(initial)

    # Execute: Flower's loop scores round 0 (the initial model), then each round
    scored = [run.evaluate(r, ndarrays_to_parameters(weights)) for r in range(6)]

    # Assert: rounds 0, 2, 4 and the last, 5; events for those alone
    assert [s is not None for s in scored] == [True, False, True, False, True, True]
    central = [e for e in _lines(tmp_path) if e["scope"] == "centralized"]
    assert [e["round"] for e in central] == [0, 2, 4, 5]
    assert run.outcome.federated == central[-1]["metrics"]
    assert run.outcome.complete and run.outcome.rounds_run == 5


def test_the_final_model_is_saved_after_the_last_round(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare: the global model of the last round
    run = _strategy(small_cfg, tmp_path)
    initial = parameters_to_ndarrays(run.initialize_parameters(connect(small_cfg)))
    final = [w + 0.5 for w in initial]
    run.evaluate(1, ndarrays_to_parameters(initial))
    assert not (tmp_path / "model.keras").exists()

    # Execute
    run.evaluate(2, ndarrays_to_parameters(final))

    # Assert
    saved = keras.saving.load_model(tmp_path / "model.keras")
    for got, want in zip(saved.get_weights(), final, strict=True):
        np.testing.assert_allclose(got, want)


def test_the_final_model_comes_with_its_curves_on_the_global_test_set(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare
    run = _strategy(small_cfg, tmp_path)
    initial = run.initialize_parameters(connect(small_cfg))

    # Execute
    run.evaluate(small_cfg.rounds, initial)

    # Assert: the curves of the model saved, on every global test row
    curves = json.loads((tmp_path / "curves.json").read_text())
    assert curves["round"] == small_cfg.rounds
    assert curves["rows"] == len(data.global_test(small_cfg))
    assert sum(curves["confusion"].values()) == curves["rows"]
    assert curves["roc"]["auc"] == pytest.approx(run.outcome.federated["auc"])


def test_a_stopped_run_keeps_its_last_completed_rounds_model_and_scores(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare: 5 rounds asked; round 2's global model exists when the stop comes
    cfg = small_cfg.replace(rounds=5)
    run = _strategy(cfg, tmp_path)
    initial = parameters_to_ndarrays(run.initialize_parameters(connect(cfg)))
    second = [w - 0.25 for w in initial]
    run.evaluate(1, ndarrays_to_parameters(initial))
    run.evaluate(2, ndarrays_to_parameters(second))
    assert not (tmp_path / "model.keras").exists()

    # Execute
    kept = run.keep_stopped()

    # Assert: round 2's model, its central scores, and curves of the same round
    assert kept is not None and (kept.rounds, kept.rounds_run) == (2, 2)
    central = [e for e in _lines(tmp_path) if e["scope"] == "centralized"]
    assert kept.federated == central[-1]["metrics"] and central[-1]["round"] == 2
    saved = keras.saving.load_model(tmp_path / "model.keras")
    for got, want in zip(saved.get_weights(), second, strict=True):
        np.testing.assert_allclose(got, want)
    assert json.loads((tmp_path / "curves.json").read_text())["round"] == 2


def test_a_run_stopped_before_any_round_keeps_nothing(tmp_path: Path) -> None:
    # Execute / Assert
    assert _strategy(RunConfig(clients=2), tmp_path).keep_stopped() is None


def test_federated_evaluation_is_recorded_per_client_and_moves_the_status(
    tmp_path: Path,
) -> None:
    # Prepare: auc 0.5 on 10 examples and 0.9 on 30, arriving out of partition order
    cfg = RunConfig(clients=2, rounds=2)
    run = _strategy(cfg, tmp_path)
    results = [(MagicMock(), _evaluate_res(1, 30, 0.9)), (MagicMock(), _evaluate_res(0, 10, 0.5))]

    # Execute
    loss, metrics = run.aggregate_evaluate(2, results, [])

    # Assert: (10·0.5 + 30·0.9) / 40 = 0.8
    assert metrics["auc"] == pytest.approx(0.8) and loss == pytest.approx(0.2)
    [event] = _lines(tmp_path)
    assert (event["stage"], event["scope"], event["failures"]) == ("evaluate", "federated", 0)
    assert list(event["clients"]) == ["0", "1"] and event["clients"]["1"]["examples"] == 30
    status = json.loads((tmp_path / "status.json").read_text())
    assert (status["state"], status["round"]) == ("running", 2)
    assert run.outcome.federated_evaluation == metrics


@pytest.mark.parametrize(("validation", "held"), [(0.0, "test"), (0.2, "validation")])
def test_the_outcome_names_the_rows_the_clients_evaluated_on(
    tmp_path: Path, validation: float, held: str
) -> None:
    # Prepare
    run = _strategy(RunConfig(clients=2, rounds=2, validation_fraction=validation), tmp_path)
    results = [(MagicMock(), _evaluate_res(0, 10, 0.5)), (MagicMock(), _evaluate_res(1, 30, 0.9))]

    # Execute
    run.aggregate_evaluate(1, results, [])

    # Assert
    assert run.outcome.clients == {"0": {held: 10}, "1": {held: 30}}


def test_a_round_with_too_few_results_is_skipped_and_the_run_goes_on(tmp_path: Path) -> None:
    # Prepare: 3 clients asked, min-fit-results 2; only partition 0 answers
    run = _strategy(RunConfig(clients=3, rounds=3, min_fit_results=2), tmp_path)
    _asked(run, "fit", [0, 1, 2])
    lost = RuntimeError("lost")

    # Execute
    aggregated, _ = run.aggregate_fit(1, [(MagicMock(), _fit_res((1.0, 0.0), 0))], [lost, lost])

    # Assert: no aggregate (Flower keeps the previous model); the round says why and who failed
    assert aggregated is None
    run.inner.aggregate_fit.assert_not_called()
    (event,) = _lines(tmp_path)
    assert "1 of 3 clients sent a result, fewer than min-fit-results (2)" in event["skipped"]
    assert [f["partition"] for f in event["failed"]] == [1, 2]


def test_a_run_whose_every_round_was_skipped_fails_at_its_last_round(tmp_path: Path) -> None:
    # Prepare
    run = _strategy(RunConfig(clients=2, rounds=2), tmp_path)
    _asked(run, "fit", [0, 1])

    # Execute: round 1 skipped, the run goes on; round 2, the last, skipped too
    assert run.aggregate_fit(1, [], [RuntimeError("lost")]) == (None, {})
    with pytest.raises(
        RuntimeError, match=r"no round of the run had enough results.*round 2: 1 failed"
    ):
        run.aggregate_fit(2, [], [RuntimeError("lost")])


def test_a_run_whose_aggregations_all_gave_up_fails_at_its_last_round(tmp_path: Path) -> None:
    # Prepare: SecAgg+ gives up on a round before aggregate_fit (it cannot unmask)
    run = _strategy(RunConfig(clients=2, rounds=2), tmp_path)

    # Execute: round 1 skipped, the run goes on; round 2, the last, skipped too
    run.skip(1, "could not unmask the round's sum")
    with pytest.raises(RuntimeError, match=r"no round of the run had enough results"):
        run.skip(2, "could not unmask the round's sum")

    # Assert: both rounds say why
    assert [e["skipped"] for e in _lines(tmp_path)] == ["could not unmask the round's sum"] * 2


def test_a_round_no_client_evaluated_is_recorded_as_skipped(tmp_path: Path) -> None:
    # Prepare
    run = _strategy(RunConfig(clients=2, rounds=3), tmp_path)
    _asked(run, "evaluate", [0, 1])

    # Execute
    loss, metrics = run.aggregate_evaluate(1, [], [RuntimeError("lost"), RuntimeError("lost")])

    # Assert: no score, the round is done and says why
    assert (loss, metrics) == (None, {})
    (event,) = _lines(tmp_path)
    assert event["skipped"].startswith("no client evaluated (2 failed")
    assert [f["partition"] for f in event["failed"]] == [0, 1]
    assert json.loads((tmp_path / "status.json").read_text())["round"] == 1


def test_injected_faults_are_recorded_with_the_round(tmp_path: Path) -> None:
    # Prepare: half the clients drop out, the rest are late, drawn from the seed
    cfg = RunConfig(clients=6, rounds=2, dropout_rate=0.5, straggler_rate=0.99)
    run = _strategy(cfg, tmp_path)
    _asked(run, "fit", list(range(6)))
    plan = run.faults.of_round(1, range(6))
    answered = [p for p in range(6) if p not in plan["dropped"]]

    # Execute
    results = [(MagicMock(), _fit_res((1.0, 0.0), p)) for p in answered]
    run.aggregate_fit(1, results, [RuntimeError("dropped")] * len(plan["dropped"]))

    # Assert: the event names them; the plan split the six between the two faults
    (event,) = _lines(tmp_path)
    assert (event["dropped"], event["late"]) == (plan["dropped"], plan["late"])
    assert sorted(plan["dropped"] + plan["late"]) == list(range(6))
    assert plan["dropped"] and plan["late"]


def _asked(run: RunStrategy, stage: str, partitions: list[int]) -> None:
    """Let the run strategy choose the clients of ``partitions`` for a round's ``stage``."""
    proxies = [MagicMock(cid=f"node-{p}") for p in partitions]
    run.client_manager.partition_of.update({f"node-{p}": p for p in partitions})
    run.inner = MagicMock()
    run.inner.configure_fit.return_value = [(proxy, MagicMock(config={})) for proxy in proxies]
    run.inner.configure_evaluate.return_value = run.inner.configure_fit.return_value
    run.inner.aggregate_fit.return_value = (None, {})
    configure = run.configure_fit if stage == "fit" else run.configure_evaluate
    configure(1, ndarrays_to_parameters([np.zeros(2)]), MagicMock())


def test_clients_that_died_are_named_in_the_round_and_counted_in_the_summary(
    tmp_path: Path,
) -> None:
    # Prepare: three clients asked; two die (their processes killed) in both stages
    run = _strategy(RunConfig(clients=3), tmp_path)
    died = RuntimeError("ActorDiedError: The actor died unexpectedly before finishing this task.")

    # Execute
    _asked(run, "fit", [0, 1, 2])
    run.aggregate_fit(1, [(MagicMock(), _fit_res((1.0, 0.0), 0))], [died, died])
    _asked(run, "evaluate", [0, 1, 2])
    run.aggregate_evaluate(1, [(MagicMock(), _evaluate_res(0, 10, 0.7))], [died, died])

    # Assert: each event says who failed and why; the outcome counts client-rounds once
    fit, evaluate = _lines(tmp_path)
    for event in (fit, evaluate):
        assert event["failures"] == 2
        assert [f["partition"] for f in event["failed"]] == [1, 2]
        assert "actor died" in event["failed"][0]["reason"]
    assert evaluate["reported"] == 1 and evaluate["coverage"]["auc"] == 1
    assert run.outcome.failed_client_rounds == 2


def test_record_dp_ends_the_run_after_the_round_every_budget_ran_out(tmp_path: Path) -> None:
    # Prepare: both clients declined to train in round 2 of 5: their budgets are spent
    cfg = RunConfig(clients=2, rounds=5, dp="record", target_epsilon=3.0)
    run = _strategy(cfg, tmp_path)
    spent = {privacy.SPENT_KEY: True}
    results = [
        (MagicMock(), _fit_res((0.0, 0.0), 0, 0, **{privacy.EPSILON_KEY: 2.5}, **spent)),
        (MagicMock(), _fit_res((0.0, 0.0), 1, 0, **{privacy.EPSILON_KEY: 2.9}, **spent)),
    ]

    # Execute
    aggregated = run.aggregate_fit(2, results, [])

    # Assert: nothing to aggregate, ε recorded, round 2 is the last
    assert aggregated == (None, {})
    [event] = _lines(tmp_path)
    assert (event["round"], event["stage"]) == (2, "privacy")
    assert event["metrics"] == {"epsilon": 2.9, "delta": 1e-5}
    outcome = run.outcome
    assert (outcome.rounds, outcome.stop_reason) == (2, privacy.BUDGET_REACHED)
    assert outcome.privacy is not None and outcome.privacy["clients"] == {"0": 2.5, "1": 2.9}
    assert run.configure_fit(3, ndarrays_to_parameters([np.zeros(2)]), MagicMock()) == []


def _answer_closing(run: RunStrategy, server_round: int, manager: SeededClientManager) -> list:
    """Each connected client's real answer to the closing query of ``server_round``."""
    asked = run.configure_evaluate(server_round, ndarrays_to_parameters([]), manager)
    results = []
    for proxy, ins in asked:
        loss, examples, metrics = proxy.client.evaluate(
            parameters_to_ndarrays(ins.parameters), ins.config
        )
        results.append((proxy, EvaluateRes(Status(Code.OK, ""), loss, examples, metrics)))
    return results


def test_the_closing_round_follows_the_last_and_records_no_round(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare: a run that ends after round 1 of 2 (as a privacy budget or convergence would)
    cfg = small_cfg.replace(threshold="auto", personalize_epochs=1)
    manager = connect(cfg)
    run = _strategy(cfg, tmp_path, manager=manager)
    assert run.num_rounds == cfg.rounds + 1
    initial = run.initialize_parameters(manager)
    run.plan.last_round = 1
    run.evaluate(1, initial)
    before = (tmp_path / "metrics.jsonl").read_text()
    status = json.loads((tmp_path / "status.json").read_text())

    # Execute
    assert run.configure_fit(2, initial, manager) == []
    assert run.evaluate(2, initial) is None
    results = _answer_closing(run, 2, manager)
    run.aggregate_evaluate(2, results, [])

    # Assert: every client answered about the kept model; no round was added
    assert len(results) == cfg.clients
    assert (tmp_path / "metrics.jsonl").read_text() == before
    assert json.loads((tmp_path / "status.json").read_text())["round"] == status["round"]
    outcome = run.outcome
    assert (outcome.rounds, outcome.rounds_run) == (1, 1)
    assert outcome.threshold is not None and outcome.threshold["source"] == "calibrated"
    assert outcome.threshold["clients"] == cfg.clients
    test_rows = sum(len(data.client_share(cfg, pid).test) for pid in range(cfg.clients))
    assert outcome.threshold["rows"] == test_rows
    assert outcome.personalized is not None
    assert set(outcome.personalized["clients"]) == {"0", "1", "2"}
    # Asked once only: the idle rounds after it ask nothing.
    assert run.configure_evaluate(3, initial, manager) == []


def test_the_pooled_counts_pick_the_threshold_of_the_global_test_set(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare: the kept model, scored centrally on the union of the clients' held-out rows
    from fedapp.learning import threshold
    from fedapp.learning.model import predict

    cfg = small_cfg.replace(threshold="auto", threshold_metric="youden")
    manager = connect(cfg)
    run = _strategy(cfg, tmp_path, manager=manager)
    initial = run.initialize_parameters(manager)
    run.evaluate(1, initial)
    run.evaluate(2, initial)
    assert run.central is not None and run.central.test is not None
    x, y = run.central.test
    run.central.model.set_weights(parameters_to_ndarrays(initial))
    output = predict(run.central.model, x)
    central = threshold.calibrate_predictions(y, output, cfg.threshold_metric)

    # Execute
    run.aggregate_evaluate(3, _answer_closing(run, 3, manager), [])

    # Assert
    found = run.outcome.threshold
    assert found is not None and (found["value"], found["rows"]) == (central.value, len(y))
    assert found["metrics"] == pytest.approx(central.metrics)
    assert run.outcome.personalized is None


def test_a_fixed_threshold_is_scored_and_kept_by_a_stopped_run(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare
    cfg = small_cfg.replace(threshold=0.3)
    manager = connect(cfg)
    run = _strategy(cfg, tmp_path, manager=manager)
    initial = run.initialize_parameters(manager)
    run.evaluate(1, initial)

    # Execute
    stopped = run.keep_stopped()
    run.evaluate(2, initial)
    run.aggregate_evaluate(3, _answer_closing(run, 3, manager), [])

    # Assert
    assert stopped is not None and stopped.threshold == {"value": 0.3, "source": "fixed"}
    found = run.outcome.threshold
    assert found is not None and (found["value"], found["source"]) == (0.3, "fixed")
    assert set(found["metrics"]) == {"accuracy", "f1", "precision", "recall"}


def test_a_run_without_threshold_or_fine_tuning_has_no_closing_round(
    small_cfg: RunConfig, tmp_path: Path
) -> None:
    run = _strategy(small_cfg, tmp_path)
    assert run.num_rounds == small_cfg.rounds and not run.is_closing(small_cfg.rounds + 1)


# --- rounds auto ------------------------------------------------------------


def _auto_rounds(
    run: RunStrategy, initial: list[np.ndarray], aucs: list[float], first: int = 1
) -> list[list[np.ndarray]]:
    """Play rounds ``first``, ... as Flower's loop does: central evaluation, then the clients'.

    Round ``r``'s global weights are the initial ones plus ``r / 10``; the
    clients report ``aucs`` (their loss ``1 - auc``). Returns each round's weights.
    """
    played = []
    for r, auc in enumerate(aucs, start=first):
        weights = [w + r / 10 for w in initial]
        run.evaluate(r, ndarrays_to_parameters(weights))
        results = [(MagicMock(), _evaluate_res(pid, 30, auc)) for pid in range(3)]
        run.aggregate_evaluate(r, results, [])
        played.append(weights)
    return played


def test_an_automatic_run_ends_patience_rounds_after_its_best_and_keeps_that_model(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare: the clients' loss is best in round 2, then no better for 2 rounds
    cfg = small_cfg.replace(rounds="auto", max_rounds=30, patience=2)
    run = _strategy(cfg, tmp_path)
    initial = parameters_to_ndarrays(run.initialize_parameters(connect(cfg)))

    # Execute
    played = _auto_rounds(run, initial, [0.4, 0.5, 0.45, 0.48])

    # Assert: round 4 is the last, round 2's model is kept with its scores
    assert (run.plan.last_round, run.plan.stop_reason) == (4, "converged at round 2")
    saved = keras.saving.load_model(tmp_path / "model.keras")
    for got, want in zip(saved.get_weights(), played[1], strict=True):
        np.testing.assert_allclose(got, want)
    assert json.loads((tmp_path / "curves.json").read_text())["round"] == 2
    events = {(e["round"], e["scope"]): e["metrics"] for e in _lines(tmp_path)}
    outcome = run.outcome
    assert (outcome.rounds, outcome.rounds_run, outcome.model_round) == (4, 4, 2)
    assert outcome.complete and outcome.kept_round == 2
    assert outcome.federated == events[(2, "centralized")]
    assert outcome.federated_evaluation == events[(2, "federated")]
    assert outcome.federated_evaluation["loss"] == pytest.approx(0.5)
    assert outcome.auto_rounds == {
        "monitor": "federated_loss", "best_round": 2, "best": pytest.approx(0.5),
        "rounds_run": 4, "converged": True, "patience": 2, "min_delta": 0.0, "max_rounds": 30,
    }  # fmt: skip


def test_the_rounds_after_convergence_are_idle_and_write_nothing(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare: converged at round 2 (best round 1, patience 1)
    cfg = small_cfg.replace(rounds="auto", max_rounds=200, patience=1)
    run = _strategy(cfg, tmp_path)
    manager = connect(cfg)
    initial = run.initialize_parameters(manager)
    _auto_rounds(run, parameters_to_ndarrays(initial), [0.5, 0.5])
    written = (tmp_path / "metrics.jsonl").read_text()
    kept = (tmp_path / "model.keras").stat().st_mtime_ns

    # Execute: Flower's loop runs on to round 200
    idle = [
        (run.configure_fit(r, initial, manager), run.evaluate(r, initial),
         run.configure_evaluate(r, initial, manager))
        for r in range(3, 201)
    ]  # fmt: skip

    # Assert
    assert run.plan.stop_reason == "converged at round 1"
    assert all(step == ([], None, []) for step in idle)
    assert (tmp_path / "metrics.jsonl").read_text() == written
    assert (tmp_path / "model.keras").stat().st_mtime_ns == kept
    assert run.outcome.rounds == run.outcome.rounds_run == 2


@pytest.mark.parametrize(
    ("aucs", "model_round"),
    [([0.6, 0.7, 0.65], 2), ([float("nan")] * 3, None)],
    ids=["best-round", "no-finite-score"],
)
def test_an_automatic_run_that_does_not_converge_keeps_its_best_round_at_max_rounds(
    small_cfg: RunConfig, connect, tmp_path: Path, aucs: list[float], model_round: int | None
) -> None:
    # Prepare: without any finite AUC (one class per client) there is no best: the last is kept
    cfg = small_cfg.replace(rounds="auto", max_rounds=3, patience=5, monitor="federated_auc")
    run = _strategy(cfg, tmp_path)
    initial = parameters_to_ndarrays(run.initialize_parameters(connect(cfg)))

    # Execute
    played = _auto_rounds(run, initial, aucs)

    # Assert
    outcome = run.outcome
    assert (outcome.rounds, outcome.stop_reason, outcome.model_round) == (3, None, model_round)
    assert outcome.auto_rounds is not None and outcome.auto_rounds["converged"] is False
    assert outcome.federated is not None
    saved = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(saved.get_weights()[0], played[outcome.kept_round - 1][0])


def test_an_automatic_run_can_watch_the_servers_test_set(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare: central AUCs best in round 1; the clients' loss keeps falling (not watched)
    cfg = small_cfg.replace(rounds="auto", max_rounds=10, patience=2, monitor="central_auc")
    run = _strategy(cfg, tmp_path)
    initial = parameters_to_ndarrays(run.initialize_parameters(connect(cfg)))
    assert run.central is not None
    central = iter([{"auc": 0.8, "loss": 0.4}, {"auc": 0.7, "loss": 0.3},
                    {"auc": 0.8, "loss": 0.2}])  # fmt: skip
    run.central.score = lambda weights: dict(next(central))

    # Execute
    _auto_rounds(run, initial, [0.6, 0.7, 0.8])

    # Assert: converged at round 3 on the central AUC; round 1's scores are the outcome's
    assert (run.plan.last_round, run.plan.stop_reason) == (3, "converged at round 1")
    outcome = run.outcome
    assert outcome.federated == {"auc": 0.8, "loss": 0.4}
    assert outcome.federated_evaluation is not None
    assert outcome.federated_evaluation["auc"] == pytest.approx(0.6)


def test_a_monitor_the_task_does_not_score_fails_the_set_up(connect, tmp_path: Path) -> None:
    # Prepare: settings alone cannot tell (the task is settled by the clients' statistics)
    cfg = RunConfig(clients=3, demo_rows=900, seed=7, rounds="auto", max_rounds=5,
                    target="next_year_spend", monitor="federated_auc")  # fmt: skip
    run = _strategy(cfg, tmp_path)

    # Execute / Assert
    with pytest.raises(UsageError, match="monitor federated_auc is not a score of a regression"):
        run.initialize_parameters(connect(cfg))


def test_a_stopped_automatic_run_keeps_its_best_round_so_far(
    small_cfg: RunConfig, connect, tmp_path: Path
) -> None:
    # Prepare: best in round 1 of the 3 completed when the stop comes
    cfg = small_cfg.replace(rounds="auto", max_rounds=30, patience=5)
    run = _strategy(cfg, tmp_path)
    initial = parameters_to_ndarrays(run.initialize_parameters(connect(cfg)))
    played = _auto_rounds(run, initial, [0.6, 0.55, 0.5])

    # Execute
    kept = run.keep_stopped()

    # Assert: round 1's model and scores, as the stopped run's summary will say
    assert kept is not None and (kept.rounds, kept.rounds_run) == (1, 1)
    events = {(e["round"], e["scope"]): e["metrics"] for e in _lines(tmp_path)}
    assert kept.federated == events[(1, "centralized")]
    assert kept.federated_evaluation == events[(1, "federated")]
    saved = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(saved.get_weights()[0], played[0][0])
