"""``fedapp strategies``: the installed strategy plugins and their parameters."""

from __future__ import annotations

from fedapp import registry
from fedapp.cli.plugins import listing_command

listing_command(
    "strategies",
    "Installed strategies",
    lambda: (registry.installed(), registry.broken()),
    "List the installed strategy plugins and their parameters.",
)
