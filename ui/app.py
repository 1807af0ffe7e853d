"""fedapp's web UI: ``fedapp ui`` serves this script with Streamlit.

The pages live in ``app_pages/`` and stay thin: they draw widgets and call
the modules beside this file, which read and write only the runs folder.
"""

import streamlit as st

from fedapp_ui import store

st.set_page_config(page_title="fedapp", page_icon=":material/hub:", layout="wide")

runs_root, data_root = store.folders()
pages = [
    st.Page("app_pages/new_run.py", title="New run", icon=":material/add_circle:", default=True),
    st.Page("app_pages/run.py", title="Run", icon=":material/monitoring:", url_path="run"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/stacked_line_chart:"),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/folder_open:", url_path="runs"),
    st.Page("app_pages/tune.py", title="Tune", icon=":material/tune:", url_path="tune"),
]
with st.sidebar:
    st.markdown("### :material/hub: fedapp")
    st.caption("Federated learning across institutions: each keeps its rows.")
navigation = st.navigation(pages)
with st.sidebar:
    st.caption(f"Runs folder: **{runs_root.name}**", help=str(runs_root))
navigation.run()
