"""Strategy and model plugins: how they declare themselves and the one place that finds them.

A strategy plugin is a :class:`StrategyPlugin` object exposed through the
``fedapp.strategies`` entry-point group; a model plugin a :class:`ModelPlugin`
of the ``fedapp.models`` group. Built-in plugins are registered the same way
as third-party ones, in ``pyproject.toml``::

    [project.entry-points."fedapp.strategies"]
    fedavg = "fedapp_strategies.fedavg:plugin"

    [project.entry-points."fedapp.models"]
    mlp = "fedapp.learning.mlp:plugin"

Each plugin declares its parameters (:class:`Param`) so that the CLI, a TOML
file and the UI can offer, parse and validate them without knowing the plugin.

One :class:`PluginManager` per group (:data:`manager`, :data:`model_manager`)
loads the entry points once and keeps the plugins that fail to load apart
(:func:`broken`, :func:`broken_models`), so a broken third-party package
leaves the rest working. :func:`register` and :func:`register_model` add a
plugin in code (tests, embedding programs).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from fedapp.errors import UsageError

if TYPE_CHECKING:
    import keras
    from flwr.server.strategy import Strategy

GROUP = "fedapp.strategies"
MODEL_GROUP = "fedapp.models"
TASKS = ("binary", "multiclass", "regression")

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


@dataclass(frozen=True)
class Param:
    """One declared parameter of a strategy or model plugin.

    Attributes
    ----------
    name : str
        Kebab-case name; the CLI flag is ``--<name>``.
    type : type
        ``int``, ``float``, ``str`` or ``bool``; of each value when :attr:`many`.
    default : Any
        Value used when the user gives none (a tuple when :attr:`many`).
    help : str
        One line for ``--help``, ``fedapp strategies``/``fedapp models`` and the UI.
    choices : tuple[str, ...] | None
        Allowed values of a ``str`` parameter.
    minimum : float | None
        Smallest allowed value of a number (inclusive).
    greater_than : float | None
        Bound every allowed number stays above (exclusive): a step size or a
        rate that must be positive.
    less_than : float | None
        Bound every allowed number stays below (exclusive).
    many : bool
        One or more values: a tuple, given as ``128,64`` on the command line
        and in Flower's run config, or as a list in TOML/JSON.

    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    greater_than: float | None = None
    less_than: float | None = None
    many: bool = False

    @property
    def type_text(self) -> str:
        """The type in words: ``float``, or ``list of int``."""
        return f"list of {self.type.__name__}" if self.many else self.type.__name__

    @property
    def default_text(self) -> str:
        """The default as listings show it: ``0.1``, ``'examples'``, ``64,32``."""
        if self.many:
            return ",".join(str(v) for v in self.default)
        return repr(self.default)

    def parse(self, raw: Any) -> Any:
        """Convert a CLI string or a TOML value and check it.

        With :attr:`many`: text ``a,b`` (the CLI, Flower's run config), a
        list or a single value; a tuple of each value parsed.

        Raises
        ------
        UsageError
            Naming the parameter and what it accepts.

        """
        if not self.many:
            return self._parse_one(raw, raw)
        items = _items(raw)
        if not items:
            raise self._wrong_type(raw)
        return tuple(self._parse_one(item, raw) for item in items)

    def _wrong_type(self, raw: Any) -> UsageError:
        if self.many:
            return UsageError(
                f"--{self.name} expects one or more {self.type.__name__} values, "
                f"comma-separated, got {raw!r}"
            )
        return UsageError(f"--{self.name} expects {self.type.__name__}, got {raw!r}")

    def _parse_one(self, item: Any, raw: Any) -> Any:
        try:
            value = self._convert(item)
        except (TypeError, ValueError):
            raise self._wrong_type(raw) from None
        if isinstance(value, float) and not math.isfinite(value):
            # No strategy weighs, clips or mixes with an infinite or NaN number.
            raise UsageError(f"--{self.name} must be a finite number, got {raw!r}")
        if self.choices is not None and value not in self.choices:
            raise UsageError(
                f"--{self.name} must be one of {', '.join(self.choices)}, got {value!r}"
            )
        if self.minimum is not None and value < self.minimum:
            raise UsageError(f"--{self.name} must be >= {self.minimum:g}, got {value}")
        if self.greater_than is not None and value <= self.greater_than:
            raise UsageError(f"--{self.name} must be > {self.greater_than:g}, got {value}")
        if self.less_than is not None and value >= self.less_than:
            raise UsageError(f"--{self.name} must be < {self.less_than:g}, got {value}")
        return value

    def _convert(self, raw: Any) -> Any:
        if self.type is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError(raw)
        if self.type is int and isinstance(raw, float) and not raw.is_integer():
            raise ValueError(raw)
        if isinstance(raw, bool):
            raise TypeError(raw)
        return self.type(raw)


def _items(raw: Any) -> tuple[Any, ...]:
    """The values of a list parameter: ``a,b`` text, a list, or one value."""
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, list | tuple):
        return tuple(raw)
    return (raw,)


class _Declares:
    """What strategy and model plugins share: a name, and declared parameters."""

    noun: ClassVar[str]  # what messages call a plugin of this kind
    name: str
    params: tuple[Param, ...]

    def resolve(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Fill in defaults and parse ``values``; reject names not declared."""
        declared = {p.name: p for p in self.params}
        for name in values:
            if name not in declared:
                raise UsageError(
                    f"{self.noun} '{self.name}' has no parameter --{name} "
                    f"(its parameters: {self.flags()})"
                )
        return {
            name: p.parse(values[name]) if name in values else p.default
            for name, p in declared.items()
        }

    def flags(self) -> str:
        """The parameters as flags, ``--a, --b``, or ``none``."""
        return ", ".join(f"--{p.name}" for p in self.params) or "none"


# What a strategy carries from round to round, by name: a list of arrays
# (moments, a control variate) or a JSON value.
StrategyState = dict[str, Any]


@dataclass(frozen=True)
class StateCodec:
    """How a plugin's strategy saves, and takes back, what it carries between rounds.

    A checkpoint holds ``save(strategy)``; a resumed run builds the strategy
    afresh, with the checkpoint's global weights as its initial parameters,
    and calls ``load(strategy, state)`` before its first round.

    Attributes
    ----------
    save : Callable[[Strategy], StrategyState]
        The strategy's state: each value a list of NumPy arrays, or a JSON value.
    load : Callable[[Strategy, StrategyState], None]
        Restore what ``save`` returned.

    """

    save: Callable[[Strategy], StrategyState]
    load: Callable[[Strategy, StrategyState], None]


def _nothing(_strategy: Strategy) -> StrategyState:
    return {}


def _ignore(_strategy: Strategy, _state: StrategyState) -> None:
    return None


# For a strategy whose rounds depend on the global weights alone (FedAvg, Krum, ...).
STATELESS = StateCodec(_nothing, _ignore)


def attributes_state(*names: str) -> StateCodec:
    """The state of a strategy held in its attributes ``names`` (arrays, or ``None``)."""

    def save(strategy: Strategy) -> StrategyState:
        return {name: getattr(strategy, name) for name in names}

    def load(strategy: Strategy, state: StrategyState) -> None:
        for name in names:
            setattr(strategy, name, state.get(name))

    return StateCodec(save, load)


@dataclass(frozen=True)
class StrategyPlugin(_Declares):
    """A named factory of Flower strategies.

    Attributes
    ----------
    name : str
        The name users type (``--strategy NAME``).
    summary : str
        One line saying what the strategy does.
    build : Callable[[dict[str, Any], dict[str, Any]], Strategy]
        ``build(common, params)`` returns the strategy. ``common`` holds the
        keyword arguments every Flower ``FedAvg``-family strategy accepts
        (client fractions and minimums, ``initial_parameters``); ``params``
        holds this plugin's declared parameters, parsed, by name.
    params : tuple[Param, ...]
        Declared parameters.
    state : StateCodec | None
        How its strategy's state between rounds is checkpointed
        (:data:`STATELESS` when it has none). ``None``: undeclared; a resumed
        run then warns that the strategy's state starts afresh.

    """

    noun: ClassVar[str] = "strategy"

    name: str
    summary: str
    build: Callable[[dict[str, Any], dict[str, Any]], Strategy]
    params: tuple[Param, ...] = field(default_factory=tuple)
    state: StateCodec | None = None


@dataclass(frozen=True)
class OutputSpec:
    """What a model's output must be for the run's task.

    Attributes
    ----------
    task : str
        ``binary``, ``multiclass`` or ``regression`` (:data:`TASKS`).
    units : int
        Output width: 1 for ``binary`` and ``regression``, the number of
        classes (2 or more) for ``multiclass``.

    Raises
    ------
    ValueError
        For another task, or units the task cannot have.

    """

    task: str
    units: int

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; tasks: {', '.join(TASKS)}")
        fits = self.units >= 2 if self.task == "multiclass" else self.units == 1
        if not fits:
            wanted = "2 or more units" if self.task == "multiclass" else "1 unit"
            raise ValueError(f"a {self.task} output has {wanted}, not {self.units}")


@dataclass(frozen=True)
class ModelPlugin(_Declares):
    """A named builder of Keras networks: ``--model NAME``.

    ``name``, ``summary`` and ``params`` are as a :class:`StrategyPlugin`'s.
    ``build(n_features, output, params, seed)`` returns an uncompiled
    ``keras.Model`` mapping float32 ``(None, n_features)`` to ``(None,
    output.units)`` raw scores (logits: no final activation); ``params``
    holds the declared parameters, parsed, by name, and ``seed`` should seed
    every initialiser so that a run is reproducible. fedapp adds the output's
    activation, the loss, the optimizer and the train steps
    (:func:`fedapp.learning.model.build_model`).
    """

    noun: ClassVar[str] = "model"

    name: str
    summary: str
    build: Callable[[int, OutputSpec, dict[str, Any], int], keras.Model]
    params: tuple[Param, ...] = field(default_factory=tuple)


Plugin = TypeVar("Plugin", StrategyPlugin, ModelPlugin)


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point of a plugin group that did not load.

    Attributes
    ----------
    name : str
        The entry-point name, i.e. the name users would type.
    target : str
        Where the entry point points, ``module:attribute``.
    error : str
        Why it failed, as one line for the CLI and the UI, e.g. ``strategy
        plugin 'x' (mod:plugin) failed to load: ImportError: ...``.

    """

    name: str
    target: str
    error: str


class PluginManager(Generic[Plugin]):
    """Finds the plugins of one entry-point group and holds them.

    Entry points are read and loaded once, on first use, and sorted into
    working plugins and :class:`BrokenPlugin` records, so that one broken
    third-party package cannot hide the others. Plugins registered in code
    with :meth:`register` take precedence over entry points of the same name.

    Parameters
    ----------
    group : str
        The entry-point group to discover.
    kind : type
        The class each entry point must be an instance of.
    plural : str
        The plugins in words, for messages (``strategies``).

    """

    def __init__(
        self,
        group: str = GROUP,
        kind: type[Plugin] = StrategyPlugin,  # type: ignore[assignment]
        plural: str = "strategies",
    ) -> None:
        self.group = group
        self.kind = kind
        self.plural = plural
        self._registered: dict[str, Plugin] = {}
        self._discovered: tuple[dict[str, Plugin], dict[str, BrokenPlugin]] | None = None
        # Streamlit serves each session from its own thread: without the lock
        # two first page loads would both import every plugin. Re-entrant
        # because a plugin module may call register() while being imported.
        self._lock = threading.RLock()

    def installed(self) -> dict[str, Plugin]:
        """Return the working plugins by name, sorted; never raises for a broken one."""
        with self._lock:
            working, _ = self._discover()
            return dict(sorted({**working, **self._registered}.items()))

    def broken(self) -> dict[str, BrokenPlugin]:
        """Return the entry points that failed to load, by name, sorted."""
        with self._lock:
            _, failed = self._discover()
            return {name: b for name, b in sorted(failed.items()) if name not in self._registered}

    def get(self, name: str) -> Plugin:
        """Return the plugin called ``name``.

        Raises
        ------
        UsageError
            When ``name`` is not a working plugin: says so if it is installed
            but broken (with its load error), and lists the working ones.

        """
        plugins = self.installed()
        if name in plugins:
            return plugins[name]
        listing = ", ".join(plugins) or "none"
        noun = self.kind.noun
        failed = self.broken().get(name)
        if failed is not None:
            raise UsageError(
                f"{noun} '{name}' is installed but broken: {failed.error}; "
                f"working {self.plural}: {listing}"
            )
        raise UsageError(f"unknown {noun} '{name}'; installed: {listing}")

    def register(self, plugin: Plugin) -> Callable[[], None]:
        """Make ``plugin`` available under ``plugin.name`` without an entry point.

        Replaces any plugin of that name, installed or registered before.

        Returns
        -------
        Callable[[], None]
            Undoes this registration: the name means again what it meant
            before (the earlier registration, the entry point, or nothing).

        Raises
        ------
        TypeError
            When ``plugin`` is not of this manager's kind.

        """
        if not isinstance(plugin, self.kind):
            raise TypeError(f"expected a {self.kind.__name__}, got {type(plugin).__name__}")
        name = plugin.name
        with self._lock:
            previous = self._registered.get(name)
            self._registered[name] = plugin

        def undo() -> None:
            with self._lock:
                # A later registration of the same name is not ours to remove.
                if self._registered.get(name) is not plugin:
                    return
                if previous is None:
                    del self._registered[name]
                else:
                    self._registered[name] = previous

        return undo

    def refresh(self) -> None:
        """Forget what discovery found, so the next call reads the entry points again.

        For packages installed (or removed) while the process runs. Plugins
        registered in code stay registered.
        """
        with self._lock:
            self._discovered = None

    def _discover(self) -> tuple[dict[str, Plugin], dict[str, BrokenPlugin]]:
        with self._lock:
            if self._discovered is None:
                self._discovered = _load_entry_points(self.group, self.kind)
            return self._discovered


def _load_entry_points(
    group: str, kind: type[Plugin]
) -> tuple[dict[str, Plugin], dict[str, BrokenPlugin]]:
    working: dict[str, Plugin] = {}
    failed: dict[str, BrokenPlugin] = {}
    for ep in entry_points(group=group):
        what = f"{kind.noun} plugin '{ep.name}' ({ep.value})"
        try:
            plugin = ep.load()
        except Exception as err:  # whatever a third-party import raises, the others still load
            error = f"{what} failed to load: {type(err).__name__}: {err}"
        else:
            if isinstance(plugin, kind):
                working[ep.name] = plugin
                failed.pop(ep.name, None)
                continue
            error = f"{what} is not a {kind.__name__} (got {type(plugin).__name__})"
        failed[ep.name] = BrokenPlugin(ep.name, ep.value, error)
        # Of two distributions declaring one name, the later on sys.path wins,
        # broken or not, so a name is never both working and broken.
        working.pop(ep.name, None)
    return working, failed


manager: PluginManager[StrategyPlugin] = PluginManager(GROUP, StrategyPlugin, "strategies")
"""The process-wide strategy plugin manager behind :func:`installed`, :func:`get`, ..."""
model_manager: PluginManager[ModelPlugin] = PluginManager(MODEL_GROUP, ModelPlugin, "models")
"""The process-wide model plugin manager behind :func:`models`, :func:`get_model`, ..."""


def installed() -> dict[str, StrategyPlugin]:
    """Return every working strategy plugin by name, sorted.

    Built-in and third-party plugins come through the ``fedapp.strategies``
    entry points, plus any registered with :func:`register`. Plugins that fail
    to load are left out (see :func:`broken`); this never raises for them.
    """
    return manager.installed()


def broken() -> dict[str, BrokenPlugin]:
    """Return the strategy entry points that failed to load, by name, sorted."""
    return manager.broken()


def get(name: str) -> StrategyPlugin:
    """Return the plugin called ``name``.

    Raises
    ------
    UsageError
        Listing the installed strategies when ``name`` is not one of them, and
        giving the load error when ``name`` is an installed but broken plugin.

    """
    return manager.get(name)


def register(plugin: StrategyPlugin) -> Callable[[], None]:
    """Register ``plugin`` in code, replacing any plugin of the same name.

    For tests and for programs embedding fedapp.

    Returns
    -------
    Callable[[], None]
        Undoes the registration (see :meth:`PluginManager.register`).

    """
    return manager.register(plugin)


# The model group's functions, as the strategy group's above (see :class:`PluginManager`).


def models() -> dict[str, ModelPlugin]:
    """Return every working model plugin by name, sorted; never raises for a broken one."""
    return model_manager.installed()


def broken_models() -> dict[str, BrokenPlugin]:
    """Return the model entry points that failed to load, by name, sorted."""
    return model_manager.broken()


def get_model(name: str) -> ModelPlugin:
    """Return model ``name``; a ``UsageError`` lists the installed ones or gives its load error."""
    return model_manager.get(name)


def register_model(plugin: ModelPlugin) -> Callable[[], None]:
    """Register model ``plugin`` in code, replacing any of its name; return the undo."""
    return model_manager.register(plugin)


def refresh() -> None:
    """Read both groups' entry points again on next use (after installing a plugin)."""
    manager.refresh()
    model_manager.refresh()
