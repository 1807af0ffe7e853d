"""Compare: several runs' per-round curves overlaid, and their final metrics."""

import streamlit as st

from fedapp.runs import RunState
from fedapp_ui import charts, report, store, widgets

runs_root, _ = store.folders()
st.title("Compare runs")
runs = [r for r in store.list_runs(runs_root) if r.events()]
if len(runs) < 2:
    st.info("Compare needs at least two runs with metrics.", icon=":material/info:")
    st.page_link("app_pages/new_run.py", label="Start a run", icon=":material/add_circle:")
    st.stop()

# By default the newest finished runs that share the newest run's data: the
# usual question is "which strategy, on the same federation?".
finished = [r for r in runs if r.state is RunState.FINISHED]
same_data = [r for r in finished if r.data_label == finished[0].data_label] if finished else []
chosen = widgets.pick_runs(runs, [r.run_id for r in same_data[:4]], key="compare_runs")
if not chosen:
    st.stop()
if len({r.data_label for r in chosen}) > 1:
    st.caption(
        ":material/info: These runs use different data or splits; their gaps to centralized "
        "compare fairly, their raw scores less so."
    )
metric = st.segmented_control(
    "Metric", report.CHART_METRICS[:-1], default="auc", key="compare_metric",
    format_func=report.label,
) or "auc"  # fmt: skip
st.plotly_chart(
    charts.compare_runs(
        {r.run_id: [e.to_dict() for e in r.events()] for r in chosen},
        metric,
        baselines={r.run_id: r.final(metric, "centralized") for r in chosen},
    ),
    key="compare_chart",
    theme=None,
)
st.subheader("Final metrics on the global test set")
st.dataframe(report.compare_table(chosen), hide_index=True, column_config=widgets.SCORES)
