"""``python -m fedapp`` and the ``fedapp`` command."""

import atexit
import os
import signal
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
        _ignore_further_stops()
        sys.stderr.write("stopped\n")
        _exit_stopped()


def _ignore_further_stops() -> None:
    """Let the exit finish: a second stop (one delivered again, a second Stop) would cut it."""
    while True:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return
        except KeyboardInterrupt:
            continue


def _exit_stopped() -> None:
    """Exit with code 130, whatever the interpreter noted on the way.

    A stop that once landed in code run through ``PyRun_String`` (Cython's
    import-time patch of ``collections.abc``) leaves CPython's flag for an
    unhandled ``KeyboardInterrupt`` set, though the stop was handled here;
    the interpreter's own exit would then turn 130 into death by SIGINT. So
    the exit handlers run here, and the process ends with the code it chose.
    """
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


if __name__ == "__main__":
    main()
