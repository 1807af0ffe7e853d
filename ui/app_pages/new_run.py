"""New run: pick the data, the split, the training and the strategy; launch."""

from pathlib import Path
from typing import Any

import streamlit as st

from fedapp import registry
from fedapp.errors import UsageError
from fedapp.settings import RunConfig
from fedapp.settings.specs import ATTACKS
from fedapp_ui import launcher, run_form, store, widgets

runs_root, data_root = store.folders()
defaults = RunConfig()

st.title("New run")
st.caption(
    "Every institution trains on its own rows; only weights, aggregate statistics and "
    "metrics travel. The run starts as a separate process and shows on the Run page."
)

form: dict[str, Any] = {}
columns: list[run_form.Column] = []
uploaded_names: dict[Path, str] = {}

# --- Data ------------------------------------------------------------------
with st.container(border=True):
    st.subheader("Data", divider="gray")
    source = st.segmented_control(
        "Source",
        ["Built-in demo", "Upload", "File on the server"],
        default="Built-in demo",
        key="source",
    )
    if source == "Upload":
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
                path = store.data_path(data_root, typed)
                columns = widgets.columns_of((path,))
            except UsageError as err:
                st.error(str(err), icon=":material/error:")
                st.stop()
            form["data"] = str(path)
    else:
        form["demo-rows"] = st.number_input(
            "Rows", min_value=100, max_value=1_000_000, value=defaults.demo_rows, step=1000,
            key="demo_rows", help="Synthetic churn customers, all institutions together.",
        )  # fmt: skip

    is_demo = source in (None, "Built-in demo")
    has_file = bool(columns)
    if not is_demo and not has_file:
        st.info("Choose a file to go on.", icon=":material/upload_file:")
        st.stop()
    if has_file:
        names = [c.name for c in columns]
        left, mid, right = st.columns(3)
        target = left.selectbox(
            "Target column", names, index=run_form.guess_target(columns), key="target",
            help="The binary outcome to predict.",
        )  # fmt: skip
        labels = next(c.values for c in columns if c.name == target)
        positive = mid.selectbox(
            "Positive class", ["infer (yes / true / 1)", *labels[: run_form.MAX_LABELS]],
            key="positive_label",
        )  # fmt: skip
        guess = run_form.guess_id_column(columns)
        others = [n for n in names if n != target]
        id_column = right.selectbox(
            "Identifier column", ["none", *others],
            index=others.index(guess) + 1 if guess in others else 0, key="id_column",
            help="Never a feature and never sent.",
        )  # fmt: skip
        features = [n for n in others if n != id_column]
        left, right = st.columns(2)
        drop = left.multiselect("Columns that are not features", features, key="drop")
        categorical = right.multiselect(
            "Categorical columns", [n for n in features if n not in drop], key="categorical",
            help="Treat as categories even if they look numeric (codes, or a column with "
            "typos the error above names); the CLI's --categorical.",
        )  # fmt: skip
        form |= {
            "target": target,
            "positive-label": None if positive.startswith("infer") else positive,
            "id-column": None if id_column == "none" else id_column,
            "drop": drop,
            "categorical": categorical,
        }

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
        )  # fmt: skip
        if kind == "column":
            if is_demo:
                form["partition"] = "column:institution"
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
                )  # fmt: skip
                fixed_clients = counts[by]
                form["partition"] = f"column:{by}"
        elif kind in ("dirichlet", "quantity"):
            alpha = st.number_input(
                "α (smaller is more skewed)", min_value=0.01, max_value=100.0, value=0.5,
                step=0.1, key="alpha",
            )  # fmt: skip
            form["partition"] = f"{kind}:{alpha:g}"
        else:
            form["partition"] = "iid"
    c1, c2 = st.columns(2)
    if fixed_clients is None:
        form["clients"] = c1.number_input(
            "Institutions (clients)", min_value=1, max_value=1000, value=defaults.clients,
            key="clients",
        )  # fmt: skip
    else:  # set by the split; shown, not asked
        c1.number_input("Institutions (clients)", value=fixed_clients, disabled=True)
        form["clients"] = fixed_clients
    per_round = c2.number_input(
        "Clients per round", min_value=0, max_value=1000, value=0, key="clients_per_round",
        help="0 means all of them.",
    )  # fmt: skip
    form["clients-per-round"] = per_round or None

# --- Training ---------------------------------------------------------------
with st.container(border=True):
    st.subheader("Training", divider="gray")
    c1, c2, c3, c4, c5 = st.columns(5)
    form["rounds"] = c1.number_input(
        "Rounds", min_value=1, max_value=1000, value=defaults.rounds, key="rounds"
    )
    form["local-epochs"] = c2.number_input(
        "Local epochs", min_value=1, max_value=100, value=defaults.local_epochs, key="local_epochs"
    )
    form["batch-size"] = c3.number_input(
        "Batch size", min_value=1, max_value=8192, value=defaults.batch_size, key="batch_size"
    )
    form["learning-rate"] = c4.number_input(
        "Learning rate", min_value=1e-6, max_value=1.0, value=defaults.learning_rate,
        step=1e-4, format="%.4f", key="learning_rate",
    )  # fmt: skip
    form["seed"] = c5.number_input("Seed", min_value=0, value=defaults.seed, key="seed")

# --- Strategy ---------------------------------------------------------------
with st.container(border=True):
    st.subheader("Strategy", divider="gray")
    try:
        plugins = registry.installed()
    except UsageError as err:
        st.error(str(err))
        st.stop()
    name = st.selectbox(
        "Strategy", list(plugins), index=list(plugins).index(defaults.strategy)
        if defaults.strategy in plugins else 0, key="strategy",
    )  # fmt: skip
    plugin = plugins[name]
    st.caption(plugin.summary)
    form["strategy"] = name
    form["strategy-params"] = widgets.param_inputs(plugin)

# --- Privacy and hostile clients -------------------------------------------
with st.expander("Privacy and hostile clients", icon=":material/shield:"):
    dp_kinds = {
        "none": "Off",
        "central": "Client-level (noise on the aggregate)",
        "record": "Record-level (DP-SGD in each client)",
    }
    form["dp"] = st.radio(
        "Differential privacy", list(dp_kinds), format_func=dp_kinds.__getitem__,
        horizontal=True, key="dp",
    )  # fmt: skip
    if form["dp"] != "none":
        c1, c2, c3, c4 = st.columns(4)
        form["noise-multiplier"] = c1.number_input(
            "Noise multiplier", min_value=0.0, value=defaults.noise_multiplier, step=0.1,
            key="noise_multiplier", help="Gaussian noise's standard deviation / clip norm.",
        )  # fmt: skip
        form["clip-norm"] = c2.number_input(
            "Clip norm", min_value=1e-6, value=defaults.clip_norm, step=0.1, key="clip_norm",
            help="Largest L2 norm of a client's update (client-level) or of one example's "
            "gradient (record-level).",
        )  # fmt: skip
        target = c3.number_input(
            "Target ε", min_value=0.0, value=0.0, step=0.5, key="target_epsilon",
            help="Stop before the privacy budget is exceeded; 0 means no budget.",
        )  # fmt: skip
        form["target-epsilon"] = target or None
        form["delta"] = c4.number_input(
            "δ", min_value=1e-12, max_value=0.5, value=defaults.delta, format="%.0e",
            key="delta",
        )  # fmt: skip
        if form["dp"] == "central":
            form["dp-clipping"] = st.radio(
                "Clipping", ["server", "client"], horizontal=True, key="dp_clipping",
                help="Client-side clipping composes with secure aggregation.",
            )  # fmt: skip
    form["secure-aggregation"] = st.toggle(
        "Secure aggregation (SecAgg+)", key="secure_aggregation",
        help="The server sees only the masked sum of the clients' updates.",
    )  # fmt: skip
    c1, c2, c3 = st.columns(3)
    form["malicious"] = c1.number_input(
        "Malicious clients", min_value=0, max_value=1000, value=0, key="malicious",
        help="Simulated attackers among the institutions, drawn from the seed.",
    )  # fmt: skip
    if form["malicious"]:
        kind = c2.selectbox("Attack", ATTACKS, key="attack_kind")
        strength = c3.number_input(
            "Strength (F or SIGMA)", min_value=0.0, value=10.0, key="attack_strength",
            disabled=kind == "label-flip",
        )  # fmt: skip
        form["attack"] = run_form.attack_spec(kind, strength)

# --- Launch -----------------------------------------------------------------
with st.container(border=True):
    c1, c2 = st.columns([3, 1])
    run_name = c1.text_input(
        "Run name (optional)", key="run_name", placeholder="generated: <time>-<strategy>-<id>",
        help="Letters, digits, '.', '_' and '-'; the run's folder inside the runs folder.",
    )  # fmt: skip
    form["baseline"] = c2.toggle(
        "Baselines", value=True, key="baseline",
        help="Also train the centralized model (all rows pooled) and each institution alone.",
    )  # fmt: skip
    if st.button("Start run", type="primary", key="start", icon=":material/play_arrow:"):
        try:
            name = run_name.strip() or None
            if name:
                store.run_path(runs_root, name)  # refuse a bad name before any work
            cfg = run_form.build_config(form)
            with st.spinner("Checking the data…"):
                run_form.check_data(cfg)
            run_id = launcher.launch(cfg, runs_root, name)
        except UsageError as err:
            st.error(run_form.user_message(err, uploaded_names), icon=":material/error:")
        else:
            st.session_state["launched"] = run_id
            st.switch_page("app_pages/run.py", query_params={"run": run_id})
