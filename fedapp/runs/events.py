"""The typed events of ``metrics.jsonl``: one line per event, appended as a run goes.

An event is what happened at one round and stage (``fit``, ``evaluate``,
``privacy``, or ``resumed``: the run went on from that round's checkpoint),
seen from one scope (``federated``: the clients' own reports;
``centralized``: the server-held test set), with per-client details.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    """What part of a round an event reports."""

    FIT = "fit"
    EVALUATE = "evaluate"
    PRIVACY = "privacy"
    # Not of a round's work: the run went on from its checkpoint of this round.
    RESUMED = "resumed"


class Scope(StrEnum):
    """Whose view an event gives: the clients' reports or the server's test set."""

    FEDERATED = "federated"
    CENTRALIZED = "centralized"


# The keys every line has; the rest of a line is the event's `extra` fields.
_CORE = ("round", "stage", "scope", "metrics", "clients", "time")


@dataclass(frozen=True)
class Event:
    """One line of ``metrics.jsonl``.

    Attributes
    ----------
    round : int
        The federated round (1-based).
    stage : Stage
        ``fit``, ``evaluate`` or ``privacy``.
    scope : Scope
        ``federated`` or ``centralized``.
    metrics : Mapping[str, float | None]
        Aggregated metrics (NaN is written as ``null``).
    clients : Mapping[str, Mapping[str, Any]]
        Per-client entries keyed by partition id (as a string); empty when
        the event has none (centralized evaluation).
    time : float
        Seconds since the run started.
    extra : Mapping[str, Any]
        Further fields of the stage, e.g. ``failures`` and ``flagged``.

    """

    round: int
    stage: Stage
    scope: Scope
    metrics: Mapping[str, Any]
    clients: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    time: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON line's object (``clients`` left out when empty, as readers expect)."""
        out: dict[str, Any] = {
            "round": self.round,
            "stage": str(self.stage),
            "scope": str(self.scope),
            "metrics": dict(self.metrics),
        }
        if self.clients:
            out["clients"] = {pid: dict(entry) for pid, entry in self.clients.items()}
        out.update(self.extra)
        out["time"] = self.time
        return out

    @classmethod
    def from_dict(cls, line: Mapping[str, Any]) -> Event:
        """Read one parsed line back.

        Raises
        ------
        ValueError
            When a required key is missing or ``stage``/``scope`` is unknown.

        """
        try:
            return cls(
                round=int(line["round"]),
                stage=Stage(line["stage"]),
                scope=Scope(line["scope"]),
                metrics=dict(line.get("metrics") or {}),
                clients=dict(line.get("clients") or {}),
                time=float(line.get("time", 0.0)),
                extra={k: v for k, v in line.items() if k not in _CORE},
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a metrics.jsonl event: {err}") from None


@dataclass(frozen=True)
class Phase:
    """A step of a run outside its rounds, in ``status.json`` while it lasts.

    Attributes
    ----------
    name : str
        ``engine``, ``clients``, ``statistics`` or ``baselines``.
    label : str
        What it does, as people read it.
    done : int
        How much of it is done.
    total : int
        How much there is (0: the step has no count).

    """

    name: str
    label: str
    done: int = 0
    total: int = 0

    def to_dict(self) -> dict[str, Any]:
        """``status.json``'s ``phase``."""
        return {"name": self.name, "label": self.label, "done": self.done, "total": self.total}
