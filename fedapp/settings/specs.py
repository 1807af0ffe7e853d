"""Specs written as short strings (``dirichlet:0.5``, ``scale:4``), parsed once into types.

A spec compares equal to its text form (``PartitionSpec("iid") == "iid"``), as
a :class:`~enum.StrEnum` does to its value, and ``str(spec)`` gives that form
back: that is what ``config.json`` and Flower's run config hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fedapp.errors import UsageError

PARTITIONS = "iid, dirichlet:ALPHA, quantity:ALPHA, column:NAME"
# A deployed federation's split: each SuperNode's own file is one client.
NODES = "nodes"


def _number(value: float) -> str:
    """The shortest text that reads back as ``value``: ``4`` for 4.0, ``0.5``, ``1e-05``."""
    text = repr(float(value))
    return text.removesuffix(".0")


class _Spec:
    """Equality with the text form, and a hash that agrees with it."""

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return str(self) == other
        if type(other) is type(self):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))


@dataclass(frozen=True, eq=False)
class PartitionSpec(_Spec):
    """A parsed ``partition`` value: how one table is split into clients.

    Attributes
    ----------
    kind : str
        ``iid``, ``dirichlet``, ``quantity`` or ``column`` (or ``nodes``: a
        deployed federation, where each SuperNode's own file is one client).
    alpha : float | None
        Concentration for ``dirichlet`` and ``quantity``.
    column : str | None
        Column name for ``column``.

    Raises
    ------
    UsageError
        For an unknown kind, or an alpha that is not a positive number.

    """

    kind: str
    alpha: float | None = None
    column: str | None = None

    def __post_init__(self) -> None:
        if self.kind in ("dirichlet", "quantity"):
            if self.alpha is None or not self.alpha > 0:
                raise UsageError(f"partition '{self}': {self.kind} alpha must be > 0")
            if not math.isfinite(self.alpha):
                raise UsageError(
                    f"partition '{self}': {self.kind} alpha must be a finite number > 0 (the "
                    "larger, the more even the split; for an even split use iid)"
                )
        elif self.kind == "column":
            if not self.column:
                raise UsageError(f"partition '{self}' is not one of: {PARTITIONS}")
        elif self.kind not in ("iid", NODES):
            raise UsageError(f"partition '{self}' is not one of: {PARTITIONS}")

    def __str__(self) -> str:
        if self.alpha is not None:
            return f"{self.kind}:{_number(self.alpha)}"
        if self.column is not None:
            return f"{self.kind}:{self.column}"
        return self.kind

    @classmethod
    def parse(cls, text: str) -> PartitionSpec:
        """Parse ``iid``, ``dirichlet:ALPHA``, ``quantity:ALPHA`` or ``column:NAME``."""
        kind, _, arg = text.partition(":")
        if kind in ("iid", NODES) and not arg:
            return cls(kind)
        if kind in ("dirichlet", "quantity"):
            try:
                alpha = float(arg)
            except ValueError:
                raise UsageError(
                    f"partition '{text}': {kind} needs a number, e.g. {kind}:0.5"
                ) from None
            return cls(kind, alpha=alpha)
        if kind == "column" and arg:
            return cls("column", column=arg)
        raise UsageError(f"partition '{text}' is not one of: {PARTITIONS}")


# Attacks that take a number after the colon, and what the number means.
_STRENGTHS = {"sign-flip": "F", "scale": "F", "gaussian": "SIGMA"}
ATTACKS = (*_STRENGTHS, "label-flip")
SPEC_HELP = "sign-flip:F, scale:F, gaussian:SIGMA or label-flip"


@dataclass(frozen=True, eq=False)
class Attack(_Spec):
    """A parsed attack spec: what a simulated attacker sends.

    Attributes
    ----------
    kind : str
        One of :data:`ATTACKS`.
    strength : float
        F for ``sign-flip`` and ``scale``, SIGMA for ``gaussian``; unused
        (0) for ``label-flip``.

    Raises
    ------
    UsageError
        For an unknown kind, a strength that is not a positive finite number,
        or a strength given to ``label-flip``.

    """

    kind: str
    strength: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ATTACKS:
            raise UsageError(f"attack must be one of {SPEC_HELP}; got {self.kind!r}")
        if self.kind == "label-flip":
            if self.strength:
                raise UsageError(f"attack label-flip takes no value; got {self.strength:g}")
        elif not (math.isfinite(self.strength) and self.strength > 0):
            raise UsageError(
                f"attack {self.kind}: {_STRENGTHS[self.kind]} must be > 0, got {self.strength:g}"
            )

    def __str__(self) -> str:
        return self.kind if self.flips_labels else f"{self.kind}:{_number(self.strength)}"

    @property
    def flips_labels(self) -> bool:
        """Whether the attacker trains on flipped labels (rather than altering weights)."""
        return self.kind == "label-flip"


def parse_attack(spec: str) -> Attack:
    """Read ``sign-flip:F``, ``scale:F``, ``gaussian:SIGMA`` or ``label-flip``.

    Raises
    ------
    UsageError
        Naming ``attack`` and the accepted forms, for an unknown kind, a
        missing or extra value, or a value that is not a positive finite number.

    """
    kind, colon, raw = spec.strip().partition(":")
    if kind not in ATTACKS:
        raise UsageError(f"attack must be one of {SPEC_HELP}; got {spec!r}")
    if kind == "label-flip":
        if colon:
            raise UsageError(f"attack label-flip takes no value; got {spec!r}")
        return Attack(kind)
    try:
        strength = float(raw)
    except ValueError:
        raise UsageError(
            f"attack {kind} needs a number, as in {kind}:{_STRENGTHS[kind]}; got {spec!r}"
        ) from None
    return Attack(kind, strength)


def as_partition(value: Any) -> PartitionSpec | None:
    """A ``partition`` setting as given (text, a spec or ``None``) as a spec."""
    return PartitionSpec.parse(value) if isinstance(value, str) else value


def as_attack(value: Any) -> Attack | None:
    """An ``attack`` setting as given (text, a spec or ``None``) as a spec."""
    return parse_attack(value) if isinstance(value, str) else value
