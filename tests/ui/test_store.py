"""The UI's view of the runs folder: safe names and paths, uploads, listing, deleting.

How one run reads (its state, labels, metrics) is tested with RunView in tests/runs/.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest
from run_files import SUMMARY, make_run

from fedapp.errors import UsageError
from fedapp.runs import RunState, RunView
from fedapp_ui import store

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


def test_save_upload_keeps_the_users_file_name_in_a_folder_named_by_the_content(
    tmp_path: Path,
) -> None:
    # Prepare
    content = b"a,y\n1,0\n2,1\n"

    # Execute
    path = store.save_upload(tmp_path, "bank_churn.csv", content)

    # Assert
    uploads = (tmp_path / store.UI_DIR / "uploads").resolve()
    assert path == uploads / hashlib.sha256(content).hexdigest()[:24] / "bank_churn.csv"
    assert path.read_bytes() == content
    assert [p.name for p in path.parent.iterdir()] == ["bank_churn.csv"]  # no temporary left


@pytest.mark.parametrize(
    ("filename", "stored"),
    [
        ("../../evil.CSV", "evil.CSV"),
        ("/etc/cron.d/x.csv", "x.csv"),
        ("C:\\Users\\me\\bank.csv", "bank.csv"),
        (".hidden.csv", "hidden.csv"),
        ("..csv", "upload.csv"),
        ("a;b|c$(rm).parquet", "a_b_c_(rm).parquet"),
        ("Données clients 2024.csv", "Données clients 2024.csv"),
        ("x" * 300 + ".csv", "x" * 96 + ".csv"),
    ],
    ids=["up", "absolute", "windows", "hidden", "no-stem", "shell", "unicode", "long"],
)
def test_save_upload_never_lets_the_users_name_leave_its_folder(
    tmp_path: Path, filename: str, stored: str
) -> None:
    # Execute
    path = store.save_upload(tmp_path, filename, b"a,y\n1,0\n")

    # Assert
    uploads = (tmp_path / store.UI_DIR / "uploads").resolve()
    assert path.parent.parent == uploads
    assert path.name == stored
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == [path]


def test_save_upload_stores_the_same_file_once(tmp_path: Path) -> None:
    # Prepare
    content = b"a,y\n1,0\n"

    # Execute
    first = store.save_upload(tmp_path, "first.csv", content)
    again = store.save_upload(tmp_path, "first.csv", content)
    renamed = store.save_upload(tmp_path, "second.csv", content)
    other = store.save_upload(tmp_path, "first.csv", content + b"2,1\n")

    # Assert
    assert first == again
    assert renamed.parent == first.parent and renamed.name == "second.csv"
    assert other.parent != first.parent and other.name == "first.csv"
    assert len(list(first.parent.parent.iterdir())) == 2


def test_an_old_style_upload_still_names_its_run(tmp_path: Path) -> None:
    # Prepare: uploads were once stored as <uploads>/<hash>.csv
    old = store.ui_folder(tmp_path, "uploads") / "c8d19b04d279e66bf37ae919.csv"
    old.write_text("a,y\n1,0\n", encoding="utf-8")
    make_run(tmp_path, "old-upload", config={"data": str(old), "partition": "iid"})

    # Execute
    [view] = store.list_runs(tmp_path)

    # Assert
    assert view.data_label == "c8d19b04d279e66bf37ae919.csv, iid, 2 clients"


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
    make_run(tmp_path, "my run", started=4_000.0)  # made by the CLI; no UI link can name it
    make_run(tmp_path, "a..b", started=5_000.0)

    # Execute
    runs = store.list_runs(tmp_path)

    # Assert
    assert [r.run_id for r in runs] == ["new", "middle", "old"]
    assert [r.created for r in runs] == [3_000.0, 2_000.0, 1_000.0]


def test_list_runs_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    # Execute / Assert
    assert store.list_runs(tmp_path / "nothing") == []


def test_load_run_reads_the_run_of_that_name(tmp_path: Path) -> None:
    # Prepare
    make_run(tmp_path, "done", summary=SUMMARY)
    make_run(tmp_path, "other", state=RunState.FAILED, round_=1, error="boom")

    # Execute
    view = store.load_run(tmp_path, "done")

    # Assert
    assert isinstance(view, RunView)
    assert (view.run_id, view.path) == ("done", tmp_path.resolve() / "done")
    assert view.state is RunState.FINISHED
    assert view.final("auc") == 0.71


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
    make_run(tmp_path, "busy", state=RunState.RUNNING, round_=1, pid=os.getpid(), host=host)
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
    assert not (tmp_path / "exp-1").exists()
    assert all(f.exists() for f in others)


# reusable_file (Run again with an uploaded file)


def test_a_runs_upload_or_data_file_can_be_used_again(tmp_path: Path) -> None:
    # Prepare
    runs, data = tmp_path / "runs", tmp_path / "data"
    data.mkdir()
    uploaded = store.save_upload(runs, "bank.csv", b"a,y\n1,0\n")
    typed = data / "t.csv"
    typed.write_text("a,y\n1,0\n", encoding="utf-8")

    # Execute / Assert
    assert store.reusable_file(runs, data, str(uploaded)) == uploaded
    assert store.reusable_file(runs, data, str(typed)) == typed


def test_a_runs_file_elsewhere_or_gone_is_refused(tmp_path: Path) -> None:
    # Prepare
    runs, data = tmp_path / "runs", tmp_path / "data"
    data.mkdir()
    runs.mkdir()
    elsewhere = tmp_path / "secret.csv"
    elsewhere.write_text("a,y\n1,0\n", encoding="utf-8")

    # Execute / Assert
    with pytest.raises(UsageError, match="outside the data folder"):
        store.reusable_file(runs, data, str(elsewhere))
    with pytest.raises(UsageError, match="no longer exists"):
        store.reusable_file(runs, data, str(data / "gone.csv"))
    with pytest.raises(UsageError, match="outside the data folder"):
        store.reusable_file(runs, data, str(runs / "r1" / "config.json"))
