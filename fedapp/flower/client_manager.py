"""Reproducible client sampling, by partition order and a seeded generator, with a bounded wait."""

from __future__ import annotations

import random

from flwr.server import SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.criterion import Criterion


class TooFewClients(RuntimeError):
    """Fewer clients than a round needs stayed connected for the whole wait."""


class SeededClientManager(SimpleClientManager):
    """Samples clients reproducibly, once enough are connected, waiting a bounded time.

    Flower's default draws from the global ``random`` module over node ids
    that change from run to run; here the same seed picks the same
    institutions in the same rounds. Flower's default also waits up to a day
    for ``min_num_clients``, which fedapp's plugins set to the whole
    federation's size (SCAFFOLD's N, the weighted policies' client count):
    here a round needs only ``min_available`` connected clients, samples
    among those connected, and fails after ``wait`` seconds with fewer.

    Parameters
    ----------
    seed : int
        The run's seed.
    min_available : int
        Clients that must be connected before a round samples.
    wait : float | None
        Seconds to wait for them; ``None`` waits for ever.

    Attributes
    ----------
    partition_of : dict[str, int]
        Each node's partition id by Flower client id, filled in from the
        statistics query; a node not (yet) in it sorts last.

    """

    def __init__(self, seed: int, min_available: int = 1, wait: float | None = None) -> None:
        super().__init__()
        self._rng = random.Random(seed)
        self.min_available = min_available
        self.wait = wait
        self.partition_of: dict[str, int] = {}

    def sampler_state(self) -> list:
        """The sampling generator's state, as JSON (a checkpoint keeps it)."""
        version, internal, gauss = self._rng.getstate()
        return [version, list(internal), gauss]

    def restore_sampler(self, state: list) -> None:
        """Take back :meth:`sampler_state`: the next rounds sample as an unbroken run's."""
        version, internal, gauss = state
        self._rng.setstate((version, tuple(internal), gauss))

    def sample(
        self,
        num_clients: int,
        min_num_clients: int | None = None,
        criterion: Criterion | None = None,
    ) -> list[ClientProxy]:
        """Sample ``num_clients`` of the connected clients (fewer, if fewer are connected).

        ``min_num_clients`` is the plugin's federation size and is not waited
        for: :attr:`min_available` is.

        Raises
        ------
        TooFewClients
            When fewer than :attr:`min_available` clients are connected after
            :attr:`wait` seconds.

        """
        needed = min(self.min_available, num_clients)
        # Flower's own bound is a day: "for ever" to anyone watching a run.
        wait = self.wait if self.wait is not None else 86400.0
        if not self.wait_for(needed, timeout=wait):  # type: ignore[arg-type]
            raise TooFewClients(
                f"only {self.num_available()} of the {needed} clients a round needs "
                f"(min-available-clients) connected within {wait:g} s (round-timeout)"
            )
        cids = sorted(self.clients, key=lambda c: (self.partition_of.get(c, 1 << 30), c))
        if criterion is not None:
            cids = [c for c in cids if criterion.select(self.clients[c])]
        return [self.clients[c] for c in self._rng.sample(cids, min(num_clients, len(cids)))]
