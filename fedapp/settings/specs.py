"""Specs written as short strings (``dirichlet:0.5``, ``scale:4``), parsed once into types."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fedapp.errors import UsageError


@dataclass(frozen=True)
class PartitionSpec:
    """A parsed ``--partition`` value.

    Attributes
    ----------
    kind : str
        ``iid``, ``dirichlet``, ``quantity`` or ``column``.
    alpha : float | None
        Concentration for ``dirichlet`` and ``quantity``.
    column : str | None
        Column name for ``column``.

    """

    kind: str
    alpha: float | None = None
    column: str | None = None

    @classmethod
    def parse(cls, text: str) -> PartitionSpec:
        """Parse ``iid``, ``dirichlet:ALPHA``, ``quantity:ALPHA`` or ``column:NAME``."""
        kind, _, arg = text.partition(":")
        if kind == "iid" and not arg:
            return cls("iid")
        if kind in ("dirichlet", "quantity"):
            try:
                alpha = float(arg)
            except ValueError:
                raise UsageError(
                    f"partition '{text}': {kind} needs a number, e.g. {kind}:0.5"
                ) from None
            if not alpha > 0:
                raise UsageError(f"partition '{text}': {kind} alpha must be > 0")
            return cls(kind, alpha=alpha)
        if kind == "column" and arg:
            return cls("column", column=arg)
        raise UsageError(
            f"partition '{text}' is not one of: iid, dirichlet:ALPHA, quantity:ALPHA, column:NAME"
        )


# Attacks that take a number after the colon, and what the number means.
_STRENGTHS = {"sign-flip": "F", "scale": "F", "gaussian": "SIGMA"}
ATTACKS = (*_STRENGTHS, "label-flip")
SPEC_HELP = "sign-flip:F, scale:F, gaussian:SIGMA or label-flip"


@dataclass(frozen=True)
class Attack:
    """A parsed attack spec.

    Attributes
    ----------
    kind : str
        One of :data:`ATTACKS`.
    strength : float
        F for ``sign-flip`` and ``scale``, SIGMA for ``gaussian``; unused
        (0) for ``label-flip``.

    """

    kind: str
    strength: float = 0.0

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
    if not (math.isfinite(strength) and strength > 0):
        raise UsageError(f"attack {kind}: {_STRENGTHS[kind]} must be > 0, got {raw}")
    return Attack(kind, strength)
