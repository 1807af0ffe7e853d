"""Quality under privacy and hostile clients: a table of named runs on the bank-churn table.

Every case is a set of RunConfig overrides (the kebab-case keys of
``config.json``) on one base run: the bank-churn table, 10 clients split
``dirichlet:1.0``, 20 rounds. Each case runs through the real CLI
(``fedapp simulate --config case.json``, one child process each, one after the
other) and is read back from its run directory only. The table gives each
case's final AUC on the global test set, its difference to its reference case
(clean FedAvg unless the case says otherwise) against the case's goal, its
wall time and ratio to the reference's, and notes (for attack runs: how often
the anomaly signals flagged the attackers, and honest clients).

    python bench/bench_hostile.py                      # every case (~1 min each on 2 cores)
    python bench/bench_hostile.py --only clean/fedavg,sign-flip --rounds 5
    python bench/bench_hostile.py --list

Add a case by appending a :class:`Case` to :data:`CASES`.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_quality import BANK

from fedapp.runs import RunDir

BASE: dict[str, Any] = {
    "target": "Exited",
    "id-column": "CustomerId",
    "drop": ["RowNumber", "Surname"],
    "clients": 10,
    "partition": "dirichlet:1.0",
    "rounds": 20,
    # The table compares federated runs with each other; the baselines only cost time.
    "baseline": False,
}
REFERENCE = "clean/fedavg"


@dataclass(frozen=True)
class Result:
    """What one case's run directory says, and how long its child took."""

    summary: dict[str, Any]
    config: dict[str, Any]
    events: list[dict[str, Any]]
    wall: float

    @property
    def auc(self) -> float:
        """The final global model's AUC on the global test set."""
        return float(self.summary["federated"]["auc"])


@dataclass(frozen=True)
class Case:
    """One row: RunConfig overrides, the case it is measured against, and its goal.

    ``max_auc_drop`` is the goal "AUC >= reference AUC - max_auc_drop" (none
    when ``None``); ``notes`` adds a case-specific remark (e.g. a privacy
    budget read from ``summary.json``).
    """

    name: str
    settings: dict[str, Any]
    reference: str = REFERENCE
    max_auc_drop: float | None = None
    notes: Callable[[Result], str] | None = None
    # How the case runs, when not as one `fedapp simulate` (run_case's signature).
    runner: Callable[[Case, dict[str, Any], Path], Result] | None = None


def detection(result: Result) -> str:
    """Share of attacker-rounds flagged, and of honest client-rounds flagged."""
    attackers = {str(p) for p in result.config.get("malicious-clients", [])}
    hit = missed = false = honest = 0
    for event in result.events:
        if event["stage"] != "fit" or "flagged" not in event:
            continue
        flagged = {str(p) for p in event["flagged"]}
        for pid in event["clients"]:
            if pid in attackers:
                hit, missed = hit + (pid in flagged), missed + (pid not in flagged)
            else:
                false, honest = false + (pid in flagged), honest + (pid not in flagged)
    if not attackers:
        return f"false flags {false}/{false + honest}" if false else ""
    return f"attackers flagged {hit}/{hit + missed}, honest flagged {false}/{false + honest}"


def _strategy(name: str, **params: Any) -> dict[str, Any]:
    return {"strategy": name, "strategy-params": params}


# Krum-family tolerance: 2 of 10 (the attack below); Bulyan needs n >= 4f + 3, so 1.
_ROBUST = {
    "krum": _strategy("krum", **{"num-malicious-clients": 2}),
    "multikrum": _strategy("multikrum", **{"num-malicious-clients": 2}),
    "fedmedian": _strategy("fedmedian"),
    # beta = 0.2 cuts 2 of 10 values at each end of every weight.
    "fedtrimmedavg": _strategy("fedtrimmedavg", beta=0.2),
}
_CLEAN = {
    "fedavg": _strategy("fedavg"),
    "fedprox": _strategy("fedprox"),
    "weighted": _strategy("weighted"),
    "fedadam": _strategy("fedadam"),
    "fedyogi": _strategy("fedyogi"),
    "fedadagrad": _strategy("fedadagrad"),
    "fedavgm": _strategy("fedavgm"),
    **_ROBUST,
    "bulyan": _strategy("bulyan", **{"num-malicious-clients": 1}),
}
_SIGN_FLIP = {"malicious": 2, "attack": "sign-flip:10"}
_SCALE = {"malicious": 2, "attack": "scale:3"}

CASES: list[Case] = [
    *(Case(f"clean/{name}", settings, notes=detection) for name, settings in _CLEAN.items()),
    Case("sign-flip/fedavg", {**_SIGN_FLIP, **_CLEAN["fedavg"]}, notes=detection),
    # A scaled update is the harder one to flag: 3x a client's own update is
    # within the spread of honest clients' norms under label skew.
    Case("scale/fedavg", {**_SCALE, **_CLEAN["fedavg"]}, notes=detection),
    *(
        Case(f"sign-flip/{name}", {**_SIGN_FLIP, **settings}, max_auc_drop=0.02, notes=detection)
        for name, settings in _ROBUST.items()
    ),
    # SecAgg+: FedAvg's aggregate under masks, equal to plain FedAvg's within the
    # quantisation error; its wall ratio is the protocol's overhead.
    Case("secagg/fedavg", {"secure-aggregation": True, **_CLEAN["fedavg"]}, max_auc_drop=0.005),
]


def privacy_notes(result: Result) -> str:
    """ε at δ (the largest client's under record DP), its curve, and who stopped early."""
    private = result.summary["privacy"]
    curve = {e["round"]: e["metrics"]["epsilon"] for e in result.events if e["stage"] == "privacy"}
    shown = " ".join(f"r{r}:{curve[r]:.2f}" for r in sorted(curve) if r == 1 or r % 5 == 0)
    notes = f"ε {private['epsilon']:.2f} at δ {private['delta']:g}; ε by round {shown}"
    if private["mode"] == "record":
        last = max(curve)
        budgets = next(e for e in result.events if e["stage"] == "privacy" and e["round"] == last)
        clients = budgets["clients"]
        spent = sorted(int(pid) for pid, c in clients.items() if c["spent"])
        eps = [c["epsilon"] for c in clients.values()]
        notes += f"; clients' ε {min(eps):.2f}-{max(eps):.2f}, spent before the end: {spent}"
    if "reason" in result.summary:
        notes += f"; stopped after round {result.summary['rounds']}: {result.summary['reason']}"
    return notes


# Record-level DP (DP-SGD) with a budget of ε = 3 per client at δ = 1e-5: a
# client whose next round would exceed it stops training. The training
# settings are the best of a small search on this table (small batches, two
# local epochs, clip norm about the median per-example gradient norm); its
# reference is the same training without DP, so the difference is DP's cost.
# Clients of a few hundred rows spend their budget before round 20.
_DP_TRAINING = {"batch-size": 16, "local-epochs": 2, "learning-rate": 0.003}
_DP_RECORD = {**_DP_TRAINING, "dp": "record", "noise-multiplier": 1.5, "clip-norm": 2.0,
              "target-epsilon": 3.0, "delta": 1e-5}  # fmt: skip
# Client-level DP, the same noise at 10 clients (all every round) and at 100
# clients sampled 10% per round; the clip norm is about the median update norm.
_DP_CENTRAL = {"dp": "central", "noise-multiplier": 1.0, "clip-norm": 0.5, "delta": 1e-5}
_CROSS_DEVICE = {"clients": 100, "clients-per-round": 10}
CASES += [
    Case("clean/fedavg-dp-training", _DP_TRAINING),
    Case("dp-record/eps3", _DP_RECORD, reference="clean/fedavg-dp-training", max_auc_drop=0.03,
         notes=privacy_notes),
    # A looser budget, to show how the cost moves with ε.
    Case("dp-record/eps8", {**_DP_RECORD, "noise-multiplier": 1.0, "target-epsilon": 8.0},
         reference="clean/fedavg-dp-training", notes=privacy_notes),
    Case("dp-central/10", _DP_CENTRAL, notes=privacy_notes),
    Case("clean/fedavg-100x10%", _CROSS_DEVICE),
    Case("dp-central/100x10%", {**_CROSS_DEVICE, **_DP_CENTRAL},
         reference="clean/fedavg-100x10%", notes=privacy_notes),
]  # fmt: skip


def simulate_argv(case: Case, base: dict[str, Any], out: Path) -> list[str]:
    """``fedapp simulate`` of ``case`` into ``out/run``, its settings in ``out/case.json``."""
    config = out / "case.json"
    config.write_text(json.dumps({**base, **case.settings}, indent=2), encoding="utf-8")
    return [sys.executable, "-m", "fedapp.cli", "simulate", "--config", str(config),
            "--run-dir", str(out / "run")]  # fmt: skip


def run_case(case: Case, base: dict[str, Any], out: Path) -> Result:
    """Run one case through the CLI and read its run directory back."""
    out.mkdir(parents=True)
    run = RunDir(out / "run")
    argv = [*simulate_argv(case, base, out), "--json"]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{case.name}: {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return Result(run.read_summary(), run.read_config(), list(run.read_metrics()), wall)


def select(cases: list[Case], only: str | None) -> list[Case]:
    """Cases named by the comma-separated names, globs or groups (``sign-flip``)."""
    if not only:
        return cases
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    return [
        c
        for c in cases
        if any(fnmatch.fnmatch(c.name, p) or c.name.startswith(f"{p}/") for p in patterns)
    ]


def table(results: dict[str, Result], cases: list[Case]) -> str:
    """A Markdown table of the cases that ran."""
    lines = [
        "| case | AUC | vs reference | goal | wall s | wall ratio | notes |",
        "| --- | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for case in cases:
        if case.name not in results:
            continue
        result, ref = results[case.name], results.get(case.reference)
        delta = ratio = goal = ""
        if ref is not None and case.name != case.reference:
            delta = f"{result.auc - ref.auc:+.4f}"
            ratio = f"{result.wall / ref.wall:.2f}"
            if case.max_auc_drop is not None:
                met = result.auc >= ref.auc - case.max_auc_drop
                goal = f"≥ ref - {case.max_auc_drop:g}: {'PASS' if met else 'MISS'}"
        notes = case.notes(result) if case.notes else ""
        lines.append(
            f"| {case.name} | {result.auc:.4f} | {delta} | {goal} | {result.wall:.0f} | "
            f"{ratio} | {notes} |"
        )
    return "\n".join(lines)


def main(cases: list[Case] | None = None, doc: str | None = None, name: str = "hostile") -> int:
    """Run the selected cases (and their references) and print the table.

    Another bench passes its own ``cases`` and module ``doc`` (``--help``);
    ``name`` prefixes the temporary folder.
    """
    cases = CASES if cases is None else cases
    parser = argparse.ArgumentParser(description=(doc or __doc__ or "").splitlines()[0])
    parser.add_argument("--data", type=Path, default=BANK, help="The bank-churn CSV.")
    parser.add_argument("--rounds", type=int, default=BASE["rounds"])
    parser.add_argument("--clients", type=int, default=BASE["clients"])
    parser.add_argument(
        "--only", help="Comma-separated case names, globs or groups: 'clean/fedavg,sign-flip'."
    )
    parser.add_argument("--list", action="store_true", help="List the cases and exit.")
    parser.add_argument("--keep", type=Path, help="Keep the run directories under this folder.")
    args = parser.parse_args()
    if args.list:
        print("\n".join(c.name for c in cases))
        return 0
    if not args.data.is_file():
        sys.exit(f"{args.data}: no such file")
    chosen = select(cases, args.only)
    if not chosen:
        sys.exit(f"no case matches {args.only!r}; see --list")
    by_name = {c.name: c for c in cases}
    # A case is only readable next to its reference: run that too, first.
    needed = [c.reference for c in chosen if c.reference in by_name]
    todo = [by_name[name] for name in dict.fromkeys([*needed, *(c.name for c in chosen)])]
    base = {**BASE, "data": str(args.data), "rounds": args.rounds, "clients": args.clients}
    results: dict[str, Result] = {}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix=f"fedapp-{name}-") as tmp:
        root = args.keep or Path(tmp)
        # The first run in a fresh process tree also pays cold file caches and
        # compilation; a one-round run first keeps that out of the wall ratios.
        print("warm-up (1 round, not reported) ...", file=sys.stderr, flush=True)
        run_case(todo[0], {**base, "rounds": 1}, root / "warm-up")
        for i, case in enumerate(todo):
            print(f"[{i + 1}/{len(todo)}] {case.name} ...", file=sys.stderr, flush=True)
            out = root / case.name.replace("/", "-")
            try:
                results[case.name] = (case.runner or run_case)(case, base, out)
            except RuntimeError as err:  # one broken case must not cost the others' numbers
                failed[case.name] = str(err).splitlines()[-1]
                print(f"    FAILED: {err}", file=sys.stderr, flush=True)
                continue
            print(f"    AUC {results[case.name].auc:.4f}", file=sys.stderr, flush=True)
    print(
        f"bank churn, {args.clients} clients dirichlet:1.0, {args.rounds} rounds x 1 local "
        f"epoch; final AUC on the global test set; references: "
        f"{', '.join(dict.fromkeys(c.reference for c in chosen))}\n"
    )
    print(table(results, todo))
    for name, reason in failed.items():
        print(f"\n{name} FAILED: {reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
