"""The statistics query before round 1 and the preprocessing it fits."""

from __future__ import annotations

import math

import pytest
from flwr.server import SimpleClientManager

from fedapp import data
from fedapp.errors import UsageError
from fedapp.flower.statistics import federation_setup, query_statistics, wait_for_clients
from fedapp.settings import RunConfig


def test_the_query_collects_every_clients_reply_by_node(small_cfg: RunConfig, connect) -> None:
    # Prepare
    manager = connect(small_cfg)

    # Execute
    replies = query_statistics(manager, small_cfg.clients)

    # Assert: node-9 is partition 0, node-8 partition 1, ...
    assert {cid: r["partition-id"] for cid, r in replies.items()} == {
        "node-9": 0, "node-8": 1, "node-7": 2,
    }  # fmt: skip
    assert all(set(r) == {"partition-id", "schema", "statistics"} for r in replies.values())


def test_the_query_reports_each_reply_as_it_comes(small_cfg: RunConfig, connect) -> None:
    # Prepare
    manager = connect(small_cfg)
    seen: list[tuple[str, int, int]] = []

    # Execute
    query_statistics(manager, small_cfg.clients, progress=lambda *step: seen.append(step))

    # Assert: 0 of 3, then one more with each reply
    assert seen == [("statistics", n, 3) for n in range(4)]


def test_the_wait_for_clients_reports_how_many_are_connected() -> None:
    # Prepare: nobody connects
    seen: list[tuple[str, int, int]] = []

    # Execute
    with pytest.raises(RuntimeError):
        wait_for_clients(SimpleClientManager(), 2, timeout=0.03, wait_slice=0.01,
                         progress=lambda *step: seen.append(step))  # fmt: skip

    # Assert
    assert seen and all(step == ("clients", 0, 2) for step in seen)


def test_a_client_answering_with_an_error_stops_the_run(small_cfg: RunConfig, connect) -> None:
    # Prepare
    manager = connect(small_cfg, errors={1: "cannot read its file"})

    # Execute / Assert
    with pytest.raises(RuntimeError, match="client node-8 did not send statistics: cannot read"):
        query_statistics(manager, small_cfg.clients)


def test_the_wait_for_clients_is_bounded() -> None:
    # Prepare: nobody connects
    manager = SimpleClientManager()

    # Execute / Assert
    with pytest.raises(RuntimeError, match=r"only 0 of 2 clients connected within 0\.03 s"):
        wait_for_clients(manager, 2, timeout=0.03, wait_slice=0.01)


def test_the_setup_is_the_federated_preprocessing_whatever_the_reply_order(
    small_cfg: RunConfig, connect
) -> None:
    # Prepare: the replies, the last partition's first
    replies = query_statistics(connect(small_cfg), small_cfg.clients)
    shuffled = dict(reversed(list(replies.items())))

    # Execute
    setup = federation_setup(shuffled, small_cfg)

    # Assert: what merging every client's statistics gives, in partition order
    expected = data.federated_preprocessor(small_cfg)
    assert setup.preprocessor.to_json() == expected.to_json()
    assert setup.partition_of == {"node-9": 0, "node-8": 1, "node-7": 2}
    train_rows = [len(data.client_share(small_cfg, pid).train) for pid in range(3)]
    assert setup.largest_client == max(train_rows)
    assert setup.train_rows == dict(enumerate(train_rows))


def test_the_setup_reads_plain_replies_without_flower() -> None:
    # Prepare: two hand-written replies (one numeric column, one category)
    schema = '[["age"], ["plan"]]'
    replies = {
        "b": {"partition-id": 1, "schema": schema, "statistics":
              '{"rows": 3, "target": {"task": "binary", "classes": ["0", "1"], '
              '"counts": {"0": 2, "1": 1}}, "numeric": {"age": [3, 12.0, 24.0]},'
              ' "categorical": {"plan": {"basic": 3}}}'},
        "a": {"partition-id": 0, "schema": schema, "statistics":
              '{"rows": 5, "target": {"task": "binary", "classes": ["0", "1"], '
              '"counts": {"0": 3, "1": 2}}, "numeric": {"age": [5, 28.0, 80.0]},'
              ' "categorical": {"plan": {"basic": 2, "pro": 3}}}'},
    }  # fmt: skip
    cfg = RunConfig(clients=2, target="churned", min_category_count=4)

    # Execute
    setup = federation_setup(replies, cfg)

    # Assert: age over 8 rows (count, mean, M2 each): mean (5·28 + 3·12) / 8 = 22,
    # M2 80 + 24 + (12 - 28)²·5·3/8 = 584, variance 584 / 8 = 73;
    # plan: basic 5 times, pro 3 times (< 4, so "other"); the largest client has 5 rows
    [(column, mean, std)] = setup.preprocessor.numeric
    assert (column, mean) == ("age", 22.0) and std == pytest.approx(math.sqrt(73))
    assert setup.preprocessor.categorical == (("plan", ("basic",)),)
    assert setup.preprocessor.target == "churned"
    assert setup.largest_client == 5 and setup.train_rows == {0: 5, 1: 3}
    assert setup.partition_of == {"a": 0, "b": 1}


def test_clients_whose_features_differ_are_named_before_round_1() -> None:
    # Prepare: partition 1 left 'plan' out (constant in its file) and reads 'age' as text.
    stats = (
        '{"rows": 3, "target": {"task": "binary", "classes": ["0", "1"], '
        '"counts": {"0": 2, "1": 1}}, "numeric": {}, "categorical": {}}'
    )
    replies = {
        "a": {"partition-id": 0, "schema": '[["age"], ["plan"]]', "statistics": stats},
        "b": {"partition-id": 1, "schema": '[[], ["age"]]', "statistics": stats},
    }
    cfg = RunConfig(clients=2, target="churned")

    with pytest.raises(UsageError, match="features differ from partition 0's") as err:
        federation_setup(replies, cfg)

    assert "plan missing at partition 1" in str(err.value)
    assert "kinds differ: age" in str(err.value)
