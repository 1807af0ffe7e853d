"""New run: pick the data, the split, the training (and its model) and the strategy; launch.

Every value is checked as it is entered, the data is loaded and described
before launch, and Start stays disabled while anything is refused.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from fedapp import registry
from fedapp.errors import UsageError
from fedapp.learning import convergence
from fedapp.settings import AUTO_ROUNDS, DATA_SECTIONS, RunConfig, describe, fields
from fedapp.settings.specs import ATTACKS, PartitionSpec
from fedapp_ui import launcher, run_form, store, widgets

if TYPE_CHECKING:
    from fedapp.data.describe import DataPreview

runs_root, data_root = store.folders()

st.title("New run")
st.caption(
    "Every institution trains on its own rows; only weights, aggregate statistics and "
    "metrics travel. The run starts as a separate process and shows on the Run page."
)

form: dict[str, Any] = {}
errors: dict[str, str] = {}  # by setting (or widget) key: each one blocks Start
columns: list[run_form.Column] = []
uploaded_names: dict[Path, str] = {}

rerun = st.session_state.get("rerun")
if isinstance(rerun, run_form.Rerun):
    note, clear = st.columns([5, 1], vertical_alignment="center")
    note.info(
        f"The settings of run **{rerun.run_id}**: change any of them below, then start.",
        icon=":material/replay:",
    )
    if clear.button("Start afresh", key="rerun_clear", icon=":material/restart_alt:"):
        widgets.forget_rerun()
        st.rerun()
    form |= rerun.carried  # settings the form has no widget for, kept as they were
    if rerun.carried:
        kept = ", ".join(f"{k} {v}" for k, v in rerun.carried.items())
        st.caption(f"Also kept from that run: {kept}.")
else:
    rerun = None

# --- Data ------------------------------------------------------------------
with st.container(border=True):
    st.subheader("Data", divider="gray")
    sources = ["Built-in demo", "Upload", "File on the server"]
    if rerun is not None and rerun.files:
        sources.append(run_form.RERUN_SOURCE)
    source = st.segmented_control(
        "Source", sources, key="source", default=widgets.prefilled("source", "Built-in demo")
    )
    if source == run_form.RERUN_SOURCE and rerun is not None:
        try:
            paths = [store.reusable_file(runs_root, data_root, f) for f in rerun.files]
            columns = widgets.columns_of(tuple(paths))
        except UsageError as err:
            st.error(str(err), icon=":material/error:")
            st.stop()
        st.caption("The files of run " + rerun.run_id + ": " + ", ".join(p.name for p in paths))
        if len(paths) > 1:
            form["client-data"] = [str(p) for p in paths]
        else:
            form["data"] = str(paths[0])
        form["data-sha256"] = list(rerun.hashes)  # a file changed since is warned about
    elif source == "Upload":
        files = st.file_uploader(
            "CSV or Parquet: one table to split, or one file per institution",
            type=["csv", "parquet"],
            accept_multiple_files=True,
            key="upload",
        )
        try:
            paths = [store.save_upload(runs_root, f.name, f.getvalue()) for f in files or []]
            uploaded_names = {p: f.name for p, f in zip(paths, files or [], strict=True)}
            columns = widgets.columns_of(tuple(paths)) if paths else []
        except UsageError as err:
            st.error(run_form.user_message(err, uploaded_names), icon=":material/error:")
            st.stop()
        if len(paths) > 1:
            form["client-data"] = [str(p) for p in paths]
        elif paths:
            form["data"] = str(paths[0])
    elif source == "File on the server":
        typed = st.text_input(
            "Path", key="server_path", placeholder="bank_churn.csv",
            help=f"A CSV or Parquet file inside {data_root} (relative paths start there).",
        )  # fmt: skip
        if typed:
            try:
                path = store.data_path(data_root, typed, given=store.data_dir_given())
                columns = widgets.columns_of((path,))
            except UsageError as err:
                st.error(str(err), icon=":material/error:")
                st.stop()
            form["data"] = str(path)
    else:
        # numpy and pandas: loaded by the data preview below anyway.
        from fedapp.data.synthetic import TARGET, TARGETS

        rows_cell, target_cell = st.columns(2)
        widgets.setting_input("demo_rows", form, errors, rows_cell)
        form["target"] = target_cell.selectbox(
            describe("target").label, TARGETS, key="demo_target",
            help="One of the demo table's outcomes; the preview below says its task.",
            index=widgets.pick(TARGETS, widgets.prefilled("demo_target", TARGET)),
        )  # fmt: skip

    is_demo = source in (None, "Built-in demo")
    has_file = bool(columns)
    if not is_demo and not has_file:
        st.info("Choose a file to go on.", icon=":material/upload_file:")
        st.stop()
    if has_file:
        names = [c.name for c in columns]
        left, mid, right = st.columns(3)
        # Column pickers: the choices are the table's columns, the rest is declared.
        picked = ("target", "positive_label", "id_column", "drop", "categorical")
        about = {n: describe(n) for n in picked}
        guessed = names[run_form.guess_target(columns)]
        target = left.selectbox(
            about["target"].label, names, key="target", help=about["target"].help,
            index=widgets.pick(names, widgets.prefilled("target", guessed)),
        )  # fmt: skip
        labels = next(c.values for c in columns if c.name == target)
        infer = str(about["positive_label"].unset)
        choices = [infer, *labels[: run_form.MAX_LABELS]]
        positive = mid.selectbox(
            about["positive_label"].label, choices, key="positive_label",
            help=about["positive_label"].help,
            index=widgets.pick(choices, widgets.prefilled("positive_label", infer)),
        )  # fmt: skip
        guess = run_form.guess_id_column(columns)
        others = [n for n in names if n != target]
        id_column = right.selectbox(
            about["id_column"].label, ["none", *others], key="id_column",
            help=about["id_column"].help,
            index=widgets.pick(["none", *others], widgets.prefilled("id_column", guess)),
        )  # fmt: skip
        features = [n for n in others if n != id_column]
        suggested = run_form.suggested_drops(columns, target, id_column)
        left, right = st.columns(2)
        drop = left.multiselect(
            about["drop"].label, features, key="drop", help=about["drop"].help,
            default=[
                n for n in widgets.prefilled("drop", [n for n in features if n in suggested])
                if n in features
            ],
        )  # fmt: skip
        if suggested:
            left.caption(
                "Suggested, as unlikely features: "
                + "; ".join(f"**{n}**, {why}" for n, why in suggested.items())
            )
        typed_as = [n for n in features if n not in drop]
        categorical = right.multiselect(
            about["categorical"].label, typed_as, key="categorical",
            help=about["categorical"].help,
            default=[n for n in widgets.prefilled("categorical", []) if n in typed_as],
        )  # fmt: skip
        form |= {
            "target": target,
            "positive-label": None if positive == infer else positive,
            "id-column": None if id_column == "none" else id_column,
            "drop": drop,
            "categorical": categorical,
        }
        widgets.setting_inputs(("na_values", "max_categories"), form, errors)
    widgets.setting_input("task", form, errors)
    data_box = st.container()  # filled once the split is known (below)

# --- Institutions -----------------------------------------------------------
with st.container(border=True):
    st.subheader("Institutions", divider="gray")
    fixed_clients: int | None = None
    if form.get("client-data"):
        fixed_clients = len(form["client-data"])
        st.write(f"One institution per uploaded file: **{fixed_clients}**.")
    else:
        kinds = {
            "column": "One per value of a column",
            "iid": "Random (IID)",
            "dirichlet": "Label skew (Dirichlet α)",
            "quantity": "Size skew (Dirichlet α)",
        }
        kind = st.radio(
            "Split", list(kinds), format_func=kinds.__getitem__, horizontal=True,
            key="partition_kind",
            index=widgets.pick(list(kinds), widgets.prefilled("partition_kind", "column")),
        )  # fmt: skip
        if kind == "column":
            if is_demo:
                form["partition"] = PartitionSpec("column", column="institution")
                st.caption("The demo's institutions differ in churn rate and customer mix.")
            else:
                exclude = [form["target"], form.get("id-column") or "", *form.get("drop", [])]
                choices = run_form.partition_columns(columns, exclude)
                if not choices:
                    st.error("No column has 2 to 50 values to split by; pick another split.")
                    st.stop()
                counts = {c.name: c.distinct for c in choices}
                by = st.selectbox(
                    "Column", list(counts), key="partition_column",
                    format_func=lambda n: f"{n} ({counts[n]} values)",
                    index=widgets.pick(list(counts), widgets.prefilled("partition_column", None)),
                )  # fmt: skip
                fixed_clients = counts[by]
                form["partition"] = PartitionSpec("column", column=by)
        elif kind in ("dirichlet", "quantity"):
            # No min_value: the browser would keep the last valid α and not say so.
            alpha = st.number_input(
                "α (smaller is more skewed)",
                step=0.1,
                key="alpha",
                value=float(widgets.prefilled("alpha", 0.5)),
            )
            try:
                form["partition"] = PartitionSpec(kind, alpha=alpha)
            except UsageError as err:
                errors["partition"] = str(err)
                st.error(str(err), icon=":material/error:")
        else:
            form["partition"] = PartitionSpec("iid")
    c1, c2 = st.columns(2)
    if fixed_clients is None:
        widgets.setting_input("clients", form, errors, c1)
    else:  # set by the split; shown, not asked
        c1.number_input(describe("clients").label, value=fixed_clients, disabled=True)
        form["clients"] = fixed_clients
    widgets.setting_input("clients_per_round", form, errors, c2)

# --- Training ---------------------------------------------------------------
with st.container(border=True):
    st.subheader("Training", divider="gray")
    auto = st.toggle(
        "Automatic rounds", key=run_form.AUTO_ROUNDS_KEY,
        value=widgets.prefilled(run_form.AUTO_ROUNDS_KEY, False),
        help="Train until the monitored score has not improved for patience rounds (at most "
        "max-rounds), and keep the best round's model.",
    )  # fmt: skip
    if auto:
        form["rounds"] = AUTO_ROUNDS
        cells = st.columns(4)
        for cell, name in zip(cells, ("max_rounds", "patience", "min_delta"), strict=False):
            widgets.setting_input(name, form, errors, cell)
        about = describe("monitor")
        # The scores of the task chosen above, or of every task while it is inferred.
        monitors = convergence.monitors(form.get("task"))
        form[about.key] = cells[3].selectbox(
            about.label, monitors, key="monitor", help=about.help,
            index=widgets.pick(monitors, widgets.prefilled("monitor", about.default)),
        )  # fmt: skip
        widgets.setting_inputs(["eval_every", "local_epochs", "batch_size"], form, errors)
    else:
        widgets.setting_inputs(["rounds", "eval_every", "local_epochs", "batch_size"], form, errors)
    widgets.setting_inputs(["learning_rate", "seed"], form, errors)
    widgets.plugin_picker("model", registry.models(), registry.broken_models(), form, errors)

# --- Strategy ---------------------------------------------------------------
with st.container(border=True):
    st.subheader("Strategy", divider="gray")
    widgets.plugin_picker("strategy", registry.installed(), registry.broken(), form, errors)

# --- Privacy and hostile clients -------------------------------------------
with st.expander("Privacy and hostile clients", icon=":material/shield:"):
    dp_kinds = {
        "none": "Off",
        "central": "Client-level (noise on the aggregate)",
        "record": "Record-level (DP-SGD in each client)",
    }
    widgets.setting_input("dp", form, errors, format_func=dp_kinds.__getitem__)
    if form["dp"] != "none":
        widgets.setting_inputs(
            ["noise_multiplier", "clip_norm", "target_epsilon", "delta"], form, errors
        )
        if form["dp"] == "central":
            widgets.setting_input("dp_clipping", form, errors)
    privacy_box = st.container()  # the budget against the data, once it is loaded (below)
    widgets.setting_input("secure_aggregation", form, errors)
    c1, c2, c3 = st.columns(3)
    widgets.setting_input("malicious", form, errors, c1)
    if form["malicious"]:
        kind = c2.selectbox(
            "Attack", ATTACKS, key="attack_kind",
            index=widgets.pick(ATTACKS, widgets.prefilled("attack_kind", None)),
        )  # fmt: skip
        strength = c3.number_input(
            "Strength (F or SIGMA)", key="attack_strength", disabled=kind == "label-flip",
            value=float(widgets.prefilled("attack_strength", 10.0)),
        )  # fmt: skip
        try:
            form["attack"] = run_form.attack_spec(kind, strength)
        except UsageError as err:
            errors["attack"] = str(err)
            c3.error(str(err), icon=":material/error:")

# --- Faults and their tolerance ---------------------------------------------
with st.expander("Dropouts, stragglers and timeouts", icon=":material/cloud_off:"):
    st.caption(
        "Simulate institutions that drop out of a round or answer late (drawn from the "
        "seed), and say how long a round waits and how few results it may aggregate."
    )
    widgets.setting_inputs(["dropout_rate", "straggler_rate", "straggler_delay"], form, errors)
    widgets.setting_inputs(
        ["round_timeout", "min_fit_results", "min_available_clients"], form, errors
    )


# --- Checks ----------------------------------------------------------------
def _check(form: dict[str, Any], errors: dict[str, str]) -> RunConfig | None:
    """The checked config, or ``None``; what is wrong goes into ``errors`` and its section."""
    data_keys = {s.key for s in fields(*DATA_SECTIONS)}
    found: DataPreview | str | None = None  # the data, or why it cannot be used
    # The data settings alone decide the preview: a bad value elsewhere does not hide it.
    if not errors.keys() & data_keys:
        try:
            data_cfg = run_form.build_config({k: v for k, v in form.items() if k in data_keys})
            found = widgets.data_preview(data_cfg)
        except UsageError as err:
            found = str(err)
    with data_box:
        if isinstance(found, str):
            errors["data"] = run_form.user_message(UsageError(found), uploaded_names)
            st.error(errors["data"], icon=":material/error:")
        elif found is not None:
            widgets.show_preview(found, expanded=not is_demo)
    if errors:
        return None
    try:
        cfg = run_form.build_config(form)
    except UsageError as err:  # a rule between settings: said by the Start button
        errors["settings"] = run_form.user_message(err, uploaded_names)
        return None
    if found is not None and not isinstance(found, str):
        try:
            run_form.check_privacy(cfg, found)
        except UsageError as err:
            errors["target-epsilon"] = str(err)
            privacy_box.error(str(err), icon=":material/error:")
            return None
        try:
            run_form.check_monitor(cfg, found)
        except UsageError as err:
            errors["monitor"] = str(err)
            data_box.error(str(err), icon=":material/error:")
            return None
    return cfg


# --- Launch -----------------------------------------------------------------
with st.container(border=True):
    c1, c2 = st.columns([3, 1])
    run_name = c1.text_input(
        "Run name (optional)", key="run_name", placeholder="generated: <time>-<strategy>-<id>",
        help="Letters, digits, '.', '_' and '-'; the run's folder inside the runs folder.",
    )  # fmt: skip
    if run_name.strip():
        try:
            store.run_path(runs_root, run_name.strip())
        except UsageError as err:
            errors["run-name"] = str(err)
            c1.error(str(err), icon=":material/error:")
    widgets.setting_input("baseline", form, errors, c2)

    cfg = _check(form, errors)

    if errors:
        st.error(
            "**Start is blocked** until these are fixed:\n"
            + "\n".join(f"- {message}" for message in dict.fromkeys(errors.values())),
            icon=":material/block:",
        )
    clicked = st.button(
        "Start run", type="primary", key="start", icon=":material/play_arrow:",
        disabled=bool(errors),
    )  # fmt: skip
    if clicked and not errors and cfg is not None:
        try:
            run_id = launcher.launch(cfg, runs_root, run_name.strip() or None)
        except UsageError as err:
            st.error(run_form.user_message(err, uploaded_names), icon=":material/error:")
        else:
            st.session_state["launched"] = run_id
            st.switch_page("app_pages/run.py", query_params={"run": run_id})
