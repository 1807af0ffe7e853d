"""``fedapp simulate`` and ``fedapp inspect``: the commands that load a federation's data."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fedapp.cli.app import app
from fedapp.cli.output import console, exit_now, fail, print_notes
from fedapp.cli.render import clients_table, print_summary, schema_table
from fedapp.errors import UsageError
from fedapp.runs import json_safe
from fedapp.settings import RunConfig, read_settings

_STRATEGY_HELP = (
    "Strategy parameters are passed as further flags, e.g. "
    "--proximal-mu 0.1 for fedprox; `fedapp strategies` lists them."
)


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


# Options shared by the commands that load data (declared once, used by each).
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML file with run settings, or a run's config.json to run it again; "
        "flags override it.",
    ),
]
Clients = Annotated[
    int | None,
    typer.Option(help="Institutions in the federation. [default: 3, or one per --client-data]"),
]
Seed = Annotated[
    int | None, typer.Option(help="Seed of data, split, weights, order. [default: 42]")
]
Partition = Annotated[
    str | None,
    typer.Option(
        help="iid, dirichlet:ALPHA (label skew), quantity:ALPHA (size skew) or column:NAME. "
        "[default: column:institution for the demo, iid for a file]"
    ),
]
Data = Annotated[
    Path | None, typer.Option(help="One CSV/Parquet table, split into clients by --partition.")
]
ClientData = Annotated[
    list[Path] | None,
    typer.Option(help="One CSV/Parquet file per institution (repeat the option)."),
]
Target = Annotated[str | None, typer.Option(help="Binary target column (required with a file).")]
PositiveLabel = Annotated[
    str | None, typer.Option(help="Target value meaning positive. [default: inferred yes/true/1]")
]
IdColumn = Annotated[
    str | None, typer.Option(help="Identifier column: never a feature, never sent.")
]
Drop = Annotated[list[str] | None, typer.Option(help="Column that is not a feature (repeatable).")]
Categorical = Annotated[
    list[str] | None, typer.Option(help="Treat this column as categorical (repeatable).")
]
MinCategoryCount = Annotated[
    int | None,
    typer.Option(help="Rarer categories fold into 'other' and are never sent. [default: 5]"),
]
DemoRows = Annotated[
    int | None, typer.Option(help="Rows of the built-in churn table. [default: 12000]")
]
TestFraction = Annotated[
    float | None, typer.Option(help="Share of each client's rows held out. [default: 0.2]")
]

_FIELDS = {f.name for f in fields(RunConfig)}


def _config(config: Path | None, options: dict[str, Any], args: list[str]) -> RunConfig:
    """Build the RunConfig: defaults < TOML file < flags < strategy flags in ``args``."""
    flags = {
        name.replace("_", "-"): _plain(value)
        for name, value in options.items()
        if name in _FIELDS and value is not None and value != []
    }
    base = read_settings(config) if config else {}
    settings = {**base, **flags}
    extra = _strategy_args(args)
    if extra:
        settings["strategy-params"] = {**base.get("strategy-params", {}), **extra}
    return RunConfig.from_mapping(settings, source=str(config) if config else "options")


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=_STRATEGY_HELP,
)
def simulate(
    ctx: typer.Context,
    config: ConfigFile = None,
    clients: Clients = None,
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
    seed: Seed = None,
    partition: Partition = None,
    data: Data = None,
    client_data: ClientData = None,
    target: Target = None,
    positive_label: PositiveLabel = None,
    id_column: IdColumn = None,
    drop: Drop = None,
    categorical: Categorical = None,
    min_category_count: MinCategoryCount = None,
    demo_rows: DemoRows = None,
    test_fraction: TestFraction = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory. [default: runs/<time>-<strategy>-<id>]")
    ] = None,
    runs_root: Annotated[
        Path, typer.Option("--runs-dir", help="Folder for generated run directories.")
    ] = Path("runs"),
    baseline: Annotated[
        bool | None,
        typer.Option(
            "--baseline/--no-baseline",
            help="Also train the centralized and per-institution local-only baselines.",
        ),
    ] = None,
    malicious: Annotated[
        int | None,
        typer.Option(help="Simulated attackers, drawn from the seed (with --attack). [default: 0]"),
    ] = None,
    attack: Annotated[
        str | None,
        typer.Option(help="What attackers send: sign-flip:F, scale:F, gaussian:SIGMA, label-flip."),
    ] = None,
    anomaly_threshold: Annotated[
        float | None,
        typer.Option(help="Robust z-score beyond which an update is flagged. [default: 3.5]"),
    ] = None,
    secure_aggregation: Annotated[
        bool | None,
        typer.Option(
            "--secure-aggregation/--no-secure-aggregation",
            help="Aggregate with SecAgg+: the server sees only the masked sum of the "
            "clients' weights.",
        ),
    ] = None,
    secagg_shares: Annotated[
        int | None,
        typer.Option(help="SecAgg+ shares per client secret. [default: clients per round]"),
    ] = None,
    secagg_threshold: Annotated[
        int | None,
        typer.Option(help="SecAgg+ shares needed to unmask. [default: 2/3 of the shares]"),
    ] = None,
    secagg_clipping_range: Annotated[
        float | None,
        typer.Option(help="SecAgg+ clips weights to [-range, range]. [default: 8.0]"),
    ] = None,
    secagg_quantization_bits: Annotated[
        int | None,
        typer.Option(help="SecAgg+ quantises each weight to this many bits. [default: 22]"),
    ] = None,
    dp: Annotated[
        str | None,
        typer.Option(
            help="Differential privacy: none; central (client-level: clip each update, "
            "noise the aggregate); record (DP-SGD in each client). [default: none]"
        ),
    ] = None,
    noise_multiplier: Annotated[
        float | None,
        typer.Option(help="DP noise standard deviation / clip norm, >= 0. [default: 1.0]"),
    ] = None,
    clip_norm: Annotated[
        float | None,
        typer.Option(
            help="DP L2 bound of a client's update (central) or of one example's "
            "gradient (record), > 0. [default: 1.0]"
        ),
    ] = None,
    dp_clipping: Annotated[
        str | None,
        typer.Option(help="Where central DP clips updates: server or client. [default: server]"),
    ] = None,
    target_epsilon: Annotated[
        float | None,
        typer.Option(
            help="Privacy budget ε > 0: central DP ends the run before the round that "
            "would exceed it; under record DP each client stops training at its own."
        ),
    ] = None,
    delta: Annotated[
        float | None, typer.Option(help="The δ of (ε, δ)-DP, in (0, 1). [default: 1e-05]")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")] = False,
    verbose: Annotated[bool, typer.Option(help="Show Flower's and Ray's logs.")] = False,
) -> None:
    """Run a federation on Flower's simulation engine and write its run directory."""
    try:
        cfg = _config(config, locals(), ctx.args)
        _run(cfg, runs_root, as_json, verbose)
    except UsageError as err:
        raise fail(str(err)) from None


@app.command()
def inspect(
    config: ConfigFile = None,
    data: Data = None,
    client_data: ClientData = None,
    target: Target = None,
    positive_label: PositiveLabel = None,
    id_column: IdColumn = None,
    drop: Drop = None,
    categorical: Categorical = None,
    min_category_count: MinCategoryCount = None,
    partition: Partition = None,
    clients: Clients = None,
    seed: Seed = None,
    demo_rows: DemoRows = None,
    test_fraction: TestFraction = None,
) -> None:
    """Show the schema, class balance, warnings and per-client split of the data."""
    from fedapp import data as data_layer

    try:
        cfg = _config(config, locals(), [])
        loaded = data_layer.federation(cfg)
    except UsageError as err:
        raise fail(str(err)) from None
    print_notes(loaded)
    out = Console()
    out.print(schema_table(loaded))
    out.print(clients_table(loaded, cfg))


def _run(cfg: RunConfig, runs_root: Path, as_json: bool, verbose: bool) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from fedapp import simulation as engine

    print_notes(engine.check(cfg))  # cached: the run below reuses the loaded data
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
            exit_now(130)
        except UsageError:
            raise
        except Exception as err:
            raise fail(f"run failed: {engine.failure_reason(err)}", 1) from None
        if cfg.baseline:
            progress.update(task, description="done")
    if as_json:
        sys.stdout.write(json.dumps(json_safe(summary), indent=2) + "\n")
        return
    print_summary(run_dir.path, summary)
