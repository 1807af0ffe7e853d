"""End to end on Flower's simulation engine (Ray): slow, deselect with -m 'not slow'."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import pytest

from fedapp.protection.faults import FaultPlan
from fedapp.runs import Event
from fedapp.settings import RunConfig
from fedapp.simulation import simulate

pytestmark = pytest.mark.slow

TINY = {"clients": 2, "rounds": 2, "demo_rows": 1200, "seed": 3}
METRICS = {"auc", "pr_auc", "accuracy", "f1", "precision", "recall", "loss"}


def _metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


def test_run_directory_contract(tmp_path: Path) -> None:
    events_seen: list[Event] = []
    run, summary = simulate(RunConfig(**TINY), tmp_path, on_event=events_seen.append)
    names = {p.name for p in run.path.iterdir()}
    assert {"config.json", "status.json", "metrics.jsonl", "summary.json", "model.keras",
            "preprocessing.json", "curves.json"} <= names  # fmt: skip
    config = json.loads((run.path / "config.json").read_text())
    assert config["rounds"] == 2 and config["partition"] == "column:institution"
    assert set(config["versions"]) == {"fedapp", "flwr"}
    assert config["client-sources"] == [
        "demo data (institution=inst-0)",
        "demo data (institution=inst-1)",
    ]
    assert config["data-warnings"] == []
    assert config["versions"]["flwr"].startswith("1.42")
    status = json.loads((run.path / "status.json").read_text())
    assert {k: status[k] for k in ("state", "round", "rounds", "error")} == {
        "state": "finished", "round": 2, "rounds": 2, "error": None,
    }  # fmt: skip
    # Who runs it, so that a UI can tell a live run from one whose process is gone.
    assert status["pid"] == os.getpid() and status["host"] == socket.gethostname()

    events = _metrics(run.path)
    assert events == [{k: v for k, v in e.to_dict().items() if k != "time"} for e in events_seen]
    central = [e for e in events if e["scope"] == "centralized"]
    federated = [e for e in events if e["stage"] == "evaluate" and e["scope"] == "federated"]
    fits = [e for e in events if e["stage"] == "fit"]
    assert [e["round"] for e in central] == [0, 1, 2]
    assert [e["round"] for e in federated] == [1, 2] == [e["round"] for e in fits]
    assert set(federated[0]["clients"]) == {"0", "1"}
    assert set(federated[0]["clients"]["0"]) == {*METRICS, "examples"}
    assert set(federated[0]["metrics"]) == METRICS  # example-weighted means
    assert set(central[-1]["metrics"]) == METRICS

    saved = json.loads((run.path / "summary.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    for scope in ("federated", "federated_evaluation", "centralized", "gap"):
        assert set(saved[scope]) == METRICS
    # Local-only baselines: one model per client, scored on the global test set.
    assert set(saved["local_only"]) == {"0", "1"}
    assert all(set(m) == METRICS for m in saved["local_only"].values())
    assert saved["local_only"]["0"] != saved["local_only"]["1"]
    assert saved["federated"] == central[-1]["metrics"]
    assert saved["gap"]["auc"] == pytest.approx(
        saved["federated"]["auc"] - saved["centralized"]["auc"]
    )
    assert saved["wall_seconds"] > 0
    model = keras.saving.load_model(run.path / "model.keras")
    assert model.count_params() > 0
    assert saved["failed_client_rounds"] == 0
    curves = json.loads((run.path / "curves.json").read_text())
    assert curves["round"] == 2 and curves["roc"]["auc"] == pytest.approx(saved["federated"]["auc"])


def test_same_seed_same_metrics_with_client_sampling(tmp_path: Path) -> None:
    cfg = RunConfig(clients=4, clients_per_round=2, rounds=3, demo_rows=1600, seed=11,
                    partition="iid", baseline=False)  # fmt: skip
    first, _ = simulate(cfg, tmp_path / "a")
    second, _ = simulate(cfg, tmp_path / "b")
    a, b = _metrics(first.path), _metrics(second.path)
    assert a == b
    fits = [e for e in a if e["stage"] == "fit"]
    assert all(len(e["clients"]) == 2 for e in fits)
    assert len({tuple(e["clients"]) for e in fits}) > 1  # different clients over rounds
    other, _ = simulate(cfg.replace(seed=12), tmp_path / "c")
    assert _metrics(other.path) != a


def test_weighted_with_eta_one_matches_fedavg(tmp_path: Path) -> None:
    cfg = RunConfig(**TINY, baseline=False)
    _, fedavg = simulate(cfg, tmp_path / "fedavg")
    _, weighted = simulate(
        cfg.replace(strategy="weighted", strategy_params={"server-learning-rate": 1.0}),
        tmp_path / "weighted",
    )
    for name, value in fedavg["federated"].items():
        assert weighted["federated"][name] == pytest.approx(value, abs=1e-4)


def test_fedprox_run(tmp_path: Path) -> None:
    cfg = RunConfig(**TINY, strategy="fedprox", strategy_params={"proximal-mu": 0.5})
    run, summary = simulate(cfg, tmp_path)
    assert summary["strategy"] == "fedprox" and summary["federated"]["auc"] > 0.6
    assert run.read_config()["strategy-params"] == {"proximal-mu": 0.5}


def test_third_party_strategy_runs(tmp_path: Path, install_plugin, median_plugin: str) -> None:
    install_plugin("median", "fedapp_median_plugin", median_plugin)
    cfg = RunConfig(**TINY, strategy="median", strategy_params={"tag": "t"}, baseline=False)
    run, summary = simulate(cfg, tmp_path)
    assert run.read_status()["state"] == "finished"
    assert run.read_config()["strategy-params"] == {"tag": "t"}
    assert summary["federated"]["auc"] > 0.5


FAILING_PLUGIN = """
    from flwr.server.strategy import FedAvg

    from fedapp.registry import StrategyPlugin


    class Failing(FedAvg):
        def aggregate_fit(self, server_round, results, failures):
            if server_round == 2:
                raise RuntimeError("aggregation exploded")
            return super().aggregate_fit(server_round, results, failures)


    plugin = StrategyPlugin("failing", "Fails in round 2.", lambda common, _: Failing(**common))
"""


def test_failed_run_never_looks_finished(tmp_path: Path, install_plugin) -> None:
    install_plugin("failing", "fedapp_failing_plugin", FAILING_PLUGIN)
    cfg = RunConfig(**{**TINY, "rounds": 3}, strategy="failing")
    with pytest.raises(Exception, match="aggregation exploded"):
        simulate(cfg, tmp_path / "runs")
    [run_dir] = list((tmp_path / "runs").iterdir())
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and status["round"] == 1
    assert "aggregation exploded" in status["error"]
    assert not (run_dir / "summary.json").exists()


def test_cli_json_and_toml(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("rounds = 5\nclients = 2\ndemo-rows = 1000\nbaseline = false\n")
    out = subprocess.run(
        [sys.executable, "-m", "fedapp.cli", "simulate", "--config", str(config),
         "--rounds", "1", "--json", "--run-dir", str(tmp_path / "exp")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["rounds"] == 1 and "centralized" not in summary
    # The steps before round 1 are named as they start, in order.
    steps = ["starting the simulation engine", "collecting the clients' statistics", "round 1/1"]
    assert all(step in out.stderr for step in steps), out.stderr
    assert sorted(steps, key=out.stderr.index) == steps
    assert "local_only" not in summary
    assert json.loads((tmp_path / "exp" / "config.json").read_text())["clients"] == 2


def test_sigterm_marks_the_run_stopped_and_exits(tmp_path: Path) -> None:
    run_dir = tmp_path / "long"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedapp.cli", "simulate", "--clients", "2", "--rounds", "500",
         "--demo-rows", "1000", "--run-dir", str(run_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            status = run_dir / "status.json"
            if status.exists() and json.loads(status.read_text())["round"] >= 1:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the run never reached round 1")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    status = json.loads((run_dir / "status.json").read_text())
    assert code == 130
    assert status["state"] == "stopped" and "SIGTERM" in status["error"]
    # The last completed round's model is kept, with its scores "at round r".
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["partial"] is True and 1 <= summary["round"] <= status["round"] + 1
    assert set(summary["federated"]) >= {"auc", "loss"}
    assert keras.saving.load_model(run_dir / "model.keras").count_params() > 0
    assert json.loads((run_dir / "curves.json").read_text())["round"] == summary["round"]
    assert f"keeps the global model of round {summary['round']}" in proc.stderr.read()


def test_default_demo_federated_auc_is_within_001_of_centralized(tmp_path: Path) -> None:
    run, summary = simulate(RunConfig(), tmp_path)
    assert run.read_config()["clients"] == 3 and summary["rounds"] == 10
    assert abs(summary["gap"]["auc"]) <= 0.01
    assert summary["federated"]["auc"] > 0.8


def test_one_file_per_institution(tmp_path: Path) -> None:
    from fedapp.data.synthetic import TARGETS, make_churn_table

    table = make_churn_table(rows=1500, institutions=2, seed=5)
    files = []
    for name, rows in table.groupby("institution"):
        path = tmp_path / f"{name}.parquet" if name == "inst-1" else tmp_path / f"{name}.csv"
        frame = rows.drop(columns=["institution", *TARGETS[1:]])
        frame["churned"] = frame["churned"].map({1: "yes", 0: "no"})
        frame.to_parquet(path) if path.suffix == ".parquet" else frame.to_csv(path, index=False)
        files.append(str(path))
    cfg = RunConfig(client_data=tuple(files), clients=2, target="churned", rounds=2)
    run, summary = simulate(cfg, tmp_path / "runs")
    config = run.read_config()
    assert config["client-data"] == files and config["partition"] is None
    assert any("positive class of 'churned' is 'yes' (inferred)" in n for n in config["data-notes"])
    assert run.read_status()["state"] == "finished" and summary["federated"]["auc"] > 0.6


def test_a_stale_ray_cluster_record_does_not_stop_a_simulation(tmp_path: Path) -> None:
    # Ray notes the address of the machine's last `ray start` in
    # <temp>/ray/ray_current_cluster and keeps it after that cluster is gone;
    # a bare ray.init() then joins it and refuses the simulation's num_cpus.
    # Ray's socket paths must stay short: its temporary folder cannot be tmp_path.
    ray_temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    try:
        (ray_temp / "ray").mkdir()
        (ray_temp / "ray" / "ray_current_cluster").write_text("127.0.0.1:1\n")
        done = subprocess.run(
            [sys.executable, "-m", "fedapp.cli", "simulate", "--clients", "2", "--rounds", "1",
             "--demo-rows", "300", "--no-baseline", "--run-dir", str(tmp_path / "run")],
            env={**os.environ, "RAY_TMPDIR": str(ray_temp)}, capture_output=True, text=True,
            timeout=240,
        )  # fmt: skip
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "finished"


def test_a_run_with_dropouts_and_stragglers_finishes_and_records_them(tmp_path: Path) -> None:
    # Prepare: 30% dropouts, 30% stragglers 0.5 s late, rounds of at least 3 results of 6
    cfg = RunConfig(
        clients=6, rounds=4, demo_rows=1800, seed=3, baseline=False, dropout_rate=0.3,
        straggler_rate=0.3, straggler_delay=0.5, round_timeout=60, min_fit_results=3,
    )  # fmt: skip
    plan = FaultPlan(cfg.seed, cfg.dropout_rate, cfg.straggler_rate, cfg.straggler_delay)

    # Execute
    run_dir, summary = simulate(cfg, tmp_path)
    run = run_dir.path

    # Assert: every round ran; its events name the seed's faults, its failures are the dropped
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    events = [e for e in _metrics(run) if e["scope"] == "federated"]
    skipped = []
    for event in events:
        expected = plan.of_round(event["round"], range(6))
        assert (event["dropped"], event["late"]) == (expected["dropped"], expected["late"])
        assert sorted(f["partition"] for f in event["failed"]) == expected["dropped"]
        if event["stage"] == "fit" and len(expected["dropped"]) > 3:
            skipped.append(event["round"])
            assert "fewer than min-fit-results (3)" in event["skipped"]
    assert sorted({e["round"] for e in events}) == [1, 2, 3, 4]
    assert summary["skipped_rounds"] == skipped
    # A client-round is counted once, though it fails its fit and its evaluation.
    assert summary["failed_client_rounds"] == len(
        {(e["round"], f["partition"]) for e in events for f in e["failed"]}
    )
    assert sum(len(e["dropped"]) for e in events) > 0
    assert (run / "model.keras").exists()
    assert json.loads((run / "config.json").read_text())["round-timeout"] == 60
