"""``fedapp simulate`` and ``fedapp inspect``: the commands that load a federation's data.

Their setting flags are not written here: each is generated from the
setting's one declaration (:func:`fedapp.settings.fields`), its help showing
the declared default and range. The strategy's and the model's own parameters
are further ``--name value`` flags, each sent to the plugin that declares it.
"""

from __future__ import annotations

import inspect as signatures
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand

from fedapp import registry
from fedapp.cli.app import app
from fedapp.cli.output import (
    console,
    exit_now,
    fail,
    failures_line,
    print_notes,
    skipped_line,
    warn,
)
from fedapp.cli.render import clients_table, print_summary, round_scores, schema_table
from fedapp.errors import UsageError
from fedapp.runs import (
    Event,
    EventListener,
    Phase,
    PhaseListener,
    RunDir,
    RunView,
    Scope,
    Stage,
    json_safe,
)
from fedapp.settings import (
    AUTO_ROUNDS,
    AUTO_ROUNDS_SETTINGS,
    DATA_SECTIONS,
    RunConfig,
    Setting,
    describe,
    fields,
    read_settings,
)


def _leftover_args(args: list[str]) -> dict[str, str]:
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


def _option(entry: Setting) -> signatures.Parameter:
    """The ``--key`` option of one setting: unset (``None``) unless given."""
    # A number that also takes a word (rounds auto) is read as text, then parsed.
    item: Any = str if entry.words else entry.type
    kind: Any = list[item] if entry.many else item
    decls = f"--{entry.key}/--no-{entry.key}" if entry.type is bool else f"--{entry.key}"
    limits = entry.range_text()
    hint = " Repeat the option for each." if entry.many else ""
    shown = f"{entry.help}{hint}" + (f" [{limits}]" if limits else "")
    option = typer.Option(
        decls,
        # The option's own default is None (unset: a --config file's value stands).
        help=escape(f"{shown} [default: {entry.default_text}]"),
        show_default=False,
        rich_help_panel=entry.section,
    )
    return signatures.Parameter(
        entry.name, signatures.Parameter.KEYWORD_ONLY, default=None,
        annotation=Annotated[kind | None, option],
    )  # fmt: skip


def _cli_only(name: str, annotation: Any, default: Any) -> signatures.Parameter:
    return signatures.Parameter(
        name, signatures.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


_CONFIG = _cli_only(
    "config",
    Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file with run settings, or a run's config.json to run it again; "
            "flags override it.",
        ),
    ],
    None,
)
_JSON_HELP = "Print summary.json to stdout."
_VERBOSE_HELP = "Show Flower's and Ray's logs."
_JSON = _cli_only("as_json", Annotated[bool, typer.Option("--json", help=_JSON_HELP)], False)
_VERBOSE = _cli_only("verbose", Annotated[bool, typer.Option(help=_VERBOSE_HELP)], False)
_CONTEXT = signatures.Parameter(
    "ctx", signatures.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
)


def _with_settings(*params: signatures.Parameter, sections: tuple[str, ...] = ()) -> Any:
    """Give a command the options of the settings of ``sections`` (all without) after ``params``.

    The command receives each setting by its attribute name, ``None`` when not given.
    """
    options = [_option(entry) for entry in fields(*sections) if entry.cli]

    def decorate(command: Any) -> Any:
        command.__signature__ = signatures.Signature([*params, *options])
        return command

    return decorate


def _config(config: Path | None, options: dict[str, Any], args: list[str]) -> RunConfig:
    """Build the RunConfig: defaults < TOML file < flags < plugin flags in ``args``.

    A flag overrides what the file says along with what depends on it: another
    ``--strategy`` or ``--model`` starts from that plugin's own defaults (the
    file's parameters were the old one's), another ``--data`` or
    ``--client-data`` has no recorded hash to match, a number of ``--rounds``
    drops an automatic run's ``max-rounds``, ``patience``, ... .
    """
    flags = {
        describe(name).key: value
        for name, value in options.items()
        if value is not None and value != []
    }
    base = read_settings(config) if config else {}
    for setting, keys in _PARAM_KEYS.items():
        chosen = base.get(setting, describe(setting).default)
        if flags.get(setting, chosen) != chosen:
            base = {k: v for k, v in base.items() if not k.startswith(keys)}
    if {"data", "client-data"} & flags.keys():
        base.pop(describe("data_sha256").key, None)
    if str(flags.get("rounds", AUTO_ROUNDS)).strip().lower() != AUTO_ROUNDS:
        # A fixed number of rounds has no use for an automatic run's stopping settings.
        base = {k: v for k, v in base.items() if k not in _AUTO_KEYS}
    settings = {**base, **flags}
    for table, params in _plugin_args(settings, _leftover_args(args)).items():
        settings[table] = {**base.get(table, {}), **params}
    return RunConfig.from_mapping(settings, source=str(config) if config else "options")


# The keys of a file that hold a plugin's parameters: a table, or Flower's flat
# `TABLE.NAME` keys; and, for the model, the MLP's old `hidden-units` key.
_PARAM_KEYS = {"strategy": ("strategy-params",), "model": ("model-params", "hidden-units")}
_AUTO_KEYS = frozenset(describe(name).key for name in AUTO_ROUNDS_SETTINGS)


def _plugin_args(settings: dict[str, Any], extra: dict[str, str]) -> dict[str, dict[str, str]]:
    """Send each ``--name value`` to the strategy or the model that declares ``name``.

    Raises
    ------
    UsageError
        For a name both plugins declare, or neither, naming both plugins' parameters.

    """
    if not extra:
        return {}
    strategy = registry.get(settings.get("strategy", describe("strategy").default))
    model = registry.get_model(settings.get("model", describe("model").default))
    routed: dict[str, dict[str, str]] = {}
    for name, value in extra.items():
        owners = [p for p in (strategy, model) if name in {q.name for q in p.params}]
        if len(owners) == 2:
            raise UsageError(
                f"--{name} is a parameter of both strategy '{strategy.name}' (its parameters: "
                f"{strategy.flags()}) and model '{model.name}' (its parameters: "
                f"{model.flags()}); set it in a --config file's strategy-params or "
                "model-params table"
            )
        if not owners:
            raise UsageError(
                f"strategy '{strategy.name}' has no parameter --{name} (its parameters: "
                f"{strategy.flags()}), nor has model '{model.name}' (its parameters: "
                f"{model.flags()})"
            )
        table = "strategy-params" if owners[0] is strategy else "model-params"
        routed.setdefault(table, {})[name] = value
    return routed


def plugin_flags() -> str:
    """The epilog of ``simulate --help``: each installed strategy's and model's parameter flags."""
    groups = (
        ("Strategy parameters are further flags (`fedapp strategies` explains them):",
         registry.installed()),
        ("Model parameters are further flags too (`fedapp models` explains them):",
         registry.models()),
    )  # fmt: skip
    lines = []
    for heading, plugins in groups:
        lines.append(heading)
        lines += [escape(f"{p.name}: {p.flags()}") for p in plugins.values() if p.params]
    return "\n\n".join(lines)


class _PluginFlagsHelp(TyperCommand):
    """A command whose ``--help`` ends with :func:`plugin_flags`, read when it is shown.

    Plugins can be installed or registered after the command is declared.
    """

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.epilog = plugin_flags()
        super().format_help(ctx, formatter)


@app.command(
    cls=_PluginFlagsHelp,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@_with_settings(_CONTEXT, _CONFIG, _JSON, _VERBOSE)
def simulate(
    ctx: typer.Context, config: Path | None, as_json: bool, verbose: bool, **settings: Any
) -> None:
    """Run a federation on Flower's simulation engine and write its run directory."""
    try:
        cfg = _config(config, settings, ctx.args)
        run_simulation(cfg, as_json, verbose)
    except UsageError as err:
        raise fail(str(err)) from None
    except KeyboardInterrupt:
        # Stopped while the data was being checked: no run directory was made.
        console.print("[bold yellow]stopped[/] before the run started", soft_wrap=True)
        exit_now(130)


@app.command()
@_with_settings(_CONFIG, sections=DATA_SECTIONS)
def inspect(config: Path | None, **settings: Any) -> None:
    """Show the schema, class balance, warnings and per-client split of the data."""
    # pandas: only the commands that load data pay for it, never `--help`.
    from fedapp import data as data_layer

    try:
        cfg = _config(config, settings, [])
        loaded = data_layer.load_federation(cfg)
    except UsageError as err:
        raise fail(str(err)) from None
    print_notes(loaded)
    out = Console()
    out.print(schema_table(loaded))
    out.print(clients_table(loaded, cfg))


@app.command()
def resume(
    run_dir: Annotated[
        Path, typer.Argument(help="The run's directory (runs/<id>).", show_default=False)
    ],
    rounds: Annotated[
        int | None,
        typer.Option(
            help="Extend the run to this many rounds (a finished run needs it).",
            min=1,
            show_default=False,
        ),
    ] = None,
    other_host: Annotated[
        bool,
        typer.Option(
            help="Resume a run recorded as running on another machine, once its "
            "process there is known to be gone."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_HELP)] = False,
    verbose: Annotated[bool, typer.Option(help=_VERBOSE_HELP)] = False,
) -> None:
    """Continue a run that crashed, was killed or stopped, from its newest checkpoint.

    Its metrics.jsonl is rewound to the checkpoint's round and gets a
    `resumed` event; the run then goes on as it would have, to its last
    round, or to --rounds N to extend a finished run. Refused while the
    run's process is alive, or when its config.json no longer matches the
    checkpoint.
    """
    # TensorFlow, Flower and Ray: only a run pays for them, never `--help`.
    from fedapp import simulation as engine

    try:
        cfg, run, warnings = engine.prepare_resume(run_dir, rounds, other_host)
        for line in warnings:
            warn(line)
        done = run.checkpoint.round
        console.print(
            f"resuming run {escape(str(run.run_dir.path))} after round {done} of "
            f"{cfg.round_limit}", highlight=False,
        )  # fmt: skip
        follow_run(
            cfg, as_json, verbose, engine.check(cfg).task,
            lambda on_event, on_phase: engine.continue_run(
                cfg, run, warnings, on_event, verbose, on_phase
            ),
        )  # fmt: skip
    except UsageError as err:
        raise fail(str(err)) from None


def run_simulation(cfg: RunConfig, as_json: bool, verbose: bool) -> None:
    """Run ``cfg`` on the simulation engine, showing progress; print the summary."""
    # TensorFlow, Flower and Ray: only a run pays for them, never `--help`.
    from fedapp import simulation as engine

    loaded = engine.check(cfg)  # cached: the run below reuses the loaded data
    print_notes(loaded)

    def start(on_event: EventListener, on_phase: PhaseListener) -> tuple[RunDir, dict[str, Any]]:
        return engine.simulate(cfg, Path(cfg.runs_dir), on_event, verbose, on_phase)

    follow_run(cfg, as_json, verbose, loaded.task, start)


def follow_run(
    cfg: RunConfig,
    as_json: bool,
    verbose: bool,
    task_name: str,
    start: Callable[[EventListener, PhaseListener], tuple[RunDir, dict[str, Any]]],
) -> None:
    """Show a run's progress while ``start`` runs it; print its summary.

    ``start(on_event, on_phase)`` runs it (simulates it, or resumes it).
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    # The engine names a failure's reason; it is loaded by the time a run starts.
    from fedapp import simulation as engine

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
        console=console,
        transient=as_json,
        disable=not console.is_terminal and not verbose,
    )
    with progress:
        task = progress.add_task("starting", total=None, count="", metrics="")
        shown: list[str] = []  # the steps already named, when there is no live display

        def on_phase(phase: Phase) -> None:
            count = f"{phase.done}/{phase.total}" if phase.total else ""
            progress.update(task, description=phase.label, total=phase.total or None,
                            completed=phase.done, count=count)  # fmt: skip
            if not console.is_terminal and phase.name not in shown:
                shown.append(phase.name)
                console.print(f"{phase.label} ...", highlight=False)

        def on_event(event: Event) -> None:
            for line in (failures_line(event), skipped_line(event)):
                if line:
                    warn(line)  # above the live progress display: they share the console
            if event.stage is not Stage.EVALUATE:
                return
            if event.scope is Scope.FEDERATED:  # every round, whatever eval-every says
                count = f"round {event.round}/{cfg.round_limit}"
                progress.update(task, description=cfg.strategy, total=cfg.round_limit,
                                completed=event.round, count=count)  # fmt: skip
                return
            shown = round_scores(event.metrics, task_name)
            progress.update(task, metrics=shown)
            if not console.is_terminal:
                console.print(f"round {event.round}/{cfg.round_limit}: {shown}", highlight=False)

        try:
            run_dir, summary = start(on_event, on_phase)
        except KeyboardInterrupt as stop:
            progress.stop()
            console.print(f"[bold yellow]stopped:[/] {escape(_stopped(stop))}", soft_wrap=True)
            exit_now(130)
        except UsageError:
            raise
        except Exception as err:
            raise fail(f"run failed: {engine.failure_reason(err)}", 1) from None
        progress.update(task, description="done", count="", total=1, completed=1)
    if as_json:
        sys.stdout.write(json.dumps(json_safe(summary), indent=2) + "\n")
        return
    print_summary(run_dir.path, summary)


def _stopped(stop: KeyboardInterrupt) -> str:
    """What a stop left: the run marked stopped, and the model it kept, if any."""
    run_dir = getattr(stop, "run_dir", None)
    if run_dir is None:
        return "the run is marked stopped"
    view = RunView.read(run_dir.path)
    kept = view.partial_round
    model = f"; it keeps the global model of round {kept}" if kept else ""
    return f"run {view.path} is marked stopped{model}"
