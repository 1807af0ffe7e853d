"""What lost and late institutions cost: dropouts by strategy, and stragglers under a timeout.

The same case runner as ``bench_hostile.py`` (the bank-churn table, 10
clients split ``dirichlet:1.0``, 20 rounds, each case through the real CLI in
its own child process): dropout rates 0 / 0.1 / 0.3 / 0.5 for fedavg, fedprox
and krum, each against the same strategy without dropouts; and stragglers
(20% of the clients, 6 s late) with the default round timeout (the round
waits for them) and with ``--round-timeout 3`` (it does not); and the resume
check: fedavg killed with SIGKILL (its whole process tree) once half its
rounds are checkpointed, then ``fedapp resume``, against the unbroken run
(the largest weight difference of the final models; the wall time counts
both processes). Notes give the client-rounds dropped and late, the rounds
skipped, and the median and longest round time read from ``metrics.jsonl``.

    python bench/bench_faults.py                     # every case (~1 min each on 2 cores)
    python bench/bench_faults.py --only dropout-0.3 --rounds 5
    python bench/bench_faults.py --list
"""

from __future__ import annotations

import itertools
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_hostile import Case, Result, main, simulate_argv

from fedapp.runs import RunDir
from fedapp.runs.checkpoints import latest

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


def killed_and_resumed(case: Case, base: dict[str, Any], out: Path) -> Result:
    """Run ``case``, SIGKILL its process group once half its rounds are saved, then resume it."""
    out.mkdir(parents=True)
    run = RunDir(out / "run")
    half = run.checkpoints_dir / f"round-{base['rounds'] // 2:05d}.npz"
    started = time.perf_counter()
    child = subprocess.Popen(simulate_argv(case, base, out), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    while not half.exists():
        if child.poll() is not None:
            raise RuntimeError(f"{case.name}: the run ended before it could be killed")
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    argv = [sys.executable, "-m", "fedapp.cli", "resume", str(run.path), "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{case.name}: {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return Result(run.read_summary(), run.read_config(), list(run.read_metrics()), wall)


def resume_notes(result: Result) -> str:
    """Where the run was resumed, and how far its final weights are from the unbroken run's."""
    run = Path(result.config["run-dir"])
    [event] = [e for e in result.events if e["stage"] == "resumed"]
    unbroken = latest(run.parent.parent / "dropout-0-fedavg" / "run" / "checkpoints")
    ours = latest(run / "checkpoints")
    if unbroken is None or ours is None:
        return f"resumed after round {event['round']}"
    gap = max(
        float(np.abs(a - b).max())
        for a, b in zip(ours.arrays["weights"], unbroken.arrays["weights"], strict=True)
    )
    return f"killed after round {event['round']}, resumed; max |w - w_unbroken| {gap:.1e}"


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
    Case("resume/fedavg", STRATEGIES["fedavg"], reference="dropout-0/fedavg",
         notes=resume_notes, runner=killed_and_resumed),
]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main(CASES, __doc__, "faults"))
