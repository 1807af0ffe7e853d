"""Streamlit pieces the pages share: cached readers, forms, badges, pickers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from fedapp.errors import UsageError
from fedapp.registry import BrokenPlugin, ModelPlugin, StrategyPlugin
from fedapp.runs import RunState, RunView
from fedapp.settings import DATA_SECTIONS, RunConfig, describe, fields
from fedapp_ui import charts, report, run_form

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler

    from fedapp.data.describe import DataPreview

# Scores with four decimals, differences signed, in the tables that are not
# styled by `differences` (which formats its own).
_SCORE = st.column_config.NumberColumn(format="%.4f")
_DIFF = st.column_config.NumberColumn(format="%+.4f")
# The clients table's target column, by task (DataPreview.clients).
_TARGET_COLUMNS = {
    "positive rate": st.column_config.NumberColumn(format="percent"),
    "classes": st.column_config.NumberColumn(
        format="%d", help="Classes of the target among the institution's rows."
    ),
    "target mean": st.column_config.NumberColumn(
        format="%.4g", help="The target's mean over the institution's rows, in its own units."
    ),
}


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
def _columns(paths: tuple[Path, ...], stamps: tuple[int, ...]) -> list[run_form.Column]:
    # `stamps` is part of the cache's key: a file rewritten in place is read again.
    return run_form.describe_columns(paths)


def data_preview(cfg: RunConfig) -> DataPreview | str:
    """The data ``cfg`` would run on (:func:`run_form.load_data`), or why it cannot.

    Read once per data settings and file version (path and modification
    time), so that a page redrawn for any other setting does not reload it.
    """
    settings = cfg.to_dict()
    key = json.dumps({s.key: settings[s.key] for s in fields(*DATA_SECTIONS)}, sort_keys=True)
    files = [Path(f) for f in (*cfg.client_data, cfg.data) if f != "demo"]
    stamps = tuple(f.stat().st_mtime_ns if f.is_file() else 0 for f in files)
    return _data_preview(key, stamps, cfg)


@st.cache_data(max_entries=8, show_spinner="Checking the data…")
def _data_preview(key: str, stamps: tuple[int, ...], _cfg: RunConfig) -> DataPreview | str:
    # `key` and `stamps` are the cache's key (hashed); `_cfg`, which they describe, is not.
    try:
        return run_form.load_data(_cfg)
    except UsageError as err:  # kept too: the same bad file is not read again on each redraw
        return str(err)


def show_preview(found: DataPreview, expanded: bool) -> None:
    """The data a run would use: its notes and warnings, and ``fedapp inspect``'s tables."""
    st.markdown(f":material/table_chart: {found.headline}")
    for note in found.notes:
        st.caption(f":material/info: {note}")
    for warning in found.warnings:
        st.warning(warning, icon=":material/warning:")
    with st.expander(
        "Columns and institutions (as `fedapp inspect` shows them)", expanded=expanded
    ):
        st.dataframe(found.columns, hide_index=True, key="preview_columns")
        st.dataframe(
            found.clients, hide_index=True, key="preview_clients",
            column_config=_TARGET_COLUMNS,
        )  # fmt: skip


def plugin_picker(
    setting: str,
    plugins: Mapping[str, StrategyPlugin | ModelPlugin],
    broken: Mapping[str, BrokenPlugin],
    form: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """The select of a plugin setting (``strategy``, ``model``), then the chosen one's parameters.

    The broken plugins of its group are warned about above it. The choice
    goes into ``form`` under the setting's key, its parameters under
    ``<key>-params`` (:func:`param_inputs`).
    """
    for b in broken.values():
        st.warning(b.error)
    about = describe(setting)
    name = st.selectbox(
        about.label, list(plugins), key=setting, help=about.help,
        index=pick(list(plugins), prefilled(setting, about.default), about.default),
    )  # fmt: skip
    plugin = plugins[name]
    st.caption(plugin.summary)
    form[about.key] = name
    form[f"{about.key}-params"] = param_inputs(plugin, errors, run_form.PARAM_KEYS[setting])


def param_inputs(
    plugin: StrategyPlugin | ModelPlugin, errors: dict[str, str], prefix: str = "param"
) -> dict[str, Any]:
    """One input per declared parameter of ``plugin``, laid out in a row.

    Widgets are keyed ``<prefix>.<plugin>.<name>``, so a third-party plugin
    gets its form with no change here. A list parameter is typed as
    comma-separated values. A value the plugin refuses is said under its
    input and recorded in ``errors`` (by the input's key).
    """
    if not plugin.params:
        st.caption(f"This {plugin.noun} has no parameters.")
        return {}
    values: dict[str, Any] = {}
    cells = st.columns(min(len(plugin.params), 3))
    for i, p in enumerate(plugin.params):
        cell = cells[i % len(cells)]
        key = f"{prefix}.{plugin.name}.{p.name}"
        label = p.name.replace("-", " ").capitalize()
        # No min_value: the browser would keep the last valid value and not say so.
        default = prefilled(key, p.default)
        if p.type is bool:
            values[p.name] = cell.toggle(label, value=bool(default), key=key, help=p.help)
        elif p.choices:
            index = pick(p.choices, default, p.default)
            values[p.name] = cell.selectbox(label, p.choices, index=index, key=key, help=p.help)
        elif p.many:
            typed = default if isinstance(default, str) else ", ".join(map(str, default))
            text = cell.text_input(label, value=typed, key=key, help=p.help, placeholder="a, b")
            values[p.name] = text.strip() or None  # blank: the default
        elif p.type in (int, float):
            fmt = {"format": "%g"} if p.type is float else {"step": 1}
            values[p.name] = cell.number_input(
                label, value=p.type(default), key=key, help=p.help, **fmt
            )
        else:
            values[p.name] = cell.text_input(label, value=str(default), key=key, help=p.help)
        error = run_form.param_error(plugin, p.name, values[p.name])
        _say(cell, key, error, errors)
        if p.many and error is None and values[p.name] is not None:
            values[p.name] = p.parse(values[p.name])  # the values typed, as a list
    return values


def start_rerun(view: RunView) -> None:
    """Fill the New run form with a run's settings and go there ("Run again").

    The settings become the form's defaults (:func:`prefilled`) until
    :func:`forget_rerun`; the widgets' own states are dropped, so that each
    starts from them.

    Raises
    ------
    UsageError
        For a ``config.json`` that is no valid set of settings (or names a
        strategy no longer installed).

    """
    rerun = run_form.rerun_of(view.run_id, view.config)
    forget_rerun()
    for key in rerun.widgets:
        st.session_state.pop(key, None)
    st.session_state["rerun"] = rerun
    st.switch_page("app_pages/new_run.py")


def forget_rerun() -> None:
    """Give the New run form its own defaults again ("Start afresh")."""
    rerun = st.session_state.pop("rerun", None)
    for key in rerun.widgets if isinstance(rerun, run_form.Rerun) else ():
        st.session_state.pop(key, None)


def prefilled(key: str, default: Any) -> Any:
    """The default of the New run widget ``key``: the run's value after Run again.

    A widget's arguments stay the same from one redraw to the next (the
    browser resets a widget whose default changes), so the run's values are
    the defaults for as long as the form holds them, not values written
    into the session.
    """
    rerun = st.session_state.get("rerun")
    if isinstance(rerun, run_form.Rerun) and key in rerun.widgets:
        return rerun.widgets[key]
    return default


def pick(options: Sequence[Any], wanted: Any, fallback: Any = None) -> int:
    """The index of ``wanted`` among ``options``, else of ``fallback``, else 0."""
    for value in (wanted, fallback):
        if value in options:
            return list(options).index(value)
    return 0


def setting_input(
    name: str, form: dict[str, Any], errors: dict[str, str], where: Any = st, **overrides: Any
) -> Any:
    """The widget of a declared setting, keyed by its name (:func:`run_form.widget`).

    Its value goes into ``form`` under the setting's key; a value the
    setting refuses is said under the widget and recorded in ``errors``.
    ``where`` is the container (a column); ``overrides`` adjust the widget's
    arguments (e.g. a ``format_func`` naming the choices).
    """
    spec = run_form.widget(name)
    options = spec.options | overrides
    key = options["key"]
    if "index" in options:
        chosen = options["options"][options["index"]]
        options["index"] = pick(options["options"], prefilled(key, chosen))
    elif "value" in options:
        shown = prefilled(key, options["value"])
        options["value"] = (
            ", ".join(map(str, shown)) if spec.many and not isinstance(shown, str) else shown
        )
    value = getattr(where, spec.kind)(spec.label, **options)
    if spec.many:
        value = run_form.split_list(value)
    form[spec.setting] = value
    _say(where, spec.setting, run_form.setting_error(spec.setting, value, form), errors)
    return value


def setting_inputs(names: Sequence[str], form: dict[str, Any], errors: dict[str, str]) -> None:
    """A row of :func:`setting_input` widgets."""
    for cell, name in zip(st.columns(len(names)), names, strict=True):
        setting_input(name, form, errors, cell)


def _say(where: Any, key: str, error: str | None, errors: dict[str, str]) -> None:
    """Show a field's error under it and keep it for the Start button."""
    if error is None:
        return
    errors[key] = error
    where.error(error, icon=":material/error:")


def score_columns(columns: Iterable[str]) -> dict[str, Any]:
    """Column configs of a table's scores: four decimals, and signed for its ``gap``.

    A score is a column named as a metric (:func:`report.metric_of`) or ``score``.
    """
    return {
        c: _DIFF if c == "gap" else _SCORE
        for c in columns
        if c in ("gap", "score") or report.metric_of(c) is not None
    }


def differences(table: pd.DataFrame, columns: Mapping[str, str] | None = None) -> Styler:
    """``table`` for ``st.dataframe``, its differences signed and coloured better/worse.

    ``columns`` maps each difference column to its metric (as
    :func:`report.difference_colours` takes it); by default every column
    named as a metric holds differences.
    """
    colours = report.difference_colours(table, columns)
    named = columns or {c: c for c in table.columns if report.metric_of(c) is not None}
    signed = [c for c in named if c in table.columns]
    numbers = [c for c in table.select_dtypes("number").columns if c not in signed]
    return (
        table.style.apply(lambda _: colours, axis=None)
        .format("{:+.4f}", subset=signed, na_rep="—")
        .format("{:.4f}", subset=numbers, na_rep="—")
    )


def chart(figure: Any, key: str, name: str, where: Any = st) -> None:
    """A chart and, under it, a download of the data it draws (CSV, :func:`charts.chart_csv`).

    ``name`` is the CSV file's name without its suffix.
    """
    where.plotly_chart(figure, key=key, theme=None)
    where.download_button(
        "Data (CSV)", charts.chart_csv(figure), file_name=f"{name}.csv", mime="text/csv",
        key=f"{key}_csv", icon=":material/download:", type="tertiary",
    )  # fmt: skip


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
