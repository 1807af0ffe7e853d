"""Runs: every run in the runs folder, with its state and result; delete."""

import streamlit as st

from fedapp.errors import UsageError
from fedapp.runs import TASK_METRICS, RunState, primary
from fedapp_ui import report, store, widgets

runs_root, _ = store.folders()
st.title("Runs")
runs = store.list_runs(runs_root)
if not runs:
    st.info(f"No runs in {runs_root} yet.", icon=":material/info:")
    st.page_link("app_pages/new_run.py", label="Start one", icon=":material/add_circle:")
    st.stop()

table = report.runs_table(runs)
mains = ", ".join(f"{report.label(primary(t), t)} ({t})" for t in TASK_METRICS)
table["run"] = [f"run?run={r.run_id}" for r in runs]  # each name opens its Run page
st.dataframe(
    table,
    hide_index=True,
    column_config={
        "run": st.column_config.LinkColumn(display_text=r"\?run=(.+)$"),
        "target": st.column_config.TextColumn(help="The column the run predicts, and its task."),
        "metric": st.column_config.TextColumn(help=f"The run's main score, by task: {mains}."),
        "score": st.column_config.NumberColumn(
            format="%.4f", help="The final model's main score on the global test set."
        ),
        "gap": st.column_config.NumberColumn(
            format="%+.4f", help="The main score minus the centralized baseline's."
        ),
    },
    key="runs_table",
)

with st.expander("Delete runs", icon=":material/delete:"):
    idle = [r for r in runs if r.state is not RunState.RUNNING]
    doomed = widgets.pick_runs(idle, [], key="delete_runs")
    confirmed = st.checkbox("Delete their folders for good", key="delete_confirm")
    if st.button("Delete", key="delete", disabled=not (doomed and confirmed), type="primary"):
        for r in doomed:
            try:
                store.delete_run(runs_root, r.run_id)
            except UsageError as err:
                st.error(str(err))
        st.session_state.pop("delete_runs", None)
        st.session_state.pop("delete_confirm", None)
        st.rerun()
