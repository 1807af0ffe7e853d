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


# The metrics a calibrated threshold can optimise, and the form of a cost.
THRESHOLD_METRICS = ("f1", "accuracy", "youden")
THRESHOLD_METRIC_HELP = "f1, accuracy, youden or cost:FP,FN"
# A threshold calibrated by the federation (rather than a fixed probability).
AUTO = "auto"


@dataclass(frozen=True, eq=False)
class ThresholdMetric(_Spec):
    """A parsed ``threshold-metric``: what a calibrated threshold optimises.

    Attributes
    ----------
    kind : str
        ``f1``, ``accuracy``, ``youden`` (sensitivity + specificity - 1) or
        ``cost`` (the total cost of the errors, minimised).
    fp_cost, fn_cost : float
        With ``cost``: the cost of one false positive and of one false
        negative; 0 otherwise.

    Raises
    ------
    UsageError
        For an unknown kind, or costs that are not two finite numbers >= 0,
        not both 0.

    """

    kind: str
    fp_cost: float = 0.0
    fn_cost: float = 0.0

    def __post_init__(self) -> None:
        if self.kind == "cost":
            costs = (self.fp_cost, self.fn_cost)
            if not all(math.isfinite(c) and c >= 0 for c in costs) or not any(costs):
                raise UsageError(
                    f"threshold-metric cost:FP,FN needs two numbers >= 0, not both 0 (the cost "
                    f"of a false positive and of a false negative); got {self}"
                )
        elif self.kind not in THRESHOLD_METRICS:
            raise UsageError(f"threshold-metric must be one of {THRESHOLD_METRIC_HELP}; got {self}")

    def __str__(self) -> str:
        if self.kind == "cost":
            return f"cost:{_number(self.fp_cost)},{_number(self.fn_cost)}"
        return self.kind

    @classmethod
    def parse(cls, text: str) -> ThresholdMetric:
        """Read ``f1``, ``accuracy``, ``youden`` or ``cost:FP,FN`` (e.g. ``cost:1,5``)."""
        kind, colon, raw = text.strip().lower().partition(":")
        if kind != "cost":
            if colon:
                raise UsageError(f"threshold-metric {kind} takes no value; got {text!r}")
            return cls(kind)
        parts = raw.split(",")
        try:
            fp, fn = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
        except ValueError:
            fp = fn = math.nan
        if math.isnan(fp) or math.isnan(fn):
            raise UsageError(
                "threshold-metric cost:FP,FN needs two numbers >= 0, not both 0 (the cost of "
                f"a false positive and of a false negative, e.g. cost:1,5); got {text!r}"
            )
        return cls("cost", fp, fn)


def as_threshold_metric(value: Any) -> ThresholdMetric | None:
    """A ``threshold-metric`` setting as given (text, a spec or ``None``) as a spec."""
    return ThresholdMetric.parse(value) if isinstance(value, str) else value


def as_threshold(value: Any) -> Any:
    """A ``threshold`` setting as given, as its text form: ``auto`` or a probability.

    A number (or its text) must lie strictly between 0 and 1; it is held as
    its shortest text (``0.3``), so that ``config.json`` and Flower's run
    config keep one type.

    Raises
    ------
    UsageError
        For other text, or a number outside (0, 1).

    """
    if value is None or isinstance(value, bool):
        return value  # None is unset; a bool is refused by the type check
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not 0 < number < 1:  # NaN fails too
        raise UsageError(
            "threshold must be auto or a probability strictly between 0 and 1 (e.g. 0.3), "
            f"got {value!r}"
        )
    return _number(number)
