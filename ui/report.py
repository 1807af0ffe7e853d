"""Numbers and tables the pages show, computed from run directories alone."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from fedapp.runs import METRIC_LABELS, METRIC_NAMES, Event, RunState, RunView, Scope, Stage

# The metrics offered above the charts: AUC, accuracy and loss first.
CHART_METRICS = ("auc", "accuracy", "loss", "pr_auc", "f1", "precision", "recall", "train-loss")


def label(metric: str) -> str:
    """How a metric is named on screen."""
    return METRIC_LABELS.get(metric, metric)


def fmt(value: float | None, signed: bool = False) -> str:
    """Four decimals, or a dash for a missing or undefined value."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s`` or ``1 h 02 min``."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def latest(events: Iterable[Event], metric: str) -> float | None:
    """The newest global-test value of ``metric`` (the server's evaluation)."""
    value = None
    for event in events:
        if event.stage is Stage.EVALUATE and event.scope is Scope.CENTRALIZED:
            found = event.metrics.get(metric)
            value = found if isinstance(found, int | float) else value
    return value


def progress_text(view: RunView) -> str:
    """What the run is doing, in words."""
    if view.state is RunState.STARTING:
        return "Checking the data and starting the run…"
    if view.state is RunState.RUNNING:
        if view.round == 0:
            return "Starting Flower's simulation engine and collecting federated statistics…"
        if view.round >= view.rounds:
            return (
                "Training the centralized and local-only baselines…"
                if view.config.get("baseline", True)
                else "Saving the model…"
            )
        return f"Round {view.round} of {view.rounds}"
    return f"{str(view.state).capitalize()} after round {view.round} of {view.rounds}"


def protection_text(config: Mapping[str, Any]) -> str | None:
    """The run's privacy and attack settings in a few words, or ``None`` if it has none.

    E.g. ``client-level DP (z 1, C 0.5, client clipping, budget ε 3) · SecAgg+ ·
    2 attackers, sign-flip:10 (clients 3, 7)``.
    """
    parts = []
    dp = config.get("dp", "none")
    if dp in ("central", "record"):
        settings = [f"z {config.get('noise-multiplier'):g}", f"C {config.get('clip-norm'):g}"]
        if dp == "central":
            settings.append(f"{config.get('dp-clipping', 'server')} clipping")
        if config.get("target-epsilon") is not None:
            settings.append(f"budget ε {config['target-epsilon']:g}")
        kind = "client-level" if dp == "central" else "record-level"
        parts.append(f"{kind} DP ({', '.join(settings)})")
    if config.get("secure-aggregation"):
        parts.append("SecAgg+")
    attackers = config.get("malicious-clients") or []
    if attackers:
        ids = ", ".join(str(a) for a in attackers)
        noun = "attacker" if len(attackers) == 1 else "attackers"
        parts.append(f"{len(attackers)} {noun}, {config.get('attack')} (clients {ids})")
    return " · ".join(parts) or None


def has_client_signal(events: Iterable[Event], stage: Stage, key: str) -> bool:
    """Whether some ``stage`` event reports ``key`` for some client (ε, update norms)."""
    return any(
        isinstance(client, Mapping) and key in client
        for event in events
        if event.stage == stage
        for client in event.clients.values()
    )


def final_table(view: RunView) -> pd.DataFrame:
    """Federated vs centralized per metric, with the gap (federated minus centralized)."""
    rows = []
    for name in METRIC_NAMES:
        row = {"metric": label(name), "federated": view.final(name)}
        if view.summary and "centralized" in view.summary:
            row["centralized"] = view.final(name, "centralized")
            row["gap"] = view.final(name, "gap")
        rows.append(row)
    return pd.DataFrame(rows).round(4)


def local_only_table(view: RunView) -> pd.DataFrame | None:
    """Each institution's model trained alone vs the federated one (AUC), or ``None``."""
    local = (view.summary or {}).get("local_only")
    if not local:
        return None
    labels = view.client_labels()
    federated = view.final("auc")
    rows = []
    for pid in sorted(local, key=int):
        alone = local[pid].get("auc")
        rows.append(
            {
                "institution": labels.get(pid, f"client {pid}"),
                "AUC alone": alone,
                "AUC federated": federated,
                "gain": None if alone is None or federated is None else federated - alone,
            }
        )
    return pd.DataFrame(rows).round(4)


def runs_table(runs: Sequence[RunView]) -> pd.DataFrame:
    """The Runs page's list: one row per run, newest first."""
    rows = [
        {
            "run": r.run_id,
            "state": str(r.state),
            "strategy": r.strategy_label,
            "data": r.data_label,
            "rounds": f"{r.round}/{r.rounds}",
            "AUC": r.final("auc"),
            "gap": r.final("auc", "gap"),
            "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)),
        }
        for r in runs
    ]
    columns = ["run", "state", "strategy", "data", "rounds", "AUC", "gap", "started"]
    return pd.DataFrame(rows, columns=columns).round(4)


def compare_table(runs: Sequence[RunView]) -> pd.DataFrame:
    """Final metrics of several runs side by side, with each one's gap to centralized."""
    rows = []
    for r in runs:
        row: dict[str, Any] = {"run": r.run_id, "strategy": r.strategy_label, "data": r.data_label}
        for name in ("auc", "pr_auc", "accuracy", "f1", "loss"):
            row[label(name)] = r.final(name)
        row["centralized AUC"] = r.final("auc", "centralized")
        row["gap AUC"] = r.final("auc", "gap")
        row["wall time"] = duration(r.elapsed)
        rows.append(row)
    return pd.DataFrame(rows).round(4)
