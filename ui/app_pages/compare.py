"""Compare: several runs' per-round curves overlaid, and their final metrics."""

import streamlit as st

from fedapp_ui import charts, report, store, widgets

runs_root, _ = store.folders()
st.title("Compare runs")
runs = [r for r in store.list_runs(runs_root) if r.events()]
if len(runs) < 2:
    st.info("Compare needs at least two runs with metrics.", icon=":material/info:")
    st.page_link("app_pages/new_run.py", label="Start a run", icon=":material/add_circle:")
    st.stop()

# The usual question is "which strategy, on the same federation?": the latest
# runs on one data open together.
chosen = widgets.pick_runs(runs, report.default_comparison(runs), key="compare_runs")
if not chosen:
    st.stop()
if len({report.data_key(r) for r in chosen}) > 1:
    st.caption(
        ":material/info: These runs use different data or splits; their gaps to centralized "
        "compare fairly, their raw scores less so."
    )
metric = st.segmented_control(
    "Metric", report.CHART_METRICS[:-1], default="auc", key="compare_metric",
    format_func=report.label,
) or "auc"  # fmt: skip
widgets.chart(
    charts.compare_runs(
        {r.run_id: [e.to_dict() for e in r.events()] for r in chosen},
        metric,
        baselines={r.run_id: r.final(metric, "centralized") for r in chosen},
    ),
    "compare_chart",
    f"compare-{metric}",
)
st.subheader("Runs")
st.dataframe(report.compare_runs_table(chosen), hide_index=True)
st.subheader("Final metrics on the global test set")
st.dataframe(
    report.compare_metrics(chosen, "federated"), hide_index=True, column_config=widgets.SCORES
)
gaps = report.compare_metrics(chosen, "gap")
if gaps.drop(columns="run").notna().any().any():
    st.subheader("Gap to centralized (federated minus centralized)")
    st.caption(
        "Green: the federated model does better than the centralized baseline on that "
        "metric; red: worse. Higher is better for every score but log-loss."
    )
    st.dataframe(widgets.differences(gaps), hide_index=True)
alone = report.compare_local_only(chosen)
if alone is not None:
    st.subheader("Each institution alone vs federated (AUC)")
    st.caption(
        "Each institution's model trained on its own rows only, on the global test set; "
        "gain: what joining each federation bought it."
    )
    st.dataframe(widgets.differences(alone, {"gain": "auc"}), hide_index=True)
