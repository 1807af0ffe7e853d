"""``python -m fedapp``: the same as the ``fedapp`` command."""

from fedapp.cli import main

main()
