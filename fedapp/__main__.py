"""``python -m fedapp`` and the ``fedapp`` command."""

import sys

from fedapp.runs import sigterm_stops


def main() -> None:
    """Run the command line, a stop (Ctrl-C, SIGTERM) ending it with exit code 130.

    The handler is set before the command line's own imports, so that a
    stop in the first second ends as one, not as a killed process.
    """
    sigterm_stops()
    try:
        # After the handler: these imports are most of a command's first second.
        from fedapp.cli import main as command_line

        command_line()
    except KeyboardInterrupt:
        sys.stderr.write("stopped\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
