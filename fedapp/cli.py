"""The ``fedapp`` command line.

Heavy imports (TensorFlow, Flower, Ray) happen inside the commands that need
them, so ``--help`` and ``fedapp strategies`` answer at once.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fedapp.config import RunConfig, read_toml
from fedapp.errors import UsageError
from fedapp.runs import json_safe

app = typer.Typer(
    help="Federated learning across institutions on Flower: each keeps its rows, "
    "only weights, aggregate statistics and metrics travel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

_STRATEGY_HELP = (
    "Strategy parameters are passed as further flags, e.g. "
    "--proximal-mu 0.1 for fedprox; `fedapp strategies` lists them."
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _strategy_args(args: list[str]) -> dict[str, str]:
    """Parse ``--name value`` / ``--name=value`` pairs left over by the parser."""
    out: dict[str, str] = {}
    items = iter(args)
    for token in items:
        if not token.startswith("--") or len(token) < 3:
            raise UsageError(f"unexpected argument {token!r}")
        name, eq, value = token[2:].partition("=")
        if not eq:
            value = next(items, None)
            if value is None or value.startswith("--"):
                raise UsageError(f"option --{name} needs a value")
        out[name] = value
    return out


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=_STRATEGY_HELP,
)
def simulate(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML file with run settings; flags override it."),
    ] = None,
    clients: Annotated[
        int | None, typer.Option(help="Institutions in the federation. [default: 3]")
    ] = None,
    clients_per_round: Annotated[
        int | None, typer.Option(help="Clients sampled per round. [default: all]")
    ] = None,
    rounds: Annotated[int | None, typer.Option(help="Federated rounds. [default: 10]")] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help="Strategy plugin (see `fedapp strategies`). [default: fedavg]"),
    ] = None,
    local_epochs: Annotated[
        int | None, typer.Option(help="Local epochs per round. [default: 1]")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Local batch size. [default: 32]")] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="Clients' Adam learning rate. [default: 0.001]")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of data, split, weights, order. [default: 42]")
    ] = None,
    partition: Annotated[
        str | None,
        typer.Option(help="iid, dirichlet:ALPHA or column:NAME. [default: column:institution]"),
    ] = None,
    demo_rows: Annotated[
        int | None, typer.Option(help="Rows of the built-in churn table. [default: 12000]")
    ] = None,
    test_fraction: Annotated[
        float | None, typer.Option(help="Share of each client's rows held out. [default: 0.2]")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory. [default: runs/<time>-<strategy>-<id>]")
    ] = None,
    runs_root: Annotated[
        Path, typer.Option("--runs-dir", help="Folder for generated run directories.")
    ] = Path("runs"),
    baseline: Annotated[
        bool | None,
        typer.Option("--baseline/--no-baseline", help="Train the centralized baseline too."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")] = False,
    verbose: Annotated[bool, typer.Option(help="Show Flower's and Ray's logs.")] = False,
) -> None:
    """Run a federation on Flower's simulation engine and write its run directory."""
    flags: dict[str, Any] = {
        "clients": clients, "clients-per-round": clients_per_round, "rounds": rounds,
        "strategy": strategy, "local-epochs": local_epochs, "batch-size": batch_size,
        "learning-rate": learning_rate, "seed": seed, "partition": partition,
        "demo-rows": demo_rows, "test-fraction": test_fraction, "baseline": baseline,
        "run-dir": str(run_dir) if run_dir else None,
    }  # fmt: skip
    try:
        base = read_toml(config) if config else {}
        settings = {**base, **{k: v for k, v in flags.items() if v is not None}}
        extra = _strategy_args(ctx.args)
        if extra:
            settings["strategy-params"] = {**base.get("strategy-params", {}), **extra}
        cfg = RunConfig.from_mapping(settings, source=str(config) if config else "options")
        _run(cfg, runs_root, as_json, verbose)
    except UsageError as err:
        raise _fail(str(err)) from None


def _run(cfg: RunConfig, runs_root: Path, as_json: bool, verbose: bool) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from fedapp import engine

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("round {task.completed}/{task.total}"),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
        console=console,
        transient=as_json,
        disable=not console.is_terminal and not verbose,
    )
    with progress:
        task = progress.add_task("starting", total=cfg.rounds, metrics="")

        def on_event(event: dict[str, Any]) -> None:
            m = event["metrics"]
            if event["stage"] == "evaluate" and event["scope"] == "centralized":
                progress.update(
                    task,
                    description=f"{cfg.strategy}",
                    completed=event["round"],
                    metrics=f"AUC {m['auc']:.4f}  loss {m['loss']:.4f}",
                )
            if not console.is_terminal and event["scope"] == "centralized":
                console.print(
                    f"round {event['round']}/{cfg.rounds}: auc {m['auc']:.4f} "
                    f"accuracy {m['accuracy']:.4f} loss {m['loss']:.4f}",
                    highlight=False,
                )

        try:
            run_dir, summary = engine.simulate(cfg, runs_root, on_event, verbose)
        except KeyboardInterrupt:
            progress.stop()
            console.print("[bold yellow]stopped:[/] the run is marked stopped", soft_wrap=True)
            _exit_now(130)
        except UsageError:
            raise
        except Exception as err:
            raise _fail(f"run failed: {engine._reason(err)}", 1) from None
        if cfg.baseline:
            progress.update(task, description="done")
    if as_json:
        sys.stdout.write(json.dumps(json_safe(summary), indent=2) + "\n")
        return
    _print_summary(run_dir.path, summary)


def _exit_now(code: int) -> None:
    """Exit at once: Flower's server thread cannot be cancelled once interrupted.

    The run directory is already marked ``stopped``; Ray's processes share
    this process's fate and end with it.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_summary(path: Path, summary: dict[str, Any]) -> None:
    table = Table(title=f"{summary['strategy']}, {summary['rounds']} rounds (global test set)")
    table.add_column("metric")
    table.add_column("federated", justify="right")
    has_central = "centralized" in summary
    if has_central:
        table.add_column("centralized", justify="right")
        table.add_column("gap", justify="right")
    for name in ("auc", "accuracy", "loss"):
        row = [name, f"{summary['federated'][name]:.4f}"]
        if has_central:
            row += [f"{summary['centralized'][name]:.4f}", f"{summary['gap'][name]:+.4f}"]
        table.add_row(*row)
    out = Console()
    out.print(table)
    out.print(f"wall time {summary['wall_seconds']:.1f} s; run directory: {path}")


@app.command()
def strategies(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the installed strategy plugins and their parameters."""
    from fedapp import registry

    try:
        plugins = registry.installed()
    except UsageError as err:
        raise _fail(str(err)) from None
    if as_json:
        listing = [
            {
                "name": p.name,
                "summary": p.summary,
                "params": [
                    {
                        "name": q.name,
                        "type": q.type.__name__,
                        "default": q.default,
                        "help": q.help,
                        "choices": q.choices,
                        "minimum": q.minimum,
                    }
                    for q in p.params
                ],
            }
            for p in plugins.values()
        ]
        sys.stdout.write(json.dumps(listing, indent=2) + "\n")
        return
    table = Table(title="Installed strategies")
    table.add_column("name", style="bold")
    table.add_column("summary")
    table.add_column("parameters")
    for p in plugins.values():
        params = "\n".join(
            f"--{q.name} ({q.type.__name__}, default {q.default!r}): {q.help}" for q in p.params
        )
        table.add_row(p.name, p.summary, params or "-")
    Console().print(table)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
