"""Numbers, words and tables the pages show, from run directories alone."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fedapp.runs import Event, RunState, RunView, Scope, Stage
from fedapp_ui import report

CREATED = 1_700_000_000.0

METRICS = {
    "auc": 0.712345,
    "pr_auc": 0.39,
    "accuracy": 0.7525,
    "f1": 0.1239,
    "precision": 0.4375,
    "recall": 0.0722,
    "loss": 0.50914,
}
CENTRAL = {**METRICS, "auc": 0.757655, "loss": 0.4906}
GAP = {name: METRICS[name] - CENTRAL[name] for name in METRICS}

RUNS_COLUMNS = [
    "run", "state", "strategy", "data", "target", "rounds", "metric", "score", "model", "gap",
    "started",
]  # fmt: skip

# A multiclass run's scores (its classes basic, premium, standard) and a regression's.
MULTICLASS = {
    "accuracy": 0.8588, "macro_f1": 0.8478, "macro_auc": 0.9408, "loss": 0.515,
    "recall:basic": 0.7786, "recall:premium": 0.8764, "recall:standard": 0.8923,
}  # fmt: skip
REGRESSION = {"rmse": 459.2378, "mae": 357.8221, "r2": 0.3043, "loss": 0.7067}


def view(
    run_id: str = "r1",
    state: RunState = RunState.FINISHED,
    round_: int = 3,
    rounds: int = 3,
    config: dict[str, Any] | None = None,
    summary: dict[str, Any] | None = None,
    created: float = CREATED,
    **process: Any,
) -> RunView:
    """A run as `RunView.read` reads it (no pid: a `running` one counts as live)."""
    cfg = {
        "rounds": rounds,
        "strategy": "fedavg",
        "strategy-params": {},
        "data": "demo",
        "partition": "column:institution",
        "clients": 2,
        "baseline": True,
        **(config or {}),
    }
    status = {"state": str(state), "round": round_, "rounds": rounds, "error": None, **process}
    return RunView(run_id, Path("/nonexistent") / run_id, cfg, status, summary, created)


def finished_summary(**extra: Any) -> dict[str, Any]:
    return {
        "federated": METRICS,
        "federated_evaluation": METRICS,
        "centralized": CENTRAL,
        "gap": GAP,
        "wall_seconds": 185.2,
        **extra,
    }


def central(round_: int, **metrics: Any) -> Event:
    return Event(round_, Stage.EVALUATE, Scope.CENTRALIZED, metrics)


# fmt, duration, latest


@pytest.mark.parametrize(
    ("value", "signed", "expected"),
    [
        (None, False, "—"),
        (float("nan"), False, "—"),
        (float("inf"), True, "—"),
        (0.712345, False, "0.7123"),
        (1, False, "1.0000"),
        (0.05, True, "+0.0500"),
        (-0.04393, True, "-0.0439"),
        (0.0, True, "+0.0000"),
    ],
)
def test_fmt(value: float | None, signed: bool, expected: str) -> None:
    # Execute / Assert
    assert report.fmt(value, signed=signed) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, "—"),
        (0, "0 s"),
        (42, "42 s"),
        (42.4, "42 s"),
        (59.6, "1 min 00 s"),
        (185, "3 min 05 s"),
        (3599, "59 min 59 s"),
        (3720, "1 h 02 min"),
        (3725, "1 h 02 min"),
        (90_000, "25 h 00 min"),
    ],
)
def test_duration(seconds: float | None, expected: str) -> None:
    # Execute / Assert
    assert report.duration(seconds) == expected


def test_latest_is_the_newest_global_test_value() -> None:
    # Prepare
    events = [
        central(0, auc=0.5, loss=0.7),
        Event(1, Stage.FIT, Scope.FEDERATED, {"auc": 0.99}),
        central(1, auc=0.6, loss=None),
        Event(1, Stage.EVALUATE, Scope.FEDERATED, {"auc": 0.98}),
        central(2, auc=0.7),
    ]

    # Execute / Assert
    assert report.latest(events, "auc") == 0.7
    assert report.latest(events, "loss") == 0.7  # a null later does not hide it
    assert report.latest(events, "f1") is None
    assert report.latest([], "auc") is None


def test_label() -> None:
    # Execute / Assert
    assert [report.label(m) for m in ("auc", "pr_auc", "loss", "train-loss", "other")] == [
        "AUC",
        "PR-AUC",
        "log-loss",
        "training loss",
        "other",
    ]
    assert [report.label(m, "multiclass") for m in ("macro_f1", "loss", "recall:premium")] == [
        "macro-F1", "log-loss", "recall (premium)",
    ]  # fmt: skip
    assert [report.label(m, "regression") for m in ("rmse", "r2", "loss")] == [
        "RMSE", "R²", "MSE (standardised)",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "metric"),
    [
        ("AUC", "auc"),
        ("log-loss", "loss"),
        ("MSE (standardised)", "loss"),
        ("RMSE", "rmse"),
        ("macro AUC (one-vs-rest)", "macro_auc"),
        ("recall (premium)", "recall:premium"),
        ("recall (a (b))", "recall:a (b)"),
        ("training loss", "train-loss"),
        ("run", None),
        ("gain", None),
    ],
)
def test_metric_of_reads_a_column_named_as_a_metric(name: str, metric: str | None) -> None:
    # Execute / Assert
    assert report.metric_of(name) == metric


# progress_text


@pytest.mark.parametrize(
    ("state", "round_", "config", "expected"),
    [
        (
            RunState.RUNNING,
            0,
            {},
            "Starting Flower's simulation engine and collecting federated statistics…",
        ),
        (RunState.RUNNING, 2, {}, "Round 2 of 5"),
        (RunState.RUNNING, 5, {}, "Training the centralized and local-only baselines…"),
        (RunState.RUNNING, 5, {"baseline": False}, "Saving the model…"),
        (RunState.FINISHED, 5, {}, "Finished after round 5 of 5"),
        (RunState.FAILED, 2, {}, "Failed after round 2 of 5"),
        (RunState.STOPPED, 3, {}, "Stopped after round 3 of 5"),
    ],
)
def test_progress_text(state: RunState, round_: int, config: dict[str, Any], expected: str) -> None:
    # Prepare
    run = view(state=state, round_=round_, rounds=5, config=config)

    # Execute / Assert
    assert report.progress_text(run) == expected


def test_progress_text_of_an_interrupted_run() -> None:
    # Prepare: its status says running, but its process is gone
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        child.wait(timeout=30)
    finally:
        child.kill()
        child.wait()
    run = view(state=RunState.RUNNING, round_=2, rounds=5, pid=child.pid, host=socket.gethostname())

    # Execute / Assert
    assert report.progress_text(run) == "Interrupted after round 2 of 5"


# final_table and local_only_table


def test_final_table_with_the_centralized_baseline() -> None:
    # Prepare
    run = view(summary=finished_summary())

    # Execute
    table = report.final_table(run)

    # Assert
    assert list(table.columns) == ["metric", "federated", "centralized", "gap"]
    assert list(table["metric"]) == [
        "AUC",
        "PR-AUC",
        "accuracy",
        "F1",
        "precision",
        "recall",
        "log-loss",
    ]
    assert table.iloc[0].to_dict() == {
        "metric": "AUC",
        "federated": 0.7123,
        "centralized": 0.7577,
        "gap": -0.0453,
    }
    assert table.iloc[6]["federated"] == 0.5091


def test_final_table_without_a_baseline() -> None:
    # Prepare
    summary = finished_summary()
    del summary["centralized"], summary["gap"]
    run = view(summary=summary)

    # Execute
    table = report.final_table(run)

    # Assert
    assert list(table.columns) == ["metric", "federated"]
    assert list(table["federated"]) == [0.7123, 0.39, 0.7525, 0.1239, 0.4375, 0.0722, 0.5091]


def test_final_table_of_an_unfinished_run_is_blank() -> None:
    # Prepare
    run = view(state=RunState.RUNNING, round_=1)

    # Execute
    table = report.final_table(run)

    # Assert
    assert list(table.columns) == ["metric", "federated"]
    assert len(table) == 7
    assert table["federated"].isna().all()


def test_local_only_table_compares_each_institution_alone_with_the_federation() -> None:
    # Prepare
    local = {
        "10": {"auc": 0.6},
        "1": {"auc": 0.72},
        "0": {"auc": 0.68466},
        "2": {"auc": None},  # undefined (a single class), stored as null
    }
    sources = [f"demo data (institution=inst-{i})" for i in range(3)]
    run = view(summary=finished_summary(local_only=local), config={"client-sources": sources})

    # Execute
    table = report.local_only_table(run)

    # Assert
    assert table is not None
    assert list(table.columns) == ["institution", "AUC alone", "AUC federated", "gain"]
    assert list(table["institution"]) == [
        "inst-0",
        "inst-1",
        "inst-2",
        "client 10",
    ]
    assert list(table["AUC alone"][[0, 1, 3]]) == [0.6847, 0.72, 0.6]
    assert set(table["AUC federated"]) == {0.7123}
    assert list(table["gain"][[0, 1, 3]]) == [0.0277, -0.0077, 0.1123]
    assert math.isnan(table["AUC alone"][2])
    assert math.isnan(table["gain"][2])


@pytest.mark.parametrize("summary", [None, finished_summary(), finished_summary(local_only={})])
def test_local_only_table_is_none_without_local_baselines(summary: dict[str, Any] | None) -> None:
    # Execute / Assert
    assert report.local_only_table(view(summary=summary)) is None


# runs_table and compare_table


def two_runs() -> list[RunView]:
    done = view(
        "20250101-fedprox",
        config={"strategy": "fedprox", "strategy-params": {"proximal-mu": 0.1}},
        summary=finished_summary(),
    )
    busy = view(
        "20250102-fedavg",
        state=RunState.RUNNING,
        round_=1,
        rounds=4,
        config={"data": "/data/bank.csv", "partition": "iid", "clients": 5},
        created=CREATED + 3600,
    )
    return [busy, done]


def test_runs_table() -> None:
    # Prepare
    runs = two_runs()

    # Execute
    table = report.runs_table(runs)

    # Assert
    assert list(table.columns) == RUNS_COLUMNS
    busy, done = table.to_dict("records")
    assert {k: v for k, v in busy.items() if k not in ("score", "gap", "model")} == {
        "run": "20250102-fedavg",
        "state": "running",
        "strategy": "fedavg",
        "data": "bank.csv, iid, 5 clients",
        "target": "binary",  # config.json names no target: the task still says what it is
        "rounds": "1/4",
        "metric": "AUC",
        "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(CREATED + 3600)),
    }
    assert math.isnan(busy["score"])
    assert math.isnan(busy["gap"])
    assert pd.isna(busy["model"])  # no model yet
    assert done == {
        "run": "20250101-fedprox",
        "state": "finished",
        "strategy": "fedprox (proximal-mu 0.1)",
        "data": "demo, column:institution, 2 clients",
        "target": "binary",
        "rounds": "3/3",
        "metric": "AUC",
        "score": 0.7123,
        "model": "final",
        "gap": -0.0453,
        "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(CREATED)),
    }


def test_runs_table_scores_each_run_in_its_tasks_main_metric() -> None:
    # Prepare
    regression = view(
        "spend", config={"task": "regression", "target": "next_year_spend"},
        summary={"federated": REGRESSION, "gap": {"rmse": 27.04}, "target": "next_year_spend"},
    )  # fmt: skip
    multiclass = view(
        "plan", config={"task": "multiclass", "target": "next_plan"},
        summary={"federated": MULTICLASS},
    )  # fmt: skip

    # Execute
    rows = report.runs_table([regression, multiclass]).set_index("run")

    # Assert
    assert rows.loc["spend", ["target", "metric", "score", "gap"]].to_dict() == {
        "target": "next_year_spend (regression)", "metric": "RMSE", "score": 459.2378,
        "gap": 27.04,
    }  # fmt: skip
    assert rows.loc["plan", ["target", "metric", "score"]].to_dict() == {
        "target": "next_plan (multiclass)", "metric": "accuracy", "score": 0.8588,
    }  # fmt: skip


def test_runs_table_of_no_runs_has_its_columns() -> None:
    # Execute
    table = report.runs_table([])

    # Assert
    assert table.empty
    assert list(table.columns) == RUNS_COLUMNS


def test_compare_runs_table_names_each_run_and_its_model() -> None:
    # Prepare
    busy, done = two_runs()

    # Execute
    table = report.compare_runs_table([done, busy])

    # Assert
    assert table.to_dict("records")[0] == {
        "run": "20250101-fedprox",
        "strategy": "fedprox (proximal-mu 0.1)",
        "data": "demo, column:institution, 2 clients",
        "model": "final",
        "wall time": "3 min 05 s",
    }
    assert table.iloc[1]["wall time"] == "—"  # no start time recorded


def test_compare_metrics_has_a_column_per_metric_and_no_text() -> None:
    # Prepare
    busy, done = two_runs()

    # Execute
    scores = report.compare_metrics([done, busy], "federated")
    gaps = report.compare_metrics([done, busy], "gap")

    # Assert: narrow enough to fit beside the sidebar (run and seven numbers)
    assert list(scores.columns) == [
        "run", "AUC", "PR-AUC", "accuracy", "F1", "precision", "recall", "log-loss",
    ]  # fmt: skip
    assert scores.iloc[0].to_dict() == {
        "run": "20250101-fedprox", "AUC": 0.7123, "PR-AUC": 0.39, "accuracy": 0.7525,
        "F1": 0.1239, "precision": 0.4375, "recall": 0.0722, "log-loss": 0.5091,
    }  # fmt: skip
    assert gaps.iloc[0]["AUC"] == pytest.approx(-0.0453)
    assert gaps.iloc[0]["log-loss"] == pytest.approx(0.0185)
    assert pd.isna(scores.iloc[1][["AUC", "log-loss"]]).all()


@pytest.mark.parametrize(
    ("metric", "gap", "verdict"),
    [
        ("auc", -0.0047, "worse"),
        ("auc", 0.01, "better"),
        ("loss", -0.01, "better"),  # a lower loss is better
        ("loss", 0.02, "worse"),
        ("recall", 0.0, "even"),
        ("f1", None, None),
        ("f1", float("nan"), None),
    ],
)
def test_verdict_says_whether_a_difference_is_good_for_the_metric(
    metric: str, gap: float | None, verdict: str | None
) -> None:
    # Execute / Assert
    assert report.verdict(metric, gap) == verdict


def test_difference_colours_follow_each_columns_metric() -> None:
    # Prepare
    table = pd.DataFrame({"run": ["a", "b"], "AUC": [-0.0047, 0.01], "log-loss": [-0.01, None]})

    # Execute
    colours = report.difference_colours(table)

    # Assert
    assert colours.loc[0, "run"] == ""
    assert colours.loc[0, "AUC"] == report.VERDICT_STYLE["worse"]
    assert colours.loc[1, "AUC"] == report.VERDICT_STYLE["better"]
    assert colours.loc[0, "log-loss"] == report.VERDICT_STYLE["better"]
    assert colours.loc[1, "log-loss"] == ""


def compared(
    run_id: str, created: float, state: RunState = RunState.FINISHED, **cfg: Any
) -> RunView:
    return view(run_id, state=state, created=created, config=cfg, summary=finished_summary())


def test_default_comparison_takes_the_latest_runs_of_the_newest_runs_data() -> None:
    # Prepare: newest first, as the runs folder lists them
    runs = [
        compared("e-stopped", 5, RunState.STOPPED, partition="iid"),
        compared("d-other-data", 4, partition="dirichlet:0.5"),
        compared("c-weighted", 3, partition="iid"),
        compared("b-fedprox", 2, partition="iid"),
        compared("a-fedavg", 1, partition="iid"),
        compared("z-oldest", 0, partition="iid"),
    ]

    # Execute / Assert
    assert report.default_comparison(runs) == ["e-stopped", "c-weighted", "b-fedprox", "a-fedavg"]


def test_default_comparison_looks_further_when_the_newest_data_has_one_run() -> None:
    # Prepare
    runs = [
        compared("c-alone", 3, partition="iid"),
        compared("b", 2, partition="dirichlet:0.5"),
        compared("a", 1, partition="dirichlet:0.5"),
    ]

    # Execute / Assert
    assert report.default_comparison(runs) == ["b", "a"]
    assert report.default_comparison(runs[:1]) == ["c-alone"]


def test_compare_local_only_puts_each_runs_institutions_side_by_side() -> None:
    # Prepare
    local = {"0": {"auc": 0.65}, "1": {"auc": 0.7}}
    sources = ["x (institution=bank)", "x (institution=telco)"]
    first = view(
        "a", summary=finished_summary(local_only=local), config={"client-sources": sources}
    )
    second = view("b", summary=finished_summary())  # trained without baselines

    # Execute
    table = report.compare_local_only([first, second])

    # Assert
    assert table.to_dict("records") == [
        {"institution": "bank", "run": "a", "AUC alone": 0.65, "AUC federated": 0.7123,
         "gain": 0.0623},
        {"institution": "telco", "run": "a", "AUC alone": 0.7, "AUC federated": 0.7123,
         "gain": 0.0123},
    ]  # fmt: skip
    assert report.compare_local_only([second]) is None


@pytest.mark.parametrize(
    ("config", "text"),
    [
        ({"dp": "none"}, None),
        (
            {"dp": "central", "noise-multiplier": 1.0, "clip-norm": 0.5, "dp-clipping": "client",
             "secure-aggregation": True},
            "client-level DP (z 1, C 0.5, client clipping) · SecAgg+",
        ),
        (
            {"dp": "record", "noise-multiplier": 1.1, "clip-norm": 1.0, "target-epsilon": 3.0,
             "malicious-clients": [3, 7], "attack": "label-flip"},
            "record-level DP (z 1.1, C 1, budget ε 3) · 2 attackers, label-flip (clients 3, 7)",
        ),
    ],
)  # fmt: skip
def test_protection_text_says_dp_secagg_and_attackers(config: dict, text: str | None) -> None:
    # Execute
    result = report.protection_text(config)

    # Assert
    assert result == text


def test_has_client_signal_looks_at_one_stage_and_key() -> None:
    # Prepare
    events = [
        Event(1, Stage.FIT, Scope.FEDERATED, {}, {"0": {"train-loss": 0.5}}),
        Event(1, Stage.EVALUATE, Scope.FEDERATED, {}, {"0": {"update-norm": 1.0}}),
    ]

    # Execute / Assert
    assert not report.has_client_signal(events, Stage.FIT, "update-norm")
    assert report.has_client_signal(events, Stage.EVALUATE, "update-norm")


# a stopped run's kept model (14)


def partial_summary(round_: int = 2) -> dict[str, Any]:
    """What a run stopped after ``round_`` keeps: its model's metrics, no baselines."""
    return {
        "federated": {**METRICS, "auc": 0.8249},
        "federated_evaluation": METRICS,
        "wall_seconds": 40.0,
        "rounds": 5,
        "strategy": "fedavg",
        "partial": True,
        "round": round_,
    }


@pytest.mark.parametrize(
    ("state", "summary", "expected"),
    [
        (RunState.FINISHED, "whole", "final"),
        (RunState.STOPPED, "partial", "at round 2"),
        (RunState.STOPPED, None, None),  # stopped before any round: no model
        (RunState.RUNNING, None, None),
        (RunState.FAILED, None, None),
    ],
)
def test_model_round_says_which_rounds_model_the_metrics_are_of(
    state: RunState, summary: str | None, expected: str | None
) -> None:
    # Prepare
    summaries = {"whole": finished_summary(), "partial": partial_summary(), None: None}
    run = view(state=state, round_=2, rounds=5, summary=summaries[summary])

    # Execute / Assert
    assert report.model_round(run) == expected


def test_runs_and_compare_tables_show_a_stopped_runs_metrics_at_its_round() -> None:
    # Prepare
    stopped = view("stopped", state=RunState.STOPPED, round_=2, rounds=5, summary=partial_summary())

    # Execute
    [listed] = report.runs_table([stopped]).to_dict("records")
    [named] = report.compare_runs_table([stopped]).to_dict("records")
    [scored] = report.compare_metrics([stopped], "federated").to_dict("records")

    # Assert
    assert (listed["metric"], listed["score"], listed["model"]) == ("AUC", 0.8249, "at round 2")
    assert (named["model"], scored["AUC"]) == ("at round 2", 0.8249)


def test_gap_text_promises_a_gap_only_while_the_run_goes_on() -> None:
    # Prepare
    running = view(state=RunState.RUNNING, round_=1, rounds=5)
    stopped = view(state=RunState.STOPPED, round_=2, rounds=5, summary=partial_summary())
    finished = view(summary=finished_summary())

    # Execute / Assert
    assert report.gap_text(running) == "after the run"
    assert report.gap_text(stopped) == "—"
    assert report.gap_text(finished) == "-0.0453"


# phases (19)


@pytest.mark.parametrize(
    ("round_", "phase", "text", "value"),
    [
        (0, {"name": "engine", "label": "starting the simulation engine", "done": 0, "total": 0},
         "Starting the simulation engine…", 0.0),
        (0, {"name": "clients", "label": "starting the clients", "done": 3, "total": 12},
         "Starting the clients: 3 of 12", 0.25),
        (0, {"name": "statistics", "label": "collecting federated statistics", "done": 12,
             "total": 12}, "Collecting federated statistics: 12 of 12", 1.0),
        (5, {"name": "baselines", "label": "training the local-only baselines", "done": 1,
             "total": 4}, "Training the local-only baselines: 1 of 4", 0.25),
    ],
)  # fmt: skip
def test_phase_progress_says_what_the_run_does_outside_its_rounds(
    round_: int, phase: dict[str, Any], text: str, value: float
) -> None:
    # Prepare
    run = view(state=RunState.RUNNING, round_=round_, rounds=5, phase=phase)

    # Execute / Assert
    assert report.phase_progress(run) == (text, value)


def test_phase_progress_is_none_during_the_rounds_and_after_the_run() -> None:
    # Prepare
    rounds = {"name": "rounds", "label": "training", "done": 2, "total": 5}
    in_rounds = view(state=RunState.RUNNING, round_=2, rounds=5, phase=rounds)
    ended = view(state=RunState.FINISHED, round_=5, rounds=5, phase=rounds)
    unknown = view(state=RunState.RUNNING, round_=0, rounds=5)  # an engine without phases

    # Execute / Assert
    assert report.phase_progress(in_rounds) is None
    assert report.phase_progress(ended) is None
    assert report.phase_progress(unknown) is None


def test_phase_steps_mark_what_is_done_and_what_comes() -> None:
    # Prepare
    phase = {"name": "statistics", "label": "collecting federated statistics", "done": 1,
             "total": 3}  # fmt: skip
    run = view(state=RunState.RUNNING, round_=0, rounds=5, phase=phase)
    without_baselines = view(
        state=RunState.RUNNING, round_=0, rounds=5, phase=phase, config={"baseline": False}
    )

    # Execute / Assert
    assert report.phase_steps(run) == [
        ("engine", "done"), ("clients", "done"), ("statistics", "now"), ("rounds", "next"),
        ("baselines", "next"),
    ]  # fmt: skip
    assert [name for name, _ in report.phase_steps(without_baselines)][-1] == "rounds"


# failures and coverage (16)


def federated_eval(round_: int, **extra: Any) -> Event:
    return Event(round_, Stage.EVALUATE, Scope.FEDERATED, {"auc": 1.0}, {}, extra=extra)


def test_failures_table_names_each_failed_client_and_why() -> None:
    # Prepare
    failed = [{"partition": 3, "reason": "ValueError: empty batch"}, {"partition": None,
              "reason": "Ray actor died"}]  # fmt: skip
    events = [
        Event(1, Stage.FIT, Scope.FEDERATED, {}, extra={"failures": 2, "failed": failed}),
        federated_eval(1, failures=0, failed=[]),
        Event(2, Stage.FIT, Scope.FEDERATED, {}, extra={"failures": 1}),  # older runs: a count
    ]

    # Execute
    table = report.failures_table(events, {"3": "inst-3"})

    # Assert
    assert table.to_dict("records") == [
        {"round": 1, "stage": "fit", "client": "inst-3", "reason": "ValueError: empty batch"},
        {"round": 1, "stage": "fit", "client": "unknown", "reason": "Ray actor died"},
        {"round": 2, "stage": "fit", "client": "unknown", "reason": "not recorded"},
    ]


def test_failures_table_is_empty_when_every_client_answered() -> None:
    # Execute / Assert
    assert report.failures_table([federated_eval(1, failures=0, failed=[])], {}).empty


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"coverage": {"auc": 1, "loss": 12}, "reported": 12}, (1, 12)),
        ({"coverage": {"auc": 12}, "reported": 12}, (12, 12)),
        ({}, None),  # written before coverage was recorded
    ],
)
def test_coverage_of_the_latest_weighted_value(
    extra: dict[str, Any], expected: tuple[int, int] | None
) -> None:
    # Prepare
    events = [federated_eval(1, coverage={"auc": 5}, reported=5), federated_eval(2, **extra)]

    # Execute / Assert
    assert report.coverage(events, "auc") == expected


def test_coverage_text_warns_when_a_weighted_value_leaves_clients_out() -> None:
    # Execute / Assert
    assert report.coverage_text((1, 12), "auc") == (
        "The clients' weighted AUC of the last round covers 1 of 12 clients: the others "
        "reported no AUC (a held-out set of one class has none)."
    )
    assert report.coverage_text((12, 12), "auc") is None
    assert report.coverage_text(None, "auc") is None


def test_clients_without_values_are_named() -> None:
    # Prepare
    events = [
        Event(r, Stage.EVALUATE, Scope.FEDERATED, {}, {
            "0": {"auc": 0.7}, "1": {"auc": None}, "2": {"auc": 0.6 if r == 2 else None},
        }) for r in (1, 2)
    ]  # fmt: skip

    # Execute
    text = report.missing_clients_text(events, "auc", {"0": "a", "1": "b", "2": "c"})

    # Assert
    assert text == "No AUC in any round from b; none in some rounds from c."


# per task: multiclass and regression runs


def task_view(run_id: str, task: str, scores: dict[str, float], **summary: Any) -> RunView:
    """A finished run of ``task`` whose federated scores are ``scores``."""
    return view(run_id, config={"task": task}, summary={"federated": scores, **summary})


def test_final_table_of_a_multiclass_run_lists_its_metrics_then_each_classs_recall() -> None:
    # Prepare
    gap = {name: -0.01 for name in MULTICLASS}
    run = task_view("plan", "multiclass", MULTICLASS, centralized=MULTICLASS, gap=gap)

    # Execute
    table = report.final_table(run)

    # Assert
    assert list(table["metric"]) == [
        "accuracy", "macro-F1", "macro AUC (one-vs-rest)", "log-loss", "recall (basic)",
        "recall (premium)", "recall (standard)",
    ]  # fmt: skip
    assert list(table["federated"]) == list(MULTICLASS.values())


def test_final_table_of_a_regression_run_names_its_loss_as_the_standardised_mse() -> None:
    # Prepare
    run = task_view("spend", "regression", REGRESSION)

    # Execute
    table = report.final_table(run)

    # Assert: in the target's units, but the loss is the training one
    assert list(table["metric"]) == ["RMSE", "MAE", "R²", "MSE (standardised)"]
    assert table.iloc[0]["federated"] == 459.2378


def test_local_only_table_of_a_regression_gains_when_the_rmse_drops() -> None:
    # Prepare
    local = {"0": {"rmse": 488.66}, "1": {"rmse": 450.0}}
    run = task_view("spend", "regression", REGRESSION, local_only=local)

    # Execute
    table = report.local_only_table(run)

    # Assert: the federated RMSE is lower than 0's alone (a gain) and higher than 1's
    assert table is not None
    assert list(table.columns) == ["institution", "RMSE alone", "RMSE federated", "gain"]
    assert list(table["gain"]) == [pytest.approx(29.4222), pytest.approx(-9.2378)]
    colours = report.difference_colours(table, {report.GAIN: report.GAIN})
    assert list(colours["gain"]) == [report.VERDICT_STYLE["better"], report.VERDICT_STYLE["worse"]]


def test_local_only_table_of_a_multiclass_run_is_in_accuracy() -> None:
    # Prepare
    run = task_view("plan", "multiclass", MULTICLASS, local_only={"0": {"accuracy": 0.8}})

    # Execute
    table = report.local_only_table(run)

    # Assert
    assert table is not None
    assert table.to_dict("records") == [
        {"institution": "client 0", "accuracy alone": 0.8, "accuracy federated": 0.8588,
         "gain": 0.0588},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("metric", "difference", "expected"),
    [
        ("rmse", -27.0, "better"),  # a drop in RMSE is good
        ("rmse", 27.0, "worse"),
        ("mae", -0.5, "better"),
        ("r2", -0.08, "worse"),
        ("recall:basic", 0.02, "better"),
        ("gain", 0.02, "better"),
    ],
)
def test_verdict_follows_which_way_each_metric_is_better(
    metric: str, difference: float, expected: str
) -> None:
    # Execute / Assert
    assert report.verdict(metric, difference) == expected


def test_difference_colours_read_each_tasks_metrics_by_column_and_by_row() -> None:
    # Prepare
    columns = pd.DataFrame({"run": ["a"], "RMSE": [-27.0], "R²": [-0.08], "recall (x)": [0.1]})
    rows = pd.DataFrame(
        {"metric": ["RMSE", "MSE (standardised)", "recall (basic)"], "gap": [27.0, -0.1, 0.02]}
    )

    # Execute
    by_column = report.difference_colours(columns)
    by_row = report.difference_colours(rows, {"gap": report.BY_ROW})

    # Assert
    better, worse = report.VERDICT_STYLE["better"], report.VERDICT_STYLE["worse"]
    assert by_column.loc[0].to_dict() == {"run": "", "RMSE": better, "R²": worse,
                                          "recall (x)": better}  # fmt: skip
    assert list(by_row["gap"]) == [worse, better, better]


def test_compare_metrics_of_multiclass_runs_has_every_class_any_run_has() -> None:
    # Prepare
    other = {"accuracy": 0.7, "recall:gold": 0.5}
    runs = [task_view("plan", "multiclass", MULTICLASS), task_view("tier", "multiclass", other)]

    # Execute
    scores = report.compare_metrics(runs, "federated").set_index("run")

    # Assert
    assert list(scores.columns) == [
        "accuracy", "macro-F1", "macro AUC (one-vs-rest)", "log-loss", "recall (basic)",
        "recall (premium)", "recall (standard)", "recall (gold)",
    ]  # fmt: skip
    assert scores.loc["tier", "recall (gold)"] == 0.5
    assert pd.isna(scores.loc["plan", "recall (gold)"])


def test_compare_metrics_of_regression_runs() -> None:
    # Execute
    scores = report.compare_metrics([task_view("spend", "regression", REGRESSION)], "federated")

    # Assert
    assert scores.to_dict("records") == [
        {"run": "spend", "RMSE": 459.2378, "MAE": 357.8221, "R²": 0.3043,
         "MSE (standardised)": 0.7067},
    ]  # fmt: skip


def test_by_task_groups_runs_in_the_order_each_task_first_appears() -> None:
    # Prepare
    runs = [
        task_view("spend", "regression", REGRESSION),
        view("churn", summary=finished_summary()),  # a run before tasks: binary
        task_view("plan", "multiclass", MULTICLASS),
        task_view("spend-2", "regression", REGRESSION),
    ]

    # Execute
    groups = report.by_task(runs)

    # Assert
    assert {task: [r.run_id for r in group] for task, group in groups.items()} == {
        "regression": ["spend", "spend-2"], "binary": ["churn"], "multiclass": ["plan"],
    }  # fmt: skip
    assert list(groups) == ["regression", "binary", "multiclass"]


def test_chart_metrics_of_a_running_multiclass_run_name_its_classes_from_its_events() -> None:
    # Prepare: no summary yet
    run = view(state=RunState.RUNNING, round_=1, config={"task": "multiclass"})
    events = [central(0, accuracy=0.4, **{"recall:b": 0.1, "recall:a": 0.9})]

    # Execute / Assert
    assert report.chart_metrics(run, events) == (
        "accuracy", "macro_f1", "macro_auc", "loss", "recall:a", "recall:b", "train-loss",
    )  # fmt: skip
    assert report.chart_metrics(view(config={"task": "regression"})) == (
        "rmse", "mae", "r2", "loss", "train-loss",
    )  # fmt: skip


def test_gap_text_and_target_text_of_a_regression_run() -> None:
    # Prepare
    run = task_view(
        "spend", "regression", REGRESSION, gap={"rmse": 27.0381, "loss": 0.08},
        target="next_year_spend",
    )  # fmt: skip

    # Execute / Assert: the gap of its main score, RMSE
    assert report.gap_text(run) == "+27.0381"
    assert report.gap_text(run, "loss") == "+0.0800"
    assert report.target_text(run) == "next_year_spend (regression)"


def test_coverage_and_missing_clients_name_the_metric_as_the_task_does() -> None:
    # Prepare
    events = [Event(1, Stage.EVALUATE, Scope.FEDERATED, {}, {"0": {"loss": None}})]

    # Execute
    covered = report.coverage_text((1, 2), "loss", "regression")
    missing = report.missing_clients_text(events, "loss", {"0": "a"}, "regression")

    # Assert
    assert covered is not None and "weighted MSE (standardised) of the last round" in covered
    assert missing == "No MSE (standardised) in any round from a."


def test_fine_tuned_scores_and_thresholds_join_the_run_tables() -> None:
    # Prepare
    personal = {"epochs": 2, "clients": {"0": {"fine_tuned": {"auc": 0.81}}, "1": {}}}
    at = {"accuracy": 0.7, "f1": 0.6, "precision": 0.5, "recall": 0.75}
    threshold = {"value": 0.3, "source": "calibrated", "metric": "f1", "score": 0.6, "metrics": at}
    summary = finished_summary(
        local_only={"0": {"auc": 0.6}, "1": {"auc": 0.7}}, personalized=personal,
        threshold=threshold,
    )  # fmt: skip
    run = view(summary=summary)

    # Execute
    local = report.local_only_table(run)
    thresholds = report.threshold_table(run)

    # Assert
    assert local is not None and list(local.columns) == [
        "institution", "AUC alone", "AUC federated", "AUC federated + fine-tuned", "gain",
    ]  # fmt: skip
    assert local["AUC federated + fine-tuned"][0] == 0.81
    assert math.isnan(local["AUC federated + fine-tuned"][1])
    assert thresholds is not None
    assert list(thresholds.columns) == ["metric", "federated at 0.5", "federated at 0.3"]
    assert list(thresholds["federated at 0.3"]) == [0.7, 0.6, 0.5, 0.75]
    assert report.threshold_table(view(summary=finished_summary())) is None
