"""``python -m fedapp.cli``: the same as the ``fedapp`` command."""

from fedapp.__main__ import main

main()
