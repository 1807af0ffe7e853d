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
from typing import TYPE_CHECKING, Any

from fedapp import registry
from fedapp.errors import UsageError
from fedapp.learning import convergence
from fedapp.protection import privacy
from fedapp.settings import RunConfig, describe, fields, value_error
from fedapp.settings.specs import Attack, PartitionSpec

if TYPE_CHECKING:
    from fedapp.data.describe import DataPreview

# The New run page's data source when it runs a run's files again.
RERUN_SOURCE = "Files of the run"
# Settings the New run page asks for with a widget keyed by the setting's name.
FORM_SETTINGS = (
    "demo_rows", "clients", "clients_per_round", "rounds", "eval_every", "local_epochs",
    "batch_size", "learning_rate", "seed", "dp", "noise_multiplier", "clip_norm",
    "target_epsilon", "delta", "dp_clipping", "secure_aggregation", "malicious", "baseline",
    "max_categories", "na_values", "task", "max_rounds", "patience", "min_delta", "monitor",
)  # fmt: skip
# The New run page's switch between a number of rounds and rounds auto.
AUTO_ROUNDS_KEY = "auto_rounds"
# Settings the page reads from other widgets (files, column pickers, split,
# strategy, model, attack) or that name where the run goes.
_PICKED = (
    "data", "client_data", "data_sha256", "target", "positive_label", "id_column", "drop",
    "categorical", "partition", "strategy", "strategy_params", "model", "model_params", "attack",
    "run_dir", "runs_dir",
)  # fmt: skip
# A column becomes one institution per value only if it has this many values
# at most: more would be a federation of hundreds of tiny clients.
MAX_PARTITION_VALUES = 50
# Target values listed as the positive class (a binary target has two).
MAX_LABELS = 10

_TARGET_HINTS = re.compile(r"^(target|label|y|churn(ed)?|exited|outcome|default(ed)?|class)$", re.I)
_ID_HINTS = re.compile(r"(^id$|_id$|^id_|customer.?id|row.?(number|num|no)$|^index$)", re.I)
# Identifiers of a row's place in the file rather than of whom it is about:
# the last choice for the identifier, and a column to drop beside another one.
_POSITION_HINTS = re.compile(r"(row.?(number|num|no)$|^index$)", re.I)
# Text columns named like these hold a person's own words or details.
_FREE_TEXT_HINTS = re.compile(r"(name$|e.?mail|address|phone|comment|note|description)", re.I)
# A text column with this share of rows distinct (or more) is free text, not a category.
FREE_TEXT_SHARE = 0.1


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
    numeric : bool
        Its values read as numbers (blanks and a few typos aside).
    rows : int
        The table's rows (0 when not known).

    """

    name: str
    distinct: int
    values: tuple[str, ...]
    unique_per_row: bool
    numeric: bool = True
    rows: int = 0


def describe_columns(paths: Sequence[Path]) -> list[Column]:
    """Read the tables and describe the first one's columns.

    Raises
    ------
    UsageError
        With the same message the CLI gives for an unreadable table.

    """
    # pandas: paid when a table is read, not on the page's first draw.
    import pandas as pd

    from fedapp.data.sources import read_table

    frames = [read_table(p) for p in paths]
    frame = frames[0]
    columns = []
    for name in frame.columns:
        values = frame[name].dropna()
        distinct = int(values.nunique())
        few = distinct <= MAX_PARTITION_VALUES
        shown = tuple(sorted(str(v) for v in values.unique())) if few else ()
        text = values.astype(str).str.strip()
        text = text[text != ""]
        # Mostly numbers: a number column with a typo is still not free text.
        numeric = (
            bool(pd.to_numeric(text, errors="coerce").notna().mean() >= 0.9) if len(text) else True
        )
        columns.append(
            Column(str(name), distinct, shown, distinct == len(frame), numeric, len(frame))
        )
    return columns


def guess_target(columns: Sequence[Column]) -> int:
    """Index of the likeliest binary target: a known name first, else the last binary column."""
    binary = [i for i, c in enumerate(columns) if c.distinct == 2]
    for i in binary:
        if _TARGET_HINTS.match(columns[i].name):
            return i
    return binary[-1] if binary else len(columns) - 1


def guess_id_column(columns: Sequence[Column]) -> str | None:
    """A column unique per row and named like an identifier, if one is.

    One naming whom a row is about (``CustomerId``) comes before one
    numbering the rows (``RowNumber``, ``index``).
    """
    found = [c.name for c in columns if c.unique_per_row and _ID_HINTS.search(c.name)]
    found.sort(key=lambda name: bool(_POSITION_HINTS.search(name)))  # stable: file order
    return found[0] if found else None


def suggested_drops(
    columns: Sequence[Column], target: str, id_column: str | None
) -> dict[str, str]:
    """Columns that are unlikely features, with why: other identifiers, and free text.

    Free text is a text column with more values than any split would use
    and either a name like ``Surname`` or ``email``, or a distinct value in
    :data:`FREE_TEXT_SHARE` of the rows or more: as a category it would fold
    almost entirely into "other", and it says who the customer is.
    """
    suggested = {}
    for c in columns:
        if c.name in (target, id_column):
            continue
        if c.unique_per_row and _ID_HINTS.search(c.name):
            suggested[c.name] = "an identifier (unique per row)"
        elif (
            not c.numeric
            and c.distinct > MAX_PARTITION_VALUES
            and (_FREE_TEXT_HINTS.search(c.name) or c.distinct >= FREE_TEXT_SHARE * c.rows)
        ):
            suggested[c.name] = f"free text ({c.distinct} distinct values)"
    return suggested


def partition_columns(columns: Sequence[Column], exclude: Sequence[str]) -> list[Column]:
    """Columns that can split a table into institutions (2 to 50 values, not excluded)."""
    return [c for c in columns if 2 <= c.distinct <= MAX_PARTITION_VALUES and c.name not in exclude]


Plugin = registry.StrategyPlugin | registry.ModelPlugin
# The prefix of the widget keys of each plugin setting's parameters: `param.<strategy>.<name>`.
PARAM_KEYS = {"strategy": "param", "model": "model"}


def plugin_params(plugin: Plugin, values: Mapping[str, Any]) -> dict[str, Any]:
    """The form's values of a plugin's parameters, checked as the CLI checks them.

    Raises
    ------
    UsageError
        Naming the parameter and what it accepts.

    """
    return plugin.resolve({k: v for k, v in values.items() if v is not None})


def param_error(plugin: Plugin, name: str, value: Any) -> str | None:
    """Why ``value`` is refused for the plugin's parameter ``name``, as the CLI says it."""
    if value is None:
        return None  # blank: the default
    declared = {p.name: p for p in plugin.params}
    try:
        declared[name].parse(value)
    except UsageError as err:
        return str(err)
    return None


def setting_error(setting: str, value: Any, form: Mapping[str, Any]) -> str | None:
    """Why ``value`` is refused for ``setting`` on its own, as the CLI says it.

    :func:`fedapp.settings.value_error`; the rules between settings are
    :func:`build_config`'s. ``form`` gives the other values a message names.
    """
    return value_error(setting, value, form)


@dataclass(frozen=True)
class Rerun:
    """A run's settings as the New run form takes them ("Run again with these settings").

    Attributes
    ----------
    run_id : str
        The run they come from.
    widgets : dict[str, Any]
        Each widget's value, by the widget's key.
    files : tuple[str, ...]
        The run's data files (one table, or one per institution); empty for the demo.
    hashes : tuple[str, ...]
        Their SHA-256 as the run recorded them (``data-sha256``): run on the
        same files, a file changed since is warned about.
    carried : dict[str, Any]
        Settings the form has no widget for that differ from their default
        (``test-fraction``, ``min-category-count``, ...), by key: kept as they were.

    """

    run_id: str
    widgets: dict[str, Any]
    files: tuple[str, ...]
    hashes: tuple[str, ...]
    carried: dict[str, Any]


def rerun_of(run_id: str, config: Mapping[str, Any]) -> Rerun:
    """The New run form filled from a run's ``config.json``.

    Raises
    ------
    UsageError
        For a ``config.json`` that is not a valid set of settings.

    """
    cfg = RunConfig.from_mapping(config, source=f"{run_id}/config.json")
    settings = cfg.to_dict()
    widgets: dict[str, Any] = {n: settings[describe(n).key] for n in FORM_SETTINGS}
    if cfg.auto_rounds:  # the switch is on; the number of rounds keeps its default
        widgets |= {AUTO_ROUNDS_KEY: True, "rounds": describe("rounds").default}
    files = cfg.client_data or (() if cfg.is_demo else (cfg.data,))
    widgets["source"] = RERUN_SOURCE if files else "Built-in demo"
    if files:
        widgets |= {
            "target": cfg.resolved_target,
            "positive_label": cfg.positive_label or describe("positive_label").unset,
            "id_column": cfg.id_column or "none",
            "drop": list(cfg.drop),
            "categorical": list(cfg.categorical),
        }
    else:
        widgets["demo_target"] = cfg.resolved_target
    widgets |= _split_widgets(cfg.partition_spec, demo=not files)
    if not cfg.is_demo:
        widgets.pop("demo_rows")
    chosen = {"strategy": (registry.get(cfg.strategy), cfg.strategy_params),
              "model": (registry.get_model(cfg.model), cfg.model_params)}  # fmt: skip
    for setting, (plugin, params) in chosen.items():
        widgets[setting] = plugin.name
        for name, value in plugin.resolve(params).items():
            widgets[f"{PARAM_KEYS[setting]}.{plugin.name}.{name}"] = value
    if cfg.attack is not None:
        widgets["attack_kind"] = cfg.attack.kind
        widgets["attack_strength"] = float(cfg.attack.strength or 0.0)
    defaults = RunConfig().to_dict()
    carried = {
        entry.key: settings[entry.key]
        for entry in fields()
        if entry.name not in (*FORM_SETTINGS, *_PICKED)
        and settings.get(entry.key) != defaults.get(entry.key)
    }
    return Rerun(run_id, widgets, tuple(files), tuple(cfg.data_sha256), carried)


def _split_widgets(spec: PartitionSpec | None, demo: bool) -> dict[str, Any]:
    """The Split widgets of a partition (none when each file is one institution)."""
    if spec is None:
        return {}
    if spec.kind == "column":
        return {"partition_kind": "column"} | ({} if demo else {"partition_column": spec.column})
    if spec.kind in ("dirichlet", "quantity"):
        return {"partition_kind": spec.kind, "alpha": spec.alpha}
    return {"partition_kind": "iid"}


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
    many : bool
        A list setting, typed as comma-separated values (:func:`split_list`).

    """

    setting: str
    kind: str
    label: str
    options: dict[str, Any]
    many: bool = False


def split_list(text: str) -> list[str]:
    """The values of a list setting typed as ``a, b, c`` (blanks between commas dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def widget(name: str) -> Widget:
    """The input of setting ``name``, read from its declaration alone.

    An optional number starts blank, meaning its unset value (shown as the
    placeholder). Numbers get no ``min_value`` or ``max_value``: with them
    the browser would keep the last valid value behind a red box and never
    send what was typed; :func:`setting_error` says what is wrong instead.
    """
    entry = describe(name)
    common: dict[str, Any] = {"key": entry.name, "help": entry.help}
    if entry.choices:
        if entry.optional:  # unset first, named as the declaration says (e.g. "inferred")
            unset = str(entry.unset)
            choices: tuple[Any, ...] = (None, *entry.choices)
            common["format_func"] = lambda choice: unset if choice is None else str(choice)
        else:
            choices = entry.choices
        default = None if entry.default is None else str(entry.default)
        options = {"options": choices, "index": choices.index(default), "horizontal": True}
        return Widget(entry.key, "radio", entry.label, common | options)
    if entry.type is bool:
        return Widget(entry.key, "toggle", entry.label, common | {"value": entry.default})
    if entry.type in (int, float) and not entry.many:
        number = entry.type
        options = {"value": None if entry.default is None else number(entry.default)}
        options["step"] = number(entry.step) if entry.step else (1 if number is int else None)
        options["placeholder"] = entry.unset
        if number is float:
            options["format"] = entry.fmt or "%g"
        return Widget(entry.key, "number_input", entry.label, common | options)
    if entry.many:
        # A blank item is no value to type (blanks are always missing values).
        shown = ", ".join(str(v) for v in entry.default or () if v != "")
        typed = {"value": shown, "placeholder": "a, b, ..."}
        return Widget(entry.key, "text_input", entry.label, common | typed, many=True)
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
    for table in ("strategy-params", "model-params"):
        if isinstance(settings.get(table), Mapping):
            settings[table] = _filled(settings[table])
    cfg = RunConfig.from_mapping(settings, source="form")
    plugin_params(registry.get(cfg.strategy), cfg.strategy_params)
    plugin_params(registry.get_model(cfg.model), cfg.model_params)
    return cfg


def check_data(cfg: RunConfig) -> DataPreview:
    """Load and split the data as the run will, and check its privacy budget against it.

    Returns
    -------
    DataPreview
        What the data holds (:func:`load_data`).

    Raises
    ------
    UsageError
        For data the CLI would refuse (bad values, an unusable target, a split
        that leaves a client empty) or a target ε no round fits in, with the
        CLI's message.

    """
    found = load_data(cfg)
    check_privacy(cfg, found)
    return found


def load_data(cfg: RunConfig) -> DataPreview:
    """Load and split the data as the run will; describe it as ``fedapp inspect`` does.

    Raises
    ------
    UsageError
        For data the CLI would refuse, with the CLI's message.

    """
    # pandas: paid when the data is checked, not on the page's first draw.
    from fedapp import data
    from fedapp.data.describe import describe_federation

    return describe_federation(data.load_federation(cfg))


def check_privacy(cfg: RunConfig, found: DataPreview) -> None:
    """Refuse a target ε that does not pay for one round, as the run would at its start.

    Raises
    ------
    UsageError
        Naming ``target-epsilon`` and the least value that allows one round.

    """
    privacy.check_budget(cfg, found.train_rows)


def check_monitor(cfg: RunConfig, found: DataPreview) -> None:
    """Refuse a ``monitor`` that is no score of the data's task, as the run would at its start.

    Raises
    ------
    UsageError
        Naming the monitors of the task.

    """
    if cfg.auto_rounds:
        convergence.check_monitor(cfg.monitor, found.task)


def user_message(err: UsageError, names: Mapping[Path, str]) -> str:
    """The error with stored upload paths replaced by the names the user uploaded."""
    text = str(err)
    for path, name in names.items():
        text = text.replace(str(path), name)
    return text


def _filled(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Drop blank values (``None``, ``""``, empty lists) so that defaults apply."""
    return {k: v for k, v in settings.items() if v is not None and v != "" and v != []}
