"""Compare: several runs' per-round curves overlaid, and their final metrics.

Runs of different tasks (binary, multiclass, regression) share no score that
compares: an AUC is no RMSE, and even their losses differ. The chosen runs are
grouped by task, and each group is compared on its own.
"""

import streamlit as st

from fedapp.runs import Event, RunView, higher_is_better, primary
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
groups = report.by_task(chosen)
if len(groups) > 1:
    kinds = "; ".join(f"{t}: {', '.join(r.run_id for r in g)}" for t, g in groups.items())
    st.info(
        f"These runs predict different kinds of target ({kinds}). Their scores do not "
        "compare across kinds, so each kind is compared on its own below.",
        icon=":material/info:",
    )


def compare(task: str, group: list[RunView]) -> None:
    """The runs of one task: their curves overlaid, their final metrics side by side."""
    if len({report.data_key(r) for r in group}) > 1:
        st.caption(
            ":material/info: These runs use different data or splits; their gaps to centralized "
            "compare fairly, their raw scores less so."
        )
    events: dict[str, list[Event]] = {r.run_id: r.events() for r in group}
    # The global test set's scores: the training loss is the clients' own.
    offered = list(dict.fromkeys(m for r in group for m in report.run_metrics(r, events[r.run_id])))
    main = primary(task)
    metric = st.segmented_control(
        "Metric", offered, default=main, key=f"compare_metric.{task}",
        format_func=lambda m: report.label(m, task),
    ) or main  # fmt: skip
    widgets.chart(
        charts.compare_runs(
            {rid: [e.to_dict() for e in found] for rid, found in events.items()},
            metric,
            baselines={r.run_id: r.final(metric, "centralized") for r in group},
            task=task,
        ),
        f"compare_chart.{task}",
        f"compare-{task}-{metric}",
    )
    st.subheader("Runs")
    st.dataframe(report.compare_runs_table(group), hide_index=True)
    st.subheader("Final metrics on the global test set")
    scores = report.compare_metrics(group, "federated")
    st.dataframe(scores, hide_index=True, column_config=widgets.score_columns(scores.columns))
    gaps = report.compare_metrics(group, "gap")
    if gaps.drop(columns="run").notna().any().any():
        st.subheader("Gap to centralized (federated minus centralized)")
        lower = [c for c in gaps.columns if not higher_is_better(report.metric_of(c) or "")]
        st.caption(
            "Green: the federated model does better than the centralized baseline on that "
            f"metric; red: worse. Higher is better for every score but {', '.join(lower)}."
        )
        st.dataframe(widgets.differences(gaps), hide_index=True)
    alone = report.compare_local_only(group)
    if alone is not None:
        st.subheader(f"Each institution alone vs federated ({report.label(main, task)})")
        drop = "" if higher_is_better(main) else f" (a drop in {report.label(main, task)})"
        st.caption(
            "Each institution's model trained on its own rows only, on the global test set; "
            f"gain: what joining each federation bought it{drop}."
        )
        st.dataframe(widgets.differences(alone, {report.GAIN: report.GAIN}), hide_index=True)


for task, group in groups.items():
    if len(groups) > 1:
        st.header(f"{task.capitalize()} runs", divider="gray")
    compare(task, group)
