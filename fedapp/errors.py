"""Errors that the CLI turns into one clear line and exit code 2."""


class UsageError(ValueError):
    """A setting, a file or its data is not usable; the message names what and why."""
