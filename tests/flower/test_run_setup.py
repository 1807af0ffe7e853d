"""A run's start: what prepare_run leaves when it is interrupted before the first status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedapp.flower.run_setup import prepare_run
from fedapp.runs import RunDir
from fedapp.settings import RunConfig


@pytest.mark.parametrize(
    ("raised", "state", "error"),
    [
        (KeyboardInterrupt("SIGTERM"), "stopped", "stopped (SIGTERM)"),
        (OSError("disk gone"), "failed", "OSError: disk gone"),
    ],
)
def test_a_run_interrupted_before_its_first_status_says_how_it_ended(
    small_cfg: RunConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    raised: BaseException,
    state: str,
    error: str,
) -> None:
    # Prepare: the claim is made, then the first status write is interrupted
    def interrupted(_self: RunDir, _rounds: int) -> None:
        raise raised

    monkeypatch.setattr(RunDir, "mark_started", interrupted)
    cfg = small_cfg.replace(run_dir=str(tmp_path / "r"))

    # Execute
    with pytest.raises(type(raised)):
        prepare_run(cfg, tmp_path)

    # Assert: not a directory that looks like a run starting for ever
    status = json.loads((tmp_path / "r" / "status.json").read_text())
    assert (status["state"], status["error"], status["round"]) == (state, error, 0)
