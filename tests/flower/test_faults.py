"""Fault injection on the client (the ClientApp mod) and the server's bounded wait for clients."""

from __future__ import annotations

import time
from unittest.mock import MagicMock

import pytest
from flwr.common import ConfigRecord, Context, Message, MessageType, RecordDict

from fedapp.flower import faults
from fedapp.flower.client_manager import SeededClientManager, TooFewClients
from fedapp.flower.protocol import CLOSING_THRESHOLDS, PARTITION_KEY, ROUND_KEY
from fedapp.protection.faults import Fault
from fedapp.settings import RunConfig

pytestmark = pytest.mark.usefixtures("supernode_identity")


def _message(kind: str, config: dict, ttl: float = 60.0) -> Message:
    record = "fitins.config" if kind == MessageType.TRAIN else "evaluateins.config"
    content = RecordDict({record: ConfigRecord(config)})
    return Message(content=content, dst_node_id=1, message_type=kind, ttl=ttl)


def _context(partition: int, run_config: dict | None = None, run_id: int = 1) -> Context:
    return Context(
        run_id=run_id, node_id=1, node_config={PARTITION_KEY: partition}, state=RecordDict(),
        run_config=run_config or {},
    )  # fmt: skip


def _call(mod, msg: Message, ctxt: Context) -> tuple[Message, list[Message]]:
    passed: list[Message] = []

    def call_next(m: Message, c: Context) -> Message:
        passed.append(m)
        return Message(RecordDict(), reply_to=m)

    return mod(msg, ctxt, call_next), passed


def _partition_with(plan, fault: Fault, server_round: int = 1) -> int:
    return next(p for p in range(100) if plan.fault(server_round, p) is fault)


def test_no_mod_without_faults() -> None:
    assert faults.client_mods(RunConfig()) == []


def test_a_dropped_client_replies_with_an_error_and_does_not_train() -> None:
    # Prepare
    cfg = RunConfig(dropout_rate=0.5)
    (mod,) = faults.client_mods(cfg)
    partition = _partition_with(faults.plan_of(cfg), Fault.DROPPED)

    # Execute
    for kind in (MessageType.TRAIN, MessageType.EVALUATE):
        reply, passed = _call(mod, _message(kind, {ROUND_KEY: 1}), _context(partition))

        # Assert
        assert reply.has_error() and not passed
        assert "dropped out of round 1" in reply.error.reason


def test_a_straggler_answers_late() -> None:
    # Prepare
    cfg = RunConfig(straggler_rate=0.5, straggler_delay=0.3)
    (mod,) = faults.client_mods(cfg)
    partition = _partition_with(faults.plan_of(cfg), Fault.LATE)

    # Execute
    start = time.monotonic()
    reply, passed = _call(mod, _message(MessageType.TRAIN, {ROUND_KEY: 1}), _context(partition))

    # Assert
    assert time.monotonic() - start >= 0.3
    assert not reply.has_error() and len(passed) == 1


def test_a_straggler_later_than_the_round_timeout_gives_up_at_the_timeout() -> None:
    # Prepare: a 30 s straggler, a message that lives 0.2 s
    cfg = RunConfig(straggler_rate=0.5, straggler_delay=30.0)
    (mod,) = faults.client_mods(cfg)
    partition = _partition_with(faults.plan_of(cfg), Fault.LATE)
    msg = _message(MessageType.TRAIN, {ROUND_KEY: 1}, ttl=0.2)

    # Execute
    start = time.monotonic()
    reply, passed = _call(mod, msg, _context(partition))

    # Assert: it holds its client no longer than the round waits, and never trains
    assert time.monotonic() - start < 5
    assert reply.has_error() and not passed
    assert "after the round timeout" in reply.error.reason


@pytest.mark.parametrize(
    "config",
    [{}, {ROUND_KEY: 1, CLOSING_THRESHOLDS: ""}],
    ids=["no round (the statistics query)", "the closing query"],
)
def test_queries_outside_the_rounds_are_never_faulted(config: dict) -> None:
    cfg = RunConfig(dropout_rate=0.99)
    (mod,) = faults.client_mods(cfg)
    reply, passed = _call(mod, _message(MessageType.EVALUATE, config), _context(0))
    assert not reply.has_error() and len(passed) == 1


def test_a_flower_app_reads_the_faults_from_its_run_config() -> None:
    # Prepare: no cfg, as `flwr run` builds the ClientApp; one node serves two runs
    (mod,) = faults.client_mods(None)
    plan = faults.plan_of(RunConfig(dropout_rate=0.5))
    partition = _partition_with(plan, Fault.DROPPED)
    faulty = _context(partition, {"dropout-rate": 0.5}, run_id=1)
    calm = _context(partition, run_id=2)

    # Execute: each run's messages, twice
    replies = [
        _call(mod, _message(MessageType.TRAIN, {ROUND_KEY: 1}), ctxt)[0]
        for ctxt in (faulty, calm, faulty, calm)
    ]

    # Assert: each run keeps its own plan
    assert [r.has_error() for r in replies] == [True, False, True, False]


def test_sampling_waits_a_bounded_time_and_names_the_shortfall() -> None:
    # Prepare: 2 of the 3 clients a round needs are connected
    manager = SeededClientManager(0, min_available=3, wait=0.2)
    for cid in "ab":
        manager.register(MagicMock(cid=cid))

    # Execute / Assert
    start = time.monotonic()
    with pytest.raises(TooFewClients, match=r"only 2 of the 3 clients .* within 0.2 s"):
        manager.sample(3, min_num_clients=10)
    assert time.monotonic() - start < 5


def test_sampling_takes_the_connected_clients_when_the_federation_is_short_of_some() -> None:
    # Prepare: a federation of 5 (the plugin's min_num_clients); 4 connected, 3 needed
    manager = SeededClientManager(0, min_available=3, wait=0.2)
    for cid in "abcd":
        manager.register(MagicMock(cid=cid))

    # Execute
    chosen = manager.sample(5, min_num_clients=5)

    # Assert: no wait for the fifth, every connected client sampled once
    assert sorted(c.cid for c in chosen) == list("abcd")
