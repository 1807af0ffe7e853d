"""Strategy plugins: how they declare themselves and the one place that finds them.

A plugin is a :class:`StrategyPlugin` object exposed through the
``fedapp.strategies`` entry-point group. Built-in strategies are registered the
same way as third-party ones, in ``pyproject.toml``::

    [project.entry-points."fedapp.strategies"]
    fedavg = "fedapp_strategies.fedavg:plugin"

Each plugin declares its parameters (:class:`Param`) so that the CLI, a TOML
file and the UI can offer, parse and validate them without knowing the plugin.

One :class:`PluginManager` (:data:`manager`) loads the entry points once and
keeps the plugins that fail to load apart (:func:`broken`), so a broken
third-party package leaves :func:`installed` and :func:`get` working for the
rest. :func:`register` adds a plugin in code (tests, embedding programs).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from fedapp.errors import UsageError

if TYPE_CHECKING:
    from flwr.server.strategy import Strategy

GROUP = "fedapp.strategies"

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


@dataclass(frozen=True)
class Param:
    """One declared strategy parameter.

    Attributes
    ----------
    name : str
        Kebab-case name; the CLI flag is ``--<name>``.
    type : type
        ``int``, ``float``, ``str`` or ``bool``.
    default : Any
        Value used when the user gives none.
    help : str
        One line for ``--help``, ``fedapp strategies`` and the UI.
    choices : tuple[str, ...] | None
        Allowed values of a ``str`` parameter.
    minimum : float | None
        Smallest allowed value of a number (inclusive).

    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None

    def parse(self, raw: Any) -> Any:
        """Convert a CLI string or a TOML value and check it.

        Raises
        ------
        UsageError
            Naming the parameter and what it accepts.

        """
        try:
            value = self._convert(raw)
        except (TypeError, ValueError):
            raise UsageError(f"--{self.name} expects {self.type.__name__}, got {raw!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            # No strategy weighs, clips or mixes with an infinite or NaN number.
            raise UsageError(f"--{self.name} must be a finite number, got {raw!r}")
        if self.choices is not None and value not in self.choices:
            raise UsageError(
                f"--{self.name} must be one of {', '.join(self.choices)}, got {value!r}"
            )
        if self.minimum is not None and value < self.minimum:
            raise UsageError(f"--{self.name} must be >= {self.minimum:g}, got {value}")
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


@dataclass(frozen=True)
class StrategyPlugin:
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

    """

    name: str
    summary: str
    build: Callable[[dict[str, Any], dict[str, Any]], Strategy]
    params: tuple[Param, ...] = field(default_factory=tuple)

    def resolve(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Fill in defaults and parse ``values``; reject names not declared."""
        declared = {p.name: p for p in self.params}
        for name in values:
            if name not in declared:
                known = ", ".join(f"--{p}" for p in declared) or "none"
                raise UsageError(
                    f"strategy '{self.name}' has no parameter --{name} (its parameters: {known})"
                )
        return {
            name: p.parse(values[name]) if name in values else p.default
            for name, p in declared.items()
        }


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point of the ``fedapp.strategies`` group that did not load.

    Attributes
    ----------
    name : str
        The entry-point name, i.e. the strategy name users would type.
    target : str
        Where the entry point points, ``module:attribute``.
    error : str
        Why it failed, as one line for the CLI and the UI, e.g. ``strategy
        plugin 'x' (mod:plugin) failed to load: ImportError: ...``.

    """

    name: str
    target: str
    error: str


class PluginManager:
    """Finds the strategy plugins of one entry-point group and holds them.

    Entry points are read and loaded once, on first use, and sorted into
    working plugins and :class:`BrokenPlugin` records, so that one broken
    third-party package cannot hide the others. Plugins registered in code
    with :meth:`register` take precedence over entry points of the same name.

    Parameters
    ----------
    group : str
        The entry-point group to discover.

    """

    def __init__(self, group: str = GROUP) -> None:
        self.group = group
        self._registered: dict[str, StrategyPlugin] = {}
        self._discovered: tuple[dict[str, StrategyPlugin], dict[str, BrokenPlugin]] | None = None
        # Streamlit serves each session from its own thread: without the lock
        # two first page loads would both import every plugin. Re-entrant
        # because a plugin module may call register() while being imported.
        self._lock = threading.RLock()

    def installed(self) -> dict[str, StrategyPlugin]:
        """Return the working plugins by name, sorted; never raises for a broken one."""
        with self._lock:
            working, _ = self._discover()
            return dict(sorted({**working, **self._registered}.items()))

    def broken(self) -> dict[str, BrokenPlugin]:
        """Return the entry points that failed to load, by name, sorted."""
        with self._lock:
            _, failed = self._discover()
            return {name: b for name, b in sorted(failed.items()) if name not in self._registered}

    def get(self, name: str) -> StrategyPlugin:
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
        failed = self.broken().get(name)
        if failed is not None:
            raise UsageError(
                f"strategy '{name}' is installed but broken: {failed.error}; "
                f"working strategies: {listing}"
            )
        raise UsageError(f"unknown strategy '{name}'; installed: {listing}")

    def register(self, plugin: StrategyPlugin) -> Callable[[], None]:
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
            When ``plugin`` is not a :class:`StrategyPlugin`.

        """
        if not isinstance(plugin, StrategyPlugin):
            raise TypeError(f"expected a StrategyPlugin, got {type(plugin).__name__}")
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

    def _discover(self) -> tuple[dict[str, StrategyPlugin], dict[str, BrokenPlugin]]:
        with self._lock:
            if self._discovered is None:
                self._discovered = _load_entry_points(self.group)
            return self._discovered


def _load_entry_points(
    group: str,
) -> tuple[dict[str, StrategyPlugin], dict[str, BrokenPlugin]]:
    working: dict[str, StrategyPlugin] = {}
    failed: dict[str, BrokenPlugin] = {}
    for ep in entry_points(group=group):
        what = f"strategy plugin '{ep.name}' ({ep.value})"
        try:
            plugin = ep.load()
        except Exception as err:  # whatever a third-party import raises, the others still load
            error = f"{what} failed to load: {type(err).__name__}: {err}"
        else:
            if isinstance(plugin, StrategyPlugin):
                working[ep.name] = plugin
                failed.pop(ep.name, None)
                continue
            error = f"{what} is not a StrategyPlugin (got {type(plugin).__name__})"
        failed[ep.name] = BrokenPlugin(ep.name, ep.value, error)
        # Of two distributions declaring one name, the later on sys.path wins,
        # broken or not, so a name is never both working and broken.
        working.pop(ep.name, None)
    return working, failed


manager = PluginManager(GROUP)
"""The process-wide plugin manager behind the module-level functions."""


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


def refresh() -> None:
    """Read the entry points again on next use (after installing a plugin at run time)."""
    manager.refresh()
