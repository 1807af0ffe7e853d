"""What the Byzantine-robust strategies (Krum, MultiKrum, Bulyan) share.

Each is designed to tolerate f malicious clients among the n it aggregates
per round, and only holds for enough honest ones; a run that cannot meet the
bound stops before it starts, naming the parameter and its allowed range.
"""

from __future__ import annotations

from typing import Any

from fedapp.errors import UsageError
from fedapp.registry import Param

MALICIOUS = Param(
    "num-malicious-clients",
    int,
    0,
    "Malicious clients f the aggregation must tolerate per round.",
    minimum=0,
)


def sampled(common: dict[str, Any]) -> int:
    """Clients aggregated per round (n): fedapp samples exactly ``min_fit_clients``."""
    # Flower's own default when a caller leaves it out.
    return int(common.get("min_fit_clients", 2))


def check_tolerance(name: str, f: int, n: int, per_f: int, extra: int) -> None:
    """Require n >= per_f * f + extra, or say which f the round's n allows.

    Raises
    ------
    UsageError
        Naming ``--num-malicious-clients`` and its allowed range.

    """
    if n < per_f * f + extra:
        largest = (n - extra) // per_f
        allowed = f"[0, {largest}]" if largest >= 0 else "none (too few clients)"
        raise UsageError(
            f"--num-malicious-clients {f} is too many for {name} with {n} clients per round: "
            f"it needs n >= {per_f}f + {extra}; allowed range {allowed}"
        )
