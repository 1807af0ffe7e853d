"""The run settings: one declaration per setting, and the one :class:`RunConfig` built from them.

The CLI flags, TOML / ``config.json`` / Flower run-config parsing, the range
checks and the UI form all come from this package: :func:`describe` and
:func:`fields` read the declarations back.
"""

from fedapp.settings.config import RunConfig, describe, fields, read_settings, value_error
from fedapp.settings.enums import (
    ALWAYS_NA,
    AUTO_ROUNDS,
    AUTO_ROUNDS_SETTINGS,
    DEMO_DATA,
    MONITOR_SCOPES,
    NA_VALUES,
    NODE_DATA,
    DpClipping,
    DpMode,
    Task,
)  # fmt: skip
from fedapp.settings.rules import SECAGG_MODULUS_BITS, secagg_max_bits
from fedapp.settings.table import DATA_SECTIONS, SECTIONS, Setting

__all__ = [
    "ALWAYS_NA",
    "AUTO_ROUNDS",
    "AUTO_ROUNDS_SETTINGS",
    "DATA_SECTIONS",
    "DEMO_DATA",
    "MONITOR_SCOPES",
    "NA_VALUES",
    "NODE_DATA",
    "SECAGG_MODULUS_BITS",
    "SECTIONS",
    "DpClipping",
    "DpMode",
    "RunConfig",
    "Setting",
    "Task",
    "describe",
    "fields",
    "read_settings",
    "secagg_max_bits",
    "value_error",
]
