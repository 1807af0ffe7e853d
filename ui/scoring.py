"""The Run page's model card and its "Score a file" box.

Scoring runs ``fedapp predict ... --json`` as a process of its own on the
uploaded file, exactly as on the command line: the UI process never loads
TensorFlow. The upload is stored as the New run page stores one
(:func:`fedapp_ui.store.save_upload`), its predictions under the runs
folder's ``.fedapp-ui/predictions``, and offered for download.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import streamlit as st

from fedapp.errors import UsageError
from fedapp.runs import RunState, RunView, metric_label, metric_names
from fedapp_ui import store

# Longest a file may take to score before the box gives up on it.
SCORE_TIMEOUT_SECONDS = 1800.0
_FORMATS = {"CSV": ".csv", "Parquet": ".parquet"}


def score_file(run: Path, data: Path, out: Path, evaluate: bool) -> dict[str, Any]:
    """Run ``fedapp predict RUN --data DATA --out OUT --json`` and return what it printed.

    Raises
    ------
    UsageError
        With the command's own ``error:`` line when it refuses the file (exit
        code 2), or what went wrong otherwise.

    """
    command = [
        sys.executable, "-m", "fedapp", "predict", str(run), "--data", str(data),
        "--out", str(out), "--force", "--json", *(["--evaluate"] if evaluate else []),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=SCORE_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise UsageError(f"scoring took over {SCORE_TIMEOUT_SECONDS:g} s and was ended") from None
    if done.returncode == 0:
        return json.loads(done.stdout)
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    said = [line.removeprefix("error:").strip() for line in lines if line.startswith("error:")]
    raise UsageError(said[-1] if said else f"scoring failed: {(lines or ['no output'])[-1]}")


def columns_of(path: Path) -> list[str]:
    """A table's column names, from its header (or Parquet schema) alone."""
    # pandas and pyarrow: only a file to score is looked into here.
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".parquet":
            return list(pq.read_schema(path).names)
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (OSError, ValueError) as err:
        raise UsageError(f"{path.name}: cannot be read as a table: {err}") from None


def card_markdown(text: str) -> str:
    """``model_card.md`` as the page shows it: under the expander's title, headings two down."""
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]  # the title: the expander says it
    return "\n".join(f"##{line}" if line.startswith("## ") else line for line in lines).strip()


def model_card(view: RunView) -> None:
    """The run's ``model_card.md``, in an expander (none before the run finishes)."""
    path = view.run_dir.model_card_file
    if not path.is_file():
        return
    with st.expander("Model card", icon=":material/description:"):
        st.markdown(card_markdown(path.read_text(encoding="utf-8")))


def score_box(view: RunView, runs_root: Path) -> None:
    """Upload a file, score it with the run's model, download the predictions."""
    kept = view.state is RunState.STOPPED and view.partial_round is not None
    has_model = view.run_dir.model_file.is_file() and view.run_dir.preprocessing_file.is_file()
    if not has_model or (view.state is not RunState.FINISHED and not kept):
        return
    target = (view.summary or {}).get("target") or view.config.get("target")
    with st.expander("Score a file", icon=":material/upload_file:"):
        st.caption(
            "New rows with the run's feature columns, in any order (others are ignored), go "
            "through the run's preprocessing and model, as `fedapp predict` does. With the "
            f"target column `{target}` in the file, the predictions are scored too."
        )
        upload = st.file_uploader("CSV or Parquet", type=["csv", "parquet"], key="score_upload")
        shape = st.segmented_control(
            "Predictions as", list(_FORMATS), default="CSV", key="score_format"
        ) or "CSV"  # fmt: skip
        if upload is None:
            return
        content = upload.getvalue()
        key = f"{view.run_id}-{hashlib.sha256(content).hexdigest()[:16]}{_FORMATS[shape]}"
        if st.button("Score", key="score_start", icon=":material/play_arrow:"):
            st.session_state["scored"] = _score(view, runs_root, upload.name, content, key, target)
        scored = st.session_state.get("scored")
        if scored and scored["key"] == key:
            _show(scored, view.task, upload.name)


def _score(
    view: RunView, runs_root: Path, name: str, content: bytes, key: str, target: str | None
) -> dict[str, Any]:
    """Store the upload, score it, and say what came of it (its result, or its error)."""
    try:
        data = store.save_upload(runs_root, name, content)
        evaluate = target in columns_of(data)
        out = store.ui_folder(runs_root, "predictions") / key
        with st.spinner(f"Scoring {name}…"):
            result = score_file(view.path, data, out, evaluate)
    except UsageError as err:
        return {"key": key, "error": str(err)}
    return {"key": key, "result": result}


def _show(scored: dict[str, Any], task: str, name: str) -> None:
    if "error" in scored:
        st.error(scored["error"], icon=":material/error:")
        return
    result = scored["result"]
    out = Path(result["out"])
    st.success(f"Scored {result['rows']:,} rows of {name}.", icon=":material/check_circle:")
    if out.is_file():
        st.download_button(
            f"Predictions ({out.suffix.lstrip('.')})", out.read_bytes(),
            file_name=f"{Path(name).stem}-predictions{out.suffix}", key="score_download",
            icon=":material/download:", help=", ".join(result["columns"]),
        )  # fmt: skip
    metrics = result.get("metrics")
    if metrics:
        st.caption(f"Against the file's target, over {result['evaluated']:,} rows:")
        st.dataframe(
            [
                {"metric": metric_label(m, task), "value": metrics.get(m)}
                for m in metric_names(task, metrics.keys())
            ],
            hide_index=True, key="score_metrics",
            column_config={"value": st.column_config.NumberColumn(format="%.4f")},
        )  # fmt: skip
