"""The client's side of the privacy ledger, checked on what it actually returns."""

import json

import numpy as np
import pytest
from flwr.common import RecordDict

from fedapp import data
from fedapp.flower.client_app import PREPROCESSING_KEY, ROUND_KEY, STATISTICS_QUERY, ChurnClient
from fedapp.flower.drift import ScaffoldRound
from fedapp.flower.protocol import CLOSING_EPOCHS, CLOSING_THRESHOLDS, COUNTS_KEY, FINE_TUNED_KEY
from fedapp.learning import threshold
from fedapp.learning.drift import (
    LOCAL_STEPS_QUERY,
    SCAFFOLD_CONTROL_KEY,
    SCAFFOLD_DELTA_KEY,
    SCAFFOLD_LEARNING_RATE_KEY,
    local_steps,
    pack,
    unpack,
)
from fedapp.learning.model import build_model
from fedapp.settings import RunConfig

ALLOWED_METRICS = {
    "partition-id", "train-loss",
    "auc", "pr_auc", "accuracy", "f1", "precision", "recall", "loss",
}  # fmt: skip


@pytest.fixture
def client(small_cfg: RunConfig) -> ChurnClient:
    return ChurnClient(small_cfg, partition_id=1)


@pytest.fixture
def round_config(small_cfg: RunConfig) -> dict:
    prep = data.federated_preprocessor(small_cfg)
    return {PREPROCESSING_KEY: prep.to_json(), ROUND_KEY: 1, "n_features": prep.n_features}


def test_statistics_answer_holds_no_row_and_no_id(client: ChurnClient, small_cfg) -> None:
    answer = client.get_properties({STATISTICS_QUERY: True})
    assert set(answer) == {"partition-id", "schema", "statistics"}
    stats = json.loads(answer["statistics"])
    rows = data.client_share(small_cfg, 1).train
    assert stats["rows"] == len(rows)
    # Per numeric column: exactly count, mean and sum of squared deviations.
    assert all(len(v) == 3 for v in stats["numeric"].values())
    # Per category: counts only, and only those of at least min-category-count.
    assert all(n >= small_cfg.min_category_count for c in stats["categorical"].values()
               for n in c.values())  # fmt: skip
    # No individual value travels: near-unique balances never appear in the answer.
    text = json.dumps(answer)
    balances = rows["balance"][rows["balance"] > 0].head(50)
    assert not any(f"{b:.2f}" in text or repr(b) in text for b in balances)
    # Without the query a client only says who it is.
    assert client.get_properties({}) == {"partition-id": 1}


def test_fit_returns_weights_count_and_allowed_metrics(client, round_config, small_cfg) -> None:
    start = build_model(
        round_config["n_features"], params=small_cfg.model_params, seed=0
    ).get_weights()
    weights, examples, metrics = client.fit(start, round_config)
    assert [w.shape for w in weights] == [w.shape for w in start]
    assert any(not np.array_equal(a, b) for a, b in zip(weights, start, strict=True))
    assert examples == len(data.client_share(small_cfg, 1).train)
    assert set(metrics) <= ALLOWED_METRICS and metrics["partition-id"] == 1


def test_evaluate_scores_own_test_rows(client, round_config, small_cfg) -> None:
    start = build_model(
        round_config["n_features"], params=small_cfg.model_params, seed=0
    ).get_weights()
    loss, examples, metrics = client.evaluate(start, round_config)
    assert examples == len(data.client_share(small_cfg, 1).test)
    assert set(metrics) == ALLOWED_METRICS - {"train-loss"}
    assert loss == metrics["loss"] and 0 <= metrics["accuracy"] <= 1


def test_fit_is_reproducible_across_client_objects(round_config, small_cfg) -> None:
    start = build_model(
        round_config["n_features"], params=small_cfg.model_params, seed=0
    ).get_weights()
    a, _, _ = ChurnClient(small_cfg, 2).fit(start, round_config)
    ChurnClient(small_cfg, 0).fit(start, round_config)  # the process's model is shared
    b, _, _ = ChurnClient(small_cfg, 2).fit(start, round_config)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


def test_closing_reply_holds_counts_and_fine_tuned_scores(client, round_config, small_cfg) -> None:
    # Prepare
    start = build_model(
        round_config["n_features"], params=small_cfg.model_params, seed=0
    ).get_weights()
    grid = [0.25, 0.5, 0.75]
    closing = {**round_config, CLOSING_THRESHOLDS: json.dumps(grid), CLOSING_EPOCHS: 2}
    _, _, plain = client.evaluate(start, round_config)

    # Execute
    loss, examples, metrics = client.evaluate(start, closing)
    _, _, after = client.evaluate(start, round_config)

    # Assert
    test_rows = len(data.client_share(small_cfg, 1).test)
    assert examples == test_rows and loss == plain["loss"]
    assert set(metrics) == ALLOWED_METRICS - {"train-loss"} | {COUNTS_KEY, FINE_TUNED_KEY}
    counts = threshold.decode_counts(metrics[COUNTS_KEY], len(grid))
    assert (counts.sum(axis=1) == test_rows).all()
    # At 0.5 the counts say what the plain evaluation's thresholded scores say.
    assert threshold.count_metrics(counts[1])["accuracy"] == pytest.approx(plain["accuracy"])
    tuned = json.loads(metrics[FINE_TUNED_KEY])
    assert set(tuned) == ALLOWED_METRICS - {"train-loss", "partition-id"}
    assert tuned["loss"] != plain["loss"]  # it trained
    # The process's shared model is back at the global weights.
    assert after == plain


def test_closing_reply_without_a_grid_only_fine_tunes(client, round_config, small_cfg) -> None:
    # Prepare
    start = build_model(
        round_config["n_features"], params=small_cfg.model_params, seed=0
    ).get_weights()

    # Execute
    _, _, metrics = client.evaluate(
        start, {**round_config, CLOSING_THRESHOLDS: "", CLOSING_EPOCHS: 1}
    )

    # Assert
    assert COUNTS_KEY not in metrics and FINE_TUNED_KEY in metrics


def test_with_validation_rows_the_rounds_score_them_and_calibration_counts_them(
    small_cfg: RunConfig,
) -> None:
    # Prepare
    cfg = small_cfg.replace(validation_fraction=0.25)
    prep = data.federated_preprocessor(cfg)
    config = {PREPROCESSING_KEY: prep.to_json(), ROUND_KEY: 1}
    start = build_model(prep.n_features, params=cfg.model_params, seed=0).get_weights()
    share = data.client_share(cfg, 1)
    client = ChurnClient(cfg, partition_id=1)

    # Execute
    _, examples, _ = client.evaluate(start, config)
    _, closing_examples, reply = client.evaluate(start, {**config, CLOSING_THRESHOLDS: "[0.5]"})

    # Assert: a round scores the validation rows; the closing scores the test
    # rows and counts the validation rows
    assert examples == len(share.validation)
    assert closing_examples == len(share.test)
    [counts] = threshold.decode_counts(str(reply[COUNTS_KEY]), 1)
    assert sum(counts) == len(share.validation)


def test_fit_reports_its_local_steps_when_asked(client, round_config, small_cfg) -> None:
    # Prepare
    start = build_model(
        round_config["n_features"], params=small_cfg.model_params, seed=0
    ).get_weights()
    rows = len(data.client_share(small_cfg, 1).train)

    # Execute
    _, _, asked = client.fit(start, {**round_config, LOCAL_STEPS_QUERY: True})

    # Assert: epochs * ceil(rows / batch), one step per batch
    assert asked["local-steps"] == small_cfg.local_epochs * -(-rows // small_cfg.batch_size)


def test_scaffold_fit_sends_delta_c_and_keeps_c_i_in_the_node_state(
    round_config, small_cfg
) -> None:
    # Prepare: c = 0 and no c_i yet (a first round)
    start = build_model(
        round_config["n_features"], params=small_cfg.model_params, seed=0
    ).get_weights()
    rate = 0.05
    config = {
        **round_config,
        SCAFFOLD_CONTROL_KEY: pack([np.zeros_like(w) for w in start]),
        SCAFFOLD_LEARNING_RATE_KEY: rate,
    }
    state = RecordDict()
    rows = len(data.client_share(small_cfg, 1).train)
    steps = local_steps(rows, small_cfg.batch_size, small_cfg.local_epochs)

    # Execute
    weights, examples, metrics = ChurnClient(small_cfg, 1, state=state).fit(start, config)

    # Assert: the weights as ever; c_i+ = (x - y_i) / (K eta_l), sent as c_i+ - 0, kept
    assert [w.shape for w in weights] == [w.shape for w in start] and examples == rows
    assert set(metrics) == {"partition-id", "train-loss", SCAFFOLD_DELTA_KEY}
    delta = unpack(metrics[SCAFFOLD_DELTA_KEY], start)
    kept = ScaffoldRound.of(config, start, state)
    assert kept is not None
    for d, c_i, x, y in zip(delta, kept.own, start, weights, strict=True):
        np.testing.assert_allclose(d, (x - y) / (steps * rate), rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(c_i, d)
    # The node's next client object starts from that c_i: its correction is -c_i.
    again, _, _ = ChurnClient(small_cfg, 1, state=state).fit(start, config)
    fresh, _, _ = ChurnClient(small_cfg, 1, state=RecordDict()).fit(start, config)
    assert any(not np.allclose(a, b) for a, b in zip(again, fresh, strict=True))
    for a, b in zip(fresh, weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_scaffold_fit_under_record_level_dp_keeps_both_states(round_config, small_cfg) -> None:
    # Prepare: DP-SGD's budget and SCAFFOLD's c_i share the node state
    cfg = small_cfg.replace(dp="record", noise_multiplier=1.1, clip_norm=1.0)
    start = build_model(round_config["n_features"], params=cfg.model_params, seed=0).get_weights()
    config = {
        **round_config,
        SCAFFOLD_CONTROL_KEY: pack([np.zeros_like(w) for w in start]),
        SCAFFOLD_LEARNING_RATE_KEY: 0.05,
    }
    state = RecordDict()

    # Execute
    _, _, metrics = ChurnClient(cfg, 1, state=state).fit(start, config)

    # Assert: its ε and its c_i+ - c_i travel; both are kept for the next round
    assert {"dp-epsilon", SCAFFOLD_DELTA_KEY} <= set(metrics)
    assert len(state) == 2
    kept = ScaffoldRound.of(config, start, state)
    assert kept is not None and any(np.abs(c).sum() > 0 for c in kept.own)
