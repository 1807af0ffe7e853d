"""Fixtures of the flower tests: in-process stand-ins for connected clients (no Ray, no gRPC)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flwr.common import Code, GetPropertiesIns, GetPropertiesRes, Status
from flwr.server.client_proxy import ClientProxy

from fedapp.flower.client_app import ChurnClient
from fedapp.flower.client_manager import SeededClientManager
from fedapp.settings import RunConfig

# The node id `supernode_identity` gives the process.
NODE_ID = 2


@pytest.fixture
def supernode_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a SuperNode's runtime sets before a ClientApp sees any message (run 1, node 2)."""
    from flwr.supercore.task_identity import TaskIdentity

    for name, value in (("_run_id", 1), ("_node_id", NODE_ID), ("_task_id", 1)):
        monkeypatch.setattr(TaskIdentity, name, value)


class ChurnProxy(ClientProxy):
    """A connected node whose ``get_properties`` is answered by a real :class:`ChurnClient`.

    With ``error`` it answers with that status message instead (a failing client).
    """

    def __init__(self, cid: str, cfg: RunConfig, partition_id: int, error: str = "") -> None:
        super().__init__(cid)
        self.client = ChurnClient(cfg, partition_id)
        self.error = error

    def get_properties(
        self, ins: GetPropertiesIns, timeout: float | None, group_id: int | None
    ) -> GetPropertiesRes:
        if self.error:
            return GetPropertiesRes(Status(Code.GET_PROPERTIES_NOT_IMPLEMENTED, self.error), {})
        return GetPropertiesRes(Status(Code.OK, ""), self.client.get_properties(ins.config))

    def get_parameters(self, ins, timeout, group_id):
        raise NotImplementedError

    def fit(self, ins, timeout, group_id):
        raise NotImplementedError

    def evaluate(self, ins, timeout, group_id):
        raise NotImplementedError

    def reconnect(self, ins, timeout, group_id):
        raise NotImplementedError


@pytest.fixture
def connect() -> Callable[..., SeededClientManager]:
    """``connect(cfg, errors={})``: a client manager with one :class:`ChurnProxy` per client.

    Node ids run backwards from ``node-9`` so that Flower's order is not the partitions'.
    """

    def make(cfg: RunConfig, errors: dict[int, str] | None = None) -> SeededClientManager:
        manager = SeededClientManager(cfg.seed)
        for pid in range(cfg.clients):
            error = (errors or {}).get(pid, "")
            manager.register(ChurnProxy(f"node-{9 - pid}", cfg, pid, error))
        return manager

    return make
