"""``python -m fedapp.cli``: the same as the ``fedapp`` command."""

from fedapp.cli import main

main()
