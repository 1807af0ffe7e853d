"""Built-in strategy plugins, one file each, registered through entry points."""
