"""The modes a run setting chooses between, as enums (compared by value, never re-parsed).

Also the special values and defaults that the data layer reads too.
"""

from __future__ import annotations

from enum import StrEnum


class DpMode(StrEnum):
    """Differential privacy: none, client-level (``central``) or record-level (``record``)."""

    NONE = "none"
    CENTRAL = "central"
    RECORD = "record"


class DpClipping(StrEnum):
    """Where client-level DP clips each update: on the server or on the client."""

    SERVER = "server"
    CLIENT = "client"


class Task(StrEnum):
    """What the model predicts: one of two classes, one of several, or a number."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


# The `data` setting's two special values (any other value is a file).
DEMO_DATA = "demo"
# A deployed federation: each SuperNode reads the file named by its own
# `data-path` node config, and the server never sees a row.
NODE_DATA = "node"

# The `rounds` setting's word for "until the monitored score stops improving".
AUTO_ROUNDS = "auto"
# The settings that only an automatic run (`rounds = "auto"`) reads, by attribute name.
AUTO_ROUNDS_SETTINGS = ("max_rounds", "patience", "min_delta", "monitor")
# The `monitor` setting's scopes: `federated_<metric>` is the clients' own
# held-out rows (every round, deployed too), `central_<metric>` the server's test set.
MONITOR_SCOPES = ("federated", "central")

# The `na-values` setting's default: text that exports write for "no value".
NA_VALUES = ("?", "NA", "N/A", "null", "-", "")
# What pandas itself reads as missing: read as missing whatever `na-values` says.
ALWAYS_NA = frozenset(
    {
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
        "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    }
)  # fmt: skip
