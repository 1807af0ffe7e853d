"""Strategy plugins: how they declare themselves and the one place that finds them.

A plugin is a :class:`StrategyPlugin` object exposed through the
``fedapp.strategies`` entry-point group. Built-in strategies are registered the
same way as third-party ones, in ``pyproject.toml``::

    [project.entry-points."fedapp.strategies"]
    fedavg = "fedapp_strategies.fedavg:plugin"

Each plugin declares its parameters (:class:`Param`) so that the CLI, a TOML
file and the UI can offer, parse and validate them without knowing the plugin.
"""

from __future__ import annotations

import functools
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


@functools.cache
def installed() -> dict[str, StrategyPlugin]:
    """Discover every strategy plugin registered under ``fedapp.strategies``."""
    found: dict[str, StrategyPlugin] = {}
    for ep in entry_points(group=GROUP):
        try:
            plugin = ep.load()
        except Exception as err:  # a broken third-party plugin must not hide the rest
            raise UsageError(
                f"strategy plugin '{ep.name}' ({ep.value}) failed to load: {err}"
            ) from err
        if not isinstance(plugin, StrategyPlugin):
            raise UsageError(f"strategy plugin '{ep.name}' ({ep.value}) is not a StrategyPlugin")
        found[ep.name] = plugin
    return dict(sorted(found.items()))


def get(name: str) -> StrategyPlugin:
    """Return the plugin called ``name``.

    Raises
    ------
    UsageError
        Listing the installed strategies when ``name`` is not one of them.

    """
    plugins = installed()
    if name not in plugins:
        raise UsageError(f"unknown strategy '{name}'; installed: {', '.join(plugins) or 'none'}")
    return plugins[name]
