"""Run: live progress, per-round charts, final metrics, stop and downloads."""

from typing import Any

import streamlit as st

from fedapp.errors import UsageError
from fedapp.runs import (
    Event,
    RunState,
    RunView,
    Stage,
    higher_is_better,
    kept_model_text,
    skipped_rounds_text,
)
from fedapp.runs.checkpoints import rounds_in
from fedapp.runs.closing import personalized_note, threshold_note
from fedapp_ui import charts, launcher, report, scoring, store, widgets

runs_root, _ = store.folders()
runs = store.list_runs(runs_root)
ids = [r.run_id for r in runs]
wanted = st.query_params.get("run") or st.session_state.get("launched") or (ids[0] if ids else None)
if wanted is None:
    st.title("Run")
    st.info("No runs yet.", icon=":material/info:")
    st.page_link("app_pages/new_run.py", label="Start one", icon=":material/add_circle:")
    st.stop()
try:
    store.run_path(runs_root, wanted)  # a link's ?run= is typed by someone
except UsageError as err:
    st.error(str(err), icon=":material/error:")
    st.stop()
if wanted not in ids:
    ids.insert(0, wanted)  # launched a moment ago: its directory may not exist yet
run_id = st.sidebar.selectbox("Run", ids, index=ids.index(wanted), key="run_select")
st.query_params["run"] = run_id


# The states a run with a checkpoint can be resumed from.
RESUMABLE = (RunState.INTERRUPTED, RunState.STOPPED, RunState.FAILED)


def _live_state() -> RunState:
    try:
        state = store.load_run(runs_root, run_id).state
    except UsageError:
        started = launcher.launch_of(runs_root, run_id)
        return RunState.STARTING if started and started.alive else RunState.MISSING
    if st.session_state.get("resuming") == run_id:
        # `fedapp resume` was launched here: starting until it marks the run running.
        started = launcher.launch_of(runs_root, run_id)
        if state is RunState.RUNNING or not (started and started.alive):
            del st.session_state["resuming"]
        else:
            return RunState.STARTING
    return state


opened_as = _live_state()


@st.fragment(run_every=2.0 if opened_as.active else None)
def show_run() -> None:
    """The run as it is now; refreshes itself every 2 s while the run is live."""
    state = _live_state()
    if state != opened_as:
        st.rerun()  # the run moved on (started, finished): redraw the whole page
    if state in (RunState.STARTING, RunState.MISSING):
        _show_launch()
        return
    view = store.load_run(runs_root, run_id)
    head, button = st.columns([5, 1], vertical_alignment="center")
    with head:
        st.title(view.run_id)
        widgets.state_badge(view.state)
    if view.state is RunState.RUNNING and button.button(
        "Stop", key="stop", icon=":material/stop:", type="secondary"
    ):
        try:
            launcher.stop(runs_root, run_id)
            st.toast("Stopping: the run ends after the current step.", icon=":material/stop:")
        except UsageError as err:
            st.error(str(err))
    if view.state in RESUMABLE and rounds_in(view.run_dir.checkpoints_dir) and button.button(
        "Resume", key="resume", icon=":material/resume:",
        help="Continue the run from its newest checkpoint (fedapp resume).",
    ):  # fmt: skip
        try:
            done = launcher.resume(runs_root, run_id)
            st.session_state["resuming"] = run_id
            st.toast(f"Resuming after round {done}.", icon=":material/resume:")
            st.rerun()
        except UsageError as err:
            st.error(f"The run cannot be resumed: {err}", icon=":material/error:")
    if view.config and button.button(
        "Run again", key="rerun", icon=":material/replay:", help="A new run with these settings, "
        "pre-filled on the New run page (change any of them there).",
    ):  # fmt: skip
        try:
            widgets.start_rerun(view)
        except UsageError as err:
            st.error(f"These settings cannot be run again here: {err}", icon=":material/error:")
    st.caption(f"{view.strategy_label} · {view.data_label}")
    protection = report.protection_text(view.config)
    if protection:
        st.caption(f":material/shield: {protection}")

    events = view.events()
    lines = [e.to_dict() for e in events]  # the charts plot metrics.jsonl's lines
    _progress(view)
    task, main = view.task, view.primary_metric
    better = "higher" if higher_is_better(main) else "lower"
    cells = st.columns(4)
    cells[0].metric("Round", f"{view.round} / {view.rounds}")
    cells[1].metric("Elapsed", report.duration(view.elapsed))
    cells[2].metric(
        f"Global test {report.label(main, task)}", report.fmt(report.latest(events, main)),
        help=f"The global model's {report.label(main, task)} on the global test set, "
        f"latest round; {better} is better. The {task} target's main score.",
    )  # fmt: skip
    cells[3].metric(
        "Gap to centralized", report.gap_text(view),
        help=f"Federated minus centralized {report.label(main, task)}, once the run is done.",
    )  # fmt: skip
    _state_notes(view)
    _failures(view, events)

    metric = st.segmented_control(
        "Metric", report.chart_metrics(view, events), default=main, key=f"metric.{task}",
        format_func=lambda m: report.label(m, task),
    ) or main  # fmt: skip
    left, right = st.columns(2)
    widgets.chart(
        charts.metric_by_round(
            lines, metric, baseline=view.final(metric, "centralized"), task=task
        ),
        "chart_global", f"{view.run_id}-{metric}-global", left,
    )  # fmt: skip
    covered = report.coverage_text(report.coverage(events, metric), metric, task)
    if covered:
        left.warning(covered, icon=":material/warning:")
    widgets.chart(
        charts.clients_by_round(lines, metric, labels=view.client_labels(), task=task),
        "chart_clients", f"{view.run_id}-{metric}-clients", right,
    )  # fmt: skip
    missing = report.missing_clients_text(events, metric, view.client_labels(), task)
    if missing:
        right.caption(f":material/info: {missing}")
    _protection(view, events, lines)
    _final(view)
    scoring.model_card(view)
    scoring.score_box(view, runs_root)
    with st.expander("Settings (config.json)"):
        st.json(view.config, expanded=False)
    _downloads(view)


def _progress(view: RunView) -> None:
    """The rounds' progress and, outside the rounds, the current step's own progress."""
    st.progress(
        min(view.round / view.rounds, 1.0) if view.rounds else 0.0, text=report.progress_text(view)
    )
    phase = report.phase_progress(view)
    if phase is None:
        return
    text, value = phase
    st.progress(value, text=text)
    marks = {"done": ":material/check_circle:", "now": ":material/pending:",
             "next": ":material/radio_button_unchecked:"}  # fmt: skip
    shown = [
        f"{marks[how]} **{name}**" if how == "now" else f"{marks[how]} {name}"
        for name, how in report.phase_steps(view)
    ]
    st.caption(" · ".join(shown))


def _state_notes(view: RunView) -> None:
    """Why a run ended as it did, and what loading the data warned of."""
    if view.state is RunState.FAILED:
        st.error(f"The run failed: {view.error}", icon=":material/error:")
    elif view.state is RunState.STOPPED and view.partial_round is not None:
        st.warning(
            f"The run was stopped after round {view.round}; the model and metrics below are "
            f"those of round {view.partial_round} (no baselines: they come after the last round).",
            icon=":material/stop_circle:",
        )
    elif view.state is RunState.STOPPED:
        st.warning(
            f"The run was stopped at round {view.round}, before it completed a round: "
            "it kept no model.",
            icon=":material/stop_circle:",
        )
    elif view.state is RunState.FINISHED and kept_model_text(view.summary or {}):
        kept = kept_model_text(view.summary or {})
        st.caption(f":material/flag: Automatic rounds: model.keras is {kept}.")
    elif view.state is RunState.INTERRUPTED:
        saved = rounds_in(view.run_dir.checkpoints_dir)
        resumable = f" Resume continues it after round {saved[-1]}." if saved else ""
        st.warning(
            "The run's process ended without finishing (killed, or the machine restarted)."
            + resumable,
            icon=":material/warning:",
        )
    for warning in view.config.get("data-warnings") or []:
        st.warning(warning, icon=":material/warning:")


def _failures(view: RunView, events: list[Event]) -> None:
    """Which rounds were skipped, which clients failed in which round, and why."""
    skipped = skipped_rounds_text(view.summary or {})
    if skipped:
        st.warning(skipped[0].upper() + skipped[1:] + ".", icon=":material/skip_next:")
    table = report.failures_table(events, view.client_labels())
    if table.empty:
        return
    count = (view.summary or {}).get("failed_client_rounds", len(table))
    noun = "client-round" if count == 1 else "client-rounds"
    st.warning(
        f"{count} {noun} failed: the aggregate of those rounds left those clients out.",
        icon=":material/warning:",
    )
    with st.expander("Failed clients per round"):
        st.dataframe(table, hide_index=True)


def _final(view: RunView) -> None:
    """The kept model's metrics: the final one's, or a stopped run's of its last round."""
    if not view.summary:
        return
    partial = view.partial_round
    a, b = st.columns([3, 2])
    a.subheader(
        "Final model on the global test set"
        if partial is None
        else f"Model of round {partial} on the global test set"
    )
    table = report.final_table(view)
    a.dataframe(widgets.differences(table, {"gap": report.BY_ROW}), hide_index=True)
    if "gap" in table.columns:
        a.caption("Gap: federated minus centralized; green where federated does better.")
    thresholds = report.threshold_table(view)
    notes = [threshold_note(view.summary), threshold_note(view.summary, "centralized_threshold")]
    if thresholds is not None:
        a.markdown("**At the decision threshold**")
        a.dataframe(thresholds, hide_index=True)
    for note in filter(None, notes):
        a.caption(f"{note[0].upper()}{note[1:]}.")
    local = report.local_only_table(view)
    if local is not None:
        main = view.primary_metric
        b.subheader(f"Alone vs federated ({report.label(main, view.task)})")
        b.dataframe(widgets.differences(local, {report.GAIN: report.GAIN}), hide_index=True)
        if not higher_is_better(main):
            b.caption(f"Gain: how much lower the federated {report.label(main)} is.")
        tuned = personalized_note(view.summary, main, view.task)
        if tuned:
            b.caption(f"{tuned[0].upper()}{tuned[1:]}.")
    _curves(view)


def _curves(view: RunView) -> None:
    """The kept model's charts of its task (``curves.json``): ROC, confusion, predictions."""
    curves = view.curves
    if not curves:
        return
    rows = curves.get("rows")
    st.caption(
        f"The model of round {curves.get('round', view.round)} on the global test set"
        + (f" ({rows} rows)." if isinstance(rows, int) else ".")
    )
    shown = charts.final_model_charts(curves)
    cells = st.columns(max(len(shown), 2))
    for cell, (name, figure) in zip(cells, shown, strict=False):
        widgets.chart(figure, f"chart_{name}", f"{view.run_id}-{name}", cell)


def _protection(view: RunView, events: list[Event], lines: list[dict[str, Any]]) -> None:
    """The privacy spent and the clients' update norms, for runs that have them."""
    if view.reason:
        # A budget is privacy's; an automatic run's convergence is not.
        icon = ":material/lock:" if view.privacy else ":material/flag:"
        st.info(f"The run ended early: {view.reason}.", icon=icon)
    charts_shown: list[tuple[str, Any]] = []
    if any(e.stage is Stage.PRIVACY for e in events):
        charts_shown.append(
            ("epsilon", charts.epsilon_by_round(
                lines, target=view.config.get("target-epsilon"), labels=view.client_labels()
            ))
        )  # fmt: skip
    if report.has_client_signal(events, Stage.FIT, "update-norm"):
        charts_shown.append(
            ("update-norms", charts.update_norms(
                lines, labels=view.client_labels(),
                malicious=[str(m) for m in view.config.get("malicious-clients") or []],
            ))
        )  # fmt: skip
    if charts_shown:
        cells = st.columns(2)
        for index, (name, figure) in enumerate(charts_shown):
            widgets.chart(
                figure, f"chart_protection_{index}", f"{view.run_id}-{name}", cells[index]
            )
        unflagged = report.unflagged_rounds_text(events)
        if unflagged:
            cells[len(charts_shown) - 1].caption(f":material/info: {unflagged}")


def _show_launch() -> None:
    st.title(run_id)
    started = launcher.launch_of(runs_root, run_id)
    if started is None:
        st.error(f"No run called {run_id!r} in {runs_root}.", icon=":material/error:")
        return
    if started.alive:
        widgets.state_badge(RunState.STARTING)
        st.progress(0.0, text="Checking the data and starting the run…")
    else:
        st.error(f"The run could not start: {started.error}", icon=":material/error:")
    with st.expander("Process output"):
        st.code(started.log or "(nothing yet)", language=None)


def _downloads(view: RunView) -> None:
    partial = view.partial_round
    model = "The final global model" if partial is None else f"The global model of round {partial}"
    files = [
        ("model.keras", view.run_dir.model_file, "application/octet-stream",
         f"{model}: a plain Keras model."),
        ("preprocessing.json", view.run_dir.preprocessing_file, "application/json",
         "The federated preprocessing: new rows go through it before the model scores them."),
        ("metrics.jsonl", view.run_dir.metrics_file, "application/jsonl",
         "Every round's events."),
        ("summary.json", view.run_dir.summary_file, "application/json", "The final metrics."),
        ("model_card.md", view.run_dir.model_card_file, "text/markdown",
         "What the model is, from what data and settings, and how good."),
        ("config.json", view.run_dir.config_file, "application/json", "The run's settings."),
    ]  # fmt: skip
    present = [f for f in files if f[1].exists()]
    if not present:
        return
    cells = st.columns(len(present))
    for cell, (label, path, mime, about) in zip(cells, present, strict=True):
        cell.download_button(
            label, path.read_bytes(), file_name=f"{view.run_id}-{path.name}", mime=mime,
            key=f"download_{path.name}", icon=":material/download:", help=about,
        )  # fmt: skip


show_run()
