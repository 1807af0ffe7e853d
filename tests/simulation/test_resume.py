"""A run killed with SIGKILL after round 3 of 6 and resumed ends as the same run never killed.

Slow: each case runs the federation unbroken in this process, a copy in a
``fedapp simulate`` process killed (with every process of its session) once
round 3's checkpoint is written, and that copy resumed in this process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fedapp.runs.checkpoints import latest
from fedapp.settings import RunConfig
from fedapp.simulation import resume, simulate

pytestmark = pytest.mark.slow

BASE = {"clients": 2, "rounds": 6, "demo_rows": 900, "seed": 5, "baseline": False}
CASES = {
    "fedavg": {},
    "fedadam": {"strategy": "fedadam"},
    # Each client's c_i lives in its node state on disk.
    "scaffold": {"strategy": "scaffold"},
    # Record-level DP: each client's spent rounds live in its node state on disk.
    # DP-SGD's noise is not reproducible: the same ε, not the same weights.
    "fedavg-dp-record": {"dp": "record", "noise_multiplier": 1.5, "clip_norm": 1.0},
}


def _kill_after_round(run_dir: Path, cfg: RunConfig, round_: int) -> None:
    """Run ``cfg`` in a process of its own and SIGKILL its session once ``round_`` is saved."""
    settings = run_dir.with_suffix(".json")
    settings.write_text(json.dumps(cfg.to_dict()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedapp.cli", "simulate", "--config", str(settings),
         "--run-dir", str(run_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not (run_dir / "checkpoints" / f"round-{round_:05d}.npz").exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, f"round {round_} never came"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _final(run_dir: Path) -> tuple[list[np.ndarray], dict]:
    checkpoint = latest(run_dir / "checkpoints")
    assert checkpoint is not None
    return list(checkpoint.arrays["weights"]), json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("case", CASES)
def test_a_killed_run_resumed_ends_as_the_unbroken_run(tmp_path: Path, case: str) -> None:
    # Prepare: the unbroken run, and the same run killed after round 3
    cfg = RunConfig(**BASE, **CASES[case])
    simulate(cfg.replace(run_dir=str(tmp_path / "unbroken")))
    cut = tmp_path / "cut"
    _kill_after_round(cut, cfg, 3)
    status = json.loads((cut / "status.json").read_text())
    assert status["state"] == "running"  # killed: nothing said how it ended

    # Execute
    resume(cut)

    # Assert: the same final model and scores (no DP noise) or the same ε; every round once
    weights, summary = _final(tmp_path / "unbroken")
    resumed_weights, resumed = _final(cut)
    if "dp" in CASES[case]:
        assert resumed["privacy"]["epsilon"] == pytest.approx(summary["privacy"]["epsilon"])
        assert resumed["privacy"]["epsilon"] > 0
    else:
        for ours, theirs in zip(resumed_weights, weights, strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
        assert resumed["federated"] == pytest.approx(summary["federated"])
    lines = [json.loads(line) for line in (cut / "metrics.jsonl").read_text().splitlines()]
    rounds = [(e["round"], e["stage"], e["scope"]) for e in lines if e["stage"] != "resumed"]
    unbroken = (tmp_path / "unbroken" / "metrics.jsonl").read_text().splitlines()
    assert rounds == [(e["round"], e["stage"], e["scope"]) for e in map(json.loads, unbroken)]
    [event] = [e for e in lines if e["stage"] == "resumed"]
    assert event["round"] == 3 and event["from_state"] == "interrupted"
    assert json.loads((cut / "status.json").read_text())["state"] == "finished"


def test_a_finished_run_is_extended_and_refusals_exit_2(tmp_path: Path) -> None:
    # Prepare: a finished run of 2 rounds
    run_dir = tmp_path / "run"
    simulate(RunConfig(**(BASE | {"rounds": 2}), run_dir=str(run_dir)))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "fedapp.cli", "resume", str(run_dir), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    # Execute / Assert: finished without --rounds, or --rounds not more, is refused
    for args, said in (((), "finished its 2 rounds"), (("--rounds", "2"), "does not extend")):
        refused = cli(*args)
        assert refused.returncode == 2 and said in refused.stderr
    assert json.loads((run_dir / "config.json").read_text())["rounds"] == 2

    # Execute: extend it to 4
    extended = cli("--rounds", "4", "--json")

    # Assert
    assert extended.returncode == 0, extended.stderr
    assert json.loads(extended.stdout)["rounds"] == 4
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e["round"] for e in lines if e["stage"] == "fit"] == [1, 2, 3, 4]
    assert [e["from_state"] for e in lines if e["stage"] == "resumed"] == ["finished"]
