"""The modes a run setting chooses between, as enums (compared by value, never re-parsed)."""

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
