"""Tune: start a study (``fedapp tune`` as a process), watch its trials, open the best run.

A study's folder in the runs folder holds its Optuna storage and one run
directory per trial; this page reads the storage only (the trials' runs open
on the Run page), so a study started from a shell shows here too.
"""

from typing import Any

import streamlit as st

from fedapp import registry
from fedapp.errors import UsageError
from fedapp.runs import metric_label
from fedapp.runs.study import StudyTrials, read_trials
from fedapp_ui import charts, launcher, run_form, store, widgets

runs_root, _ = store.folders()
st.title("Tune")
st.caption(
    "Search strategies and training settings in simulation. Each trial is a run scored by the "
    "clients' own evaluation of its last round, on their held-out rows; the global test set "
    "is never used, so it stays a fair test of the configuration chosen."
)

# --- Start a study -------------------------------------------------------------
with st.expander("Start a study", icon=":material/tune:", expanded=not store.studies(runs_root)):
    form: dict[str, Any] = {}
    errors: dict[str, str] = {}
    st.caption(
        "On the built-in demo table; for a file, run `fedapp tune --data FILE --target COLUMN` "
        "(every `fedapp simulate` setting is a base setting)."
    )
    widgets.setting_inputs(["demo_rows", "clients", "rounds", "seed"], form, errors)
    widgets.setting_input("baseline", form, errors)
    installed = list(registry.installed())
    chosen = st.multiselect(
        "Strategies to search", installed, key="tune_strategies", default=["fedavg", "fedprox"],
        help="Each trial picks one, and values for its declared parameters.",
    )  # fmt: skip
    left, right = st.columns(2)
    trials = left.number_input("Trials", min_value=1, value=10, step=1, key="tune_trials")
    name = right.text_input(
        "Study name", key="tune_name", placeholder="tune-1",
        help="The study's folder in the runs folder; an existing study's name continues it.",
    )  # fmt: skip
    if not chosen:
        errors["strategies"] = "Pick one or more strategies."
    if not name.strip():
        errors["name"] = "Name the study."
    cfg = None
    if not errors:
        try:
            cfg = run_form.build_config(form)
        except UsageError as err:
            errors["settings"] = str(err)
    if errors:
        st.caption("Start is blocked: " + " ".join(dict.fromkeys(errors.values())))
    if st.button("Start study", key="tune_start", type="primary", disabled=bool(errors)):
        try:
            assert cfg is not None
            started = launcher.launch_study(cfg, runs_root, name.strip(), int(trials), chosen)
        except UsageError as err:
            st.error(str(err), icon=":material/error:")
        else:
            st.query_params["study"] = started
            st.success(f"Study **{started}** started.", icon=":material/play_arrow:")

# --- Watch a study -------------------------------------------------------------
studies = [p.name for p in store.studies(runs_root)]
wanted = st.query_params.get("study")
if wanted and wanted not in studies:
    launched = launcher.launch_of(runs_root, wanted) if wanted else None
    if launched is not None and launched.alive:
        st.info(f"Study **{wanted}** is starting ...", icon=":material/hourglass_top:")
    elif launched is not None:
        st.error(f"Study {wanted!r} could not start: {launched.error}", icon=":material/error:")
    else:
        st.error(f"No study called {wanted!r} in {runs_root}.", icon=":material/error:")
if not studies:
    st.info(f"No studies in {runs_root} yet.", icon=":material/info:")
    st.stop()
study = st.selectbox(
    "Study", studies, key="study_select",
    index=widgets.pick(studies, wanted if wanted in studies else studies[0]),
)  # fmt: skip
st.query_params["study"] = study
running = launcher.launch_of(runs_root, study)


def _shown(found: StudyTrials) -> list[dict[str, Any]]:
    """One row per trial: state, value (a pruned trial's last round's), parameters, run link."""
    rows = []
    for t in found.trials:
        last = t.intermediate[max(t.intermediate)] if t.intermediate else None
        rows.append(
            {
                "trial": t.number,
                "state": t.state,
                "value": t.value if t.value is not None else last,
                "rounds": len(t.intermediate),
                **{k: str(v) if isinstance(v, bool) else v for k, v in t.params.items()},
                "run": f"run?run={study}/{t.run}" if t.run else None,
                "error": t.error,
            }
        )
    return rows


@st.fragment(run_every=2.0 if running is not None and running.alive else None)
def _watch() -> None:
    try:
        found = read_trials(runs_root / study)
    except Exception as err:  # a study mid-creation, or a storage another version wrote
        st.warning(f"Cannot read study {study}: {err}", icon=":material/warning:")
        return
    label = metric_label(found.metric)
    states = [t.state for t in found.trials]
    counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states)) or "no trials"
    best = found.best
    left, right = st.columns([3, 2], vertical_alignment="center")
    left.markdown(f"**{len(found.trials)} trials** ({counts}); optimising the clients' {label}.")
    if best is not None and best.run:
        right.page_link(
            "app_pages/run.py", label=f"Best: trial {best.number}, {label} {best.value:.4f}",
            icon=":material/emoji_events:", query_params={"run": f"{study}/{best.run}"},
        )  # fmt: skip
    rows = _shown(found)
    st.dataframe(
        rows,
        hide_index=True,
        key="trials_table",
        column_config={
            "value": st.column_config.NumberColumn(
                label, format="%.4f", help="The clients' own score at the trial's last round."
            ),
            "run": st.column_config.LinkColumn(display_text=r"\?run=[^/]+/(.+)$"),
        },
    )
    points = [(r["trial"], r["state"], r["value"]) for r in rows]
    widgets.chart(charts.trials_chart(points, found.metric), "trials_chart", f"{study}-trials")


_watch()
