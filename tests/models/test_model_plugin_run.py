"""A third-party model plugin, installed as a package, through `fedapp simulate`: slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from fedapp import registry


def install_package(site: Path, name: str, source: str) -> None:
    """What ``pip install`` of a one-module package leaves in ``site``: code and dist-info."""
    package = site / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    files = {
        "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
        "entry_points.txt": f"[{registry.MODEL_GROUP}]\n{name} = {name}:plugin\n",
    }
    for file, text in files.items():
        (info / file).write_text(text, encoding="utf-8")
    record = [f"{name}/__init__.py,,", *(f"{info.name}/{f},," for f in files)]
    (info / "RECORD").write_text("\n".join([*record, f"{info.name}/RECORD,,"]) + "\n")


@pytest.mark.slow
def test_an_installed_model_plugin_runs_through_fedapp_simulate(
    tmp_path: Path, resnet_plugin: str
) -> None:
    # Prepare: the package on the path of the CLI and of the simulation's Ray workers
    site = tmp_path / "site"
    install_package(site, "my_pkg_resnet", resnet_plugin)
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    run_dir = tmp_path / "run"

    # Execute
    out = subprocess.run(
        [sys.executable, "-m", "fedapp", "simulate", "--model", "my_pkg_resnet", "--width", "16",
         "--blocks", "1", "--strategy", "fedprox", "--proximal-mu", "0.1", "--rounds", "2",
         "--clients", "2", "--demo-rows", "600", "--no-baseline", "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=400,
        env={**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip

    # Assert
    assert out.returncode == 0, out.stderr
    status = json.loads((run_dir / "status.json").read_text())
    assert (status["state"], status["round"]) == ("finished", 2)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == "my_pkg_resnet"
    assert config["model-params"] == {"width": 16, "blocks": 1}
    assert config["strategy-params"] == {"proximal-mu": 0.1}
    model = keras.saving.load_model(run_dir / "model.keras")
    # Width 16 (the first layer and one block), the output's unit, the sigmoid head fedapp added.
    width = model.inputs[0].shape[-1]
    assert model.count_params() == (width * 16 + 16) + (16 * 16 + 16) + (16 + 1)
    assert model.layers[-1].get_config()["activation"] == "sigmoid"
    scores = model.predict_on_batch(np.zeros((3, model.inputs[0].shape[-1]), np.float32))
    assert scores.shape == (3, 1) and ((scores > 0) & (scores < 1)).all()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["federated"]["auc"] > 0.5
