"""Speed benchmark: ``fedapp simulate`` against centralized training and a plain Flower run.

Runs, one after the other and each in its own child process, on the same data,
preprocessing and model:

(a) the real CLI, ``fedapp simulate --partition iid --local-epochs 1 --no-baseline --json``;
(b) centralized training for ``rounds`` epochs on the pooled training rows
    (``bench/_centralized.py``, i.e. :func:`fedapp.learning.baselines.centralized`);
(c) a plain Flower simulation whose client is written the way Flower's
    quickstart-tensorflow example writes it (``bench/_quickstart.py``).

Wall times are measured here, around each child, with :func:`time.perf_counter`,
so they include interpreter start-up, imports and (for a and c) Ray's start-up.
This process never imports TensorFlow (nor fedapp). Each child's stderr goes to
``<tmp>/<run>.stderr.log``.

Targets: ``a/b <= 2.0`` (federation costs at most twice centralized training),
``c/a >= 4.0`` (fedapp is at least four times faster than the naive client) and
``|AUC a - AUC c| <= 0.005`` (and is as accurate). A MISS is reported, not an
error: the exit status is non-zero only when a child fails.

Usage: ``python bench/bench_speed.py [--clients 10] [--rounds 10] [--json]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
TARGET_A_OVER_B = 2.0
TARGET_C_OVER_A = 4.0
TARGET_AUC_GAP = 0.005
LOG_TAIL_LINES = 40


class ChildFailed(RuntimeError):
    """A child process exited non-zero or printed no result.

    Parameters
    ----------
    key : str
        Which run (``a``, ``b`` or ``c``).
    reason : str
        What went wrong.
    log : Path
        The child's stderr log.
    stdout : str
        What the child printed on stdout.

    """

    def __init__(self, key: str, reason: str, log: Path, stdout: str) -> None:
        super().__init__(f"({key}) {reason}")
        self.key = key
        self.log = log
        self.stdout = stdout


@dataclass(frozen=True)
class RunResult:
    """One measured run.

    Attributes
    ----------
    key : str
        ``a``, ``b`` or ``c``.
    label : str
        What was run, for the table.
    wall_seconds : float
        Parent-measured wall time of the whole child process.
    inner_seconds : float | None
        The child's own timing of its training (no start-up, no imports).
    auc : float
        AUC of the final model on the global test set.
    preprocessing : str | None
        Fingerprint of the preprocessing the run used.
    rounds_seconds : float | None
        For (a): time from the round-0 evaluation to the last event, i.e. the
        federated rounds without start-up and shutdown.

    """

    key: str
    label: str
    wall_seconds: float
    inner_seconds: float | None
    auc: float
    preprocessing: str | None
    rounds_seconds: float | None = None


@dataclass(frozen=True)
class Check:
    """One target, with its measured value.

    Attributes
    ----------
    name : str
        What is compared.
    value : float | None
        The measured value (``None`` when a run was skipped).
    op : str
        ``<=`` or ``>=``.
    target : float
        The bound.

    """

    name: str
    value: float | None
    op: str
    target: float

    @property
    def status(self) -> str:
        """``PASS``, ``MISS`` or ``SKIP``."""
        if self.value is None:
            return "SKIP"
        ok = self.value <= self.target if self.op == "<=" else self.value >= self.target
        return "PASS" if ok else "MISS"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Parameters
    ----------
    argv : Sequence[str] | None
        Arguments (``None``: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        The options.

    """
    parser = argparse.ArgumentParser(
        description=(
            "Time `fedapp simulate` (a) against centralized training (b) and a "
            "quickstart-style Flower simulation (c) on the same data and model."
        ),
        epilog=(
            f"Targets: a/b <= {TARGET_A_OVER_B}, c/a >= {TARGET_C_OVER_A}, "
            f"|AUC a - AUC c| <= {TARGET_AUC_GAP}. Exit status 1 if a child fails."
        ),
    )
    parser.add_argument("--clients", type=int, default=10, help="clients (default: 10)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds (default: 10)")
    parser.add_argument(
        "--demo-rows", type=int, default=12000, help="rows of the demo table (default: 12000)"
    )
    parser.add_argument("--seed", type=int, default=42, help="seed (default: 42)")
    parser.add_argument(
        "--skip-quickstart", action="store_true", help="do not run (c), the slowest part"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--keep-tmp", action="store_true", help="keep the temporary folder (logs, run dir)"
    )
    args = parser.parse_args(argv)
    for name in ("clients", "rounds", "demo_rows"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be > 0")
    return args


def fedapp_command() -> list[str]:
    """The installed ``fedapp`` console script (bypassing pyenv-style shims).

    Returns
    -------
    list[str]
        The command prefix that runs ``fedapp``.

    """
    script = Path(sys.executable).with_name("fedapp")
    if script.is_file():
        return [str(script)]
    found = shutil.which("fedapp")
    return [found] if found else [sys.executable, "-m", "fedapp.cli"]


def fingerprint(text: str) -> str:
    """Short SHA-256 of a preprocessing's JSON (same as ``_common.fingerprint``).

    Parameters
    ----------
    text : str
        ``Preprocessor.to_json()`` output.

    Returns
    -------
    str
        The first 16 hex digits of the digest.

    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def last_json(stdout: str) -> dict[str, Any] | None:
    """The last JSON object printed on ``stdout`` (one line or indented).

    Parameters
    ----------
    stdout : str
        A child's standard output.

    Returns
    -------
    dict[str, Any] | None
        The object, or ``None`` if there is none.

    """
    lines = stdout.splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if not lines[start].startswith("{"):
            continue
        try:
            value = json.loads("\n".join(lines[start:]))
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def run_child(
    key: str, argv: list[str], tmp: Path, env: dict[str, str]
) -> tuple[float, dict[str, Any]]:
    """Run one child, timing it; return its wall time and printed JSON.

    Parameters
    ----------
    key : str
        ``a``, ``b`` or ``c`` (names the log file).
    argv : list[str]
        The command.
    tmp : Path
        Working directory and home of ``<key>.stderr.log``.
    env : dict[str, str]
        The child's environment.

    Returns
    -------
    tuple[float, dict[str, Any]]
        Wall seconds and the child's result.

    Raises
    ------
    ChildFailed
        On a non-zero exit or no JSON on stdout.

    """
    log = tmp / f"{key}.stderr.log"
    with log.open("w", encoding="utf-8") as err:
        started = time.perf_counter()
        proc = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=err, text=True, cwd=tmp, env=env, check=False
        )
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise ChildFailed(key, f"exited with status {proc.returncode}", log, proc.stdout)
    result = last_json(proc.stdout)
    if result is None:
        raise ChildFailed(key, "printed no JSON result", log, proc.stdout)
    return wall, result


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file (empty if it cannot be read).

    Parameters
    ----------
    path : Path
        The file.
    lines : int
        How many lines.

    Returns
    -------
    str
        The tail.

    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def measure(args: argparse.Namespace, tmp: Path) -> list[RunResult]:
    """Run (a), (b) and, unless skipped, (c).

    Parameters
    ----------
    args : argparse.Namespace
        The benchmark's options.
    tmp : Path
        Scratch folder for run directories and logs.

    Returns
    -------
    list[RunResult]
        One result per run, in order.

    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    common = [
        "--clients", str(args.clients), "--rounds", str(args.rounds),
        "--demo-rows", str(args.demo_rows), "--seed", str(args.seed),
    ]  # fmt: skip
    run_dir = tmp / "a"
    cli = [
        *fedapp_command(), "simulate", *common, "--local-epochs", "1",
        "--partition", "iid", "--no-baseline", "--json", "--run-dir", str(run_dir),
    ]  # fmt: skip
    runs: list[tuple[str, str, list[str]]] = [
        ("a", "fedapp simulate (CLI)", cli),
        (
            "b",
            f"centralized, {args.rounds} epoch{'s' if args.rounds != 1 else ''}",
            [sys.executable, str(BENCH_DIR / "_centralized.py"), *common],
        ),
    ]
    if not args.skip_quickstart:
        runs.append(
            (
                "c",
                "Flower quickstart-style",
                [sys.executable, str(BENCH_DIR / "_quickstart.py"), *common],
            )
        )
    results = []
    rounds_seconds: float | None = None
    for index, (key, label, argv) in enumerate(runs, start=1):
        _progress(f"[{index}/{len(runs)}] ({key}) {label} ...")
        wall, out = run_child(key, argv, tmp, env)
        if key == "a":
            auc = float(out["federated"]["auc"])
            inner = out.get("wall_seconds")
            prep_file = run_dir / "preprocessing.json"
            prep = fingerprint(prep_file.read_text("utf-8")) if prep_file.is_file() else None
            rounds_seconds = rounds_only(run_dir / "metrics.jsonl")
        else:
            auc = float(out["auc"])
            inner = out.get("inner_seconds")
            prep = out.get("preprocessing")
        _progress(f"      {wall:.1f} s, AUC {auc:.4f}")
        results.append(
            RunResult(
                key, label, wall, float(inner) if inner is not None else None, auc, prep,
                rounds_seconds if key == "a" else None,
            )
        )  # fmt: skip
    return results


def rounds_only(metrics_file: Path) -> float | None:
    """Seconds from the round-0 evaluation to the last event of a run directory.

    Parameters
    ----------
    metrics_file : Path
        The run's ``metrics.jsonl`` (each event carries ``time`` since start).

    Returns
    -------
    float | None
        The span of the federated rounds, or ``None`` if the file is missing.

    """
    if not metrics_file.is_file():
        return None
    times = [json.loads(line)["time"] for line in metrics_file.read_text("utf-8").splitlines()]
    return times[-1] - times[0] if times else None


def checks(results: list[RunResult]) -> list[Check]:
    """The three targets, evaluated on ``results``.

    Parameters
    ----------
    results : list[RunResult]
        The measured runs.

    Returns
    -------
    list[Check]
        ``a/b``, ``c/a`` and the AUC gap (``None`` values when (c) was skipped).

    """
    by_key = {r.key: r for r in results}
    a, b, c = by_key["a"], by_key["b"], by_key.get("c")
    return [
        Check("a/b wall time", a.wall_seconds / b.wall_seconds, "<=", TARGET_A_OVER_B),
        Check(
            "c/a wall time", c.wall_seconds / a.wall_seconds if c else None, ">=", TARGET_C_OVER_A
        ),
        Check("|AUC a - AUC c|", abs(a.auc - c.auc) if c else None, "<=", TARGET_AUC_GAP),
    ]


def render_table(args: argparse.Namespace, results: list[RunResult], targets: list[Check]) -> str:
    """The human-readable report.

    Parameters
    ----------
    args : argparse.Namespace
        The benchmark's options (for the heading).
    results : list[RunResult]
        The measured runs.
    targets : list[Check]
        The evaluated targets.

    Returns
    -------
    str
        The table, several lines.

    """
    lines = [
        f"fedapp speed benchmark: {args.clients} clients, {args.rounds} rounds x 1 local "
        f"epoch, iid, {args.demo_rows} demo rows, seed {args.seed}",
        "",
        f"{'run':<34} {'wall s':>8} {'inside s':>9} {'AUC':>8}",
    ]
    for r in results:
        inner = f"{r.inner_seconds:.1f}" if r.inner_seconds is not None else "-"
        lines.append(
            f"{'(' + r.key + ') ' + r.label:<34} {r.wall_seconds:>8.1f} {inner:>9} {r.auc:>8.4f}"
        )
    lines += ["", f"{'check':<34} {'value':>8} {'target':>9} {'result':>8}"]
    for t in targets:
        if t.value is None:
            value = "-"
        else:
            value = f"{t.value:.4f}" if "AUC" in t.name else f"{t.value:.2f}"
        lines.append(f"{t.name:<34} {value:>8} {t.op + ' ' + str(t.target):>9} {t.status:>8}")
    by_key = {r.key: r for r in results}
    a, b = by_key["a"], by_key["b"]
    if a.rounds_seconds is not None and b.inner_seconds:
        startup = a.wall_seconds - a.rounds_seconds
        lines += [
            "",
            f"(a) split: {startup:.1f} s start-up and shutdown (imports, Ray, actors, "
            f"statistics), {a.rounds_seconds:.1f} s of rounds; rounds / (b) inside = "
            f"{a.rounds_seconds / b.inner_seconds:.2f} (information, not a target)",
        ]
    prints = {r.key: r.preprocessing for r in results}
    same = len(set(prints.values())) == 1 and None not in prints.values()
    lines += [
        "",
        "wall s: whole child process, timed by the parent (start-up and imports included); "
        "inside s: the child's own timing of its run",
        f"same preprocessing in {', '.join(prints)}: {'yes' if same else 'NO'} "
        f"({', '.join(f'{k}={v}' for k, v in prints.items())})",
    ]
    return "\n".join(lines)


def _progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table (or JSON).

    Parameters
    ----------
    argv : Sequence[str] | None
        Command-line arguments (``None``: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every child ran (whatever the targets say), 1 when one failed.

    """
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="fedapp-bench-"))
    _progress(f"scratch folder and logs: {tmp}")
    try:
        results = measure(args, tmp)
    except ChildFailed as err:
        _progress(f"error: {err}; stderr log {err.log}, last {LOG_TAIL_LINES} lines:")
        _progress(tail(err.log))
        if err.stdout.strip():
            _progress("stdout tail:\n" + "\n".join(err.stdout.splitlines()[-10:]))
        return 1
    except KeyboardInterrupt:
        _progress(f"interrupted; logs kept in {tmp}")
        return 130
    targets = checks(results)
    if args.json:
        report = {
            "settings": {
                "clients": args.clients,
                "rounds": args.rounds,
                "demo_rows": args.demo_rows,
                "seed": args.seed,
            },
            "runs": {r.key: asdict(r) for r in results},
            "checks": [{**asdict(t), "status": t.status} for t in targets],
            "tmp_dir": str(tmp) if args.keep_tmp else None,
        }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(render_table(args, results, targets) + "\n")
    if args.keep_tmp:
        _progress(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
