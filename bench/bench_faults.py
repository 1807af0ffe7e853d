"""What lost and late institutions cost: dropouts by strategy, and stragglers under a timeout.

The same case runner as ``bench_hostile.py`` (the bank-churn table, 10
clients split ``dirichlet:1.0``, 20 rounds, each case through the real CLI in
its own child process): dropout rates 0 / 0.1 / 0.3 / 0.5 for fedavg, fedprox
and krum, each against the same strategy without dropouts; and stragglers
(20% of the clients, 6 s late) with the default round timeout (the round
waits for them) and with ``--round-timeout 3`` (it does not). Notes give the
client-rounds dropped and late, the rounds skipped, and the median and
longest round time read from ``metrics.jsonl``.

    python bench/bench_faults.py                     # every case (~1 min each on 2 cores)
    python bench/bench_faults.py --only dropout-0.3 --rounds 5
    python bench/bench_faults.py --list
"""

from __future__ import annotations

import itertools
import statistics
import sys
from typing import Any

from bench_hostile import Case, Result, main

STRATEGIES: dict[str, dict[str, Any]] = {
    "fedavg": {"strategy": "fedavg"},
    "fedprox": {"strategy": "fedprox"},
    # Krum tolerates f = 2 of the 10; with dropouts it scores the clients that answered.
    "krum": {"strategy": "krum", "strategy-params": {"num-malicious-clients": 2}},
}
RATES = (0.0, 0.1, 0.3, 0.5)
# Stragglers answer 6 s late; a 3 s timeout drops them instead of waiting.
_STRAGGLERS = {"straggler-rate": 0.2, "straggler-delay": 6.0}


def round_times(result: Result) -> list[float]:
    """Seconds between the ends of successive rounds (their federated evaluations)."""
    ends = [
        float(e["time"])
        for e in result.events
        if e["stage"] == "evaluate" and e["scope"] == "federated"
    ]
    return [b - a for a, b in itertools.pairwise(ends)]


def fault_notes(result: Result) -> str:
    """Client-rounds dropped and late, rounds skipped, and the rounds' median and longest time."""
    fits = [e for e in result.events if e["stage"] == "fit" and e["scope"] == "federated"]
    asked = sum(len(e["clients"]) + len(e.get("failed", [])) for e in fits)
    dropped = sum(len(e.get("dropped", [])) for e in fits)
    late = sum(len(e.get("late", [])) for e in fits)
    skipped = result.summary.get("skipped_rounds") or []
    times = round_times(result)
    timing = f"round s median {statistics.median(times):.1f}, max {max(times):.1f}" if times else ""
    parts = [
        f"dropped {dropped}/{asked}" if dropped else "",
        f"late {late}/{asked}" if late else "",
        f"skipped rounds {skipped}" if skipped else "",
        timing,
    ]
    return "; ".join(p for p in parts if p)


CASES: list[Case] = [
    Case(
        f"dropout-{rate:g}/{name}",
        {**settings, "dropout-rate": rate},
        reference=f"dropout-0/{name}",
        notes=fault_notes,
    )
    for name, settings in STRATEGIES.items()
    for rate in RATES
] + [
    Case("stragglers/wait", {**STRATEGIES["fedavg"], **_STRAGGLERS}, reference="dropout-0/fedavg",
         notes=fault_notes),
    Case("stragglers/timeout-3", {**STRATEGIES["fedavg"], **_STRAGGLERS, "round-timeout": 3.0},
         reference="stragglers/wait", notes=fault_notes),
]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main(CASES, __doc__, "faults"))
