"""How a run setting is declared, and what is read back from its one declaration.

Each field of :class:`fedapp.settings.RunConfig` is declared with
:func:`setting`: its default, help, section and range (pydantic's ``gt``,
``ge``, ``lt``, ``le``), plus what the CLI and the UI need (a label, what
"unset" means, a renamed key). :class:`Setting` is the read-only view of one
declaration that the CLI flags, the UI widgets, the parsers and the error
messages are built from; :func:`usage_error` turns pydantic's
``ValidationError`` into the one-line :class:`~fedapp.errors.UsageError` the
CLI exits 2 with, its wording generated from the declaration.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import annotated_types
from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo

from fedapp.errors import UsageError

# Sections group the settings in `--help`, the UI and the docs; the first two
# decide the data (what `fedapp inspect` takes).
DATA = "Data"
INSTITUTIONS = "Institutions"
FEDERATION = "Federation"
TRAINING = "Training"
PRIVACY = "Privacy"
SECURE_AGGREGATION = "Secure aggregation"
ATTACKS = "Attacks"
FAULTS = "Faults"
OUTPUT = "Output"
SECTIONS = (
    DATA, INSTITUTIONS, FEDERATION, TRAINING, PRIVACY, SECURE_AGGREGATION, ATTACKS, FAULTS, OUTPUT,
)  # fmt: skip
DATA_SECTIONS = (DATA, INSTITUTIONS)


@dataclass(frozen=True)
class Renamed:
    """A key a setting was known by: still read, with a ``DeprecationWarning``.

    Attributes
    ----------
    old : str
        The old kebab-case key.
    flwr_only : bool
        The old key has this meaning only in Flower's run config
        (:meth:`RunConfig.from_flwr`); elsewhere it is not this setting's.

    """

    old: str
    flwr_only: bool = False


def setting(
    default: Any = None,
    *,
    section: str,
    help: str,
    label: str | None = None,
    unset: str | None = None,
    at_most: str | None = None,
    aliases: tuple[str, ...] = (),
    renamed: tuple[Renamed, ...] = (),
    cli: bool = True,
    step: float | None = None,
    fmt: str | None = None,
    **constraints: Any,
) -> Any:
    """Declare one run setting: a pydantic ``Field`` carrying everything said about it.

    Parameters
    ----------
    default : Any
        The value when none is given; a ``dict`` default becomes a factory.
    section : str
        One of :data:`SECTIONS`.
    help : str
        One or two sentences, for ``--help``, the UI and the docs.
    label : str | None
        The UI's label; the name in words by default.
    unset : str | None
        What ``None`` means (``"all"``), shown as the default.
    at_most : str | None
        Another setting whose value bounds this one from above.
    aliases : tuple[str, ...]
        Other keys read as this one without a warning (Flower's own names).
    renamed : tuple[Renamed, ...]
        Keys this setting was called before.
    cli : bool
        Whether the command line has a flag for it.
    step, fmt : float | None, str | None
        The UI's number step and display format.
    **constraints : Any
        pydantic's ``gt``, ``ge``, ``lt``, ``le``, ``min_length``, ``strict``.

    """
    extra = {"section": section, "label": label, "unset": unset, "at_most": at_most}
    extra |= {"aliases": aliases, "renamed": renamed, "cli": cli, "step": step, "fmt": fmt}
    if isinstance(default, dict):
        return Field(default_factory=dict, description=help, json_schema_extra=extra)
    return Field(default, description=help, json_schema_extra=extra, **constraints)


@dataclass(frozen=True)
class Setting:
    """One declared setting, as the CLI, the UI and the parsers read it.

    Attributes
    ----------
    name : str
        The attribute (``clients_per_round``).
    key : str
        The kebab-case key of TOML, ``config.json``, Flower's run config and
        the CLI flag (``clients-per-round``); messages name it.
    type : type
        ``int``, ``float``, ``str``, ``bool`` or ``dict``; of each item for a
        list, ``str`` for a spec or a choice.
    many : bool
        A list of ``type`` (the CLI option repeats).
    optional : bool
        ``None`` is allowed, meaning :attr:`unset`.
    default : Any
        The declared default.
    help, section, label : str
        From the declaration.
    choices : tuple[str, ...]
        The allowed values of an enum setting.
    words : tuple[str, ...]
        The words a number setting also takes (``rounds``: ``auto``); the
        CLI reads such a setting as text.
    gt, ge, lt, le : float | None
        The declared bounds (of each item, for a list).
    min_items : int
        The fewest items of a list.
    unset, at_most, aliases, renamed, cli, step, fmt
        From the declaration (see :func:`setting`).

    """

    name: str
    key: str
    type: type
    many: bool
    optional: bool
    default: Any
    help: str
    section: str
    label: str
    choices: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    min_items: int = 0
    unset: str | None = None
    at_most: str | None = None
    aliases: tuple[str, ...] = ()
    renamed: tuple[Renamed, ...] = ()
    cli: bool = True
    step: float | None = None
    fmt: str | None = None

    @classmethod
    def of(cls, name: str, info: FieldInfo) -> Setting:
        """Read the declaration of field ``name``."""
        extra = dict(info.json_schema_extra or {})  # type: ignore[arg-type]
        kind, many, optional, item_meta = _shape(info.annotation)
        bounds: dict[str, float] = {}
        min_items = 0
        for meta in [*info.metadata, *item_meta]:
            for bound in ("gt", "ge", "lt", "le"):
                if hasattr(meta, bound) and isinstance(meta, annotated_types.BaseMetadata):
                    bounds[bound] = getattr(meta, bound)
            if isinstance(meta, annotated_types.MinLen):
                min_items = meta.min_length
        choices: tuple[str, ...] = ()
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            choices, kind = tuple(str(m.value) for m in kind), str
        default = {} if info.default_factory is not None else info.default
        return cls(
            name=name,
            key=name.replace("_", "-"),
            type=kind,
            many=many,
            optional=optional,
            default=default,
            help=info.description or "",
            section=extra["section"],
            label=extra["label"] or name.replace("_", " ").capitalize(),
            choices=choices,
            words=_words(info.annotation),
            min_items=min_items,
            unset=extra["unset"],
            at_most=extra["at_most"],
            aliases=extra["aliases"],
            renamed=extra["renamed"],
            cli=extra["cli"],
            step=extra["step"],
            fmt=extra["fmt"],
            **bounds,
        )

    @property
    def minimum(self) -> float | None:
        """The smallest allowed value, where one exists (a widget's ``min_value``)."""
        if self.ge is not None:
            return self.ge
        if self.gt is not None and self.type is int:
            return int(self.gt) + 1
        return None

    @property
    def maximum(self) -> float | None:
        """The largest allowed value, where one exists (a widget's ``max_value``)."""
        if self.le is not None:
            return self.le
        if self.lt is not None and self.type is int:
            return int(self.lt) - 1
        return None

    @property
    def default_text(self) -> str:
        """The default as ``--help`` shows it."""
        if self.unset is not None:
            return self.unset
        if isinstance(self.default, tuple):
            return ", ".join(str(v) if v != "" else "''" for v in self.default)
        if isinstance(self.default, bool):
            return str(self.default).lower()
        return str(self.default)

    def range_text(self, bound: float | None = None) -> str:
        """The allowed values in words: ``> 0``, ``in (0, 1)``, ``one of none, central``.

        ``bound`` is the value of the :attr:`at_most` setting, where there is one.
        """
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        if self.words:
            return " or ".join((self._number_range(bound), *self.words))
        return self._number_range(bound)

    def _number_range(self, bound: float | None) -> str:
        low = (self.gt, "(", ">") if self.gt is not None else (self.ge, "[", ">=")
        high: tuple[Any, str, str] = (
            (self.lt, ")", "<") if self.lt is not None else (self.le, "]", "<=")
        )
        if self.at_most is not None:
            high = (self.at_most.replace("_", "-") if bound is None else bound, "]", "<=")
        if low[0] is not None and high[0] is not None:
            text = f"in {low[1]}{_text(low[0])}, {_text(high[0])}{high[1]}"
        elif low[0] is not None:
            text = f"{low[2]} {_text(low[0])}"
        elif high[0] is not None:
            text = f"{high[2]} {_text(high[0])}"
        else:
            return ""
        if bound is not None:
            text += f" (at most the number of {self.at_most})"
        return text

    def out_of_range(self, value: Any, bound: float | None = None) -> UsageError:
        """The error for ``value`` outside :meth:`range_text`."""
        if self.many:
            least = f"{self.min_items} or more values, each " if self.min_items else "values "
            return UsageError(f"{self.key} must be {least}{self.range_text()}, got {value}")
        shown = repr(value) if self.choices else value
        return UsageError(f"{self.key} must be {self.range_text(bound)}, got {shown}")

    def wrong_type(self, value: Any, source: str | None) -> UsageError:
        """The error for a value of the wrong type, naming where it came from."""
        where = f"{source}: " if source else ""
        if self.type is bool:
            return UsageError(f"{where}'{self.key}' must be true or false")
        if self.type is dict:
            return UsageError(f"{where}'{self.key}' must be a table")
        noun = _NOUNS[self.type]
        what = f"a list of {noun[1]}" if self.many else " or ".join((noun[0], *self.words))
        return UsageError(f"{where}'{self.key}' must be {what}, got {value!r}")


_NOUNS = {
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    str: ("a string", "strings"),
}
# pydantic's error types for a value of the right type outside its declared range.
_RANGE_ERRORS = {
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_short", "enum",
}  # fmt: skip


def usage_error(
    err: ValidationError,
    table: Mapping[str, Setting],
    given: Mapping[str, Any],
    source: str | None,
) -> UsageError:
    """The first problem pydantic found, as the CLI's one-line message.

    Parameters
    ----------
    err : ValidationError
        What validating ``given`` raised.
    table : Mapping[str, Setting]
        Every setting by attribute name.
    given : Mapping[str, Any]
        The values as given (by attribute name or key), for the message.
    source : str | None
        Where they came from (a file, ``"form"``), named by type errors.

    """
    first = err.errors(include_url=False)[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, UsageError):  # a spec's parser or a cross-field rule
        return cause
    where = f"{source}: " if source else ""
    name = str(first["loc"][0]).replace("-", "_") if first["loc"] else ""
    if name not in table:
        return UsageError(f"{where}unknown setting '{first['loc'][0]}'")
    entry = table[name]
    value = given.get(name, given.get(entry.key))
    if first["type"] == "finite_number":
        limits = entry.range_text()
        return UsageError(
            f"{entry.key} must be a finite number{' ' + limits if limits else ''}, got {value}"
        )
    if first["type"] in _RANGE_ERRORS:
        bound = None
        if entry.at_most is not None:
            other = table[entry.at_most]
            bound = given.get(other.name, given.get(other.key, other.default))
        return entry.out_of_range(value, bound)
    return entry.wrong_type(value, source)


def _shape(annotation: Any) -> tuple[Any, bool, bool, list[Any]]:
    """(item type, is a list, allows None, the item's metadata) of a field's annotation."""
    optional = False
    annotation, meta = _strip(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation, inner = _strip(args[0])
        meta += inner
    if typing.get_origin(annotation) is tuple:
        item, item_meta = _strip(typing.get_args(annotation)[0])
        return item, True, optional, item_meta
    if typing.get_origin(annotation) is dict:
        return dict, False, optional, meta
    if annotation not in (int, float, str, bool) and not (
        isinstance(annotation, type) and issubclass(annotation, enum.Enum)
    ):
        annotation = str  # a spec, given and shown as its text form
    return annotation, False, optional, meta


def _words(annotation: Any) -> tuple[str, ...]:
    """The ``Literal`` words beside the number of a field's union (``int | Literal["auto"]``)."""
    annotation, _ = _strip(annotation)
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return ()
    literals = [a for a in typing.get_args(annotation) if typing.get_origin(a) is typing.Literal]
    return tuple(str(word) for arm in literals for word in typing.get_args(arm))


def _strip(annotation: Any) -> tuple[Any, list[Any]]:
    if typing.get_origin(annotation) is typing.Annotated:
        return annotation.__origin__, list(annotation.__metadata__)
    return annotation, []


def _text(bound: float | str) -> str:
    if isinstance(bound, str):  # another setting's name
        return bound
    return str(int(bound)) if float(bound).is_integer() else str(bound)
