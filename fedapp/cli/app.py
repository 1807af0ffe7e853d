"""The ``fedapp`` command line.

Heavy imports (TensorFlow, Flower, Ray) happen inside the commands that need
them, so ``--help`` and ``fedapp strategies`` answer at once.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedapp.errors import UsageError
from fedapp.runs import RunDir, client_label, json_safe
from fedapp.settings import RunConfig, read_settings

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
        raise _fail(str(err)) from None


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
        raise _fail(str(err)) from None
    _print_notes(loaded)
    out = Console()
    out.print(_schema_table(loaded))
    out.print(_clients_table(loaded, cfg))


def _schema_table(loaded: Any) -> Table:
    import pandas as pd

    pooled = pd.concat([c.train for c in loaded.clients] + [c.test for c in loaded.clients])
    schema = loaded.schema
    positives = int(pooled[schema.target].sum())
    table = Table(
        title=f"{len(pooled)} rows; target '{schema.target}': {positives} positive "
        f"({positives / len(pooled):.1%})"
    )
    for name in ("column", "kind", "missing", "summary"):
        table.add_column(name)
    for column in schema.numeric:
        values = pooled[column]
        table.add_row(
            column, "numeric", str(int(values.isna().sum())),
            f"mean {values.mean():.4g}, std {values.std():.4g}, "
            f"min {values.min():.4g}, max {values.max():.4g}",
        )  # fmt: skip
    for column in schema.categorical:
        values = pooled[column]
        top = values.value_counts().head(3)
        shown = ", ".join(f"{k} ({v})" for k, v in top.items())
        table.add_row(
            column, "categorical", str(int(values.isna().sum())),
            f"{values.nunique()} values: {shown}{', ...' if values.nunique() > 3 else ''}",
        )  # fmt: skip
    return table


def _clients_table(loaded: Any, cfg: RunConfig) -> Table:
    split = "one file per client" if cfg.client_data else f"partition {cfg.resolved_partition}"
    table = Table(title=f"{len(loaded.clients)} clients ({split})")
    for name in ("client", "source", "rows", "train", "test", "positive rate"):
        table.add_column(name, justify="right" if name not in ("source",) else "left")
    target = loaded.schema.target
    for pid, client in enumerate(loaded.clients):
        rows = client.train[target].tolist() + client.test[target].tolist()
        table.add_row(
            str(pid), escape(client.source), str(len(rows)), str(len(client.train)),
            str(len(client.test)), f"{sum(rows) / len(rows):.1%}",
        )  # fmt: skip
    return table


def _run(cfg: RunConfig, runs_root: Path, as_json: bool, verbose: bool) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from fedapp import simulation as engine

    _print_notes(engine.check(cfg))  # cached: the run below reuses the loaded data
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
            raise _fail(f"run failed: {engine.failure_reason(err)}", 1) from None
        if cfg.baseline:
            progress.update(task, description="done")
    if as_json:
        sys.stdout.write(json.dumps(json_safe(summary), indent=2) + "\n")
        return
    _print_summary(run_dir.path, summary)


def _print_notes(loaded: Any) -> None:
    for note in loaded.notes:
        console.print(f"[dim]note:[/] {note}", highlight=False, soft_wrap=True)
    for warning in loaded.warnings:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


def _exit_now(code: int) -> None:
    """Exit at once: Flower's server thread cannot be cancelled once interrupted.

    The run directory is already marked ``stopped``; Ray's processes share
    this process's fate and end with it.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_summary(path: Path, summary: dict[str, Any]) -> None:
    """Print the final metrics, the baselines' and each institution's local-only AUC."""
    import math

    from fedapp.runs import METRIC_LABELS, METRIC_NAMES

    def fmt(value: float | None, signed: bool = False) -> str:
        # AUCs are NaN when a test set holds one class; show a dash, not "nan".
        if value is None or not math.isfinite(value):
            return "-"
        return f"{value:+.4f}" if signed else f"{value:.4f}"

    table = Table(title=f"{summary['strategy']}, {summary['rounds']} rounds (global test set)")
    table.add_column("metric")
    table.add_column("federated", justify="right")
    has_central = "centralized" in summary
    if has_central:
        table.add_column("centralized", justify="right")
        table.add_column("gap", justify="right")
    for name in METRIC_NAMES:
        row = [METRIC_LABELS[name], fmt(summary["federated"][name])]
        if has_central:
            row += [fmt(summary["centralized"][name]), fmt(summary["gap"][name], signed=True)]
        table.add_row(*row)
    out = Console()
    out.print(table)
    local = summary.get("local_only")
    if local:
        # What joining buys each institution: its model alone vs the federated
        # one, both scored on the same global test set.
        federated_auc = summary["federated"]["auc"]
        gains = {pid: federated_auc - m["auc"] for pid, m in local.items()}
        better = sum(1 for g in gains.values() if g > 0)
        joining = Table(
            title="AUC alone vs federated",
            caption=f"federated beats local-only for {better} of {len(local)} institutions",
        )
        joining.add_column("institution")
        joining.add_column("local-only", justify="right")
        joining.add_column("federated", justify="right")
        joining.add_column("gain", justify="right")
        sources = RunDir(path).read_config().get("client-sources", [])
        for pid in sorted(local, key=int):
            name = client_label(sources[int(pid)]) if int(pid) < len(sources) else pid
            joining.add_row(
                escape(f"{pid} {name}" if name != pid else pid),
                fmt(local[pid]["auc"]), fmt(federated_auc), fmt(gains[pid], signed=True),
            )  # fmt: skip
        out.print(joining)
    private = summary.get("privacy")
    if private:
        reason = summary.get("reason")
        stopped = f"; stopped after round {summary['rounds']}: {reason}" if reason else ""
        out.print(
            f"differential privacy ({private['mode']}): ε = {fmt(private['epsilon'])} "
            f"at δ = {private['delta']:g}{stopped}"
        )
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


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@app.command()
def ui(
    runs_dir: Annotated[
        Path, typer.Option(help="Folder of run directories: where runs are read and written.")
    ] = Path("runs"),
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder whose CSV/Parquet files may be picked by path in the UI. "
            "[default: the runs folder]"
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
    host: Annotated[
        str,
        typer.Option(help="Address to bind. Anything but loopback lets others start runs."),
    ] = "127.0.0.1",
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="Open the UI in a browser.")
    ] = True,
) -> None:
    """Serve the web UI: launch simulations, watch them live, compare runs."""
    import socket
    import subprocess
    import time
    import webbrowser

    import fedapp_ui

    runs = runs_dir.resolve()
    data = (data_dir or runs_dir).resolve()
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _fail(f"cannot create the runs folder {runs}: {err.strerror}") from None
    if not data.is_dir():
        raise _fail(f"--data-dir {data} is not a folder")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            message = f"cannot serve on {host}:{port}: {err.strerror}; try another --port"
            raise _fail(message) from None
    if host not in _LOOPBACK:
        console.print(
            f"[bold yellow]warning:[/] serving on {host}: anyone who can reach it can start "
            "runs and read their results",
            highlight=False,
        )
    script = Path(fedapp_ui.__file__).with_name("app.py")
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", host, "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal", "--theme.base", "light",
        "--theme.primaryColor", "#2563eb",
    ]  # fmt: skip
    env = {**os.environ, "FEDAPP_UI_RUNS_DIR": str(runs), "FEDAPP_UI_DATA_DIR": str(data)}
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    console.print(
        f"fedapp UI on [bold]{url}[/]; runs in {runs}, data files from {data}. Ctrl-C stops it.",
        highlight=False,
        soft_wrap=True,
    )
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        if browser:
            time.sleep(2.0)  # let the server come up before the browser asks
            if server.poll() is None:
                webbrowser.open(url)
        code = server.wait()
    except KeyboardInterrupt:  # the server got the same Ctrl-C: let it finish
        code = server.wait()
    if code not in (0, -2, 130):
        raise _fail(f"the UI server exited with code {code}", 1)


@app.command()
def certs(
    out: Annotated[Path, typer.Option(help="Folder for the certificates and keys.")],
    superlink_host: Annotated[
        list[str],
        typer.Option(
            help="DNS name or IP address the SuperLink is reached at (repeatable; "
            "each becomes a subject alternative name)."
        ),
    ],
    node: Annotated[
        list[str] | None,
        typer.Option(
            help="SuperNode name, one key pair each (repeatable).  [default: bank, telco, clinic]"
        ),
    ] = None,
    days: Annotated[int, typer.Option(help="Validity of the certificates.")] = 365,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """Make a CA, the SuperLink's TLS certificate and one key pair per SuperNode."""
    from fedapp.deploy.certs import generate

    try:
        paths = generate(out, superlink_host, node or ["bank", "telco", "clinic"], days, overwrite)
    except UsageError as err:
        raise _fail(str(err)) from None
    console.print(f"CA and SuperLink certificate in {out}; private keys are mode 0600.")
    for name, (_, public) in paths.node_keys.items():
        console.print(f"  {name}: register with `flwr supernode register {public}`")


_LAUNCH = {
    "context_settings": {"allow_extra_args": True, "ignore_unknown_options": True},
    "add_help_option": False,
}


@app.command(**_LAUNCH)
def superlink(ctx: typer.Context) -> None:
    """Check certificates, then run flower-superlink with the same arguments."""
    _launch("superlink", ctx.args)


@app.command(**_LAUNCH)
def superexec(ctx: typer.Context) -> None:
    """Wait for the SuperLink, then run flower-superexec with the same arguments."""
    _launch("superexec", ctx.args)


@app.command(**_LAUNCH)
def supernode(ctx: typer.Context) -> None:
    """Check keys, data file and SuperLink, then run flower-supernode with the same arguments."""
    _launch("supernode", ctx.args)


def _launch(role: str, args: list[str]) -> None:
    from fedapp.deploy import processes as deploy

    try:
        wait = float(os.environ.get("FEDAPP_SUPERLINK_WAIT", deploy.DEFAULT_WAIT))
    except ValueError:
        raise _fail("FEDAPP_SUPERLINK_WAIT must be a number of seconds") from None
    # Flower's own --help (and --version) answer without anything to check.
    if not {"-h", "--help", "-V", "--version"} & set(args):
        try:
            deploy.preflight(role, args, wait)
        except UsageError as err:
            raise _fail(f"{role}: {err}") from None
    sys.stdout.flush()
    sys.stderr.flush()
    deploy.exec_flower(role, args)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
