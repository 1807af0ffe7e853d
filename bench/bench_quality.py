"""Quality on a real table: federated vs centralized vs each institution alone, per task.

Runs ``fedapp simulate`` (the real CLI, one child process per scenario) on the
bank-churn table and prints, per scenario, the task's main score (AUC for the
binary ``Exited``, accuracy for the multiclass ``NumOfProducts``, RMSE for the
regression ``Balance``) on the global test set, the centralized baseline's,
the gap, and each institution's local-only score (the answer to "what does
joining buy me?").

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

from fedapp.runs import higher_is_better, metric_label, primary

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT.parent / "shared" / "data" / "bank_churn.csv"
COMMON = ["--id-column", "CustomerId", "--drop", "RowNumber", "--drop", "Surname"]
EXITED = ["--target", "Exited"]
PRODUCTS = ["--target", "NumOfProducts"]  # 1 to 4: multiclass, inferred
BALANCE = ["--target", "Balance"]  # an amount: regression, inferred


def scenarios(rounds: int) -> list[tuple[str, list[str]]]:
    """The runs the quality bar asks for: the natural split, strong label skew, other tasks."""
    return [
        ("Exited, column:Geography, fedavg", [*EXITED, "--partition", "column:Geography"]),
        ("Exited, dirichlet:0.1 x5, fedavg",
         [*EXITED, "--partition", "dirichlet:0.1", "--clients", "5"]),
        ("Exited, dirichlet:0.1 x5, fedprox 0.1",
         [*EXITED, "--partition", "dirichlet:0.1", "--clients", "5", "--strategy", "fedprox",
          "--proximal-mu", "0.1"]),
        ("NumOfProducts, column:Geography", [*PRODUCTS, "--partition", "column:Geography"]),
        ("Balance, column:Geography", [*BALANCE, "--partition", "column:Geography"]),
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
        f"{'scenario':<38} {'score':<9} {'fed':>10} {'central':>10} {'gap':>9} {'wall s':>7}"
        "  local-only"
    )
    lines = [f"bank churn, {args.rounds} rounds x 1 local epoch, global test set", "", header]
    with tempfile.TemporaryDirectory(prefix="fedapp-quality-") as tmp:
        plans = scenarios(args.rounds)
        for i, (name, extra) in enumerate(plans):
            print(f"[{i + 1}/{len(plans)}] {name} ...", file=sys.stderr, flush=True)
            summary, wall = run(args.data, args.rounds, extra, Path(tmp) / str(i))
            task = summary["task"]
            metric = primary(task)
            fed, central = summary["federated"][metric], summary["centralized"][metric]
            local = summary.get("local_only", {})
            alone = " ".join(f"{k}:{v[metric]:.4g}" for k, v in local.items() if v[metric])
            # "Below" means worse than federated: a lower AUC, a higher RMSE.
            sign = 1 if higher_is_better(metric) else -1
            worse = all(v[metric] is None or sign * (v[metric] - fed) < 0 for v in local.values())
            lines.append(
                f"{name:<38} {metric_label(metric, task):<9} {fed:>10.4f} {central:>10.4f} "
                f"{fed - central:>+9.4f} {wall:>7.1f}  {alone} "
                f"({'all worse than federated' if worse else 'NOT all worse'})"
            )
            if task != "binary":
                rest = [m for m in summary["federated"] if m != metric][:3]
                lines.append(
                    f"{'':<38} "
                    + "  ".join(
                        f"{metric_label(m, task)} {summary['federated'][m]:.4f} vs "
                        f"{summary['centralized'][m]:.4f}"
                        for m in rest
                    )
                )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
