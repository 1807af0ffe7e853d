"""A client's state between rounds on disk: what a resumed run's clients find again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.common import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    RecordDict,
)

from fedapp.flower.node_state import NodeStateStore, state_mods
from fedapp.flower.protocol import PARTITION_KEY, ROUND_KEY, RUN_KEY
from fedapp.settings import RunConfig


def _state(rounds: int) -> RecordDict:
    return RecordDict(
        {
            "fedapp-dp-sgd": ConfigRecord({"rounds": rounds}),
            "fedapp-scaffold-ci": ArrayRecord([np.full(3, float(rounds))]),
            "secaggplus": ConfigRecord({"stage": 1}),  # Flower's own: never touched
        }
    )


def _train(server_round: int) -> Message:
    content = RecordDict({"fitins.config": ConfigRecord({ROUND_KEY: server_round, RUN_KEY: "r"})})
    return Message(content=content, dst_node_id=1, message_type=MessageType.TRAIN, ttl=60.0)


def test_a_round_finds_the_state_of_the_newest_earlier_round(tmp_path: Path) -> None:
    # Prepare: states saved after rounds 1, 2 and (before a crash) 4
    store = NodeStateStore(tmp_path)
    for r in (1, 2, 4):
        store.save(r, _state(r))

    # Execute: round 4 is redone after a resume from round 3's checkpoint
    state = RecordDict({"fedapp-dp-sgd": ConfigRecord({"rounds": 99})})
    store.load_before(4, state)

    # Assert: round 2's state (round 3 did not train this client); round 4's is gone
    assert state["fedapp-dp-sgd"]["rounds"] == 2  # type: ignore[index]
    np.testing.assert_array_equal(
        state["fedapp-scaffold-ci"].to_numpy_ndarrays()[0],  # type: ignore[union-attr]
        np.full(3, 2.0),
    )
    assert "secaggplus" not in state and store.rounds() == [2]


def test_a_client_with_no_earlier_state_starts_afresh(tmp_path: Path) -> None:
    state = _state(7)
    NodeStateStore(tmp_path).load_before(1, state)
    assert list(state) == ["secaggplus"]


@pytest.mark.usefixtures("supernode_identity")
def test_the_mod_keeps_the_state_of_each_trained_round(tmp_path: Path) -> None:
    # Prepare
    (mod,) = state_mods(RunConfig(), tmp_path)
    ctxt = Context(
        run_id=1, node_id=1, node_config={PARTITION_KEY: 0}, state=RecordDict(), run_config={}
    )

    def train(msg: Message, context: Context) -> Message:
        rounds = context.state["fedapp-dp-sgd"]["rounds"] if "fedapp-dp-sgd" in context.state else 0
        context.state["fedapp-dp-sgd"] = ConfigRecord({"rounds": int(rounds) + 1})  # type: ignore[arg-type]
        return Message(RecordDict(), reply_to=msg)

    # Execute: rounds 1 and 2; then a new process (empty state) redoes round 2
    mod(_train(1), ctxt, train)
    mod(_train(2), ctxt, train)
    ctxt.state = RecordDict()
    mod(_train(2), ctxt, train)

    # Assert: as an unbroken client, 2 rounds spent
    assert ctxt.state["fedapp-dp-sgd"]["rounds"] == 2  # type: ignore[index]
    assert NodeStateStore(tmp_path / "r" / "partition-0").rounds() == [1, 2]


def test_no_checkpoints_no_mod() -> None:
    assert state_mods(RunConfig(checkpoint_every=0), Path("x")) == []
