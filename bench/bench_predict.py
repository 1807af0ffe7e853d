"""Scoring benchmark: ``fedapp predict`` on a million rows, in bounded memory.

Runs a short federation (on ``../shared/data/bank_churn.csv`` when it is
there, else on the demo table), writes a CSV of ``--rows`` rows of that
table's schema (its rows drawn again with replacement, each with a fresh
identifier), then, each in its own child process and one after the other:

(a) ``fedapp predict RUN --data big.csv --out predictions.csv`` (default chunks);
(b) the same on a tenth of the rows: a bounded reader's peak memory does not
    grow with the file;
(c) the same on one row: the fixed cost of Python, TensorFlow and the model;
(d) ``pandas.read_csv`` of the whole file, and nothing else: what loading it at
    once costs before any scoring;
(e) ``import pandas`` alone, the fixed cost of (d).

Each child's peak resident memory is the kernel's (``getrusage`` of a wrapper
process around it), its wall time measured around it. Targets, reported as
PASS or MISS: ``RSS a / RSS b <= 1.25`` (memory bounded by the chunk, not the
file) and ``RSS a - RSS c <= RSS d - RSS e`` (the rows cost less memory
scored in chunks than merely loaded at once with pandas).

    python bench/bench_predict.py [--rows 1000000] [--data ../shared/data/bank_churn.csv]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT.parent / "shared" / "data" / "bank_churn.csv"
BANK_FLAGS = ["--target", "Exited", "--id-column", "CustomerId", "--drop", "RowNumber",
              "--drop", "Surname", "--partition", "column:Geography"]  # fmt: skip
TARGET_BOUNDED = 1.25
_WRITE_ROWS = 200_000


def measure(command: list[str]) -> int:
    """Run ``command`` as this process's child; print its wall time and peak RSS as JSON."""
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({"wall": wall, "rss_mib": peak_kib / 1024, "code": done.returncode,
                      "stderr": done.stderr[-2000:]}))  # fmt: skip
    return 0


def measured(command: list[str]) -> dict:
    """``command``'s wall time and peak RSS, measured by a wrapper process of its own."""
    wrapper = [sys.executable, __file__, "--measure", "--", *command]
    done = subprocess.run(wrapper, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    if result["code"] != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result['stderr']}")
    return result


def federate(data: Path | None, run_dir: Path) -> None:
    """A short federation to score with: bank churn (3 countries) or the demo table."""
    source = ["--data", str(data), *BANK_FLAGS] if data else ["--demo-rows", "12000"]
    command = [sys.executable, "-m", "fedapp", "simulate", *source, "--rounds", "3",
               "--no-baseline", "--run-dir", str(run_dir), "--json"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")


def write_rows(data: Path | None, rows: int, path: Path) -> None:
    """``rows`` rows of the table's schema, drawn with replacement, fresh ids, as a CSV."""
    # pandas: the parent writes the big file; the children are what is measured.
    import pandas as pd

    from fedapp.data.synthetic import make_churn_table

    table = pd.read_csv(data) if data else make_churn_table(12000, 3, 42)
    written = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        while written < rows:
            n = min(_WRITE_ROWS, rows - written)
            chunk = table.sample(n, replace=True, random_state=written).reset_index(drop=True)
            if data:
                chunk["CustomerId"] = range(10**8 + written, 10**8 + written + n)
                chunk["RowNumber"] = range(written + 1, written + n + 1)
            chunk.to_csv(out, index=False, header=written == 0)
            written += n


def main() -> int:
    """Federate, write the file, score it, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Rows of the big file.")
    parser.add_argument("--data", type=Path, default=BANK, help="The bank-churn CSV, if any.")
    parser.add_argument("--keep-tmp", action="store_true", help="Keep the temporary folder.")
    args = parser.parse_args()
    data = args.data if args.data.is_file() else None
    name = "bank_churn" if data else "the demo table"
    tmp = Path(tempfile.mkdtemp(prefix="fedapp-predict-"))
    run = tmp / "run"
    print(f"[1/7] a 3-round federation on {name} ...", file=sys.stderr, flush=True)
    federate(data, run)
    big, small, one = tmp / "big.csv", tmp / "small.csv", tmp / "one.csv"
    print(f"[2/7] writing {args.rows:,}, {args.rows // 10:,} and 1 rows ...", file=sys.stderr)
    for path, rows in ((big, args.rows), (small, args.rows // 10), (one, 1)):
        write_rows(data, rows, path)
    predict = [sys.executable, "-m", "fedapp", "predict", str(run)]
    cases = [
        ("a", "fedapp predict", args.rows,
         [*predict, "--data", str(big), "--out", str(tmp / "a.csv")]),
        ("b", "fedapp predict, a tenth", args.rows // 10,
         [*predict, "--data", str(small), "--out", str(tmp / "b.csv")]),
        ("c", "fedapp predict, one row", 1,
         [*predict, "--data", str(one), "--out", str(tmp / "c.csv")]),
        ("d", "pandas.read_csv, whole file", args.rows,
         [sys.executable, "-c", f"import pandas; pandas.read_csv({str(big)!r})"]),
        ("e", "import pandas", 0, [sys.executable, "-c", "import pandas"]),
    ]  # fmt: skip
    results = {}
    for step, (key, label, rows, command) in enumerate(cases, start=3):
        print(f"[{step}/7] ({key}) {label} ...", file=sys.stderr, flush=True)
        results[key] = (label, rows, measured(command))
    size = big.stat().st_size / 2**20
    fixed = results["c"][2]["wall"]
    lines = [
        f"{args.rows:,} rows of {name}'s schema ({size:.0f} MiB CSV), default chunks",
        "",
        f"{'run':<34} {'rows':>10} {'wall s':>7} {'rows/s':>9} {'net rows/s':>10} "
        f"{'peak RSS MiB':>12}",
    ]
    for key, (label, rows, result) in results.items():
        wall = result["wall"]
        net = rows / (wall - fixed) if key in "ab" and wall > fixed else None
        lines.append(
            f"({key}) {label:<30} {rows:>10,} {wall:>7.1f} "
            f"{(f'{rows / wall:,.0f}' if rows > 1 else '-'):>9} "
            f"{(f'{net:,.0f}' if net else '-'):>10} "
            f"{result['rss_mib']:>12.0f}"
        )
    a, b, c, d, e = (results[k][2]["rss_mib"] for k in "abcde")
    bounded, lighter = a / b <= TARGET_BOUNDED, a - c <= d - e
    lines += [
        "",
        "net rows/s: past the one-row run's wall time (start-up, TensorFlow, the model)",
        f"RSS a/b = {a / b:.2f} (target <= {TARGET_BOUNDED}: {'PASS' if bounded else 'MISS'}); "
        f"the rows' memory a-c = {a - c:.0f} MiB scored in chunks vs d-e = {d - e:.0f} MiB "
        f"loaded whole ({'PASS' if lighter else 'MISS'})",
    ]
    print("\n".join(lines))
    if not args.keep_tmp:
        shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        sys.exit(measure(sys.argv[3:]))
    sys.exit(main())
