"""Each UI page driven through Streamlit's AppTest, widgets found by key.

Runs are written by hand into a temporary runs folder with ``RunDir`` (the
contract the UI reads); launching and stopping are replaced by recorders, so
no simulation starts here (the browser test launches a real one).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from run_files import make_task_run
from streamlit.testing.v1 import AppTest

import fedapp_ui
from fedapp.registry import MODEL_GROUP
from fedapp.runs import RunDir, primary
from fedapp.runs.checkpoints import Checkpoint
from fedapp.settings import RunConfig, describe
from fedapp_ui import launcher

APP = Path(fedapp_ui.__file__).with_name("app.py")
NEW, RUN, COMPARE, RUNS = (f"app_pages/{p}.py" for p in ("new_run", "run", "compare", "runs"))


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[RunConfig, str | None]]:
    """Record launches instead of starting processes."""
    calls: list[tuple[RunConfig, str | None]] = []

    def fake_launch(cfg: RunConfig, root: Path, name: str | None = None) -> str:
        calls.append((cfg, name))
        return name or "launched-run"

    monkeypatch.setattr(launcher, "launch", fake_launch)
    return calls


def write_run(
    root: Path,
    name: str,
    *,
    state: str = "finished",
    done: int = 2,
    rounds: int = 2,
    strategy: str = "fedavg",
    auc: float = 0.8,
    pid: int | None = None,
    error: str | None = None,
) -> RunDir:
    """A run directory as ``fedapp simulate`` leaves it after ``done`` rounds."""
    run = RunDir.create(root / name, root, strategy)
    cfg = RunConfig(clients=2, rounds=rounds, strategy=strategy, demo_rows=2000)
    run.write_config(
        {
            **cfg.replace(run_dir=str(run.path)).to_dict(),
            "client-sources": ["demo data (institution=inst-0)", "demo data (institution=inst-1)"],
            "data-warnings": [],
        }
    )
    for r in range(done + 1):
        score = {"auc": auc - 0.1 * (done - r), "accuracy": 0.8, "loss": 0.5}
        run.append_metrics(
            {"round": r, "stage": "evaluate", "scope": "centralized", "metrics": score}
        )
        if r:
            clients = {"0": {**score, "examples": 10}, "1": {**score, "examples": 12}}
            run.append_metrics(
                {"round": r, "stage": "evaluate", "scope": "federated", "metrics": score,
                 "clients": clients}
            )  # fmt: skip
    run.set_status(
        state, done, rounds, error=error,
        pid=pid if pid is not None else 999_999_999, host=socket.gethostname(),
        started=time.time() - 30,
    )  # fmt: skip
    if state == "finished":
        final = {"auc": auc, "accuracy": 0.8, "loss": 0.5}
        central = {"auc": auc + 0.01, "accuracy": 0.81, "loss": 0.49}
        run.write_summary(
            {
                "federated": final, "centralized": central,
                "gap": {k: final[k] - central[k] for k in final},
                "local_only": {"0": {"auc": auc - 0.05}, "1": {"auc": auc - 0.02}},
                "wall_seconds": 21.0, "rounds": rounds, "strategy": strategy,
            }
        )  # fmt: skip
        run.model_file.write_bytes(b"model")
    return run


def app(page: str | None = None, **query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def plotly_traces(at: AppTest) -> list[list[dict[str, Any]]]:
    """The traces of every Plotly chart on the page, as the browser receives them."""
    import json

    charts = at.get("plotly_chart")
    return [json.loads(c.proto.spec)["data"] for c in charts]


def styled_cells(frame: Any, colour: str) -> set[tuple[int, int]]:
    """The (row, column) cells of a styled dataframe whose style holds ``colour``."""
    cells = set()
    for rule in frame.proto.arrow_data.styler.styles.split("}"):
        selectors, _, style = rule.partition("{")
        if colour in style:
            for found in re.finditer(r"_row(\d+)_col(\d+)", selectors):
                cells.add((int(found.group(1)), int(found.group(2))))
    return cells


# --- New run ---------------------------------------------------------------


def test_new_run_launches_the_demo_with_the_forms_settings(runs_root: Path, launched: list) -> None:
    at = app()
    at.number_input(key="demo_rows").set_value(2000)
    at.number_input(key="clients").set_value(2)
    at.number_input(key="rounds").set_value(2)
    at.number_input(key="seed").set_value(5)
    at.selectbox(key="strategy").set_value("fedprox").run()
    at.number_input(key="param.fedprox.proximal-mu").set_value(0.3)
    at.text_input(key="run_name").set_value("exp-1")
    at.button(key="start").click().run()

    [(cfg, name)] = launched
    assert name == "exp-1"
    assert at.title[0].value == "exp-1"  # on the Run page of the new run
    assert (cfg.clients, cfg.rounds, cfg.seed, cfg.demo_rows) == (2, 2, 5, 2000)
    assert (cfg.strategy, cfg.strategy_params) == ("fedprox", {"proximal-mu": 0.3})
    assert cfg.resolved_partition == "column:institution" and cfg.is_demo


def test_new_run_sets_privacy_secure_aggregation_and_attackers(
    runs_root: Path, launched: list
) -> None:
    at = app()
    at.number_input(key="clients").set_value(4)
    at.radio(key="dp").set_value("central").run()
    at.number_input(key="noise_multiplier").set_value(0.8)
    at.number_input(key="clip_norm").set_value(0.5)
    at.number_input(key="target_epsilon").set_value(8.0)  # one round costs ε 6.1
    at.radio(key="dp_clipping").set_value("client")
    at.toggle(key="secure_aggregation").set_value(True)
    at.number_input(key="malicious").set_value(1).run()
    at.selectbox(key="attack_kind").set_value("scale")
    at.number_input(key="attack_strength").set_value(4.0)
    at.button(key="start").click().run()

    [(cfg, _)] = launched
    assert (cfg.dp, cfg.noise_multiplier, cfg.clip_norm) == ("central", 0.8, 0.5)
    assert (cfg.target_epsilon, cfg.dp_clipping, cfg.secure_aggregation) == (8.0, "client", True)
    assert (cfg.malicious, cfg.attack) == (1, "scale:4")


def test_new_run_sets_dropouts_stragglers_and_the_rounds_tolerance(
    runs_root: Path, launched: list
) -> None:
    at = app()
    at.number_input(key="clients").set_value(4)
    at.number_input(key="dropout_rate").set_value(0.3)
    at.number_input(key="straggler_rate").set_value(0.2)
    at.number_input(key="straggler_delay").set_value(2.0)
    at.number_input(key="round_timeout").set_value(20.0)
    at.number_input(key="min_fit_results").set_value(2)
    at.number_input(key="min_available_clients").set_value(3)
    at.button(key="start").click().run()

    [(cfg, _)] = launched
    assert (cfg.dropout_rate, cfg.straggler_rate, cfg.straggler_delay) == (0.3, 0.2, 2.0)
    assert (cfg.round_timeout, cfg.min_fit_results, cfg.min_available_clients) == (20.0, 2, 3)


def test_new_run_shows_the_clis_error_for_more_results_than_clients_per_round(
    runs_root: Path, launched: list
) -> None:
    at = app()
    at.number_input(key="clients").set_value(2)
    at.number_input(key="min_fit_results").set_value(3).run()

    assert any(
        "min-fit-results (3) must not exceed the clients sampled per round (2)" in e.value
        for e in at.error
    )
    assert at.button(key="start").disabled
    assert launched == []


def test_new_run_shows_the_clis_error_for_impossible_attackers(
    runs_root: Path, launched: list
) -> None:
    at = app()
    at.number_input(key="clients").set_value(2)
    at.number_input(key="malicious").set_value(3).run()

    assert at.error[0].value == (
        "malicious must be in [0, 2] (at most the number of clients), got 3"
    )
    assert at.button(key="start").disabled
    assert launched == []


def test_new_run_offers_a_third_party_plugin_and_its_parameters(
    runs_root: Path, launched: list, install_plugin: Any, median_plugin: str
) -> None:
    install_plugin("median", "fedapp_median_ui", median_plugin)
    at = app()
    assert "median" in at.selectbox(key="strategy").options
    at.selectbox(key="strategy").set_value("median").run()
    at.text_input(key="param.median.tag").set_value("from-the-ui")
    at.button(key="start").click().run()
    [(cfg, _)] = launched
    assert cfg.strategy_params == {"tag": "from-the-ui"}


def test_new_run_sends_the_model_and_its_parameters(runs_root: Path, launched: list) -> None:
    at = app()
    assert at.selectbox(key="model").options == ["mlp"]
    at.text_input(key="model.mlp.hidden-units").set_value("128, 64")
    at.number_input(key="model.mlp.dropout").set_value(0.1)
    at.button(key="start").click().run()
    [(cfg, _)] = launched
    assert cfg.model == "mlp"
    assert cfg.model_params == {"hidden-units": (128, 64), "dropout": 0.1}


def test_new_run_refuses_a_bad_model_parameter_as_the_cli_does(
    runs_root: Path, launched: list
) -> None:
    at = app()
    at.text_input(key="model.mlp.hidden-units").set_value("64, 0").run()
    assert "--hidden-units must be >= 1, got 0" in [e.value for e in at.error]
    assert at.button(key="start").disabled
    assert launched == []


def test_new_run_offers_a_third_party_model_and_its_parameters(
    runs_root: Path, launched: list, install_plugin: Any, resnet_plugin: str
) -> None:
    install_plugin("my_pkg_resnet", "my_pkg_resnet_ui", resnet_plugin, group=MODEL_GROUP)
    at = app()
    at.selectbox(key="model").set_value("my_pkg_resnet").run()
    at.number_input(key="model.my_pkg_resnet.blocks").set_value(3)
    at.button(key="start").click().run()
    [(cfg, _)] = launched
    assert (cfg.model, cfg.model_params) == ("my_pkg_resnet", {"width": 32, "blocks": 3})


MU = "param.fedprox.proximal-mu"


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([("number_input", "rounds", 0)], "rounds must be > 0 or auto, got 0"),
        ([("number_input", "learning_rate", 0.0)], "learning-rate must be > 0, got 0.0"),
        ([("number_input", "demo_rows", 0)], "demo-rows must be > 0, got 0"),
        (
            [("selectbox", "strategy", "fedprox"), ("number_input", MU, -1.0)],
            "--proximal-mu must be >= 0, got -1.0",
        ),
        (
            [("radio", "partition_kind", "dirichlet"), ("number_input", "alpha", 0.0)],
            "partition 'dirichlet:0': dirichlet alpha must be > 0",
        ),
        (
            [("number_input", "malicious", 1), ("number_input", "attack_strength", 0.0)],
            "attack sign-flip: F must be > 0, got 0",
        ),
    ],
    ids=["rounds", "learning-rate", "rows", "strategy-parameter", "alpha", "attack"],
)  # fmt: skip
def test_an_invalid_field_blocks_start_and_says_why(
    runs_root: Path, launched: list, steps: list[tuple[str, str, Any]], expected: str
) -> None:
    at = app()
    for kind, key, value in steps:
        getattr(at, kind)(key=key).set_value(value).run()

    # Assert: said under the field and by Start, which cannot be clicked
    assert not at.exception
    field, blocked = (e.value for e in at.error)
    assert field == expected
    assert "Start is blocked" in blocked and expected in blocked
    assert at.button(key="start").disabled
    assert launched == []


def test_a_fixed_field_unblocks_start_with_the_value_typed(runs_root: Path, launched: list) -> None:
    at = app()
    at.number_input(key="rounds").set_value(0).run()
    at.number_input(key="rounds").set_value(4).run()
    assert not at.error
    at.button(key="start").click().run()
    [(cfg, _)] = launched
    assert cfg.rounds == 4


@pytest.mark.parametrize(
    ("dp", "extra"),
    [("central", []), ("record", [("number_input", "noise_multiplier", 0.3)])],
)
def test_the_privacy_budget_is_checked_on_the_form(
    runs_root: Path, launched: list, dp: str, extra: list[tuple[str, str, Any]]
) -> None:
    at = app()
    at.number_input(key="demo_rows").set_value(600)
    at.radio(key="dp").set_value(dp).run()
    for kind, key, value in extra:
        getattr(at, kind)(key=key).set_value(value)
    at.number_input(key="target_epsilon").set_value(0.5).run()

    # Assert: the run's own check (one round must fit in the budget), before launch
    assert not at.exception
    field, blocked = (e.value for e in at.error)
    assert field.startswith("target-epsilon must be >= ") and field.endswith("got 0.5")
    assert field in blocked
    assert at.button(key="start").disabled
    assert launched == []


def bank_upload(rows: int = 300) -> bytes:
    """A churn table with a row number, a customer id and a surname, as bank_churn.csv has."""
    lines = ["RowNumber,CustomerId,Surname,Geography,Age,Exited"] + [
        f"{i + 1},{15600000 + i * 7},Name{i},{['France', 'Spain', 'Germany'][i % 3]},"
        f"{20 + i % 50},{int(i % 5 == 0)}"
        for i in range(rows)
    ]
    return "\n".join(lines).encode()


def test_new_run_previews_the_data_before_start(runs_root: Path, launched: list) -> None:
    at = app()
    at.segmented_control(key="source").set_value("Upload").run()
    at.file_uploader(key="upload").set_value(("bank.csv", bank_upload(), "text/csv")).run()
    at.selectbox(key="partition_column").set_value("Geography").run()

    # Assert: the identifier is the customer's, the row number and surname are set aside
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="id_column").value == "CustomerId"
    assert at.multiselect(key="drop").value == ["RowNumber", "Surname"]
    assert any("free text (300 distinct values)" in c.value for c in at.caption)
    # ... and the data is shown as `fedapp inspect` shows it
    assert any(
        "300 rows in 3 institutions; target 'Exited' (binary): 60 positive" in m.value
        for m in at.markdown
    )
    shown_columns, shown_clients = at.dataframe
    columns = shown_columns.value.set_index("column")
    assert dict(columns["kind"]) == {"Age": "numeric", "Geography": "categorical"}
    clients = shown_clients.value.set_index("institution")
    assert list(clients["rows"]) == [100, 100, 100]
    assert list(clients.index) == ["Geography=France", "Geography=Germany", "Geography=Spain"]
    assert not at.button(key="start").disabled


def test_a_server_path_outside_without_a_data_dir_says_what_to_pass(
    runs_root: Path, launched: list, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "tables"
    elsewhere.mkdir()
    (elsewhere / "bank.csv").write_bytes(bank_upload())
    at = app()
    at.segmented_control(key="source").set_value("File on the server").run()
    at.text_input(key="server_path").set_value(str(elsewhere / "bank.csv")).run()

    [error] = at.error
    assert f"restart it with `fedapp ui --data-dir {elsewhere}`" in error.value
    assert "or upload the file" in error.value


@pytest.mark.parametrize("name", ["../evil", "/etc/cron.d/x", ".hidden", "a/b"])
def test_new_run_refuses_run_names_that_leave_the_runs_folder(
    runs_root: Path, launched: list, name: str
) -> None:
    at = app()
    at.number_input(key="demo_rows").set_value(500)
    at.text_input(key="run_name").set_value(name)
    at.button(key="start").click().run()
    assert not at.exception
    assert "not allowed" in at.error[0].value
    assert launched == []
    assert list(runs_root.iterdir()) == []


def test_upload_a_table_pick_target_and_split_by_column(runs_root: Path, launched: list) -> None:
    rows = ["CustomerId,Region,Age,Balance,Exited"] + [
        f"{i},{['north', 'south', 'east'][i % 3]},{20 + i % 60},{i * 10.5},{int(i % 4 == 0)}"
        for i in range(300)
    ]
    at = app()
    at.segmented_control(key="source").set_value("Upload").run()
    at.file_uploader(key="upload").set_value(("bank.csv", "\n".join(rows).encode(), "text/csv"))
    at.run()

    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="target").value == "Exited"
    assert at.selectbox(key="id_column").value == "CustomerId"
    assert at.selectbox(key="partition_column").options == ["Region (3 values)"]
    at.button(key="start").click().run()

    [(cfg, _)] = launched
    assert (cfg.target, cfg.id_column, cfg.partition, cfg.clients) == (
        "Exited", "CustomerId", "column:Region", 3,
    )  # fmt: skip
    stored = Path(cfg.data)  # content-addressed, under the name the user knows
    assert stored.parent.parent == runs_root / ".fedapp-ui" / "uploads"
    assert stored.name == "bank.csv"


def test_a_bad_upload_shows_the_clis_error_in_the_page(runs_root: Path, launched: list) -> None:
    rows = [f"{i},{30 + i % 40},{'yes' if i % 3 else 'no'}" for i in range(60)]
    rows[7] = "7,4O,no"  # one typo in a numeric column: the CLI refuses it
    text = "id,age,churn\n" + "\n".join(rows)
    at = app()
    at.segmented_control(key="source").set_value("Upload").run()
    at.file_uploader(key="upload").set_value(("clients.csv", text.encode(), "text/csv")).run()
    at.selectbox(key="target").set_value("churn").run()
    at.radio(key="partition_kind").set_value("iid").run()

    # Assert: said before Start, under the data, and Start waits for a fix
    assert not at.exception
    error, blocked = at.error
    assert "clients.csv" in error.value and "age" in error.value
    assert error.value in blocked.value and "Start is blocked" in blocked.value
    assert ".fedapp-ui" not in error.value  # the stored name stays internal
    assert at.button(key="start").disabled
    assert launched == []

    at.multiselect(key="categorical").set_value(["age"]).run()  # what the error advises
    at.button(key="start").click().run()
    [(cfg, _)] = launched
    assert cfg.categorical == ("age",)


def test_a_missing_value_marker_is_typed_on_the_form(runs_root: Path, launched: list) -> None:
    rows = [f"{i},{30 + i % 40},{'yes' if i % 3 else 'no'}" for i in range(60)]
    for i in (4, 9, 20):
        rows[i] = f"{i},??,no"  # '??' for "not known", as some exports write it
    at = app()
    at.segmented_control(key="source").set_value("Upload").run()
    at.file_uploader(key="upload").set_value(
        ("clients.csv", "\n".join(["id,age,churn", *rows]).encode(), "text/csv")
    ).run()
    at.selectbox(key="target").set_value("churn").run()
    at.radio(key="partition_kind").set_value("iid").run()
    assert at.button(key="start").disabled  # the CLI refuses '??' in a number column

    # Execute: the marker the error names, typed in its field
    at.text_input(key="na_values").set_value("?, ??").run()
    at.button(key="start").click().run()

    # Assert
    assert not at.exception
    [(cfg, _)] = launched
    assert cfg.na_values == ("?", "??")


def test_an_unreadable_upload_is_reported_without_a_traceback(
    runs_root: Path, launched: list
) -> None:
    at = app()
    at.segmented_control(key="source").set_value("Upload").run()
    # Bytes that are text in no encoding it detects (Latin-1 and cp1252 are read)
    content = b"a,b\n" + b"\x81\x8d\x8f\x90\x9d" * 8 + b",1\n"
    at.file_uploader(key="upload").set_value(("binary.csv", content, "text/csv"))
    at.run()
    assert not at.exception
    assert "binary.csv" in at.error[0].value and "UTF-8" in at.error[0].value


@pytest.mark.parametrize("typed", ["../secrets.csv", "/etc/passwd", "/tmp"])
def test_server_paths_cannot_leave_the_data_folder(
    runs_root: Path, launched: list, typed: str
) -> None:
    (runs_root.parent / "secrets.csv").write_text("a,b\n1,0\n", encoding="utf-8")
    at = app()
    at.segmented_control(key="source").set_value("File on the server").run()
    at.text_input(key="server_path").set_value(typed).run()
    assert not at.exception
    assert "outside the data folder" in at.error[0].value
    assert launched == []


def test_a_server_path_inside_the_data_folder_is_read(
    runs_root: Path, launched: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = runs_root.parent / "data"
    data_dir.mkdir()
    rows = ["plan,usage,churned"] + [f"{'ab'[i % 2]},{i},{int(i % 3 == 0)}" for i in range(60)]
    (data_dir / "t.csv").write_text("\n".join(rows), encoding="utf-8")
    monkeypatch.setenv("FEDAPP_UI_DATA_DIR", str(data_dir))
    at = app()
    at.segmented_control(key="source").set_value("File on the server").run()
    at.text_input(key="server_path").set_value("t.csv").run()
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="target").value == "churned"


# --- Run -------------------------------------------------------------------


def test_run_page_shows_progress_charts_tables_and_downloads(runs_root: Path) -> None:
    write_run(runs_root, "done-run", auc=0.83)
    at = app(RUN, run="done-run")

    assert at.title[0].value == "done-run"
    assert [m.value for m in at.metric][:1] == ["2 / 2"]
    global_chart, clients_chart = plotly_traces(at)
    assert [t["x"] for t in global_chart] == [[0, 1, 2], [1, 2]]
    assert len(clients_chart) == 2
    final, local = at.dataframe
    assert final.value.loc[0, "federated"] == pytest.approx(0.83)
    assert list(local.value["institution"]) == ["inst-0", "inst-1"]
    # AUC 0.01 below centralized: worse, in red; each institution gains by joining: green
    assert (0, list(final.value.columns).index("gap")) in styled_cells(final, "#fee2e2")
    gain = list(local.value.columns).index("gain")
    assert {(0, gain), (1, gain)} <= styled_cells(local, "#dcfce7")
    labels = [b.label for b in at.get("download_button")]
    assert any("model.keras" in label for label in labels)
    assert any("metrics.jsonl" in label for label in labels)


def test_run_page_shows_privacy_spent_attackers_and_flags(runs_root: Path) -> None:
    run = write_run(runs_root, "dp")
    config = json.loads(run.config_file.read_text())
    config |= {
        "dp": "record", "noise-multiplier": 1.5, "clip-norm": 2.0, "target-epsilon": 3.0,
        "malicious-clients": [1], "attack": "sign-flip:10",
    }  # fmt: skip
    run.config_file.write_text(json.dumps(config))
    for r, flagged in ((1, [1]), (2, [])):
        norms = {"0": {"update-norm": 0.2, "cosine": 0.9}, "1": {"update-norm": 3.0, "cosine": -1}}
        run.append_metrics(
            {"round": r, "stage": "fit", "scope": "federated", "metrics": {},
             "clients": norms, "flagged": flagged}
        )  # fmt: skip
        run.append_metrics(
            {"round": r, "stage": "privacy", "scope": "federated",
             "metrics": {"epsilon": 1.2 * r, "delta": 1e-5},
             "clients": {"0": {"epsilon": 1.2 * r, "spent": False},
                         "1": {"epsilon": 0.8 * r, "spent": False}}}
        )  # fmt: skip
    run.set_status("finished", 2, 4, reason="privacy budget reached")

    at = app(RUN, run="dp")

    assert any("record-level DP (z 1.5, C 2, budget ε 3)" in c.value for c in at.caption)
    assert any("1 attacker, sign-flip:10 (clients 1)" in c.value for c in at.caption)
    assert any("privacy budget reached" in i.value for i in at.info)
    *_, epsilon, norms = plotly_traces(at)
    assert [t["name"] for t in epsilon] == ["run", "inst-0", "inst-1"]
    assert epsilon[0]["y"] == [1.2, 2.4]
    assert [t["name"] for t in norms] == ["inst-0", "inst-1 (attacker)", "flagged"]
    assert (norms[2]["x"], norms[2]["y"]) == ([1], [3.0])


def test_run_page_says_why_a_small_round_flags_nobody(runs_root: Path) -> None:
    run = write_run(runs_root, "small")
    for r, clients in ((1, 3), (2, 6)):
        norms = {str(c): {"update-norm": 0.2 + c, "cosine": 0.9} for c in range(clients)}
        run.append_metrics(
            {"round": r, "stage": "fit", "scope": "federated", "metrics": {},
             "clients": norms, "flagged": []}
        )  # fmt: skip

    at = app(RUN, run="small")

    [said] = [c.value for c in at.caption if "No update is flagged" in c.value]
    assert "fewer than 5 clients (1 of 2 rounds here)" in said


def test_run_page_says_which_rounds_were_skipped(runs_root: Path) -> None:
    run = write_run(runs_root, "lossy")
    run.write_summary({**run.read_summary(), "skipped_rounds": [2]})

    at = app(RUN, run="lossy")

    assert any(
        w.value.startswith("Round 2 had fewer training results than min-fit-results")
        for w in at.warning
    )


def test_run_page_without_privacy_or_norms_has_just_the_two_charts(runs_root: Path) -> None:
    write_run(runs_root, "plain")
    at = app(RUN, run="plain")
    assert len(plotly_traces(at)) == 2
    assert not any(":material/shield:" in c.value for c in at.caption)


def test_run_page_metric_switch_redraws_the_charts(runs_root: Path) -> None:
    write_run(runs_root, "r1")
    at = app(RUN, run="r1")
    at.segmented_control(key="metric.binary").set_value("loss").run()
    global_chart, _ = plotly_traces(at)
    assert global_chart[0]["y"] == [0.5, 0.5, 0.5]


def test_a_failed_run_shows_its_error(runs_root: Path) -> None:
    write_run(runs_root, "bad", state="failed", done=1, error="ValueError: boom")
    at = app(RUN, run="bad")
    assert any("ValueError: boom" in e.value for e in at.error)


def test_a_running_run_can_be_stopped(runs_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_run(runs_root, "live", state="running", done=1, rounds=5, pid=os.getpid())
    stopped: list[str] = []
    monkeypatch.setattr(launcher, "stop", lambda root, run_id: stopped.append(run_id))
    at = app(RUN, run="live")
    assert "Round 1 of 5" in at.get("progress")[0].proto.text
    at.button(key="stop").click().run()
    assert stopped == ["live"]


def test_a_run_whose_process_died_is_marked_interrupted(runs_root: Path) -> None:
    write_run(runs_root, "ghost", state="running", done=1, rounds=5)  # pid 999999999: gone
    at = app(RUN, run="ghost")
    assert "stop" not in [b.key for b in at.button]
    assert any("ended without finishing" in w.value for w in at.warning)


def test_an_interrupted_run_with_a_checkpoint_can_be_resumed(
    runs_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: killed after round 2 of 5, its round 2 checkpointed
    write_run(runs_root, "ghost", state="running", done=2, rounds=5)  # pid 999999999: gone
    Checkpoint(2, "hash").save(runs_root / "ghost" / "checkpoints", keep=2)
    resumed: list[str] = []
    monkeypatch.setattr(launcher, "resume", lambda root, run_id: resumed.append(run_id) or 2)
    at = app(RUN, run="ghost")
    assert any("Resume continues it after round 2" in w.value for w in at.warning)

    # Execute
    at.button(key="resume").click().run()

    # Assert
    assert resumed == ["ghost"]


def test_a_run_without_a_checkpoint_offers_no_resume(runs_root: Path) -> None:
    write_run(runs_root, "ghost", state="running", done=1, rounds=5)
    at = app(RUN, run="ghost")
    assert "resume" not in [b.key for b in at.button]


def test_a_run_that_could_not_start_shows_why(runs_root: Path) -> None:
    launches = runs_root / ".fedapp-ui" / "launches"
    launches.mkdir(parents=True)
    (launches / "never.json").write_text('{"pid": 999999999}', encoding="utf-8")
    (launches / "never.log").write_text(
        "error: bank.csv: column 'Age' holds non-numbers\n", encoding="utf-8"
    )
    at = app(RUN, run="never")
    assert "column 'Age' holds non-numbers" in at.error[0].value


def test_run_page_refuses_unsafe_names_in_the_link(runs_root: Path) -> None:
    at = app(RUN, run="../../etc")
    assert not at.exception
    assert at.error and "not allowed" in at.error[0].value


# --- Compare and Runs ----------------------------------------------------------


def test_compare_overlays_runs_and_tabulates_gaps(runs_root: Path) -> None:
    write_run(runs_root, "a-fedavg", auc=0.80)
    time.sleep(0.01)
    write_run(runs_root, "b-fedprox", strategy="fedprox", auc=0.82)
    at = app(COMPARE)

    assert sorted(at.multiselect(key="compare_runs").value) == ["a-fedavg", "b-fedprox"]
    [traces] = plotly_traces(at)
    assert {t["name"] for t in traces} >= {"a-fedavg", "b-fedprox"}
    named, scores, gaps, alone = at.dataframe
    assert named.value.set_index("run").loc["b-fedprox", "strategy"] == "fedprox"
    assert scores.value.set_index("run").loc["b-fedprox", "AUC"] == pytest.approx(0.82)
    assert gaps.value.set_index("run").loc["b-fedprox", "AUC"] == pytest.approx(-0.01)
    # federated below centralized on AUC: red; on log-loss (lower is better) above is red too
    columns = list(gaps.value.columns)
    red = styled_cells(gaps, "#fee2e2")
    assert {(0, columns.index("AUC")), (0, columns.index("log-loss"))} <= red
    table = alone.value
    assert list(table.columns) == ["institution", "run", "AUC alone", "AUC federated", "gain"]
    assert len(table) == 4  # two institutions, two runs


def test_compare_opens_with_the_latest_runs_of_the_same_data(runs_root: Path) -> None:
    write_run(runs_root, "a-fedavg", auc=0.80)
    time.sleep(0.01)
    other = write_run(runs_root, "b-other-data", auc=0.7)
    config = json.loads(other.config_file.read_text())
    other.config_file.write_text(json.dumps({**config, "partition": "iid"}))
    time.sleep(0.01)
    write_run(runs_root, "c-weighted", strategy="weighted", auc=0.80)
    time.sleep(0.01)
    stop_run(runs_root, "d-stopped")

    at = app(COMPARE)

    assert at.multiselect(key="compare_runs").value == ["d-stopped", "c-weighted", "a-fedavg"]
    named = at.dataframe[0].value.set_index("run")
    assert named.loc["d-stopped", "model"] == "at round 1"
    # weighted's curve is fedavg's: both drawn, told apart by dash and marker
    [traces] = plotly_traces(at)
    runs = [t for t in traces if t.get("showlegend") is not False]
    assert len({(t["line"].get("dash"), t["marker"].get("symbol")) for t in runs}) == 3


def test_runs_lists_and_deletes(runs_root: Path) -> None:
    write_run(runs_root, "old", auc=0.7)
    write_run(runs_root, "busy", state="running", done=1, pid=os.getpid())
    at = app(RUNS)

    listing = at.dataframe[0].value
    assert set(listing["run"]) == {"run?run=old", "run?run=busy"}
    assert at.multiselect(key="delete_runs").options == ["old · fedavg · finished"]
    at.multiselect(key="delete_runs").set_value(["old"])
    at.checkbox(key="delete_confirm").check().run()
    at.button(key="delete").click().run()

    assert not at.exception
    assert sorted(p.name for p in runs_root.iterdir()) == ["busy"]


def test_run_page_offers_the_preprocessing_needed_to_score_new_rows(runs_root: Path) -> None:
    run = write_run(runs_root, "scored")
    run.preprocessing_file.write_text('{"numeric": {}}', encoding="utf-8")
    at = app(RUN, run="scored")
    [button] = [b for b in at.get("download_button") if "preprocessing.json" in b.label]
    assert button.proto.url.endswith(".json")


# --- Run: a stopped run, phases, failures and coverage -------------------------


def stop_run(root: Path, name: str, *, at: int = 1, rounds: int = 5) -> RunDir:
    """A run stopped after round ``at`` that kept that round's model and metrics."""
    run = write_run(root, name, state="stopped", done=at, rounds=rounds)
    run.write_summary(
        {
            "federated": {"auc": 0.8249, "accuracy": 0.8, "loss": 0.45},
            "federated_evaluation": {"auc": 0.81, "accuracy": 0.79, "loss": 0.46},
            "wall_seconds": 12.0, "rounds": rounds, "strategy": "fedavg",
            "partial": True, "round": at,
        }
    )  # fmt: skip
    run.model_file.write_bytes(b"model of round 1")
    return run


def test_a_stopped_run_shows_its_kept_model_and_metrics_at_its_round(runs_root: Path) -> None:
    stop_run(runs_root, "halted")
    at = app(RUN, run="halted")

    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Gap to centralized"] != "after the run"  # the run has ended
    assert any("model and metrics below are those of round 1" in w.value for w in at.warning)
    assert any(h.value == "Model of round 1 on the global test set" for h in at.subheader)
    assert at.dataframe[0].value.loc[0, "federated"] == pytest.approx(0.8249)
    [model] = [b for b in at.get("download_button") if b.label == "model.keras"]
    assert model.proto.help == "The global model of round 1: a plain Keras model."


def test_runs_shows_a_stopped_runs_auc_at_its_round(runs_root: Path) -> None:
    write_run(runs_root, "whole", auc=0.8)
    stop_run(runs_root, "halted")

    listing = app(RUNS).dataframe[0].value.set_index("run")
    assert listing.loc["run?run=halted", "metric"] == "AUC"
    assert listing.loc["run?run=halted", "score"] == pytest.approx(0.8249)
    assert listing.loc["run?run=halted", "model"] == "at round 1"
    assert listing.loc["run?run=whole", "model"] == "final"


def test_a_run_before_round_1_shows_its_phase_with_its_own_progress(runs_root: Path) -> None:
    run = write_run(runs_root, "warming", state="running", done=0, rounds=5, pid=os.getpid())
    status = json.loads(run.status_file.read_text())
    status["phase"] = {"name": "clients", "label": "starting the clients", "done": 3, "total": 12}
    run.status_file.write_text(json.dumps(status))

    at = app(RUN, run="warming")

    bars = [(p.proto.text, p.proto.value) for p in at.get("progress")]
    assert ("Starting the clients: 3 of 12", 25) in bars
    steps = " ".join(c.value for c in at.caption)
    assert "engine" in steps and "statistics" in steps and "baselines" in steps


def test_the_run_page_names_the_clients_that_failed_and_why(runs_root: Path) -> None:
    run = write_run(runs_root, "bumpy")
    run.append_metrics(
        {"round": 2, "stage": "fit", "scope": "federated", "metrics": {}, "clients": {},
         "failures": 1, "failed": [{"partition": 1, "reason": "MemoryError: out of memory"}]}
    )  # fmt: skip
    at = app(RUN, run="bumpy")

    assert any("1 client-round failed" in w.value for w in at.warning)
    failures = [d.value for d in at.dataframe if "reason" in d.value.columns]
    assert failures[0].to_dict("records") == [
        {"round": 2, "stage": "fit", "client": "inst-1", "reason": "MemoryError: out of memory"}
    ]


def test_the_run_page_says_how_many_clients_a_weighted_value_covers(runs_root: Path) -> None:
    run = RunDir.create(runs_root / "tiny", runs_root, "fedavg")
    labels = [f"demo data (institution=inst-{c})" for c in range(12)]
    run.write_config({**RunConfig(clients=12, rounds=1).to_dict(), "client-sources": labels})
    clients = {str(c): {"auc": 1.0 if c == 0 else None, "examples": 2} for c in range(12)}
    run.append_metrics(
        {"round": 1, "stage": "evaluate", "scope": "federated", "metrics": {"auc": 1.0},
         "clients": clients, "coverage": {"auc": 1}, "reported": 12}
    )  # fmt: skip
    run.set_status("finished", 1, 1)
    at = app(RUN, run="tiny")

    assert any("covers 1 of 12 clients" in w.value for w in at.warning)
    assert any("No AUC in any round from inst-1, inst-2" in c.value for c in at.caption)


# --- Run: curves of the final model, chart data ---------------------------------


def test_the_run_page_draws_the_final_models_curves_from_curves_json(runs_root: Path) -> None:
    run = write_run(runs_root, "curved")
    run.write_curves(
        {
            "round": 2, "threshold": 0.5, "rows": 40, "positives": 10,
            "roc": {"fpr": [0, 0.2, 1], "tpr": [0, 0.7, 1], "auc": 0.83},
            "pr": {"recall": [0, 0.7, 1], "precision": [1, 0.6, 0.25], "auc": 0.6},
            "confusion": {"tn": 27, "fp": 3, "fn": 4, "tp": 6},
        }
    )  # fmt: skip
    at = app(RUN, run="curved")

    *_, roc, pr, confusion = plotly_traces(at)
    assert roc[0]["name"] == "ROC (AUC 0.8300)" and roc[0]["x"] == [0, 0.2, 1]
    assert pr[0]["y"] == [1, 0.6, 0.25]
    assert confusion[0]["z"] == [[27, 3], [4, 6]]


def test_every_chart_offers_its_data_as_csv(runs_root: Path) -> None:
    write_run(runs_root, "plain")
    at = app(RUN, run="plain")
    csv_buttons = [b for b in at.get("download_button") if b.label == "Data (CSV)"]
    assert len(csv_buttons) == len(plotly_traces(at)) == 2
    assert all(b.proto.url.endswith(".csv") for b in csv_buttons)


def test_a_run_without_curves_json_draws_no_curves(runs_root: Path) -> None:
    write_run(runs_root, "older")
    at = app(RUN, run="older")
    assert len(plotly_traces(at)) == 2


# --- Run again with these settings ------------------------------------------------


def rerun(at: AppTest) -> None:
    """Click "Run again" and land on New run, as the browser does.

    AppTest follows the page's switch, but widgets of the page it switched
    to only answer once AppTest itself is on that page.
    """
    at.button(key="rerun").click().run()
    assert at.title[0].value == "New run"
    at.switch_page(NEW).run()


def test_run_again_fills_the_new_run_form_with_the_runs_settings(
    runs_root: Path, launched: list
) -> None:
    run = write_run(runs_root, "tuned", strategy="fedprox", rounds=4)
    config = json.loads(run.config_file.read_text())
    config |= {"strategy-params": {"proximal-mu": 0.7}, "seed": 11, "learning-rate": 0.005,
               "test-fraction": 0.3,
               "model-params": {"hidden-units": [16, 8], "dropout": 0.1}}  # fmt: skip
    run.config_file.write_text(json.dumps(config))
    at = app(RUN, run="tuned")

    rerun(at)

    # Assert: on New run, every field as the run had it, no warning about it
    assert not at.exception
    assert not at.warning, [w.value for w in at.warning]
    assert (at.number_input(key="rounds").value, at.number_input(key="seed").value) == (4, 11)
    assert at.selectbox(key="strategy").value == "fedprox"
    assert at.number_input(key="param.fedprox.proximal-mu").value == 0.7
    assert at.selectbox(key="model").value == "mlp"
    assert at.text_input(key="model.mlp.hidden-units").value == "16, 8"
    assert at.number_input(key="model.mlp.dropout").value == 0.1
    assert any("test-fraction 0.3" in c.value for c in at.caption)
    at.number_input(key="rounds").set_value(6)  # any of them can change
    at.button(key="start").click().run()
    [(cfg, _)] = launched
    expected = RunConfig.from_mapping(config).replace(rounds=6, run_dir=None)
    assert cfg.replace(run_dir=None).to_dict() == expected.to_dict()  # as config.json says it


def test_run_again_reuses_the_runs_uploaded_file(runs_root: Path, launched: list) -> None:
    at = app()
    at.segmented_control(key="source").set_value("Upload").run()
    at.file_uploader(key="upload").set_value(("bank.csv", bank_upload(), "text/csv")).run()
    at.button(key="start").click().run()
    [(first, _)] = launched
    digest = hashlib.sha256(Path(first.data).read_bytes()).hexdigest()
    recorded = first.replace(run_dir=None, data_sha256=(digest,))  # as the run records it
    run = RunDir.create(runs_root / "uploaded", runs_root, "fedavg")
    run.write_config(recorded.to_dict())
    run.set_status("finished", 2, 2)

    at = app(RUN, run="uploaded")
    rerun(at)
    assert at.segmented_control(key="source").value == "Files of the run"
    assert at.multiselect(key="drop").value == ["RowNumber", "Surname"]
    at.button(key="start").click().run()

    _, (again, _) = launched
    assert again.replace(run_dir=None).to_dict() == recorded.to_dict()
    assert Path(again.data).name == "bank.csv"


def test_start_afresh_empties_the_form_of_a_runs_settings(runs_root: Path) -> None:
    write_run(runs_root, "short", rounds=4)
    at = app(RUN, run="short")
    rerun(at)
    at.button(key="rerun_clear").click().run()
    assert at.number_input(key="rounds").value == describe("rounds").default
    assert not at.info


# --- Targets of every task: multiclass and regression runs, mixed comparisons --------


@pytest.mark.parametrize(
    ("task", "main", "value", "gap", "options"),
    [
        ("binary", "AUC", "0.7100", "-0.0100",
         ["AUC", "PR-AUC", "accuracy", "F1", "precision", "recall", "log-loss"]),
        ("multiclass", "accuracy", "0.8588", "-0.0100",
         ["accuracy", "macro-F1", "macro AUC (one-vs-rest)", "log-loss", "recall (basic)",
          "recall (premium)", "recall (standard)"]),
        ("regression", "RMSE", "459.2400", "+0.0100",
         ["RMSE", "MAE", "R²", "MSE (standardised)"]),
    ],
)  # fmt: skip
def test_the_run_page_tells_a_run_in_its_tasks_main_score_and_metrics(
    runs_root: Path, task: str, main: str, value: str, gap: str, options: list[str]
) -> None:
    make_task_run(runs_root, "r", task)
    at = app(RUN, run="r")

    # Assert: the main score's tile and gap, the metrics offered, tabled and gained
    shown = {m.label: m.value for m in at.metric}
    assert (shown[f"Global test {main}"], shown["Gap to centralized"]) == (value, gap)
    picker = at.segmented_control(key=f"metric.{task}")
    assert (picker.value, picker.options) == (primary(task), [*options, "training loss"])
    final, local = at.dataframe
    assert list(final.value["metric"]) == options
    assert list(local.value.columns) == [
        "institution", f"{main} alone", f"{main} federated", "gain",
    ]  # fmt: skip
    assert f"Alone vs federated ({main})" in [h.value for h in at.subheader]


def test_the_run_page_of_a_multiclass_run_draws_its_confusion_over_the_classes(
    runs_root: Path,
) -> None:
    make_task_run(runs_root, "plan", "multiclass")
    at = app(RUN, run="plan")

    *_, confusion = plotly_traces(at)
    assert confusion[0]["type"] == "heatmap"
    assert confusion[0]["x"] == ["basic", "premium", "standard"]
    assert confusion[0]["z"][1] == [30, 234, 3]
    assert not any("ROC" in t.get("name", "") for chart in plotly_traces(at) for t in chart)


def test_the_run_page_of_a_multiclass_run_charts_a_classs_recall(runs_root: Path) -> None:
    make_task_run(runs_root, "plan", "multiclass")
    at = app(RUN, run="plan")

    at.segmented_control(key="metric.multiclass").set_value("recall:premium").run()

    global_chart, *_ = at.get("plotly_chart")
    spec = json.loads(global_chart.proto.spec)
    assert spec["layout"]["title"]["text"] == "recall (premium) per round"
    assert spec["data"][0]["y"] == pytest.approx([0.8564, 0.8664, 0.8764])


def test_the_run_page_of_a_regression_run_colours_a_drop_in_rmse_as_better(
    runs_root: Path,
) -> None:
    make_task_run(runs_root, "spend", "regression")
    at = app(RUN, run="spend")

    global_chart, *_ = plotly_traces(at)
    assert global_chart[0]["y"] == pytest.approx([459.26, 459.25, 459.24])  # falling: better
    final, local = at.dataframe
    # A higher RMSE, MAE or MSE than centralized is worse (red), and so is a lower R²;
    # a lower RMSE than each institution's alone is a gain (green)
    gap = list(final.value.columns).index("gap")
    assert {(0, gap), (1, gap), (2, gap), (3, gap)} <= styled_cells(final, "#fee2e2")
    assert list(local.value["gain"]) == pytest.approx([0.03, 0.03])
    gain = list(local.value.columns).index("gain")
    assert {(0, gain), (1, gain)} <= styled_cells(local, "#dcfce7")
    assert any("how much lower the federated RMSE is" in c.value for c in at.caption)


def test_the_run_page_of_a_regression_run_draws_predicted_against_actual(
    runs_root: Path,
) -> None:
    make_task_run(runs_root, "spend", "regression")
    at = app(RUN, run="spend")

    *_, scatter, residuals = plotly_traces(at)
    assert [t["name"] for t in scatter] == [
        "3 of 598 test rows", "predicted = actual", "residual 5% quantile (-702.3)",
        "residual 95% quantile (+814.4)",
    ]  # fmt: skip
    assert scatter[0]["x"] == [64.2, 993.0, 198.9]
    assert residuals[0]["type"] == "bar" and residuals[0]["y"][2] == -55.7


def test_compare_groups_runs_of_different_tasks(runs_root: Path) -> None:
    write_run(runs_root, "a-fedavg", auc=0.80)
    time.sleep(0.01)
    write_run(runs_root, "b-fedprox", strategy="fedprox", auc=0.82)
    time.sleep(0.01)
    make_task_run(runs_root, "c-spend", "regression")
    at = app(COMPARE)

    at.multiselect(key="compare_runs").set_value(["c-spend", "a-fedavg", "b-fedprox"]).run()

    # Assert: said, and each task compared on its own, in its own metrics
    assert not at.exception
    [told] = [i.value for i in at.info]
    assert "regression: c-spend; binary: a-fedavg, b-fedprox" in told
    assert [h.value for h in at.header] == ["Regression runs", "Binary runs"]
    assert at.segmented_control(key="compare_metric.regression").value == "rmse"
    assert at.segmented_control(key="compare_metric.binary").value == "auc"
    spend_chart, binary_chart = at.get("plotly_chart")
    assert [t["name"] for t in json.loads(spend_chart.proto.spec)["data"]][:1] == ["c-spend"]
    named = [t["name"] for t in json.loads(binary_chart.proto.spec)["data"]]
    assert {"a-fedavg", "b-fedprox"} <= set(named) and "c-spend" not in named
    tables = [d.value for d in at.dataframe]
    scores = [t for t in tables if "RMSE" in t.columns or "AUC" in t.columns]
    both = ["a-fedavg", "b-fedprox"]
    assert [list(t["run"]) for t in scores] == [["c-spend"], ["c-spend"], both, both]
    assert list(scores[0].columns) == ["run", "RMSE", "MAE", "R²", "MSE (standardised)"]
    # the regression's gap: RMSE above centralized is red, as is R² below it
    spend_gaps = [d for d in at.dataframe if "RMSE" in d.value.columns][1]
    assert {(0, 1), (0, 3)} <= styled_cells(spend_gaps, "#fee2e2")
    assert any("every score but RMSE, MAE, MSE (standardised)" in c.value for c in at.caption)
    alone = [t for t in tables if "RMSE alone" in t.columns]
    assert len(alone) == 1 and list(alone[0]["gain"]) == pytest.approx([0.03, 0.03])


def test_compare_of_runs_of_one_task_says_nothing_of_tasks(runs_root: Path) -> None:
    make_task_run(runs_root, "plan", "multiclass")
    time.sleep(0.01)
    make_task_run(runs_root, "plan-2", "multiclass")
    at = app(COMPARE)

    assert sorted(at.multiselect(key="compare_runs").value) == ["plan", "plan-2"]
    assert not at.info and not at.header
    options = at.segmented_control(key="compare_metric.multiclass").options
    assert options[:2] == ["accuracy", "macro-F1"] and "recall (basic)" in options


def test_runs_lists_each_run_with_its_target_and_main_score(runs_root: Path) -> None:
    make_task_run(runs_root, "spend", "regression")
    make_task_run(runs_root, "plan", "multiclass")

    listing = app(RUNS).dataframe[0].value.set_index("run")

    assert listing.loc["run?run=spend", ["target", "metric"]].to_list() == [
        "next_year_spend (regression)", "RMSE",
    ]  # fmt: skip
    assert listing.loc["run?run=spend", "score"] == pytest.approx(459.24)
    assert listing.loc["run?run=plan", "metric"] == "accuracy"


def test_new_run_previews_a_regression_target_of_the_demo(runs_root: Path, launched: list) -> None:
    at = app()
    at.number_input(key="demo_rows").set_value(2000).run()
    at.selectbox(key="demo_target").set_value("next_year_spend").run()

    # Assert: the task is said, and each institution's mean instead of a positive rate
    assert not at.error, [e.value for e in at.error]
    headline = next(m.value for m in at.markdown if "rows in" in m.value)
    assert "target 'next_year_spend' (regression): mean " in headline
    clients = at.dataframe[1].value
    assert list(clients.columns)[-1] == "target mean"
    assert (clients["target mean"] > 0).all()
    assert at.radio(key="task").value is None  # inferred
    at.button(key="start").click().run()
    [(cfg, _)] = launched
    assert (cfg.target, cfg.task) == ("next_year_spend", None)


def test_new_run_refuses_a_task_the_target_cannot_be(runs_root: Path, launched: list) -> None:
    at = app()
    at.number_input(key="demo_rows").set_value(2000).run()
    at.selectbox(key="demo_target").set_value("next_plan").run()
    assert any("(multiclass)" in m.value for m in at.markdown)

    at.radio(key="task").set_value("binary").run()

    assert any("--task binary needs two values" in e.value for e in at.error)
    assert at.button(key="start").disabled


def test_run_again_of_a_regression_demo_run_keeps_its_target_and_task(
    runs_root: Path, launched: list
) -> None:
    make_task_run(runs_root, "spend", "regression")
    at = app(RUN, run="spend")

    rerun(at)

    assert at.selectbox(key="demo_target").value == "next_year_spend"
    assert at.radio(key="task").value == "regression"
    at.button(key="start").click().run()
    [(cfg, _)] = launched
    assert (cfg.target, cfg.task) == ("next_year_spend", "regression")


# --- rounds auto ------------------------------------------------------------


def test_new_run_offers_automatic_rounds_with_their_settings(
    runs_root: Path, launched: list
) -> None:
    at = app()
    at.number_input(key="demo_rows").set_value(2000)
    at.toggle(key="auto_rounds").set_value(True).run()

    # The number of rounds gives way to the automatic rounds' settings
    assert "rounds" not in {n.key for n in at.number_input}
    assert at.number_input(key="patience").value == describe("patience").default
    assert at.number_input(key="max_rounds").value is None  # required: no made-up limit
    assert "central_auc" in at.selectbox(key="monitor").options
    assert at.selectbox(key="monitor").value == "federated_loss"
    at.number_input(key="max_rounds").set_value(40)
    at.number_input(key="patience").set_value(3)
    at.number_input(key="min_delta").set_value(0.001)
    at.selectbox(key="monitor").set_value("central_auc").run()
    at.button(key="start").click().run()

    [(cfg, _)] = launched
    assert (cfg.rounds, cfg.max_rounds, cfg.patience) == ("auto", 40, 3)
    assert (cfg.min_delta, cfg.monitor) == (0.001, "central_auc")


def test_automatic_rounds_without_a_limit_block_start_with_the_clis_message(
    runs_root: Path, launched: list
) -> None:
    at = app()
    at.toggle(key="auto_rounds").set_value(True).run()

    # Assert
    assert not at.exception
    [blocked] = (e.value for e in at.error)
    assert "--rounds auto needs --max-rounds N" in blocked
    assert at.button(key="start").disabled and launched == []


def test_a_monitor_the_datas_task_does_not_score_blocks_start(
    runs_root: Path, launched: list
) -> None:
    at = app()
    at.number_input(key="demo_rows").set_value(2000)
    at.selectbox(key="demo_target").set_value("next_year_spend")
    at.toggle(key="auto_rounds").set_value(True).run()
    at.number_input(key="max_rounds").set_value(20)
    at.selectbox(key="monitor").set_value("federated_auc").run()

    # Assert: the preview settled the task (regression); the run would refuse it
    assert not at.exception
    field = next(e.value for e in at.error)
    assert field.startswith("monitor federated_auc is not a score of a regression run; one of ")
    assert at.button(key="start").disabled and launched == []


def test_run_again_of_an_automatic_run_fills_its_settings(runs_root: Path, launched: list) -> None:
    run = write_run(runs_root, "auto", rounds=30)
    config = json.loads(run.config_file.read_text())
    config |= {"rounds": "auto", "max-rounds": 30, "patience": 4, "monitor": "federated_auc"}
    run.config_file.write_text(json.dumps(config))
    at = app(RUN, run="auto")

    rerun(at)

    assert not at.exception
    assert at.toggle(key="auto_rounds").value is True
    assert (at.number_input(key="max_rounds").value, at.number_input(key="patience").value) == (
        30, 4,
    )  # fmt: skip
    assert at.selectbox(key="monitor").value == "federated_auc"
    at.button(key="start").click().run()
    [(cfg, _)] = launched
    assert (cfg.rounds, cfg.max_rounds, cfg.patience, cfg.monitor) == (
        "auto", 30, 4, "federated_auc",
    )  # fmt: skip


def test_the_run_page_of_a_converged_run_says_where_and_which_model_it_kept(
    runs_root: Path,
) -> None:
    run = write_run(runs_root, "conv", done=7, rounds=30)
    config = json.loads(run.config_file.read_text()) | {"rounds": "auto", "max-rounds": 30}
    run.config_file.write_text(json.dumps(config))
    summary = json.loads(run.summary_file.read_text()) | {
        "rounds": 7, "reason": "converged at round 5",
        "auto_rounds": {"monitor": "federated_loss", "best_round": 5, "best": 0.31,
                        "rounds_run": 7, "converged": True, "patience": 2, "min_delta": 0.0,
                        "max_rounds": 30},
    }  # fmt: skip
    run.write_summary(summary)
    run.set_status("finished", 7, 30, reason="converged at round 5")

    at = app(RUN, run="conv")

    assert any(i.value == "The run ended early: converged at round 5." for i in at.info)
    assert any(
        "Automatic rounds: model.keras is the model of round 5, the best federated_loss" in c.value
        for c in at.caption
    )
    assert at.get("progress")[0].proto.text == "Finished after round 7 of at most 30"
