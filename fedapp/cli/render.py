"""Tables of a federation's data and of a finished run's results."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedapp.runs import METRIC_LABELS, METRIC_NAMES, RunDir, client_label
from fedapp.settings import RunConfig


def schema_table(loaded: Any) -> Table:
    """Each column's kind, blanks and summary over the pooled rows (the inspecting side's view)."""
    import pandas as pd  # off `fedapp --help`'s path

    pooled = pd.concat([c.train for c in loaded.clients] + [c.test for c in loaded.clients])
    schema = loaded.schema
    positives = int(pooled[schema.target].sum())
    table = Table(
        title=f"{len(pooled)} rows; target '{schema.target}': {positives} positive "
        f"({positives / len(pooled):.1%})"
    )
    for name in ("column", "kind", "missing", "summary"):
        table.add_column(name)
    for column in schema.numeric:
        values = pooled[column]
        table.add_row(
            column, "numeric", str(int(values.isna().sum())),
            f"mean {values.mean():.4g}, std {values.std():.4g}, "
            f"min {values.min():.4g}, max {values.max():.4g}",
        )  # fmt: skip
    for column in schema.categorical:
        values = pooled[column]
        top = values.value_counts().head(3)
        shown = ", ".join(f"{k} ({v})" for k, v in top.items())
        table.add_row(
            column, "categorical", str(int(values.isna().sum())),
            f"{values.nunique()} values: {shown}{', ...' if values.nunique() > 3 else ''}",
        )  # fmt: skip
    return table


def clients_table(loaded: Any, cfg: RunConfig) -> Table:
    """Rows, train/test sizes and positive rate of each client."""
    split = "one file per client" if cfg.client_data else f"partition {cfg.resolved_partition}"
    table = Table(title=f"{len(loaded.clients)} clients ({split})")
    for name in ("client", "source", "rows", "train", "test", "positive rate"):
        table.add_column(name, justify="right" if name not in ("source",) else "left")
    target = loaded.schema.target
    for pid, client in enumerate(loaded.clients):
        rows = client.train[target].tolist() + client.test[target].tolist()
        table.add_row(
            str(pid), escape(client.source), str(len(rows)), str(len(client.train)),
            str(len(client.test)), f"{sum(rows) / len(rows):.1%}",
        )  # fmt: skip
    return table


def print_summary(path: Path, summary: dict[str, Any]) -> None:
    """Print the final metrics, the baselines' and each institution's local-only AUC."""

    def fmt(value: float | None, signed: bool = False) -> str:
        # AUCs are NaN when a test set holds one class; show a dash, not "nan".
        if value is None or not math.isfinite(value):
            return "-"
        return f"{value:+.4f}" if signed else f"{value:.4f}"

    table = Table(title=f"{summary['strategy']}, {summary['rounds']} rounds (global test set)")
    table.add_column("metric")
    table.add_column("federated", justify="right")
    has_central = "centralized" in summary
    if has_central:
        table.add_column("centralized", justify="right")
        table.add_column("gap", justify="right")
    for name in METRIC_NAMES:
        row = [METRIC_LABELS[name], fmt(summary["federated"][name])]
        if has_central:
            row += [fmt(summary["centralized"][name]), fmt(summary["gap"][name], signed=True)]
        table.add_row(*row)
    out = Console()
    out.print(table)
    local = summary.get("local_only")
    if local:
        # What joining buys each institution: its model alone vs the federated
        # one, both scored on the same global test set.
        federated_auc = summary["federated"]["auc"]
        gains = {pid: federated_auc - m["auc"] for pid, m in local.items()}
        better = sum(1 for g in gains.values() if g > 0)
        joining = Table(
            title="AUC alone vs federated",
            caption=f"federated beats local-only for {better} of {len(local)} institutions",
        )
        joining.add_column("institution")
        joining.add_column("local-only", justify="right")
        joining.add_column("federated", justify="right")
        joining.add_column("gain", justify="right")
        sources = RunDir(path).read_config().get("client-sources", [])
        for pid in sorted(local, key=int):
            name = client_label(sources[int(pid)]) if int(pid) < len(sources) else pid
            joining.add_row(
                escape(f"{pid} {name}" if name != pid else pid),
                fmt(local[pid]["auc"]), fmt(federated_auc), fmt(gains[pid], signed=True),
            )  # fmt: skip
        out.print(joining)
    private = summary.get("privacy")
    if private:
        reason = summary.get("reason")
        stopped = f"; stopped after round {summary['rounds']}: {reason}" if reason else ""
        out.print(
            f"differential privacy ({private['mode']}): ε = {fmt(private['epsilon'])} "
            f"at δ = {private['delta']:g}{stopped}"
        )
    out.print(f"wall time {summary['wall_seconds']:.1f} s; run directory: {path}")
