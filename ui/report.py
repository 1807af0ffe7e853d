"""Numbers and tables the pages show, computed from run directories alone."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from fedapp.protection import anomaly
from fedapp.runs import (
    TASK_METRICS,
    Event,
    RunState,
    RunView,
    Scope,
    Stage,
    higher_is_better,
    metric_label,
    metric_names,
)
from fedapp.runs.closing import fine_tuned, threshold_columns
from fedapp.settings import AUTO_ROUNDS, DATA_SECTIONS, fields

# The clients' training loss, offered above a run's charts after the task's scores.
TRAIN_LOSS = "train-loss"
# What joining buys an institution over its model alone: signed so that more is
# better whatever the metric (a rise in AUC, a drop in RMSE).
GAIN = "gain"
# How a difference is coloured in tables: good for its metric, bad, or none.
VERDICT_STYLE = {
    "better": "background-color: #dcfce7; color: #166534",
    "worse": "background-color: #fee2e2; color: #991b1b",
    "even": "",
}
# In difference_colours: the row's own `metric` cell says which metric a column holds.
BY_ROW = "by row"
# Each task's metric names as tables show them (`log-loss`, `MSE (standardised)`).
_METRIC_OF = {
    metric_label(name, task): name
    for task, names in TASK_METRICS.items()
    for name in (*names, TRAIN_LOSS)
}
# How metric_label names a class's recall: `recall (premium)`.
_CLASS_RECALL = ("recall (", ")")
# The settings that decide a run's data (`fedapp inspect`'s sections).
_DATA_KEYS = tuple(s.key for s in fields(*DATA_SECTIONS))
# The Runs page's columns: each run's score is its task's main one, named in `metric`.
RUNS_COLUMNS = (
    "run", "state", "strategy", "data", "target", "rounds", "metric", "score", "model", "gap",
    "started",
)  # fmt: skip
# The steps of a run, as status.json's `phase` names them.
PHASES = ("engine", "clients", "statistics", "rounds", "closing", "baselines")


def label(metric: str, task: str = "binary") -> str:
    """How a metric is named on screen: ``AUC``, ``log-loss``, ``MSE (standardised)``."""
    return metric_label(metric, task)


def metric_of(name: str) -> str | None:
    """The metric a table's column or row is named as (``RMSE``: ``rmse``), else ``None``."""
    if name in _METRIC_OF:
        return _METRIC_OF[name]
    start, end = _CLASS_RECALL
    if name.startswith(start) and name.endswith(end):
        return f"recall:{name[len(start) : -len(end)]}"
    return None


def run_metrics(view: RunView, events: Iterable[Event] = ()) -> tuple[str, ...]:
    """The run's scores in display order, with the class recalls its events or summary hold.

    A running multiclass run has no summary yet: its events name its classes.
    """
    present = set((view.summary or {}).get("federated") or {})
    for event in events:
        present.update(event.metrics)
    return metric_names(view.task, present)


def chart_metrics(view: RunView, events: Iterable[Event] = ()) -> tuple[str, ...]:
    """The metrics offered above a run's charts: its task's scores, then the training loss."""
    return (*run_metrics(view, events), TRAIN_LOSS)


def target_text(view: RunView) -> str:
    """What the run predicts: ``churned (binary)``, or just its task if it names no target."""
    target = (view.summary or {}).get("target") or view.config.get("target")
    return f"{target} ({view.task})" if target else view.task


def by_task(runs: Sequence[RunView]) -> dict[str, list[RunView]]:
    """The runs grouped by task, in the order each task first appears."""
    groups: dict[str, list[RunView]] = {}
    for r in runs:
        groups.setdefault(r.task, []).append(r)
    return groups


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
            if view.phase:  # said by the step's own bar (phase_progress)
                return f"Getting ready for round 1 of {view.rounds}"
            return "Starting Flower's simulation engine and collecting federated statistics…"
        if view.round >= view.rounds:
            if view.phase:
                return f"All {view.rounds} rounds done"
            return (
                "Training the centralized and local-only baselines…"
                if view.config.get("baseline", True)
                else "Saving the model…"
            )
        return f"Round {view.round} of {_limit(view)}"
    return f"{str(view.state).capitalize()} after round {view.round} of {_limit(view)}"


def _limit(view: RunView) -> str:
    """The rounds a run may run, in words: an automatic run's are a limit."""
    auto = view.config.get("rounds") == AUTO_ROUNDS
    return f"at most {view.rounds}" if auto else str(view.rounds)


def phase_progress(view: RunView) -> tuple[str, float] | None:
    """What a running run does outside its rounds, and how far it is: its own progress bar.

    ``None`` during the rounds (the rounds' bar says it), once the run has
    ended, or for an engine that records no phases.
    """
    phase = view.phase
    if phase is None or phase.get("name") == "rounds":
        return None
    label = str(phase.get("label") or phase.get("name") or "working")
    label = label[:1].upper() + label[1:]
    done, total = phase.get("done"), phase.get("total")
    if isinstance(total, int) and total > 0 and isinstance(done, int):
        return f"{label}: {done} of {total}", min(max(done / total, 0.0), 1.0)
    return f"{label}…", 0.0


def phase_steps(view: RunView) -> list[tuple[str, str]]:
    """Each step of a run (:data:`PHASES`) with ``done``, ``now`` or ``next``.

    The baselines are a step only for a run that trains them.
    """
    config = view.config
    closes = config.get("threshold") is not None or bool(config.get("personalize-epochs"))
    shown = {"baselines": config.get("baseline", True), "closing": closes}
    steps = [p for p in PHASES if shown.get(p, True)]
    phase = view.phase or {}
    current = phase.get("name")
    if current not in steps:
        current = "rounds" if view.round else None
    at = steps.index(current) if current in steps else -1
    return [
        (name, "done" if i < at else "now" if i == at else "next") for i, name in enumerate(steps)
    ]


def gap_text(view: RunView, metric: str | None = None) -> str:
    """The gap to centralized, signed; promised "after the run" only while it goes on.

    Of the run's main score (:attr:`RunView.primary_metric`) unless ``metric`` says.
    """
    gap = view.final(metric or view.primary_metric, "gap")
    if gap is not None:
        return fmt(gap, signed=True)
    return "after the run" if view.state.active else "—"


def model_round(view: RunView) -> str | None:
    """Which round's model the run's final metrics are of: ``final``, ``at round r``, or none."""
    if not view.summary:
        return None
    partial = view.partial_round
    return "final" if partial is None else f"at round {partial}"


def failures_table(events: Iterable[Event], labels: Mapping[str, str]) -> pd.DataFrame:
    """Each client that failed a round (fit or evaluate) and why, in round order.

    An event that counts ``failures`` without naming them (written before
    runs recorded who failed) gives rows of unknown clients.
    """
    rows = []
    for event in events:
        if event.scope is not Scope.FEDERATED or event.stage not in (Stage.FIT, Stage.EVALUATE):
            continue
        failed = event.extra.get("failed")
        named = [f for f in failed if isinstance(f, Mapping)] if isinstance(failed, list) else []
        count = event.extra.get("failures")
        unnamed = max(count - len(named), 0) if isinstance(count, int) else 0
        for entry in [*named, *({} for _ in range(unnamed))]:
            pid = entry.get("partition")
            client = labels.get(str(pid), f"client {pid}") if pid is not None else "unknown"
            reason = str(entry.get("reason") or "not recorded")
            rows.append({"round": event.round, "stage": str(event.stage), "client": client,
                         "reason": reason})  # fmt: skip
    return pd.DataFrame(rows, columns=["round", "stage", "client", "reason"])


def coverage(events: Iterable[Event], metric: str) -> tuple[int, int] | None:
    """How many clients the latest weighted ``metric`` covers, of how many reported.

    From the newest federated evaluation (its ``coverage`` and ``reported``);
    ``None`` if there is none or it does not record them (an older run).
    """
    latest: Event | None = None
    for event in events:
        if event.stage is Stage.EVALUATE and event.scope is Scope.FEDERATED:
            latest = event
    if latest is None:
        return None
    covered = (latest.extra.get("coverage") or {}).get(metric)
    reported = latest.extra.get("reported")
    if isinstance(covered, int) and isinstance(reported, int):
        return covered, reported
    return None


def coverage_text(covered: tuple[int, int] | None, metric: str, task: str = "binary") -> str | None:
    """A warning when the clients' weighted ``metric`` leaves some clients out, else ``None``."""
    if covered is None or covered[0] >= covered[1]:
        return None
    k, n = covered
    name = label(metric, task)
    return (
        f"The clients' weighted {name} of the last round covers {k} of {n} clients: "
        f"the others reported no {name} (a held-out set of one class has none)."
    )


def missing_clients_text(
    events: Iterable[Event], metric: str, labels: Mapping[str, str], task: str = "binary"
) -> str | None:
    """Which clients the per-client chart has no line for, or gaps in; ``None`` if none."""
    stage = Stage.FIT if metric == "train-loss" else Stage.EVALUATE
    seen: dict[str, list[bool]] = {}
    for event in events:
        if event.stage is not stage or event.scope is not Scope.FEDERATED:
            continue
        for pid, entry in event.clients.items():
            value = entry.get(metric) if isinstance(entry, Mapping) else None
            finite = isinstance(value, int | float) and math.isfinite(value)
            seen.setdefault(str(pid), []).append(finite)
    ordered = [
        (labels.get(pid, f"client {pid}"), values)
        for pid, values in sorted(seen.items(), key=_order)
    ]
    never = [name for name, values in ordered if not any(values)]
    some = [name for name, values in ordered if any(values) and not all(values)]
    parts = []
    if never:
        parts.append(f"No {label(metric, task)} in any round from {', '.join(never)}")
    if some:
        parts.append(f"none in some rounds from {', '.join(some)}")
    if not parts:
        return None
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def _order(item: tuple[str, Any]) -> tuple[int, int, str]:
    """Numeric client ids first, by value."""
    pid = item[0]
    return (0, int(pid), pid) if pid.isdigit() else (1, 0, pid)


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


def unflagged_rounds_text(events: Iterable[Event]) -> str | None:
    """Why some rounds' updates were not judged: too few clients (:func:`anomaly.can_flag`)."""
    scored = [
        len(event.clients)
        for event in events
        if event.stage == Stage.FIT and "flagged" in event.extra and event.clients
    ]
    small = sum(not anomaly.can_flag(count) for count in scored)
    if not small:
        return None
    rounds = "every round" if small == len(scored) else f"{small} of {len(scored)} rounds"
    return (
        f"No update is flagged in a round of fewer than {anomaly.MIN_CLIENTS_TO_FLAG} clients "
        f"({rounds} here): over so few, an honest client's difference looks like an outlier."
    )


def final_table(view: RunView) -> pd.DataFrame:
    """Federated vs centralized per metric of the run's task, with the gap (federated minus it)."""
    rows = []
    for name in view.metric_names:
        row = {"metric": label(name, view.task), "federated": view.final(name)}
        if view.summary and "centralized" in view.summary:
            row["centralized"] = view.final(name, "centralized")
            row["gap"] = view.final(name, "gap")
        rows.append(row)
    return pd.DataFrame(rows).round(4)


def local_only_table(view: RunView) -> pd.DataFrame | None:
    """Each institution's model trained alone vs the federated one, or ``None``.

    In the run's main score (AUC, accuracy, RMSE); the ``gain`` is what
    joining improves (:data:`GAIN`): a rise in AUC, a drop in RMSE.
    """
    local = (view.summary or {}).get("local_only")
    if not local:
        return None
    labels = view.client_labels()
    main = view.primary_metric
    name = label(main, view.task)
    federated = view.final(main)
    sign = 1 if higher_is_better(main) else -1
    personal = (view.summary or {}).get("personalized")
    rows = []
    for pid in sorted(local, key=int):
        alone = _number(local[pid].get(main))
        row = {
            "institution": labels.get(pid, f"client {pid}"),
            f"{name} alone": alone,
            f"{name} federated": federated,
        }
        if personal:
            # On the institution's own held-out rows (personalized_note says so).
            row[f"{name} federated + fine-tuned"] = fine_tuned(view.summary, pid, main)
        row[GAIN] = None if alone is None or federated is None else sign * (federated - alone)
        rows.append(row)
    return pd.DataFrame(rows).round(4)


def threshold_table(view: RunView) -> pd.DataFrame | None:
    """Accuracy, F1, precision and recall at 0.5 and at the run's thresholds, or ``None``.

    A column per model and threshold (:func:`fedapp.runs.closing.threshold_columns`).
    """
    columns = threshold_columns(view.summary)
    if not columns:
        return None
    names = list(next(iter(columns.values())))
    rows = [{"metric": label(m), **{t: c[m] for t, c in columns.items()}} for m in names]
    return pd.DataFrame(rows).round(4)


def runs_table(runs: Sequence[RunView]) -> pd.DataFrame:
    """The Runs page's list: one row per run, newest first."""
    rows = [
        {
            "run": r.run_id,
            "state": str(r.state),
            "strategy": r.strategy_label,
            "data": r.data_label,
            "target": target_text(r),
            "rounds": f"{r.round}/{r.rounds}",
            "metric": label(r.primary_metric, r.task),
            "score": r.final(r.primary_metric),
            "model": model_round(r),
            "gap": r.final(r.primary_metric, "gap"),
            "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)),
        }
        for r in runs
    ]
    return pd.DataFrame(rows, columns=RUNS_COLUMNS).round(4)


def compare_runs_table(runs: Sequence[RunView]) -> pd.DataFrame:
    """What each compared run is: strategy, data, which round's model, wall time."""
    rows = [
        {
            "run": r.run_id, "strategy": r.strategy_label, "data": r.data_label,
            "model": model_round(r), "wall time": duration(r.elapsed),
        }
        for r in runs
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["run", "strategy", "data", "model", "wall time"])


def compare_metrics(runs: Sequence[RunView], scope: str) -> pd.DataFrame:
    """One number per run and metric: the final scores (``federated``) or their ``gap``.

    For runs of one task (:func:`by_task`): its metrics, then every class
    recall any of the runs has.
    """
    task = runs[0].task if runs else "binary"
    names = list(dict.fromkeys(m for r in runs for m in r.metric_names)) or TASK_METRICS[task]
    rows = [{"run": r.run_id, **{label(m, task): r.final(m, scope) for m in names}} for r in runs]
    return pd.DataFrame(rows, columns=["run", *(label(m, task) for m in names)]).round(4)


def compare_local_only(runs: Sequence[RunView]) -> pd.DataFrame | None:
    """Each institution trained alone vs each run's federated model, or ``None``.

    In the main score of the runs' task (:func:`local_only_table`), for runs of one task.
    """
    tables = []
    for r in runs:
        local = local_only_table(r)
        if local is not None:
            local.insert(1, "run", r.run_id)
            tables.append(local)
    if not tables:
        return None
    return pd.concat(tables).sort_values("institution", kind="stable").reset_index(drop=True)


def default_comparison(runs: Sequence[RunView], most: int = 4) -> list[str]:
    """The runs Compare opens with: the latest ones on the data of the newest run.

    Runs are on the same data when every data setting (file, split, clients,
    seed, columns) is the same. If the newest run's data has no other run,
    the newest data that has two or more does; failing that, the newest run.
    ``runs`` are newest first, as :func:`fedapp_ui.store.list_runs` gives them.
    """
    groups: dict[str, list[str]] = {}
    for r in runs:
        groups.setdefault(data_key(r), []).append(r.run_id)
    ordered = list(groups.values())  # by each data's newest run
    chosen = next((ids for ids in ordered if len(ids) > 1), ordered[0] if ordered else [])
    return chosen[:most]


def data_key(view: RunView) -> str:
    """The run's data settings as one string: equal for runs on the same federation."""
    return json.dumps({k: view.config.get(k) for k in _DATA_KEYS}, sort_keys=True)


def verdict(metric: str, difference: float | None) -> str | None:
    """``better``, ``worse`` or ``even`` for a difference in ``metric`` (``None``: no value).

    Higher is better for every score but the losses and errors (RMSE, MAE),
    where lower is; a :data:`GAIN` is better the higher.
    """
    if difference is None or not math.isfinite(difference):
        return None
    if round(difference, 4) == 0:
        return "even"
    good = difference > 0 if higher_is_better(metric) else difference < 0
    return "better" if good else "worse"


def difference_colours(
    table: pd.DataFrame, differences: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """CSS per cell of ``table``: green where a difference is good for its metric, red if bad.

    Parameters
    ----------
    table : pd.DataFrame
        A table holding differences (gaps to centralized, gains over alone).
    differences : Mapping[str, str] | None
        Column -> the metric key of the differences it holds, or
        :data:`BY_ROW` for a column whose row's ``metric`` cell names it; a
        column the table lacks is skipped. By default every column named as
        a metric (``AUC``, ``log-loss``, ``RMSE``: :func:`metric_of`).

    """
    if differences is None:
        differences = {c: m for c in table.columns if (m := metric_of(c)) is not None}
    differences = {c: m for c, m in differences.items() if c in table.columns}
    colours = pd.DataFrame("", index=table.index, columns=table.columns)
    for column, metric in differences.items():
        for row in table.index:
            key = (metric_of(str(table.loc[row, "metric"])) or "") if metric == BY_ROW else metric
            found = verdict(key, _number(table.loc[row, column]))
            colours.loc[row, column] = VERDICT_STYLE.get(found or "", "")
    return colours


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
