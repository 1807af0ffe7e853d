"""The logic behind the New run page.

Reading a table's columns, guessing sensible defaults, the widget each
declared setting gets (:func:`widget`), and turning the form into a checked
:class:`RunConfig`.

Nothing here draws widgets, so all of it is tested without Streamlit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedapp import registry
from fedapp.errors import UsageError
from fedapp.settings import RunConfig, describe
from fedapp.settings.specs import Attack

# A column becomes one institution per value only if it has this many values
# at most: more would be a federation of hundreds of tiny clients.
MAX_PARTITION_VALUES = 50
# Target values listed as the positive class (a binary target has two).
MAX_LABELS = 10

_TARGET_HINTS = re.compile(r"^(target|label|y|churn(ed)?|exited|outcome|default(ed)?|class)$", re.I)
_ID_HINTS = re.compile(r"(^id$|_id$|^id_|customer.?id|row.?(number|num|no)$|^index$)", re.I)


@dataclass(frozen=True)
class Column:
    """What the form needs to know about one column of an uploaded table.

    Attributes
    ----------
    name : str
        The column's name.
    distinct : int
        Distinct non-blank values.
    values : tuple[str, ...]
        Those values (as text) if there are few, else empty.
    unique_per_row : bool
        Every row has its own value (an identifier, or a continuous number).

    """

    name: str
    distinct: int
    values: tuple[str, ...]
    unique_per_row: bool


def describe_columns(paths: Sequence[Path]) -> list[Column]:
    """Read the tables and describe the first one's columns.

    Raises
    ------
    UsageError
        With the same message the CLI gives for an unreadable table.

    """
    # pandas: paid when a table is read, not on the page's first draw.
    from fedapp.data.sources import read_table

    frames = [read_table(p) for p in paths]
    frame = frames[0]
    columns = []
    for name in frame.columns:
        values = frame[name].dropna()
        distinct = int(values.nunique())
        few = distinct <= MAX_PARTITION_VALUES
        shown = tuple(sorted(str(v) for v in values.unique())) if few else ()
        columns.append(Column(str(name), distinct, shown, distinct == len(frame)))
    return columns


def guess_target(columns: Sequence[Column]) -> int:
    """Index of the likeliest binary target: a known name first, else the last binary column."""
    binary = [i for i, c in enumerate(columns) if c.distinct == 2]
    for i in binary:
        if _TARGET_HINTS.match(columns[i].name):
            return i
    return binary[-1] if binary else len(columns) - 1


def guess_id_column(columns: Sequence[Column]) -> str | None:
    """A column that looks like a row identifier, if one does."""
    for c in columns:
        if _ID_HINTS.search(c.name) and c.unique_per_row:
            return c.name
    return None


def partition_columns(columns: Sequence[Column], exclude: Sequence[str]) -> list[Column]:
    """Columns that can split a table into institutions (2 to 50 values, not excluded)."""
    return [c for c in columns if 2 <= c.distinct <= MAX_PARTITION_VALUES and c.name not in exclude]


def strategy_params(plugin: registry.StrategyPlugin, values: Mapping[str, Any]) -> dict[str, Any]:
    """The form's values of a plugin's parameters, checked as the CLI checks them.

    Raises
    ------
    UsageError
        Naming the parameter and what it accepts.

    """
    return plugin.resolve({k: v for k, v in values.items() if v is not None})


def attack_spec(kind: str, strength: float) -> Attack:
    """The ``attack`` setting: ``sign-flip:10``, or ``label-flip`` (which takes no strength).

    Raises
    ------
    UsageError
        For a strength that is not a positive number, as the CLI says it.

    """
    return Attack(kind) if kind == "label-flip" else Attack(kind, strength)


@dataclass(frozen=True)
class Widget:
    """The Streamlit input a declared setting gets.

    Attributes
    ----------
    setting : str
        The setting's kebab-case key (the form's, as in ``config.json``).
    kind : str
        The Streamlit function: ``number_input``, ``toggle``, ``radio`` or ``text_input``.
    label : str
        Its label.
    options : dict[str, Any]
        Its keyword arguments: the key (the setting's name), help, default
        value and the declared limits, step and choices.

    """

    setting: str
    kind: str
    label: str
    options: dict[str, Any]


def widget(name: str) -> Widget:
    """The input of setting ``name``, read from its declaration alone.

    An optional number starts blank, meaning its unset value (shown as the
    placeholder); a bound the widget cannot enforce (``> 0`` of a float) is
    left to the config's check, whose message the page shows.
    """
    entry = describe(name)
    common: dict[str, Any] = {"key": entry.name, "help": entry.help}
    if entry.choices:
        index = entry.choices.index(str(entry.default))
        options = {"options": entry.choices, "index": index, "horizontal": True}
        return Widget(entry.key, "radio", entry.label, common | options)
    if entry.type is bool:
        return Widget(entry.key, "toggle", entry.label, common | {"value": entry.default})
    if entry.type in (int, float) and not entry.many:
        number = entry.type
        limits = {"min_value": entry.minimum, "max_value": entry.maximum}
        options = {k: number(v) for k, v in limits.items() if v is not None}
        options["value"] = None if entry.default is None else number(entry.default)
        options["step"] = number(entry.step) if entry.step else (1 if number is int else None)
        options["placeholder"] = entry.unset
        if number is float:
            options["format"] = entry.fmt or "%g"
        return Widget(entry.key, "number_input", entry.label, common | options)
    value = "" if entry.default is None else str(entry.default)
    return Widget(
        entry.key, "text_input", entry.label, common | {"value": value, "placeholder": entry.unset}
    )


def build_config(form: Mapping[str, Any]) -> RunConfig:
    """The form's settings (kebab-case keys, as in ``config.json``) as a checked config.

    Blank optional settings (``None``, ``""``, empty lists) are left out so
    that the defaults apply, as with the CLI's unset flags.

    Raises
    ------
    UsageError
        For any setting the CLI would refuse, with the CLI's message.

    """
    settings = _filled(form)
    if isinstance(settings.get("strategy-params"), Mapping):
        settings["strategy-params"] = _filled(settings["strategy-params"])
    cfg = RunConfig.from_mapping(settings, source="form")
    strategy_params(registry.get(cfg.strategy), cfg.strategy_params)
    return cfg


def check_data(cfg: RunConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Load and split the data as the run will; return its notes and warnings.

    Raises
    ------
    UsageError
        For data the CLI would refuse (bad values, an unusable target, a split
        that leaves a client empty), with the CLI's message.

    """
    # pandas: paid when the data is checked, not on the page's first draw.
    from fedapp import data

    loaded = data.load_federation(cfg)
    return loaded.notes, loaded.warnings


def user_message(err: UsageError, names: Mapping[Path, str]) -> str:
    """The error with stored upload paths replaced by the names the user uploaded."""
    text = str(err)
    for path, name in names.items():
        text = text.replace(str(path), name)
    return text


def _filled(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Drop blank values (``None``, ``""``, empty lists) so that defaults apply."""
    return {k: v for k, v in settings.items() if v is not None and v != "" and v != []}
