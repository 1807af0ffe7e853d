"""The privacy ledger, checked on the Flower messages a client actually replies with.

Each test sends the real ClientApp a message as Flower's server would and walks
every record of the reply: only aggregate statistics, model weights, example
counts and metrics (after the last round, the held-out rows' confusion counts
per threshold and the fine-tuned model's scores) may be there; never a row
value, never an ID.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from flwr.app import Context, Message, MessageType, RecordDict
from flwr.common import EvaluateIns, FitIns, GetPropertiesIns, ndarrays_to_parameters
from flwr.common.constant import MessageTypeLegacy
from flwr.compat.common import recorddict_compat as compat

from fedapp import data
from fedapp.flower.client_app import (
    PREPROCESSING_KEY,
    ROUND_KEY,
    STATISTICS_QUERY,
    build_client_app,
)
from fedapp.flower.protocol import CLOSING_EPOCHS, CLOSING_THRESHOLDS, COUNTS_KEY, FINE_TUNED_KEY
from fedapp.learning import threshold
from fedapp.learning.model import build_model
from fedapp.settings import RunConfig

PID = 1


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> RunConfig:
    rng = np.random.default_rng(0)
    rows = 400
    frame = pd.DataFrame(
        {
            "customerID": [f"CUST-{i:05d}-X" for i in range(rows)],
            "salary": rng.uniform(20_000, 150_000, rows).round(2),  # near-unique values
            "tenure": rng.integers(0, 72, rows),
            "segment": rng.choice(["retail", "premium", "sme"], rows),
            "Churn": np.where(rng.random(rows) < 0.3, "Yes", "No"),
        }
    )
    path = tmp_path_factory.mktemp("ledger") / "bank.csv"
    frame.to_csv(path, index=False)
    return RunConfig(data=str(path), target="Churn", id_column="customerID", clients=2)


@pytest.fixture(autouse=True)
def _supernode_identity(supernode_identity: None) -> None:
    """Every message here reaches node PID + 1 (the identity's node id)."""
    assert PID + 1 == 2


def _reply(cfg: RunConfig, content: RecordDict, message_type: str) -> RecordDict:
    context = Context(
        run_id=1,
        node_id=PID + 1,
        node_config={"partition-id": PID, "num-partitions": cfg.clients},
        state=RecordDict(),
        run_config=cfg.to_flwr(),
    )
    message = Message(content=content, dst_node_id=PID + 1, message_type=message_type)
    reply = build_client_app(cfg)(message, context)
    assert not reply.has_error(), reply.error
    return reply.content


def _leaves(content: RecordDict) -> tuple[list[str], list[float], list[tuple[int, ...]]]:
    """Every string, number and array shape anywhere in a reply."""
    strings: list[str] = []
    numbers: list[float] = []
    shapes: list[tuple[int, ...]] = []
    for record in content.array_records.values():
        shapes += [a.numpy().shape for a in record.values()]
    for record in [*content.metric_records.values(), *content.config_records.values()]:
        for value in record.values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    strings.append(item)
                elif isinstance(item, bytes):
                    strings.append(item.decode("utf-8", "replace"))
                elif isinstance(item, int | float):
                    numbers.append(float(item))
    return strings, numbers, shapes


def _row_values(cfg: RunConfig) -> tuple[list[str], np.ndarray]:
    raw = pd.read_csv(cfg.data)
    return raw["customerID"].tolist(), raw["salary"].to_numpy()


def _round(cfg: RunConfig) -> tuple[dict, list[np.ndarray]]:
    """A round's config and global weights, as the server sends them."""
    prep = data.federated_preprocessor(cfg)
    weights = build_model(prep.n_features, params=cfg.model_params, seed=0).get_weights()
    return {PREPROCESSING_KEY: prep.to_json(), ROUND_KEY: 1}, weights


def _assert_no_row_leaves(cfg: RunConfig, strings: list[str], numbers: list[float]) -> None:
    ids, salaries = _row_values(cfg)
    text = " ".join(strings)
    assert not any(i in text for i in ids)
    assert not any(f"{s:.2f}" in text for s in salaries)
    sent = np.asarray(numbers)
    assert not np.isin(np.round(sent, 2), salaries).any()


def test_statistics_reply_is_aggregates_only(cfg: RunConfig) -> None:
    content = compat.getpropertiesins_to_recorddict(GetPropertiesIns({STATISTICS_QUERY: True}))
    reply = _reply(cfg, content, MessageTypeLegacy.GET_PROPERTIES)
    strings, numbers, shapes = _leaves(reply)
    assert shapes == []
    properties = compat.recorddict_to_getpropertiesres(reply).properties
    assert set(properties) == {"partition-id", "schema", "statistics"}
    stats = json.loads(properties["statistics"])
    assert set(stats) == {"rows", "target", "numeric", "categorical"}
    # The target's class counts, never a row's class.
    assert set(stats["target"]) == {"task", "classes", "counts"}
    assert set(stats["numeric"]) == {"salary", "tenure"}  # no ID column among them
    assert all(len(triple) == 3 for triple in stats["numeric"].values())
    assert all(n >= cfg.min_category_count for n in stats["categorical"]["segment"].values())
    _assert_no_row_leaves(cfg, strings, numbers)


def test_fit_reply_is_weights_count_and_metrics(cfg: RunConfig) -> None:
    config, weights = _round(cfg)
    content = compat.fitins_to_recorddict(
        FitIns(ndarrays_to_parameters(weights), config), keep_input=True
    )
    reply = _reply(cfg, content, MessageType.TRAIN)
    strings, numbers, shapes = _leaves(reply)
    assert shapes == [w.shape for w in weights]
    fit = compat.recorddict_to_fitres(reply, keep_input=True)
    assert fit.num_examples == len(data.client_share(cfg, PID).train)
    assert set(fit.metrics) == {"partition-id", "train-loss"}
    _assert_no_row_leaves(cfg, strings, numbers)


def _evaluate(cfg: RunConfig, config: dict, weights: list[np.ndarray]) -> RecordDict:
    """The client's reply to an evaluate message of ``config`` and ``weights``."""
    content = compat.evaluateins_to_recorddict(
        EvaluateIns(ndarrays_to_parameters(weights), config), keep_input=True
    )
    return _reply(cfg, content, MessageType.EVALUATE)


def test_evaluate_reply_is_count_and_metrics(cfg: RunConfig) -> None:
    config, weights = _round(cfg)
    reply = _evaluate(cfg, config, weights)
    strings, numbers, shapes = _leaves(reply)
    assert shapes == []
    evaluation = compat.recorddict_to_evaluateres(reply)
    assert evaluation.num_examples == len(data.client_share(cfg, PID).test)
    assert set(evaluation.metrics) == {
        "partition-id", "auc", "pr_auc", "accuracy", "f1", "precision", "recall", "loss",
    }  # fmt: skip
    _assert_no_row_leaves(cfg, strings, numbers)


def test_closing_reply_is_counts_and_fine_tuned_metrics(cfg: RunConfig) -> None:
    # Prepare: the query after the last round, with the grid and fine-tuning
    config, weights = _round(cfg)
    config |= {CLOSING_THRESHOLDS: json.dumps(threshold.GRID), CLOSING_EPOCHS: 1}

    # Execute
    reply = _evaluate(cfg, config, weights)

    # Assert: no weights (the fine-tuned ones stay), only counts and scores
    strings, numbers, shapes = _leaves(reply)
    assert shapes == []
    evaluation = compat.recorddict_to_evaluateres(reply)
    scores = {"auc", "pr_auc", "accuracy", "f1", "precision", "recall", "loss"}
    assert set(evaluation.metrics) == {"partition-id", COUNTS_KEY, FINE_TUNED_KEY} | scores
    counts = threshold.decode_counts(evaluation.metrics[COUNTS_KEY], len(threshold.GRID))
    # Aggregates of the held-out rows: each threshold's four counts add up to them.
    assert (counts.sum(axis=1) == len(data.client_share(cfg, PID).test)).all()
    assert set(json.loads(evaluation.metrics[FINE_TUNED_KEY])) == scores
    _assert_no_row_leaves(cfg, strings, numbers)


def test_the_check_catches_a_leak(cfg: RunConfig) -> None:
    ids, salaries = _row_values(cfg)
    with pytest.raises(AssertionError):
        _assert_no_row_leaves(cfg, [f"row {ids[3]}"], [])
    with pytest.raises(AssertionError):
        _assert_no_row_leaves(cfg, [], [float(salaries[5])])


def test_label_skew_correction_sends_nothing_the_statistics_did_not(cfg: RunConfig) -> None:
    # Prepare: the client's own label prior is what the correction uses
    corrected = cfg.replace(label_skew_correction=True)
    config, weights = _round(corrected)
    content = compat.fitins_to_recorddict(
        FitIns(ndarrays_to_parameters(weights), config), keep_input=True
    )
    labels = data.client_share(cfg, PID).train[cfg.target]
    own = labels.value_counts()

    # Execute
    reply = _reply(corrected, content, MessageType.TRAIN)

    # Assert: the same reply as without it; neither its class counts nor shares in it
    strings, numbers, shapes = _leaves(reply)
    assert shapes == [w.shape for w in weights]
    fit = compat.recorddict_to_fitres(reply, keep_input=True)
    assert set(fit.metrics) == {"partition-id", "train-loss"}
    sent = np.round(np.asarray(numbers), 4)
    assert not np.isin(sent, np.round((own / len(labels)).to_numpy(), 4)).any()
    assert not np.isin(sent, own.to_numpy()).any()
    _assert_no_row_leaves(cfg, strings, numbers)
