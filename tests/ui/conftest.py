"""What the UI tests share: a runs folder the UI is pointed at."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty runs folder, the UI's (``fedapp ui --runs-dir``), with no data folder given."""
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("FEDAPP_UI_RUNS_DIR", str(root))
    monkeypatch.delenv("FEDAPP_UI_DATA_DIR", raising=False)
    return root
