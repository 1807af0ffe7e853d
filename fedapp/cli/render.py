"""Tables of a federation's data and of a finished run's results.

A run's results are shown from its :class:`~fedapp.runs.RunView`, the read
model the UI shares.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedapp.cli.output import warn
from fedapp.runs import (
    TASK_METRICS,
    RunView,
    higher_is_better,
    kept_model_text,
    metric_label,
    primary,
    skipped_rounds_text,
)
from fedapp.runs.closing import fine_tuned, personalized_note, threshold_columns, threshold_note
from fedapp.settings import RunConfig


def schema_table(loaded: Any) -> Table:
    """Each column's kind, blanks and summary over the pooled rows (the inspecting side's view)."""
    # pandas: only `inspect` describes data, never `fedapp --help`.
    from fedapp.data.describe import describe_federation

    described = describe_federation(loaded)
    table = Table(title=described.headline)
    for name in ("column", "kind", "missing", "summary"):
        table.add_column(name)
    for row in described.columns.itertuples(index=False):
        table.add_row(escape(row.column), row.kind, str(row.missing), escape(row.summary))
    return table


def clients_table(loaded: Any, cfg: RunConfig) -> Table:
    """Rows, train/test sizes and positive rate of each client."""
    # pandas: only `inspect` describes data, never `fedapp --help`.
    from fedapp.data.describe import describe_federation

    split = "one file per client" if cfg.client_data else f"partition {cfg.resolved_partition}"
    table = Table(title=f"{len(loaded.clients)} clients ({split})")
    clients = describe_federation(loaded).clients
    # The last column is the target's, by task: positive rate, classes or mean.
    [balance] = [c for c in clients.columns if c not in _CLIENT_COLUMNS]
    for name in (*_CLIENT_COLUMNS[:1], *_CLIENT_COLUMNS[2:], balance):
        table.add_column(name, justify="right" if name not in ("source",) else "left")
    for row in clients.to_dict("records"):
        value = row[balance]
        shown = f"{value:.1%}" if balance == "positive rate" else f"{value:.4g}"
        table.add_row(
            str(row["client"]), escape(row["source"]), str(row["rows"]), str(row["train"]),
            str(row["test"]), shown,
        )  # fmt: skip
    return table


_CLIENT_COLUMNS = ("client", "institution", "source", "rows", "train", "test")


def round_scores(metrics: Mapping[str, float], task: str) -> str:
    """A round's central scores in one line: the task's main score, then the loss."""
    names = dict.fromkeys((primary(task), *TASK_METRICS[task][:2], "loss"))
    return "  ".join(f"{metric_label(n, task)} {_fmt(_number(metrics.get(n)))}" for n in names)


def print_summary(run: RunView | Path, summary: Mapping[str, Any] | None = None) -> None:
    """Print a finished run's final metrics, baselines and each institution's local-only score.

    Parameters
    ----------
    run : RunView | Path
        The run, or its directory (read here).
    summary : Mapping[str, Any] | None
        The run's summary when the caller holds it already; ``None`` uses the
        one the view read from ``summary.json``.

    """
    view = run if isinstance(run, RunView) else RunView.read(run)
    if summary is not None:
        view = dataclasses.replace(view, summary=dict(summary))
    if view.summary is None:
        raise ValueError(f"run {view.run_id} has no summary: it is {view.state}")
    done = view.summary
    what = f"{view.task} '{done['target']}'" if done.get("target") else view.task
    best = (done.get("auto_rounds") or {}).get("best_round")
    rounds = f"{done['rounds']} rounds" + (f", model of round {best}" if best else "")
    table = Table(title=f"{done['strategy']}, {rounds}, {what} (global test set)")
    table.add_column("metric")
    table.add_column("federated", justify="right")
    has_central = "centralized" in done
    if has_central:
        table.add_column("centralized", justify="right")
        table.add_column("gap", justify="right")
    for name in view.metric_names:
        row = [metric_label(name, view.task), _fmt(view.final(name))]
        if has_central:
            row += [_fmt(view.final(name, "centralized")), _fmt(view.final(name, "gap"), True)]
        table.add_row(*row)
    out = Console()
    out.print(table)
    _print_thresholds(out, done, view.task)
    local = done.get("local_only")
    if local:
        # What joining buys each institution: its model alone vs the federated
        # one, both scored on the same global test set.
        main = view.primary_metric
        federated_auc = view.final(main)
        # A gain is what joining improves: a rise in AUC, a drop in RMSE.
        sign = 1 if higher_is_better(main) else -1
        alone = {pid: _number(m.get(main)) for pid, m in local.items()}
        gains = {
            pid: None if a is None or federated_auc is None else sign * (federated_auc - a)
            for pid, a in alone.items()
        }
        better = sum(1 for g in gains.values() if g is not None and g > 0)
        joining = Table(
            title=f"{metric_label(main, view.task)} alone vs federated",
            caption=f"federated beats local-only for {better} of {len(local)} institutions",
        )
        joining.add_column("institution")
        joining.add_column("local-only", justify="right")
        joining.add_column("federated", justify="right")
        tuned = personalized_note(done, main, view.task)
        if tuned:
            joining.add_column("federated + fine-tuned", justify="right")
        joining.add_column("gain", justify="right")
        names = view.client_labels(short=False)
        for pid in sorted(local, key=int):
            name = names.get(pid, pid)
            row = [_fmt(alone[pid]), _fmt(federated_auc)]
            if tuned:
                row.append(_fmt(fine_tuned(done, pid, main)))
            row.append(_fmt(gains[pid], signed=True))
            joining.add_row(escape(f"{pid} {name}" if name != pid else pid), *row)
        out.print(joining)
        if tuned:
            out.print(escape(tuned), soft_wrap=True)
    private = view.privacy
    if private:
        reason = done.get("reason")
        stopped = f"; stopped after round {done['rounds']}: {reason}" if reason else ""
        out.print(
            f"differential privacy ({private['mode']}): ε = {_fmt(_number(private['epsilon']))} "
            f"at δ = {private['delta']:g}{stopped}"
        )
    kept = kept_model_text(done)
    if kept:
        out.print(f"rounds auto: model.keras is {kept}")
    out.print(f"wall time {view.elapsed:.1f} s; run directory: {view.path}")
    lost = done.get("failed_client_rounds") or 0
    if lost:
        warn(
            f"{lost} client-round(s) failed: those rounds learned from fewer clients; "
            f"metrics.jsonl names who failed and why"
        )
    skipped = skipped_rounds_text(done)
    if skipped:
        warn(skipped)


def _print_thresholds(out: Console, done: Mapping[str, Any], task: str) -> None:
    """The thresholded scores at 0.5 and at the run's (and the baseline's) threshold."""
    columns = threshold_columns(done)
    notes = [n for n in (threshold_note(done), threshold_note(done, "centralized_threshold")) if n]
    if not columns:
        for note in notes:
            out.print(note, highlight=False)
        return
    table = Table(title="at the decision threshold", caption="; ".join(notes))
    table.add_column("metric")
    for title in columns:
        table.add_column(title, justify="right")
    for name in next(iter(columns.values())):
        table.add_row(metric_label(name, task), *(_fmt(c[name]) for c in columns.values()))
    out.print(table)


def _fmt(value: float | None, signed: bool = False) -> str:
    # AUCs are NaN when a test set holds one class; show a dash, not "nan".
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
