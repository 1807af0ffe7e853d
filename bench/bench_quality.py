"""Quality on a real table: federated vs centralized vs each institution alone.

Runs ``fedapp simulate`` (the real CLI, one child process per scenario) on the
bank-churn table and prints, per scenario, the federated AUC on the global
test set, the centralized baseline's, the gap, and each institution's
local-only AUC (the answer to "what does joining buy me?").

    python bench/bench_quality.py [--data ../shared/data/bank_churn.csv] [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT.parent / "shared" / "data" / "bank_churn.csv"
COMMON = ["--target", "Exited", "--id-column", "CustomerId", "--drop", "RowNumber",
          "--drop", "Surname"]  # fmt: skip


def scenarios(rounds: int) -> list[tuple[str, list[str]]]:
    """The runs the quality bar asks for: the natural split, then strong label skew."""
    return [
        ("column:Geography, fedavg", ["--partition", "column:Geography"]),
        ("dirichlet:0.1 x5, fedavg", ["--partition", "dirichlet:0.1", "--clients", "5"]),
        ("dirichlet:0.1 x5, fedprox mu=0.1",
         ["--partition", "dirichlet:0.1", "--clients", "5", "--strategy", "fedprox",
          "--proximal-mu", "0.1"]),
    ]  # fmt: skip


def run(data: Path, rounds: int, extra: list[str], out: Path) -> tuple[dict, float]:
    """Run one scenario through the CLI; return its summary and wall seconds."""
    argv = [sys.executable, "-m", "fedapp.cli", "simulate", "--data", str(data), *COMMON,
            "--rounds", str(rounds), "--json", "--run-dir", str(out), *extra]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout), wall


def main() -> int:
    """Run every scenario and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=BANK, help="The bank-churn CSV.")
    parser.add_argument("--rounds", type=int, default=20, help="Rounds (1 local epoch each).")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data}: no such file")
    header = (
        f"{'scenario':<34} {'fed AUC':>8} {'central':>8} {'gap':>8} {'wall s':>7}  local-only AUC"
    )
    lines = [f"bank churn, {args.rounds} rounds x 1 local epoch, global test set", "", header]
    with tempfile.TemporaryDirectory(prefix="fedapp-quality-") as tmp:
        for i, (name, extra) in enumerate(scenarios(args.rounds)):
            print(f"[{i + 1}/3] {name} ...", file=sys.stderr, flush=True)
            summary, wall = run(args.data, args.rounds, extra, Path(tmp) / str(i))
            fed, central = summary["federated"]["auc"], summary["centralized"]["auc"]
            local = summary.get("local_only", {})
            alone = " ".join(f"{k}:{v['auc']:.4f}" for k, v in local.items() if v["auc"])
            below = all(v["auc"] is None or v["auc"] < fed for v in local.values())
            lines.append(
                f"{name:<34} {fed:>8.4f} {central:>8.4f} {fed - central:>+8.4f} {wall:>7.1f}  "
                f"{alone} ({'all below federated' if below else 'NOT all below'})"
            )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
