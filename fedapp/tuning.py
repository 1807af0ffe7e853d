"""Hyper-parameter and strategy search in simulation, with Optuna (``fedapp tune``).

Each trial is an ordinary simulated run (:func:`fedapp.simulation.simulate`,
in this process: Ray starts once and serves every trial) whose run directory
goes into the study folder, beside the study's Optuna storage
(:mod:`fedapp.runs.study`). The objective is the task's primary score
(:func:`fedapp.runs.primary`) of the clients' own evaluation of the last
round's global model (``federated_evaluation``) on their validation rows:
a share of each client's training rows (``validation-fraction``,
:data:`VALIDATION_FRACTION` unless the base config holds out another). The
test rows, which the global test set pools, are never looked at, so they
stay a fair test of the configuration chosen. Optuna's TPE sampler,
seeded with the base config's ``seed``, proposes the trials; its median
pruner sees the clients' score after each round and stops a trial that is
worse than the median of the earlier trials at that round.

What is searched (:func:`search_space`):

- ``strategy``: among ``strategies`` (every working plugin by default);
- each strategy's and the model's declared parameters (:func:`param_dimension`);
- ``local-epochs``, ``learning-rate`` and ``batch-size``, by the same rule from
  their declarations in the settings table;
- ``label-skew-correction`` (on or off), for binary and multiclass targets.

The range of a number follows from its declaration alone (:func:`number_dimension`):
log-uniform from a tenth of its default to ten times it (integers: a
quarter to four times), cut to its declared bounds; a float whose default
is in (0, 1) and that declares no upper bound is read as a fraction and
stays below 1; a number whose default is 0 (a switch that is off, such as
dropout) is searched uniformly from its lower bound to half-way to its
upper bound, and stays at its default without one. A boolean is on or off,
a text with choices is one of them, a list of numbers (hidden-units) is
its default with every value halved, kept or doubled, and a free text
stays at its default.
"""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from fedapp import registry, simulation
from fedapp.errors import UsageError
from fedapp.registry import Param
from fedapp.runs import (
    Event,
    RunDir,
    RunState,
    Scope,
    Stage,
    StopRequest,
    higher_is_better,
    new_run_id,
    primary,
    write_text_atomic,
)
from fedapp.runs.study import (
    CONFIG_ATTR,
    ERROR_ATTR,
    METRIC_ATTR,
    RUN_ATTR,
    STUDY_NAME,
    TASK_ATTR,
    StudyTrials,
    TrialRow,
    read_trials,
    storage_url,
)
from fedapp.settings import RunConfig, Setting, describe

if TYPE_CHECKING:
    import optuna

# How far a number's range reaches either side of its default (a factor).
FLOAT_SPAN = 10.0
INT_SPAN = 4.0
# A list of numbers is searched as its default with every value scaled by one of these.
LIST_SCALES = (0.5, 1.0, 2.0)
# The settings searched besides the plugins' parameters (by attribute name).
SEARCHED_SETTINGS = ("local_epochs", "learning_rate", "batch_size")
# Searched for the tasks with classes only (it shifts the logits by label priors).
SKEW_SETTING = "label_skew_correction"
# The median pruner compares trials from this many completed ones on, and
# from a trial's second round (the first mostly scores its initial weights).
PRUNE_AFTER_TRIALS = 5
PRUNE_FROM_ROUND = 2
# Optuna's heartbeat: a trial whose process died is marked failed when the
# study is continued (after the grace period), rather than running for ever.
HEARTBEAT_SECONDS = 30
HEARTBEAT_GRACE_SECONDS = 120


@dataclass(frozen=True)
class Dimension:
    """One searched value: its name in the study and the range it is drawn from.

    Attributes
    ----------
    name : str
        The name in the study: a setting's key (``learning-rate``),
        ``strategy``, ``<strategy>.<param>`` or ``model.<param>``.
    kind : {"float", "int", "choice"}
        A number (drawn from ``low`` to ``high``) or one of ``choices``.
    low, high : float
        The range of a number, both included.
    log : bool
        Drawn log-uniformly (else uniformly).
    choices : tuple
        The values of a choice (booleans, texts, or a list as ``a,b`` text).
    many : bool
        The choices are lists of numbers, as ``a,b`` text (the study's values are scalars).

    """

    name: str
    kind: Literal["float", "int", "choice"]
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()
    many: bool = False

    def suggest(self, trial: optuna.Trial) -> Any:
        """Draw this value for ``trial``."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    @property
    def text(self) -> str:
        """The range in words: ``log-uniform in [0.0001, 0.01]``, ``one of true, false``."""
        if self.kind == "choice":
            return "one of " + ", ".join(_shown(c) for c in self.choices)
        how = "log-uniform" if self.log else "uniform"
        return f"{how} in [{self.low:g}, {self.high:g}]" + (" (integers)" * (self.kind == "int"))


def _shown(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def number_dimension(
    name: str,
    kind: type,
    default: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Dimension | None:
    """The range of a declared number, or ``None`` when it has no scale to search.

    Log-uniform over ``[default / span, default * span]`` (span
    :data:`FLOAT_SPAN`, or :data:`INT_SPAN` for integers) cut to the bounds;
    with a default of 0, uniform from ``low`` (or 0) to half-way to ``high``.
    A float whose default is in (0, 1) and that declares no upper bound is
    taken for a fraction (a decay, a momentum, a share): it stays below 1.

    Parameters
    ----------
    name : str
        The dimension's name.
    kind : type
        ``int`` or ``float``.
    default : Any
        The declared default.
    low, high : float | None
        The declared bounds, where there are.
    low_open, high_open : bool
        The bound itself is not allowed (``gt``, ``lt``, a plugin's ``less_than``).

    """
    if isinstance(default, bool) or not isinstance(default, int | float):
        return None
    if high is None and kind is float and 0 < default < 1:
        high, high_open = 1.0, True  # read as a fraction (a decay, a share, a momentum)
    if default > 0:
        span = INT_SPAN if kind is int else FLOAT_SPAN
        start, end, log = default / span, default * span, True
    elif default == 0 and high is not None:
        start = low if low is not None else 0.0
        start, end, log = start, (start + high) / 2, False
    else:
        return None
    if low is not None and start <= low:
        start = _inside(low, kind, up=True) if low_open else low
    if high is not None and end >= high:
        end = _inside(high, kind, up=False) if high_open else high
    if kind is int:
        start, end = math.ceil(start), math.floor(end)
    if start >= end:
        return None
    return Dimension(name, "int" if kind is int else "float", start, end, log=log and start > 0)


def _inside(bound: float, kind: type, up: bool) -> float:
    """The nearest allowed value next to an excluded bound."""
    if kind is int:
        return math.floor(bound) + 1 if up else math.ceil(bound) - 1
    return math.nextafter(bound, math.inf if up else -math.inf)


def param_dimension(param: Param, prefix: str) -> Dimension | None:
    """The range of a plugin's parameter, named ``<prefix>.<name>``; ``None``: not searched."""
    name = f"{prefix}.{param.name}"
    if param.type is bool and not param.many:
        return Dimension(name, "choice", choices=(False, True))
    if param.choices:
        return Dimension(name, "choice", choices=tuple(param.choices))
    if param.type not in (int, float):
        return None  # a free text: nothing to search between
    if param.many:
        return _list_dimension(name, param)
    low_open = param.greater_than is not None
    low = param.greater_than if low_open else param.minimum
    return number_dimension(
        name, param.type, param.default, low, param.less_than, low_open=low_open, high_open=True
    )


def _list_dimension(name: str, param: Param) -> Dimension | None:
    """A list of numbers: its default with every value scaled by each of :data:`LIST_SCALES`."""
    lists: list[str] = []
    for scale in LIST_SCALES:
        values = [v * scale for v in param.default]
        if param.type is int:
            values = [max(1, round(v)) for v in values]
        if param.minimum is not None:
            values = [max(v, param.minimum) for v in values]
        if param.less_than is not None and any(v >= param.less_than for v in values):
            continue
        lists.append(",".join(str(param.type(v)) for v in values))
    choices = tuple(dict.fromkeys(lists))
    return Dimension(name, "choice", choices=choices, many=True) if len(choices) > 1 else None


def setting_dimension(entry: Setting) -> Dimension | None:
    """The range of a numeric or boolean run setting, from its declaration."""
    if entry.type is bool:
        return Dimension(entry.key, "choice", choices=(False, True))
    low = entry.gt if entry.gt is not None else entry.ge
    high = entry.lt if entry.lt is not None else entry.le
    return number_dimension(
        entry.key, entry.type, entry.default, low, high,
        low_open=entry.gt is not None, high_open=entry.lt is not None,
    )  # fmt: skip


@dataclass(frozen=True)
class SearchSpace:
    """What a study searches: settings, strategies, and each plugin's parameters.

    Attributes
    ----------
    settings : tuple[Dimension, ...]
        The run settings searched (by key).
    strategies : tuple[str, ...]
        The strategies a trial picks from.
    strategy_params : Mapping[str, tuple[Dimension, ...]]
        Each strategy's searched parameters (``<strategy>.<param>``).
    model_params : tuple[Dimension, ...]
        The base config's model's searched parameters (``model.<param>``).

    """

    settings: tuple[Dimension, ...]
    strategies: tuple[str, ...]
    strategy_params: Mapping[str, tuple[Dimension, ...]]
    model_params: tuple[Dimension, ...]

    @property
    def dimensions(self) -> list[Dimension]:
        """Every dimension, a choice of strategy first (where there is one)."""
        strategy = [Dimension("strategy", "choice", choices=self.strategies)]
        plugins = [d for s in self.strategies for d in self.strategy_params[s]]
        return [*strategy[: len(self.strategies) > 1], *self.settings, *plugins, *self.model_params]

    def sample(self, trial: optuna.Trial, base: RunConfig) -> RunConfig:
        """The config of ``trial``: ``base`` with each searched value drawn.

        The strategy's parameters start from ``base``'s when the strategy is
        ``base``'s own, else from the plugin's defaults.

        Raises
        ------
        UsageError
            When the values drawn break a rule between settings.

        """
        strategy = self.strategies[0]
        if len(self.strategies) > 1:
            strategy = trial.suggest_categorical("strategy", list(self.strategies))
        changes: dict[str, Any] = {describe(d.name).name: d.suggest(trial) for d in self.settings}
        params = dict(base.strategy_params) if strategy == base.strategy else {}
        params |= _drawn(trial, self.strategy_params[strategy])
        model = dict(base.model_params) | _drawn(trial, self.model_params)
        return base.replace(
            **changes, strategy=strategy, strategy_params=params, model_params=model, run_dir=None
        )


def _drawn(trial: optuna.Trial, dimensions: Iterable[Dimension]) -> dict[str, Any]:
    """Plugin parameters by name (a list drawn as ``a,b`` text given as a list)."""
    out: dict[str, Any] = {}
    for dim in dimensions:
        value = dim.suggest(trial)
        out[dim.name.partition(".")[2]] = _numbers(value) if dim.many else value
    return out


def _numbers(text: str) -> list[int | float]:
    return [float(v) if "." in v else int(v) for v in text.split(",")]


def search_space(base: RunConfig, task: str, strategies: Sequence[str] = ()) -> SearchSpace:
    """The space of a study over ``base`` (see the module's docstring for the rules).

    Parameters
    ----------
    base : RunConfig
        The settings not searched, and the model whose parameters are.
    task : str
        The target's task: label-skew correction is searched for classes only.
    strategies : Sequence[str]
        The strategies to pick from; every working plugin when empty.

    Raises
    ------
    UsageError
        For a strategy that is not installed (or is broken), or a model that is not.

    """
    names = tuple(dict.fromkeys(strategies)) or tuple(registry.installed())
    plugins = {name: registry.get(name) for name in names}
    searched = [*SEARCHED_SETTINGS, *((SKEW_SETTING,) if task != "regression" else ())]
    settings = tuple(d for d in map(setting_dimension, map(describe, searched)) if d)
    by_strategy = {
        name: tuple(d for p in plugin.params if (d := param_dimension(p, name)))
        for name, plugin in plugins.items()
    }
    model = registry.get_model(base.model)
    model_dims = tuple(d for p in model.params if (d := param_dimension(p, "model")))
    return SearchSpace(settings, names, by_strategy, model_dims)


# --- The study ----------------------------------------------------------------


@dataclass(frozen=True)
class TrialProgress:
    """What a study's listener hears: a trial started, reached a round, or ended.

    Attributes
    ----------
    number : int
        The trial's number in the study.
    strategy : str
        Its strategy.
    round : int
        The last round the clients evaluated (0 before the first).
    rounds : int
        The rounds of a trial.
    value : float | None
        The objective at that round, or the trial's once it ended.
    state : str
        ``running`` until it ends ``complete``, ``pruned`` or ``fail``.
    error : str | None
        Why a failed trial failed.

    """

    number: int
    strategy: str
    round: int
    rounds: int
    value: float | None = None
    state: str = "running"
    error: str | None = None


ProgressListener = Callable[[TrialProgress], None]


class TrialFailed(Exception):
    """A trial that could not run (a bad combination) or gave no score; the study goes on."""


def default_study_dir(base: RunConfig) -> Path:
    """A fresh study folder in ``base``'s runs folder: ``<date>-<time>-tune-<hex>``."""
    return Path(base.runs_dir) / new_run_id("tune")


def check_writable(path: Path) -> None:
    """Refuse an output file that cannot be written, before any trial runs.

    Raises
    ------
    UsageError
        When ``path`` is a folder, or its folder is missing or not writable.

    """
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder; give a file name (best.toml)")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}."):
            pass
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}") from None


def tune(
    base: RunConfig,
    study_dir: Path,
    trials: int,
    timeout: float | None = None,
    strategies: Sequence[str] = (),
    on_progress: ProgressListener | None = None,
    verbose: bool = False,
    prune_after_trials: int = PRUNE_AFTER_TRIALS,
) -> StudyTrials:
    """Run (or continue) the study of ``study_dir``: ``trials`` more trials over ``base``.

    Parameters
    ----------
    base : RunConfig
        The settings of every trial, but for those searched.
    study_dir : Path
        The study folder: its ``study.db`` and one run directory per trial;
        one that holds a study continues it.
    trials : int
        How many trials to run now.
    timeout : float | None
        Seconds after which no new trial starts.
    strategies : Sequence[str]
        The strategies searched (every working plugin when empty).
    on_progress : ProgressListener | None
        Told when a trial starts, after each of its rounds and when it ends.
    verbose : bool
        Show Flower's and Ray's logs.
    prune_after_trials : int
        Completed trials before the pruner compares.

    Returns
    -------
    StudyTrials
        Every trial of the study, this call's and earlier ones.

    Raises
    ------
    UsageError
        For a bad count, a strategy that is not installed, unusable data, or a
        study folder whose study optimises another score.
    KeyboardInterrupt
        When stopped (Ctrl-C, SIGTERM): the trial's run is marked stopped.

    """
    if trials <= 0:
        raise UsageError(f"trials must be > 0, got {trials}")
    if timeout is not None and not timeout > 0:
        raise UsageError(f"timeout must be > 0 seconds, got {timeout:g}")
    base = validated(base)
    task = simulation.check(base).task  # bad data fails now, not in every trial
    space = search_space(base, task, strategies)
    metric = primary(task)
    study = _open_study(study_dir, base.seed, metric, task, prune_after_trials)

    def objective(trial: optuna.Trial) -> float:
        return _run_trial(trial, space, base, study_dir, metric, on_progress, verbose)

    study.optimize(objective, n_trials=trials, timeout=timeout, catch=(TrialFailed,))
    return read_trials(study_dir)


def validated(base: RunConfig) -> RunConfig:
    """``base`` with validation rows held out: what every trial is scored on.

    A base config that holds out none gets :data:`VALIDATION_FRACTION`; the
    best configuration's TOML keeps it, so that ``simulate --config``
    reproduces the trial (drop it to train on every training row).
    """
    if base.validation_fraction > 0:
        return base
    return base.replace(validation_fraction=VALIDATION_FRACTION)


# The share of each client's training rows a trial is scored on, unless set.
VALIDATION_FRACTION = 0.2


def _open_study(
    study_dir: Path, seed: int, metric: str, task: str, prune_after_trials: int
) -> optuna.Study:
    """Create the study of ``study_dir``, or load the one it holds."""
    # Optuna: only a study pays for it.
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the CLI says what happens
    try:
        study_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create study folder {study_dir}: {err.strerror}") from None
    with warnings.catch_warnings():
        # The heartbeat is "experimental" in Optuna 5; the warning says nothing to a user.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            storage_url(study_dir),
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=HEARTBEAT_GRACE_SECONDS,
        )
    study = optuna.create_study(
        storage=storage,
        study_name=STUDY_NAME,
        direction="maximize" if higher_is_better(metric) else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=prune_after_trials, n_warmup_steps=PRUNE_FROM_ROUND
        ),
        load_if_exists=True,
    )
    earlier = study.user_attrs.get(METRIC_ATTR)
    if earlier is not None and earlier != metric:
        raise UsageError(
            f"study folder {study_dir} optimises {earlier}, but this data's task scores {metric}; "
            "choose another --study-dir"
        )
    study.set_user_attr(METRIC_ATTR, metric)
    study.set_user_attr(TASK_ATTR, task)
    return study


def _run_trial(
    trial: optuna.Trial,
    space: SearchSpace,
    base: RunConfig,
    study_dir: Path,
    metric: str,
    on_progress: ProgressListener | None,
    verbose: bool,
) -> float:
    """One trial: draw its config, simulate it in the study folder, return its score."""
    # Optuna: only a study pays for it.
    import optuna

    def tell(state: str, done: int = 0, value: float | None = None, error: str | None = None):
        if on_progress is not None:
            on_progress(
                TrialProgress(trial.number, strategy, done, base.round_limit, value, state, error)
            )

    strategy = str(trial.params.get("strategy", space.strategies[0]))
    path = study_dir / f"trial-{trial.number:04d}"
    try:
        cfg = space.sample(trial, base)
        strategy = cfg.strategy
        path = study_dir / f"trial-{trial.number:04d}-{cfg.strategy}"
        trial.set_user_attr(RUN_ATTR, path.name)
        trial.set_user_attr(CONFIG_ATTR, cfg.to_dict())
        cfg = cfg.replace(run_dir=str(path))
    except UsageError as err:
        # The values drawn break a rule between settings: a failed trial with a run saying so.
        _failed(trial, base.replace(run_dir=None), path, study_dir, str(err), tell)
    tell("running")
    pruned: list[int] = []

    def on_event(event: Event) -> None:
        if event.stage is not Stage.EVALUATE or event.scope is not Scope.FEDERATED:
            return
        value = event.metrics.get(metric)
        if not isinstance(value, int | float) or not math.isfinite(value):
            return  # a round whose clients give no score tells the pruner nothing
        trial.report(float(value), event.round)
        tell("running", event.round, float(value))
        if trial.should_prune():
            pruned.append(event.round)
            raise StopRequest(
                f"pruned by the tuner at round {event.round}: the clients' {metric} "
                f"{value:.4f} is worse than the median of earlier trials there"
            )

    try:
        _, summary = simulation.simulate(cfg, study_dir, on_event, verbose)
    except simulation.RunStopped:
        if not pruned:
            raise  # Ctrl-C or SIGTERM: the study stops with the trial
        tell("pruned", pruned[-1])
        raise optuna.TrialPruned(f"pruned at round {pruned[-1]}") from None
    except UsageError as err:
        _failed(trial, cfg, path, study_dir, str(err), tell)
    except Exception as err:
        _failed(trial, cfg, path, study_dir, simulation.failure_reason(err), tell)
    value = (summary.get("federated_evaluation") or {}).get(metric)
    if not isinstance(value, int | float) or not math.isfinite(value):
        reason = f"the clients' own evaluation of the last round has no {metric}"
        _failed(trial, cfg, path, study_dir, reason, tell)
    tell("complete", base.round_limit, float(value))
    return float(value)


def _failed(
    trial: optuna.Trial,
    cfg: RunConfig,
    path: Path,
    study_dir: Path,
    reason: str,
    tell: Callable[..., None],
) -> NoReturn:
    """Record a failed trial in the study and in its run directory; raise :class:`TrialFailed`."""
    trial.set_user_attr(ERROR_ATTR, reason)
    trial.set_user_attr(RUN_ATTR, path.name)
    run = RunDir(path)
    if not run.status_file.exists():
        # The run was refused before its directory existed: make one saying why.
        try:
            run = RunDir.create(path, study_dir, cfg.strategy)
            run.write_config(cfg.replace(run_dir=str(path)).to_dict())
            run.set_status(RunState.FAILED, 0, cfg.round_limit, error=reason)
        except (UsageError, OSError):
            pass  # the study records the failure either way
    tell("fail", error=reason)
    raise TrialFailed(reason)


# --- The best configuration ----------------------------------------------------


def best_settings(study_dir: Path) -> tuple[TrialRow, dict[str, Any]]:
    """The best complete trial of a study and its settings, as ``config.json`` keys.

    Raises
    ------
    UsageError
        When no trial has completed.

    """
    # Optuna: only a study pays for it.
    import optuna

    found = read_trials(study_dir)
    best = found.best
    if best is None:
        raise UsageError(f"no trial of study {study_dir} completed: there is no best configuration")
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url(study_dir))
    settings = study.trials[best.number].user_attrs[CONFIG_ATTR]
    return best, dict(settings)


def write_best(path: Path, study_dir: Path) -> TrialRow:
    """Write the best trial's settings to ``path`` as a TOML ``fedapp simulate --config`` reads.

    The file names no run directory: each run of it makes a new one. It is
    written atomically (a reader sees the old file or the new one).
    """
    best, settings = best_settings(study_dir)
    found = read_trials(study_dir)
    heading = (
        f"The best trial ({best.number}) of study {study_dir}: the clients' own {found.metric} "
        f"{best.value:.4f} at the last round. Run it with: fedapp simulate --config {path.name}"
    )
    write_text_atomic(path, settings_toml(settings, heading))
    return best


def settings_toml(settings: Mapping[str, Any], heading: str = "") -> str:
    """Run settings (``config.json`` keys) as TOML; unset values and ``run-dir`` left out.

    Plain values first, then the plugins' parameter tables; texts are written
    as JSON strings, which TOML reads alike.
    """
    lines = [f"# {line}" for line in heading.splitlines()]
    tables: dict[str, Mapping[str, Any]] = {}
    for key, value in settings.items():
        if value is None or key == "run-dir":
            continue
        if isinstance(value, Mapping):
            tables[key] = value
            continue
        lines.append(f"{key} = {_toml_value(value)}")
    for key, table in tables.items():
        if not table:
            continue
        lines += ["", f"[{key}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


__all__ = [
    "Dimension",
    "SearchSpace",
    "TrialFailed",
    "TrialProgress",
    "best_settings",
    "check_writable",
    "default_study_dir",
    "number_dimension",
    "param_dimension",
    "search_space",
    "setting_dimension",
    "settings_toml",
    "tune",
    "write_best",
]
