"""Simulated faults: which clients drop out of a round, and which answer late.

A :class:`FaultPlan` is a pure function of the run's seed, the round and the
partition, so the clients (which inject the faults) and the server (which
records them) agree on every fault without a word between them, and the same
seed gives the same faults in every run.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# Keeps the faults' random stream apart from every other use of the run's seed.
_STREAM = 0xFA017


class Fault(enum.Enum):
    """What happens to one client in one round."""

    NONE = "none"
    DROPPED = "dropped"  # fails its fit and its evaluation, as a lost node
    LATE = "late"  # answers ``straggler_delay`` seconds late


@dataclass(frozen=True)
class FaultPlan:
    """Each round's dropouts and stragglers, drawn from the seed.

    Every client-round draws two independent uniforms ``u, v`` from a
    generator seeded by ``(seed, round, partition)``: it drops out when
    ``u < dropout_rate``, else it is late when ``v < straggler_rate``. A
    client is dropped (or late) for its fit and its evaluation of the round
    alike, as a node that is away (or slow) for a while would be.

    Attributes
    ----------
    seed : int
        The run's seed.
    dropout_rate : float
        Probability that a sampled client fails the round, in [0, 1).
    straggler_rate : float
        Probability that a client that did not drop out answers late, in [0, 1).
    straggler_delay : float
        How late a straggler answers, in seconds.

    """

    seed: int
    dropout_rate: float = 0.0
    straggler_rate: float = 0.0
    straggler_delay: float = 0.0

    @property
    def active(self) -> bool:
        """Whether any fault can happen."""
        return self.dropout_rate > 0 or (self.straggler_rate > 0 and self.straggler_delay > 0)

    def fault(self, server_round: int, partition_id: int) -> Fault:
        """What happens to client ``partition_id`` in round ``server_round``."""
        if not self.active:
            return Fault.NONE
        rng = np.random.default_rng([_STREAM, self.seed, server_round, partition_id])
        drop, late = rng.random(2)
        if drop < self.dropout_rate:
            return Fault.DROPPED
        if late < self.straggler_rate and self.straggler_delay > 0:
            return Fault.LATE
        return Fault.NONE

    def of_round(self, server_round: int, partitions: Iterable[int | None]) -> dict[str, list[int]]:
        """The round's ``dropped`` and ``late`` partitions among ``partitions``, as recorded.

        Empty (no keys) when the plan injects nothing, so a run without
        faults records nothing about them.
        """
        if not self.active:
            return {}
        asked = sorted(p for p in partitions if p is not None)
        faults = {p: self.fault(server_round, p) for p in asked}
        return {
            "dropped": [p for p in asked if faults[p] is Fault.DROPPED],
            "late": [p for p in asked if faults[p] is Fault.LATE],
        }
