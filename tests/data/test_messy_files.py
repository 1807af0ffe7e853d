"""Messy real exports: spaces, markers, separators, encodings, useless and identifier columns.

Each test writes the kind of file an institution's export tool writes, and
checks what ``fedapp inspect`` (or the data layer under it) makes of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tables import fails, runner

from fedapp import data
from fedapp.cli import app
from fedapp.data.files import ReadOptions, iter_table, read_file, read_table
from fedapp.errors import UsageError
from fedapp.settings import RunConfig

# The target and identifier of :func:`_patients`, as flags.
FLAGS = ["--target", "churned", "--id-column", "id"]


def _patients(rows: int = 60) -> pd.DataFrame:
    """An export's table: an id, two numbers, a category and a yes/no target."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "id": [f"P{i:04d}" for i in range(rows)],
            "age": rng.integers(18, 90, rows),
            "weight": rng.uniform(50, 100, rows).round(1),
            "plan": rng.choice(["basic", "premium"], rows),
            "churned": np.where(rng.random(rows) < 0.3, "yes", "no"),
        }
    )
    frame.loc[0, "churned"], frame.loc[1, "churned"] = "yes", "no"
    return frame


def _write(
    folder: Path, name: str, frame: pd.DataFrame, sep: str = ",", encoding: str = "utf-8"
) -> str:
    """Write ``frame`` as an export tool would: every value as text, joined by ``sep``."""
    lines = [sep.join(map(str, frame.columns))]
    lines += [
        sep.join("" if pd.isna(v) else str(v) for v in row) for row in frame.itertuples(False)
    ]
    path = folder / name
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return str(path)


def _inspect(*args: str) -> tuple[str, str]:
    """Run ``fedapp inspect ARGS``, which must succeed: (stdout, stderr with lines joined)."""
    result = runner.invoke(app, ["inspect", *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.stdout, " ".join(result.stderr.split())


def _missing(stdout: str, column: str) -> str:
    """The ``missing`` cell of ``column``'s row in the printed schema table."""
    row = next(line for line in stdout.splitlines() if f" {column} " in line)
    return row.split("│")[3].strip()


# -- names and values with spaces around them ------------------------------------


def test_a_comma_space_separated_file_finds_its_columns_by_their_stripped_names(
    tmp_path: Path,
) -> None:
    # Prepare: the header and every value written with ", " between them
    frame = _patients()
    frame.loc[3, "weight"] = np.nan
    path = _write(tmp_path, "spaced.csv", frame, sep=", ")

    # Execute
    out, err = _inspect("--data", path, "--target", "churned", "--drop", "weight",
                        "--id-column", "id")  # fmt: skip

    # Assert: found, and every message names the column as stripped
    assert "positive class of 'churned' is 'yes' (inferred)" in err
    assert "' churned'" not in err + out and "' weight'" not in err + out
    assert " weight " not in out  # dropped
    assert _missing(out, "plan") == "0"
    table = read_table(Path(path))
    assert list(table.columns) == ["id", "age", "weight", "plan", "churned"]
    assert set(table["plan"]) == {"basic", "premium"}  # " basic" is the category "basic"
    assert pd.api.types.is_integer_dtype(table["age"])


def test_an_absent_column_is_named_stripped_beside_the_stripped_header(tmp_path: Path) -> None:
    # Prepare
    path = _write(tmp_path, "spaced.csv", _patients(), sep=", ")

    # Execute, Assert
    fails(tmp_path, ["--data", path, "--target", "churn"],
          "spaced.csv: target column 'churn' is not in the file (columns: id, age, weight, "
          "plan, churned)", "inspect")  # fmt: skip


def test_names_that_clash_once_stripped_are_a_repeated_name(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "c.csv"
    rows = "\n".join(f"{i},{i % 7},{'yes' if i % 3 else 'no'}" for i in range(30))
    path.write_text(f"age, age ,churned\n{rows}\n", encoding="utf-8")

    # Execute, Assert
    fails(tmp_path, ["--data", str(path), "--target", "churned"],
          "c.csv: column name 'age' appears twice in the header (columns 1 and 2)",
          "inspect")  # fmt: skip


# -- missing-value markers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "shown"),
    [("?", "'?'"), ("NA", "'NA'"), ("N/A", "'N/A'"), ("null", "'null'"), ("-", "'-'"),
     ("", "blank"), ("  ", "blank")],
    ids=["question-mark", "NA", "N/A", "null", "dash", "empty", "spaces"],
)  # fmt: skip
def test_each_default_marker_is_read_as_missing_and_counted_per_column(
    tmp_path: Path, marker: str, shown: str
) -> None:
    # Prepare: the marker in a number column and in a text column
    frame = _patients().astype({"age": object, "plan": object})
    frame.loc[[4, 9, 11], "age"] = marker
    frame.loc[5, "plan"] = marker
    path = _write(tmp_path, "c.csv", frame)

    # Execute
    out, err = _inspect("--data", path, *FLAGS)

    # Assert: age stays a number column, with the cells missing
    assert f"c.csv: column 'age': 3 values read as missing (3 {shown})" in err
    assert f"c.csv: column 'plan': 1 value read as missing (1 {shown})" in err
    assert _missing(out, "age") == "3" and _missing(out, "plan") == "1"
    assert "numeric" in next(line for line in out.splitlines() if " age " in line)


def test_markers_of_one_column_are_counted_each(tmp_path: Path) -> None:
    # Prepare
    frame = _patients().astype({"weight": object})
    frame.loc[[2, 3], "weight"] = "?"
    frame.loc[[7], "weight"] = "N/A"
    frame.loc[[8, 12, 13], "weight"] = ""
    path = _write(tmp_path, "c.csv", frame)

    # Execute
    table = read_file(Path(path), ReadOptions())

    # Assert
    assert table.missing["weight"] == {"?": 2, "N/A": 1, "": 3}
    assert table.frame["weight"].isna().sum() == 6 and table.frame["weight"].dtype == float
    assert "age" not in table.missing


def test_na_values_replace_the_default_markers_and_match_numbers_as_numbers(
    tmp_path: Path,
) -> None:
    # Prepare: -999 written two ways, and a '?' that is no marker any more
    frame = _patients().astype({"age": object, "plan": object})
    frame.loc[[1, 2], "age"] = "-999"
    frame.loc[3, "age"] = "-999.0"
    frame.loc[4, "plan"] = "?"
    path = _write(tmp_path, "c.csv", frame)

    # Execute
    _, err = _inspect("--data", path, *FLAGS, "--na-values", "-999")
    default = read_table(Path(path))

    # Assert
    assert "c.csv: column 'age': 3 values read as missing (3 '-999')" in err
    assert "column 'plan'" not in err  # '?' is a category of its own now
    assert default["age"].min() == -999  # by default, -999 is a number like any other


def test_the_old_missing_values_key_still_reads_as_na_values(tmp_path: Path) -> None:
    # Prepare: a config.json of a run recorded before na-values
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"missing-values": ["?", "-999"], "rounds": 2}))

    # Execute
    with pytest.warns(DeprecationWarning, match="'missing-values' is the old name of 'na-values'"):
        cfg = RunConfig.from_file(config)

    # Assert
    assert cfg.na_values == ("?", "-999")
    assert "missing-values" not in cfg.to_dict()


def test_a_marker_that_is_not_a_default_one_is_suggested_with_na_values(tmp_path: Path) -> None:
    # Prepare
    frame = _patients().astype({"age": object})
    frame.loc[[4, 8], "age"] = "unknown"
    path = _write(tmp_path, "c.csv", frame)

    # Execute, Assert
    fails(tmp_path, ["--data", path, *FLAGS],
          "c.csv: column 'age' is numeric but has 2 non-numeric values, all 'unknown', which "
          "looks like a missing-value marker: read it as missing with --na-values unknown, "
          "repeating --na-values for each marker to keep (now ?, NA, N/A, null, -, '')",
          "inspect")  # fmt: skip


# -- the separator -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sep", "name", "said"),
    [(";", "c.csv", "';'"), ("\t", "c.txt", "tabs"), ("|", "c.csv", "'|'"),
     ("\t", "c.tsv", "tabs")],
    ids=["semicolon", "tab", "pipe", "tsv"],
)  # fmt: skip
def test_the_separator_is_sniffed_and_said(tmp_path: Path, sep: str, name: str, said: str) -> None:
    # Prepare
    path = _write(tmp_path, name, _patients(), sep=sep)

    # Execute
    out, err = _inspect("--data", path, *FLAGS)

    # Assert
    assert f"{name}: columns separated by {said} (detected)" in err
    assert " age " in out and " plan " in out


def test_a_comma_separated_file_says_nothing_of_its_separator(tmp_path: Path) -> None:
    # Prepare
    path = _write(tmp_path, "c.csv", _patients())

    # Execute
    table = read_file(Path(path), ReadOptions())

    # Assert
    assert (table.sep, table.encoding, table.notes) == (",", "utf-8", ())


def test_a_given_separator_is_used(tmp_path: Path) -> None:
    # Prepare: a value holding a comma, which could fool a sniffer
    frame = _patients()
    frame["plan"] = frame["plan"].map({"basic": "basic, monthly", "premium": "premium, yearly"})
    path = _write(tmp_path, "c.csv", frame, sep=";")

    # Execute
    out, err = _inspect("--data", path, *FLAGS, "--sep", ";")

    # Assert
    assert "separated by" not in err and "basic, monthly" in out


@pytest.mark.parametrize("given", ["semicolon", ";;", '"', ""])
def test_a_separator_of_more_or_less_than_a_character_is_refused(
    tmp_path: Path, given: str
) -> None:
    # Prepare
    path = _write(tmp_path, "c.csv", _patients(), sep=";")

    # Execute, Assert
    fails(tmp_path, ["--data", path, *FLAGS, "--sep", given],
          f"sep must be one character other than a quote (';', '|', or tab as '\\t'), got "
          f"{given!r}", "inspect")  # fmt: skip


def test_a_separator_that_leaves_one_column_is_refused_naming_the_right_one(
    tmp_path: Path,
) -> None:
    # Prepare
    path = _write(tmp_path, "c.csv", _patients(), sep=";")

    # Execute, Assert
    fails(tmp_path, ["--data", path, *FLAGS, "--sep", ","],
          "c.csv: separated by ',' (given) each row is a single column, but ';' splits it "
          "into 5 columns: pass --sep ';'", "inspect")  # fmt: skip


def test_a_tab_separator_can_be_typed_as_backslash_t(tmp_path: Path) -> None:
    # Prepare
    path = _write(tmp_path, "c.csv", _patients(), sep="\t")

    # Execute
    cfg = RunConfig(data=path, target="churned", id_column="id", sep="\\t", clients=2)

    # Assert
    assert cfg.sep == "\t"
    assert data.load_federation(cfg).schema.numeric == ("age", "weight")


# -- encodings -----------------------------------------------------------------------


def test_a_utf8_byte_order_mark_is_dropped_and_said(tmp_path: Path) -> None:
    # Prepare
    path = _write(tmp_path, "c.csv", _patients(), encoding="utf-8-sig")

    # Execute
    _, err = _inspect("--data", path, *FLAGS)
    given = read_table(Path(path), ReadOptions(encoding="utf-8"))

    # Assert: the first column is 'id', not '\ufeffid'
    assert "c.csv: read as UTF-8 with a byte-order mark (detected)" in err
    assert given.columns[0] == "id"


def test_a_windows_1252_file_is_detected_and_said(tmp_path: Path) -> None:
    # Prepare: é and € (0x80, which Latin-1 has no letter for)
    frame = _patients()
    frame["plan"] = frame["plan"].map({"basic": "basic 5€", "premium": "première"})
    path = _write(tmp_path, "c.csv", frame, encoding="cp1252")

    # Execute
    out, err = _inspect("--data", path, *FLAGS)

    # Assert
    assert "c.csv: read as cp1252 (detected)" in err
    assert "basic 5€" in out and "première" in out


def test_a_windows_1252_file_with_symbols_beside_letters_is_detected(tmp_path: Path) -> None:
    # Prepare: "é€" in every row looks odd to a detector (a mess of symbols)
    frame = _patients()
    frame["plan"] = frame["plan"].map({"basic": "basic, é€", "premium": "premium, é€"})
    path = _write(tmp_path, "c.csv", frame, sep=";", encoding="cp1252")

    # Execute
    table = read_file(Path(path), ReadOptions())

    # Assert
    assert table.encoding == "cp1252" and set(table.frame["plan"]) == {"basic, é€", "premium, é€"}


def test_a_given_encoding_is_used_and_said(tmp_path: Path) -> None:
    # Prepare
    frame = _patients()
    frame["plan"] = frame["plan"].map({"basic": "básico", "premium": "été"})
    path = _write(tmp_path, "c.csv", frame, encoding="latin-1")

    # Execute
    out, err = _inspect("--data", path, *FLAGS, "--encoding", "latin-1")

    # Assert
    assert "c.csv: read as latin-1 (given)" in err
    assert "básico" in out and "été" in out


def test_utf8_given_keeps_the_exact_error_for_a_byte_that_is_not(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "c.csv"
    path.write_bytes("name,churned\nJos\xe9,yes\nAna,no\n".encode("latin-1"))

    # Execute, Assert
    fails(tmp_path, ["--data", str(path), "--target", "churned", "--encoding", "utf-8"],
          "c.csv: not UTF-8 text (byte 0xe9 at byte 16, line 2)", "inspect")  # fmt: skip


def test_an_unknown_encoding_is_refused(tmp_path: Path) -> None:
    # Prepare
    path = _write(tmp_path, "c.csv", _patients())

    # Execute, Assert
    fails(tmp_path, ["--data", path, *FLAGS, "--encoding", "utf-9"],
          "encoding 'utf-9' is not one Python knows (e.g. utf-8, cp1252, latin-1)",
          "inspect")  # fmt: skip


def test_bytes_that_are_no_text_in_any_candidate_are_refused(tmp_path: Path) -> None:
    # Prepare: mostly undefined or control bytes in cp1252 and Latin-1
    path = tmp_path / "c.csv"
    junk = bytes(np.random.default_rng(0).integers(0x80, 0xA0, 400).astype(np.uint8))
    path.write_bytes(b"name,churned\n" + junk + b",yes\n")

    # Execute, Assert
    fails(tmp_path, ["--data", str(path), "--target", "churned"],
          "c.csv: not UTF-8 text (byte 0x", "inspect")  # fmt: skip


# -- columns that cannot help a model ----------------------------------------------


def test_constant_and_entirely_missing_columns_are_left_out_with_a_note(tmp_path: Path) -> None:
    # Prepare
    frame = _patients().assign(country="FR", version=2, notes="", score="?", **{"unit [kg]": "kg"})
    path = _write(tmp_path, "c.csv", frame)

    # Execute
    out, err = _inspect("--data", path, *FLAGS)

    # Assert
    for said in ("column 'country' is constant (value 'FR'): left out",
                 "column 'version' is constant (value '2'): left out",
                 "column 'notes' is entirely missing: left out",
                 "column 'score' is entirely missing: left out",
                 "column 'unit [kg]' is constant (value 'kg'): left out"):  # fmt: skip
        assert f"c.csv: {said}" in err
    assert not any(f" {c} " in out for c in ("country", "version", "notes", "score"))


def test_a_column_constant_in_one_file_but_not_another_is_kept_in_both(tmp_path: Path) -> None:
    # Prepare: each institution's own site code
    a = _write(tmp_path, "a.csv", _patients().assign(site="north"))
    b = _write(tmp_path, "b.csv", _patients().assign(site=["south", "west"] * 30))
    c = _write(tmp_path, "c.csv", _patients().assign(site="north"))

    # Execute
    kept = data.load_federation(
        RunConfig(client_data=(a, b), clients=2, target="churned", id_column="id")
    )
    dropped = data.load_federation(
        RunConfig(client_data=(a, c), clients=2, target="churned", id_column="id")
    )

    # Assert
    assert "site" in kept.schema.categorical
    assert not any("is constant" in n for n in kept.notes)
    assert "site" not in dropped.schema.categorical
    assert f"{a}: column 'site' is constant (value 'north'): left out" in dropped.notes


def test_a_constant_split_column_is_kept(tmp_path: Path) -> None:
    # Prepare
    path = _write(tmp_path, "c.csv", _patients().assign(site="north"))

    # Execute
    fed = data.load_federation(
        RunConfig(data=path, target="churned", id_column="id", partition="column:site", clients=1)
    )

    # Assert
    assert fed.clients[0].source.endswith("(site=north)")
    assert not any("'site'" in n for n in fed.notes)


def test_a_constant_target_is_refused_not_left_out(tmp_path: Path) -> None:
    # Prepare
    path = _write(tmp_path, "c.csv", _patients().assign(churned="yes"))

    # Execute, Assert
    fails(tmp_path, ["--data", path, *FLAGS], "target 'churned' has a single value", "inspect")


# -- identifiers -----------------------------------------------------------------


def test_an_identifier_left_in_is_left_out_with_a_warning_naming_id_column(
    tmp_path: Path,
) -> None:
    # Prepare
    path = _write(tmp_path, "c.csv", _patients())

    # Execute
    out, err = _inspect("--data", path, "--target", "churned")
    fed = data.load_federation(RunConfig(data=path, target="churned"))

    # Assert
    assert (
        "warning: c.csv: column 'id' has a different value in each of its 60 rows, as an "
        "identifier has: left out of the features; pass --id-column id to say so, or "
        "--categorical id to use it as a category"
    ) in err.replace(str(tmp_path) + "/", "")
    assert " id " not in out
    assert fed.id_column == "id" and "id" not in fed.schema.categorical


def test_the_given_identifier_is_the_federations(tmp_path: Path) -> None:
    # Prepare: a second unique text column besides the given identifier
    path = _write(tmp_path, "c.csv", _patients().assign(ref=[f"R{i}" for i in range(60)]))

    # Execute
    fed = data.load_federation(RunConfig(data=path, target="churned", id_column="id"))

    # Assert
    assert fed.id_column == "id" and "ref" not in fed.schema.categorical
    assert any("column 'ref' has a different value in each" in w for w in fed.warnings)


def test_a_small_table_keeps_a_column_of_distinct_values(tmp_path: Path) -> None:
    # Prepare: 12 rows with 12 town names: a category, not an identifier
    frame = _patients(rows=12).drop(columns="id").assign(town=[f"town {i}" for i in range(12)])
    path = _write(tmp_path, "c.csv", frame)

    # Execute
    fed = data.load_federation(RunConfig(data=path, target="churned", clients=1))

    # Assert
    assert fed.id_column is None and "town" in fed.schema.categorical


def test_distinct_numbers_with_junk_are_not_an_identifier(tmp_path: Path) -> None:
    # Prepare: every weight differs, and one is a typo
    frame = _patients().astype({"weight": object})
    frame["weight"] = [f"{50 + i / 7:.3f}" for i in range(60)]
    frame.loc[5, "weight"] = "71.0kg"
    path = _write(tmp_path, "c.csv", frame)

    # Execute, Assert
    fails(tmp_path, ["--data", path, *FLAGS],
          "c.csv: column 'weight' is numeric but has 1 non-numeric values, e.g. '71.0kg'",
          "inspect")  # fmt: skip


# -- the chunked reader -------------------------------------------------------------


def test_reading_in_chunks_gives_the_table_read_whole(tmp_path: Path) -> None:
    # Prepare: spaces, markers, a semicolon and cp1252 at once
    frame = _patients(rows=250).astype({"weight": object})
    frame.loc[[3, 100, 201], "weight"] = "?"
    frame["plan"] = frame["plan"].map({"basic": "basic €", "premium": "première"})
    path = Path(_write(tmp_path, "c.csv", frame, sep="; ", encoding="cp1252"))
    parquet = tmp_path / "c.parquet"
    frame.astype({"weight": str}).to_parquet(parquet, row_group_size=40)

    for source in (path, parquet):
        # Execute
        chunks = list(iter_table(source, ReadOptions(), chunk_rows=64))

        # Assert
        assert max(len(c) for c in chunks) <= 64 and len(chunks) >= 4
        whole = pd.concat(chunks, ignore_index=True)
        pd.testing.assert_frame_equal(whole, read_table(source), check_dtype=False)
        assert whole["weight"].isna().sum() == 3 and "basic €" in set(whole["plan"])


def test_reading_in_chunks_refuses_what_reading_whole_refuses(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "c.csv"
    path.write_text("a, a\n1,2\n", encoding="utf-8")

    # Execute, Assert
    with pytest.raises(UsageError, match="column name 'a' appears twice"):
        next(iter_table(path, ReadOptions(), chunk_rows=10))


# -- all of it, before any training ---------------------------------------------------


def test_inspect_shows_what_reading_a_messy_file_decided(tmp_path: Path) -> None:
    # Prepare
    frame = _patients().assign(country="FR").astype({"age": object})
    frame.loc[[2, 5], "age"] = "?"
    frame.loc[7, "age"] = "null"
    frame["plan"] = frame["plan"].map({"basic": "básico", "premium": "premium"})
    path = _write(tmp_path, "export.csv", frame, sep="; ", encoding="cp1252")

    # Execute
    out, err = _inspect("--data", path, "--target", "churned")

    # Assert
    for said in ("export.csv: read as cp1252 (detected)",
                 "export.csv: columns separated by ';' (detected)",
                 "export.csv: column 'age': 3 values read as missing (2 '?', 1 'null')",
                 "export.csv: column 'country' is constant (value 'FR'): left out",
                 "warning: ", "pass --id-column id to say so"):  # fmt: skip
        assert said in err
    assert _missing(out, "age") == "3" and "básico" in out
