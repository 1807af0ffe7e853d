"""Streamlit pieces the pages share: cached readers, forms, badges, pickers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from fedapp.registry import StrategyPlugin
from fedapp.runs import RunState, RunView
from fedapp_ui import run_form

# Scores with four decimals, differences signed, in every table.
_SCORE = st.column_config.NumberColumn(format="%.4f")
_DIFF = st.column_config.NumberColumn(format="%+.4f")
SCORES = {
    "federated": _SCORE, "centralized": _SCORE, "gap": _DIFF, "AUC": _SCORE,
    "AUC alone": _SCORE, "AUC federated": _SCORE, "gain": _DIFF, "PR-AUC": _SCORE,
    "accuracy": _SCORE, "F1": _SCORE, "log-loss": _SCORE, "centralized AUC": _SCORE,
    "gap AUC": _DIFF,
}  # fmt: skip

# Every state, recorded or inferred, has its badge.
STATE_COLORS: dict[RunState, str] = {
    RunState.RUNNING: "blue",
    RunState.STARTING: "blue",
    RunState.FINISHED: "green",
    RunState.FAILED: "red",
    RunState.STOPPED: "orange",
    RunState.INTERRUPTED: "orange",
    RunState.MISSING: "gray",
}
STATE_ICONS: dict[RunState, str] = {
    RunState.RUNNING: ":material/progress_activity:",
    RunState.STARTING: ":material/hourglass_top:",
    RunState.FINISHED: ":material/check_circle:",
    RunState.FAILED: ":material/error:",
    RunState.STOPPED: ":material/stop_circle:",
    RunState.INTERRUPTED: ":material/warning:",
    RunState.MISSING: ":material/help:",
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


def setting_input(name: str, where: Any = st, **overrides: Any) -> Any:
    """The widget of a declared setting, keyed by its name (:func:`run_form.widget`).

    ``where`` is the container (a column); ``overrides`` adjust the widget's
    arguments (e.g. a ``format_func`` naming the choices).
    """
    spec = run_form.widget(name)
    return getattr(where, spec.kind)(spec.label, **(spec.options | overrides))


def setting_inputs(names: Sequence[str], form: dict[str, Any]) -> None:
    """A row of :func:`setting_input` widgets; their values go into ``form`` by key."""
    for cell, name in zip(st.columns(len(names)), names, strict=True):
        form[run_form.widget(name).setting] = setting_input(name, cell)


def state_badge(state: RunState) -> None:
    """The run's state as a coloured badge."""
    st.badge(str(state), color=STATE_COLORS[state], icon=STATE_ICONS[state])


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
