"""The run settings: one declaration per setting, and the one :class:`RunConfig` built from them.

The CLI flags, TOML / ``config.json`` / Flower run-config parsing, the range
checks and the UI form all come from this package.
"""

from fedapp.settings.config import (
    DEMO_DATA,
    NODE_DATA,
    SECAGG_MODULUS_BITS,
    RunConfig,
    read_settings,
    secagg_max_bits,
)
from fedapp.settings.enums import DpClipping, DpMode

__all__ = [
    "DEMO_DATA",
    "NODE_DATA",
    "SECAGG_MODULUS_BITS",
    "DpClipping",
    "DpMode",
    "RunConfig",
    "read_settings",
    "secagg_max_bits",
]
