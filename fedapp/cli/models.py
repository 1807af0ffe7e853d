"""``fedapp models``: the installed model plugins and their parameters."""

from __future__ import annotations

from fedapp import registry
from fedapp.cli.plugins import listing_command

listing_command(
    "models",
    "Installed models",
    lambda: (registry.models(), registry.broken_models()),
    "List the installed model plugins (the networks clients train) and their parameters.",
)
