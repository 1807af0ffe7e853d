"""Streamlit pieces the pages share: cached readers, forms, badges, pickers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from fedapp.registry import StrategyPlugin
from fedapp_ui import run_form
from fedapp_ui.store import RunView

# Scores with four decimals, differences signed, in every table.
_SCORE = st.column_config.NumberColumn(format="%.4f")
_DIFF = st.column_config.NumberColumn(format="%+.4f")
SCORES = {
    "federated": _SCORE, "centralized": _SCORE, "gap": _DIFF, "AUC": _SCORE,
    "AUC alone": _SCORE, "AUC federated": _SCORE, "gain": _DIFF, "PR-AUC": _SCORE,
    "accuracy": _SCORE, "F1": _SCORE, "log-loss": _SCORE, "centralized AUC": _SCORE,
    "gap AUC": _DIFF,
}  # fmt: skip

STATE_COLORS = {
    "running": "blue",
    "starting": "blue",
    "finished": "green",
    "failed": "red",
    "stopped": "orange",
    "interrupted": "orange",
}
STATE_ICONS = {
    "running": ":material/progress_activity:",
    "starting": ":material/hourglass_top:",
    "finished": ":material/check_circle:",
    "failed": ":material/error:",
    "stopped": ":material/stop_circle:",
    "interrupted": ":material/warning:",
}


def columns_of(paths: tuple[Path, ...]) -> list[run_form.Column]:
    """The tables' columns, read once per file version (path and modification time)."""
    stamps = tuple(p.stat().st_mtime_ns for p in paths)
    return _columns(paths, stamps)


@st.cache_data(max_entries=16, show_spinner="Reading the table…")
def _columns(paths: tuple[Path, ...], _stamps: tuple[int, ...]) -> list[run_form.Column]:
    return run_form.describe_columns(paths)


def param_inputs(plugin: StrategyPlugin) -> dict[str, Any]:
    """One input per declared parameter of ``plugin``, laid out in a row.

    Widgets are keyed ``param.<strategy>.<name>``, so a third-party plugin
    gets its form with no change here.
    """
    if not plugin.params:
        st.caption("This strategy has no parameters.")
        return {}
    values: dict[str, Any] = {}
    cells = st.columns(min(len(plugin.params), 3))
    for i, p in enumerate(plugin.params):
        cell = cells[i % len(cells)]
        key = f"param.{plugin.name}.{p.name}"
        label = p.name.replace("-", " ").capitalize()
        if p.type is bool:
            values[p.name] = cell.toggle(label, value=bool(p.default), key=key, help=p.help)
        elif p.choices:
            values[p.name] = cell.selectbox(
                label, p.choices, index=list(p.choices).index(p.default), key=key, help=p.help
            )
        elif p.type is int:
            values[p.name] = cell.number_input(
                label, value=int(p.default), step=1, key=key, help=p.help,
                min_value=int(p.minimum) if p.minimum is not None else None,
            )  # fmt: skip
        elif p.type is float:
            values[p.name] = cell.number_input(
                label, value=float(p.default), key=key, help=p.help, format="%g",
                min_value=float(p.minimum) if p.minimum is not None else None,
            )  # fmt: skip
        else:
            values[p.name] = cell.text_input(label, value=str(p.default), key=key, help=p.help)
    return values


def state_badge(state: str) -> None:
    """The run's state as a coloured badge."""
    st.badge(state, color=STATE_COLORS.get(state, "gray"), icon=STATE_ICONS.get(state))


def run_label(view: RunView) -> str:
    """One line naming a run in pickers: name, strategy, state."""
    return f"{view.run_id} · {view.strategy_label} · {view.state}"


def pick_runs(runs: Sequence[RunView], default: Sequence[str], key: str) -> list[RunView]:
    """A multiselect of runs; returns the chosen ones in the order picked."""
    by_id = {r.run_id: r for r in runs}
    chosen = st.multiselect(
        "Runs",
        list(by_id),
        default=[d for d in default if d in by_id],
        format_func=lambda rid: run_label(by_id[rid]),
        key=key,
    )
    return [by_id[c] for c in chosen]
