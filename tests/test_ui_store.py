"""The UI's view of the runs folder: safe names and paths, uploads, listing, deleting."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fedapp.errors import UsageError
from fedapp.runs import RunDir
from fedapp_ui import store

# A run's config.json as `fedapp simulate` writes it (demo data, two institutions).
CONFIG: dict[str, Any] = {
    "clients": 2,
    "clients-per-round": None,
    "rounds": 2,
    "local-epochs": 1,
    "batch-size": 32,
    "learning-rate": 0.001,
    "seed": 42,
    "strategy": "fedavg",
    "strategy-params": {},
    "data": "demo",
    "client-data": [],
    "demo-rows": 2000,
    "target": "churned",
    "positive-label": None,
    "id-column": None,
    "drop": [],
    "categorical": [],
    "partition": "column:institution",
    "test-fraction": 0.2,
    "min-category-count": 5,
    "hidden-units": [64, 32],
    "baseline": True,
    "run-dir": "runs/x",
    "client-sources": ["demo data (institution=inst-0)", "demo data (institution=inst-1)"],
    "data-notes": ["demo data: positive class of 'churned' is '1' (inferred)"],
    "data-warnings": [],
    "versions": {"fedapp": "0.1.0", "flwr": "1.42.0"},
}

SUMMARY: dict[str, Any] = {
    "federated": {"auc": 0.71, "accuracy": 0.75, "loss": 0.51},
    "centralized": {"auc": 0.76, "accuracy": 0.76, "loss": 0.49},
    "gap": {"auc": -0.05, "accuracy": -0.01, "loss": 0.02},
    "wall_seconds": 17.5,
}


def make_run(
    root: Path,
    name: str,
    state: str = "finished",
    round_: int = 2,
    config: dict[str, Any] | None = None,
    summary: dict[str, Any] | None = None,
    **status: Any,
) -> RunDir:
    """A run directory written by hand through the run-directory contract."""
    run = RunDir.create(root / name, root, "fedavg")
    cfg = {**CONFIG, "run-dir": str(run.path), **(config or {})}
    run.write_config(cfg)
    run.set_status(state, round_, cfg["rounds"], **status)
    run.append_metrics({"round": 0, "stage": "evaluate", "scope": "centralized", "metrics": {}})
    if summary is not None:
        run.write_summary(summary)
    return run


@pytest.fixture
def spawn() -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start Python child processes; every one is killed and reaped at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(code: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:  # poll() also notices a child reaped elsewhere
            process.kill()
        process.wait(timeout=10)


@pytest.fixture
def dead_pid(spawn: Callable[[str], subprocess.Popen[bytes]]) -> int:
    """The pid of a process of ours that has ended and been reaped."""
    process = spawn("pass")
    process.wait(timeout=30)
    return process.pid


# run_path


@pytest.mark.parametrize("name", ["exp-1", "a.b_c", "A" * 100, "20250101-120000-fedavg-ab12"])
def test_run_path_accepts_plain_names_as_direct_children_of_the_resolved_root(
    tmp_path: Path, name: str
) -> None:
    # Prepare
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)

    # Execute
    path = store.run_path(link, name)

    # Assert
    assert path == real.resolve() / name
    assert path.parent == link.resolve()


@pytest.mark.parametrize(
    "name",
    ["../x", "..", ".hidden", "a/b", "/etc", "/etc/passwd", "", "A" * 101, "my run", "a..b"],
)
def test_run_path_refuses_paths_and_odd_names(tmp_path: Path, name: str) -> None:
    # Prepare
    root = tmp_path / "runs"

    # Execute
    with pytest.raises(UsageError) as caught:
        store.run_path(root, name)

    # Assert
    assert f"run name {name!r} is not allowed" in str(caught.value)
    assert "no paths" in str(caught.value)


# data_path


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A data folder with a CSV, a text file and a CSV next to (outside) it."""
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "bank.csv").write_text("a,y\n1,0\n", encoding="utf-8")
    (root / "notes.txt").write_text("hello", encoding="utf-8")
    (tmp_path / "outside.csv").write_text("a,y\n1,0\n", encoding="utf-8")
    return root


def test_data_path_accepts_a_relative_path_inside_the_folder(data_root: Path) -> None:
    # Execute
    path = store.data_path(data_root, "  sub/bank.csv  ")

    # Assert
    assert path == (data_root / "sub" / "bank.csv").resolve()


def test_data_path_accepts_an_absolute_path_inside_the_folder(data_root: Path) -> None:
    # Prepare
    typed = str(data_root / "sub" / "bank.csv")

    # Execute
    path = store.data_path(data_root, typed)

    # Assert
    assert path == Path(typed).resolve()


def test_data_path_refuses_a_relative_path_leading_outside(data_root: Path) -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        store.data_path(data_root, "../outside.csv")

    # Assert
    assert str(caught.value).startswith("../outside.csv: outside the data folder")


def test_data_path_refuses_an_absolute_path_outside(data_root: Path, tmp_path: Path) -> None:
    # Prepare
    typed = str(tmp_path / "outside.csv")

    # Execute
    with pytest.raises(UsageError) as caught:
        store.data_path(data_root, typed)

    # Assert
    assert "outside the data folder" in str(caught.value)


def test_data_path_refuses_a_symlink_inside_that_points_outside(
    data_root: Path, tmp_path: Path
) -> None:
    # Prepare
    (data_root / "link.csv").symlink_to(tmp_path / "outside.csv")
    (data_root / "linkdir").symlink_to(tmp_path)

    # Execute
    with pytest.raises(UsageError) as file_link:
        store.data_path(data_root, "link.csv")
    with pytest.raises(UsageError) as folder_link:
        store.data_path(data_root, "linkdir/outside.csv")

    # Assert
    assert "outside the data folder" in str(file_link.value)
    assert "outside the data folder" in str(folder_link.value)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("missing.csv", "missing.csv: no such file in the data folder"),
        ("sub", "sub: no such file in the data folder"),
        ("notes.txt", "notes.txt: not a .csv or .parquet file"),
        ("", "give the path of a CSV or Parquet file"),
        ("   ", "give the path of a CSV or Parquet file"),
    ],
)
def test_data_path_refuses_missing_wrong_or_blank(
    data_root: Path, typed: str, expected: str
) -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        store.data_path(data_root, typed)

    # Assert
    assert str(caught.value).startswith(expected)


@pytest.mark.parametrize("typed", ["bank\x00.csv", "a" * 300 + ".csv"], ids=["nul", "long"])
def test_data_path_refuses_unusable_paths_with_a_usage_error(data_root: Path, typed: str) -> None:
    # Execute / Assert
    with pytest.raises(UsageError):
        store.data_path(data_root, typed)


# save_upload


def test_save_upload_stores_by_content_hash_never_by_the_users_name(tmp_path: Path) -> None:
    # Prepare
    content = b"a,y\n1,0\n2,1\n"

    # Execute
    path = store.save_upload(tmp_path, "../../evil.CSV", content)

    # Assert
    uploads = (tmp_path / store.UI_DIR / "uploads").resolve()
    assert path.parent == uploads
    assert path.name == hashlib.sha256(content).hexdigest()[:24] + ".csv"
    assert "evil" not in str(path)
    assert path.read_bytes() == content
    assert not (tmp_path.parent / "evil.CSV").exists()
    assert sorted(p.name for p in uploads.iterdir()) == [path.name]  # no temporary left


def test_save_upload_stores_the_same_content_once(tmp_path: Path) -> None:
    # Prepare
    content = b"a,y\n1,0\n"

    # Execute
    first = store.save_upload(tmp_path, "first.csv", content)
    second = store.save_upload(tmp_path, "second.csv", content)
    other = store.save_upload(tmp_path, "first.csv", content + b"2,1\n")

    # Assert
    assert first == second
    assert other != first
    assert len(list(first.parent.iterdir())) == 2


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("tool.exe", b"MZ", "tool.exe: not a .csv or .parquet file"),
        ("noext", b"a,y\n", "noext: not a .csv or .parquet file"),
        ("empty.csv", b"", "empty.csv: the file is empty"),
    ],
)
def test_save_upload_refuses_other_types_and_empty_files(
    tmp_path: Path, filename: str, content: bytes, expected: str
) -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        store.save_upload(tmp_path, filename, content)

    # Assert
    assert str(caught.value) == expected
    assert not list((tmp_path / store.UI_DIR).rglob("*.*"))


# process_alive


def test_process_alive_for_this_process() -> None:
    # Execute / Assert
    assert store.process_alive(os.getpid()) is True


def test_process_alive_for_a_running_child(
    spawn: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    # Prepare
    child = spawn("import time; time.sleep(60)")

    # Execute / Assert
    assert store.process_alive(child.pid) is True
    assert child.poll() is None  # not reaped, still ours


def test_process_alive_reaps_a_finished_child(
    spawn: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    # Prepare: wait until the child has exited, without reaping it (a zombie)
    child = spawn("pass")
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)

    # Execute
    alive = store.process_alive(child.pid)

    # Assert
    assert alive is False
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)  # already reaped


def test_process_alive_for_a_pid_that_does_not_exist(dead_pid: int) -> None:
    # Execute / Assert
    assert store.process_alive(dead_pid) is False


@pytest.mark.parametrize("pid", [0, -1])
def test_process_alive_is_false_for_pids_that_are_not_a_process(pid: int) -> None:
    # Execute / Assert
    assert store.process_alive(pid) is False


# list_runs / load_run


def test_list_runs_newest_first_and_skips_non_runs(tmp_path: Path) -> None:
    # Prepare
    make_run(tmp_path, "old", started=1_000.0)
    make_run(tmp_path, "new", started=3_000.0)
    make_run(tmp_path, "middle", started=2_000.0)
    store.save_upload(tmp_path, "x.csv", b"a,y\n1,0\n")  # makes .fedapp-ui
    (tmp_path / store.UI_DIR / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "no-config").mkdir()
    (tmp_path / "a-file.json").write_text("{}", encoding="utf-8")

    # Execute
    runs = store.list_runs(tmp_path)

    # Assert
    assert [r.run_id for r in runs] == ["new", "middle", "old"]
    assert [r.created for r in runs] == [3_000.0, 2_000.0, 1_000.0]


def test_list_runs_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    # Execute / Assert
    assert store.list_runs(tmp_path / "nothing") == []


def test_load_run_reads_config_status_and_summary(tmp_path: Path) -> None:
    # Prepare
    make_run(tmp_path, "done", summary=SUMMARY)

    # Execute
    view = store.load_run(tmp_path, "done")

    # Assert
    assert view.state == "finished"
    assert (view.round, view.rounds, view.error) == (2, 2, None)
    assert view.config["client-sources"] == CONFIG["client-sources"]
    assert view.final("auc") == 0.71
    assert view.final("auc", "centralized") == 0.76
    assert view.final("auc", "gap") == -0.05
    assert view.final("pr_auc") is None
    assert view.elapsed == 17.5
    assert len(view.events()) == 1


def test_load_run_ignores_the_summary_of_a_run_that_did_not_finish(tmp_path: Path) -> None:
    # Prepare
    make_run(tmp_path, "failed", state="failed", round_=1, summary=SUMMARY, error="boom")

    # Execute
    view = store.load_run(tmp_path, "failed")

    # Assert
    assert view.state == "failed"
    assert view.error == "boom"
    assert view.summary is None
    assert view.final("auc") is None


@pytest.mark.parametrize(
    ("name", "expected"), [("missing", "no run called 'missing'"), ("../x", "not allowed")]
)
def test_load_run_refuses_missing_runs_and_unsafe_names(
    tmp_path: Path, name: str, expected: str
) -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        store.load_run(tmp_path, name)

    # Assert
    assert expected in str(caught.value)


def test_state_is_interrupted_when_the_process_died_on_this_host(
    tmp_path: Path, dead_pid: int
) -> None:
    # Prepare
    host = socket.gethostname()
    make_run(tmp_path, "died", state="running", round_=1, pid=dead_pid, host=host, started=1.0)

    # Execute
    view = store.load_run(tmp_path, "died")

    # Assert
    assert view.is_live is False
    assert view.state == "interrupted"
    assert view.elapsed == pytest.approx(view.status_mtime - 1.0)


def test_state_is_running_while_the_process_lives(tmp_path: Path) -> None:
    # Prepare
    started = time.time() - 30
    host = socket.gethostname()
    make_run(tmp_path, "live", state="running", pid=os.getpid(), host=host, started=started)

    # Execute
    view = store.load_run(tmp_path, "live")

    # Assert
    assert view.state == "running"
    assert view.elapsed is not None
    assert 30 <= view.elapsed < 60


def test_state_is_running_when_the_process_is_on_another_host(
    tmp_path: Path, dead_pid: int
) -> None:
    # Prepare: a dead pid here says nothing about a process elsewhere
    make_run(
        tmp_path, "remote", state="running", pid=dead_pid, host="elsewhere-" + os.urandom(4).hex()
    )

    # Execute
    view = store.load_run(tmp_path, "remote")

    # Assert
    assert view.state == "running"


def test_state_is_starting_before_the_status_is_written(tmp_path: Path) -> None:
    # Prepare
    run = RunDir.create(tmp_path / "new", tmp_path, "fedavg")
    run.write_config(CONFIG)

    # Execute
    view = store.load_run(tmp_path, "new")

    # Assert
    assert view.state == "starting"
    assert (view.round, view.rounds) == (0, 2)
    assert view.elapsed is None


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (
            ["demo data (institution=inst-0)", "demo data (institution=inst-1)"],
            {"0": "inst-0", "1": "inst-1"},
        ),
        (["/d/x.csv (#0)", "/d/x.csv (#1)"], {"0": "client 0", "1": "client 1"}),
        (
            ["/data/bank_fr.csv", "/data/bank_de.parquet"],
            {"0": "bank_fr.csv", "1": "bank_de.parquet"},
        ),
        ([], {}),
    ],
)
def test_client_labels(tmp_path: Path, sources: list[str], expected: dict[str, str]) -> None:
    # Prepare
    make_run(tmp_path, "r", config={"client-sources": sources})

    # Execute
    labels = store.load_run(tmp_path, "r").client_labels()

    # Assert
    assert labels == expected


@pytest.mark.parametrize(
    ("config", "data", "strategy"),
    [
        ({}, "demo, column:institution, 2 clients", "fedavg"),
        (
            {"data": "/data/bank.csv", "partition": "dirichlet:0.3", "clients": 8},
            "bank.csv, dirichlet:0.3, 8 clients",
            "fedavg",
        ),
        (
            {"client-data": ["/d/a.csv", "/d/b.csv", "/d/c.csv"], "partition": None},
            "3 files, one per client",
            "fedavg",
        ),
        (
            {"strategy": "fedprox", "strategy-params": {"proximal-mu": 0.1}},
            "demo, column:institution, 2 clients",
            "fedprox (proximal-mu 0.1)",
        ),
        (
            {
                "strategy": "weighted",
                "strategy-params": {
                    "server-learning-rate": 0.5,
                    "policy": "uniform",
                    "client-weights": "",
                },
            },
            "demo, column:institution, 2 clients",
            "weighted (server-learning-rate 0.5, policy uniform)",
        ),
    ],
)
def test_data_and_strategy_labels(
    tmp_path: Path, config: dict[str, Any], data: str, strategy: str
) -> None:
    # Prepare
    make_run(tmp_path, "r", config=config)

    # Execute
    view = store.load_run(tmp_path, "r")

    # Assert
    assert view.data_label == data
    assert view.strategy_label == strategy


# delete_run


def write_launch_files(root: Path, run_id: str) -> list[Path]:
    """The files `launcher.launch` leaves for a run in `.fedapp-ui/launches`."""
    launches = store.ui_folder(root, "launches")
    files = [launches / f"{run_id}{suffix}" for suffix in (".json", ".log", ".settings.json")]
    for file in files:
        file.write_text("{}", encoding="utf-8")
    return files


def test_delete_run_removes_the_folder_and_its_launch_files(tmp_path: Path) -> None:
    # Prepare
    make_run(tmp_path, "gone", summary=SUMMARY)
    make_run(tmp_path, "kept")
    files = write_launch_files(tmp_path, "gone")
    others = write_launch_files(tmp_path, "kept")

    # Execute
    store.delete_run(tmp_path, "gone")

    # Assert
    assert not (tmp_path / "gone").exists()
    assert not any(f.exists() for f in files)
    assert all(f.exists() for f in others)
    assert [r.run_id for r in store.list_runs(tmp_path)] == ["kept"]


def test_delete_run_refuses_a_running_run(tmp_path: Path) -> None:
    # Prepare
    host = socket.gethostname()
    make_run(tmp_path, "busy", state="running", round_=1, pid=os.getpid(), host=host)
    files = write_launch_files(tmp_path, "busy")

    # Execute
    with pytest.raises(UsageError) as caught:
        store.delete_run(tmp_path, "busy")

    # Assert
    assert "still running" in str(caught.value)
    assert (tmp_path / "busy" / "config.json").exists()
    assert all(f.exists() for f in files)


def test_delete_run_refuses_an_unsafe_name_and_deletes_nothing(tmp_path: Path) -> None:
    # Prepare
    root = tmp_path / "runs"
    root.mkdir()
    victim = make_run(tmp_path, "x")  # what `../x` would reach from root
    files = write_launch_files(root, "x")

    # Execute
    with pytest.raises(UsageError) as caught:
        store.delete_run(root, "../x")

    # Assert
    assert "not allowed" in str(caught.value)
    assert victim.config_file.exists()
    assert all(f.exists() for f in files)


def test_delete_run_leaves_the_launch_files_of_a_run_with_a_longer_name(tmp_path: Path) -> None:
    # Prepare
    make_run(tmp_path, "exp-1")
    others = write_launch_files(tmp_path, "exp-1.5")  # launched, still starting

    # Execute
    store.delete_run(tmp_path, "exp-1")

    # Assert
    assert all(f.exists() for f in others)
