"""The client's side of the privacy ledger, checked on what it actually returns."""

import json

import numpy as np
import pytest

from fedapp import data
from fedapp.flower.client_app import PREPROCESSING_KEY, ROUND_KEY, STATISTICS_QUERY, ChurnClient
from fedapp.flower.protocol import CLOSING_EPOCHS, CLOSING_THRESHOLDS, COUNTS_KEY, FINE_TUNED_KEY
from fedapp.learning import threshold
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
