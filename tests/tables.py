"""Small institution tables written for a test, and the CLI's exit-2 check on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from fedapp.cli import app

runner = CliRunner()
# The target and identifier of :func:`customers`, as flags.
CHURN = ["--target", "Churn", "--id-column", "customerID"]


def customers(rows: int = 60, seed: int = 0, **overrides: object) -> pd.DataFrame:
    """A telco-style churn table: an id, two numbers (one stored as text), a category, Yes/No."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customerID": [f"C{seed}-{i:04d}" for i in range(rows)],
            "tenure": rng.integers(0, 72, rows),
            "charges": [f"{v:.2f}" for v in rng.uniform(20, 120, rows)],
            "contract": rng.choice(["monthly", "yearly"], rows),
            "Churn": np.where(rng.random(rows) < 0.3, "Yes", "No"),
        }
    )
    frame.loc[0, "Churn"], frame.loc[1, "Churn"] = "Yes", "No"
    for column, value in overrides.items():
        frame[column] = value
    return frame


def write_csv(folder: Path, name: str, frame: pd.DataFrame) -> str:
    """Write ``frame`` as ``folder/name`` (no index column) and return the path."""
    path = folder / name
    frame.to_csv(path, index=False)
    return str(path)


def fails(tmp_path: Path, args: list[str], message: str, command: str = "simulate") -> str:
    """Run ``fedapp COMMAND ARGS``: exit 2, one line on stderr holding ``message``, no run.

    Returns the line, for further checks.
    """
    runs = tmp_path / "runs"
    where = ["--runs-dir", str(runs)] if command == "simulate" else []
    result = runner.invoke(app, [command, *args, *where])
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not runs.exists()
    return result.stderr.strip()
