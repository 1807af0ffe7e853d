"""Reproducible client sampling: by partition order and a seeded generator."""

from __future__ import annotations

import random

from flwr.server import SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.criterion import Criterion


class SeededClientManager(SimpleClientManager):
    """Samples clients reproducibly: by partition order and a seeded generator.

    Flower's default draws from the global ``random`` module over node ids
    that change from run to run; here the same seed picks the same
    institutions in the same rounds.

    Parameters
    ----------
    seed : int
        The run's seed.

    Attributes
    ----------
    partition_of : dict[str, int]
        Each node's partition id by Flower client id, filled in from the
        statistics query; a node not (yet) in it sorts last.

    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._rng = random.Random(seed)
        self.partition_of: dict[str, int] = {}

    def sample(
        self,
        num_clients: int,
        min_num_clients: int | None = None,
        criterion: Criterion | None = None,
    ) -> list[ClientProxy]:
        """Sample ``num_clients`` clients (blocking until enough are connected)."""
        self.wait_for(min_num_clients or num_clients)
        cids = sorted(self.clients, key=lambda c: (self.partition_of.get(c, 1 << 30), c))
        if criterion is not None:
            cids = [c for c in cids if criterion.select(self.clients[c])]
        if num_clients > len(cids):
            return []
        return [self.clients[c] for c in self._rng.sample(cids, num_clients)]
