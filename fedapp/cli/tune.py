"""``fedapp tune``: search strategies and hyper-parameters in simulation, write the best as TOML.

Every ``simulate`` setting is accepted as the base config (the same flags,
generated from the settings table, and ``--config``); the search itself is
:mod:`fedapp.tuning`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedapp.cli.app import app
from fedapp.cli.output import console, exit_now, fail, warn
from fedapp.cli.run import _CONFIG, _VERBOSE, _cli_only, _config, _with_settings
from fedapp.errors import UsageError
from fedapp.runs import metric_label
from fedapp.runs.study import StudyTrials, TrialRow
from fedapp.settings import RunConfig

# Trials shown in the closing table.
TOP_TRIALS = 10

_TRIALS = _cli_only(
    "trials",
    Annotated[
        int, typer.Option("--trials", help="Trials to run now (a continued study adds them).")
    ],
    20,
)
_TIMEOUT = _cli_only(
    "timeout",
    Annotated[
        float | None,
        typer.Option(
            "--timeout", help=escape("Seconds after which no new trial starts [default: none].")
        ),
    ],
    None,
)
_STRATEGIES = _cli_only(
    "strategies",
    Annotated[
        str | None,
        typer.Option(
            "--strategies",
            help=escape(
                "Comma-separated strategies to search among [default: every installed one]."
            ),
        ),
    ],
    None,
)
_STUDY_DIR = _cli_only(
    "study_dir",
    Annotated[
        Path | None,
        typer.Option(
            "--study-dir",
            help=escape(
                "The study folder: study.db and one run directory per trial; one that holds "
                "a study continues it [default: runs-dir/<time>-tune-<id>]."
            ),
        ),
    ],
    None,
)
_OUT = _cli_only(
    "out",
    Annotated[
        Path | None,
        typer.Option(
            "--out",
            help=escape(
                "Where the best configuration goes, as TOML for `fedapp simulate --config` "
                "[default: best.toml in the study folder]."
            ),
        ),
    ],
    None,
)


@app.command()
@_with_settings(_CONFIG, _TRIALS, _TIMEOUT, _STRATEGIES, _STUDY_DIR, _OUT, _VERBOSE)
def tune(
    config: Path | None,
    trials: int,
    timeout: float | None,
    strategies: str | None,
    study_dir: Path | None,
    out: Path | None,
    verbose: bool,
    **settings: Any,
) -> None:
    """Search strategies and hyper-parameters on the clients' own held-out rows; write the best.

    Each trial is a simulated run in the study folder, scored by the clients'
    own evaluation of the last round (never the global test set).
    """
    # Optuna, TensorFlow, Flower and Ray: only a study pays for them, never `--help`.
    from fedapp import tuning

    try:
        base = _config(config, settings, [])
        if trials <= 0:
            raise UsageError(f"trials must be > 0, got {trials}")
        if timeout is not None and not timeout > 0:
            raise UsageError(f"timeout must be > 0 seconds, got {timeout:g}")
        names = [n.strip() for n in (strategies or "").split(",") if n.strip()]
        if strategies is not None and not names:
            raise UsageError("--strategies needs one or more strategy names, comma-separated")
        folder = study_dir or tuning.default_study_dir(base)
        target = out or folder / "best.toml"
        tuning.search_space(base, "binary", names)  # an unknown strategy fails before the data
        if out is not None:
            tuning.check_writable(out)
        found = _run_study(base, folder, trials, timeout, names, verbose)
        best = tuning.write_best(target, folder)
    except UsageError as err:
        raise fail(str(err)) from None
    except KeyboardInterrupt:
        console.print(
            "[bold yellow]stopped:[/] the trial's run is marked stopped; "
            f"continue the study with --study-dir {escape(str(study_dir or 'STUDY'))}",
            soft_wrap=True,
        )
        exit_now(130)
    Console().print(trials_table(found))
    label = metric_label(found.metric)
    console.print(
        f"best: trial {best.number} ({escape(best.run or '')}), the clients' own {label} "
        f"{best.value:.4f}; written to {escape(str(target))}\n"
        f"reproduce it: fedapp simulate --config {escape(str(target))}",
        highlight=False,
        soft_wrap=True,
    )


def _run_study(
    base: RunConfig,
    folder: Path,
    trials: int,
    timeout: float | None,
    strategies: list[str],
    verbose: bool,
) -> StudyTrials:
    """Run the study with a progress bar of trials (and the running trial's round)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    # Optuna, TensorFlow, Flower and Ray: only a study pays for them.
    from fedapp import tuning

    console.print(f"study folder: {escape(str(folder))}", highlight=False, soft_wrap=True)
    held = tuning.validated(base).validation_fraction
    console.print(
        f"trials are scored on the clients' validation rows ({held:g} of their training "
        "rows); their test rows are never looked at",
        highlight=False, soft_wrap=True,
    )  # fmt: skip
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} trials"),
        TextColumn("{task.fields[trial]}"),
        TextColumn("{task.fields[best]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal and not verbose,
    )
    best: list[float] = []
    ended = 0

    def on_progress(step: tuning.TrialProgress) -> None:
        nonlocal ended
        where = f"trial {step.number} ({step.strategy}) round {step.round}/{step.rounds}"
        if step.state == "running":
            shown = where if step.value is None else f"{where}: {step.value:.4f}"
            progress.update(task, trial=shown)
            return
        ended += 1
        if step.state == "complete" and step.value is not None:
            best.append(step.value)
        if step.state == "fail":
            warn(f"trial {step.number} ({step.strategy}) failed: {step.error}")
        line = f"trial {step.number} ({step.strategy}) {step.state}"
        if step.value is not None:
            line += f": {step.value:.4f}"
        if not console.is_terminal:
            console.print(line, highlight=False, soft_wrap=True)
        progress.update(task, completed=ended, trial=line)

    with progress:
        task = progress.add_task("tuning", total=trials, trial="", best="")
        found = tuning.tune(base, folder, trials, timeout, strategies, on_progress, verbose)
        progress.update(task, description="done")
    return found


def trials_table(found: StudyTrials, count: int = TOP_TRIALS) -> Table:
    """The ``count`` best complete trials, then how many were pruned or failed."""
    label = metric_label(found.metric)
    table = Table(title=f"Top trials by the clients' own {label}")
    table.add_column("#", justify="right")
    table.add_column("trial", justify="right")
    table.add_column(label, justify="right")
    table.add_column("parameters")
    table.add_column("run")
    for rank, row in enumerate(found.top(count), start=1):
        table.add_row(
            str(rank), str(row.number), f"{row.value:.4f}", escape(params_text(row)),
            escape(row.run or "-"),
        )  # fmt: skip
    states = [t.state for t in found.trials]
    table.caption = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states))
    return table


def params_text(row: TrialRow) -> str:
    """A trial's drawn values in a line: ``strategy fedprox, learning-rate 0.0012, ...``."""
    return ", ".join(f"{k} {_value(v)}" for k, v in row.params.items())


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:.4g}" if isinstance(value, float) else str(value)
