"""What the benchmark's child scripts share: their command line, config and preprocessing.

Nothing here imports TensorFlow; the children that need it import it themselves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from fedapp.settings import RunConfig


def parse_config(argv: Sequence[str] | None, description: str) -> RunConfig:
    """Read ``--clients --rounds --demo-rows --seed`` into the benchmark's run config.

    Parameters
    ----------
    argv : Sequence[str] | None
        Arguments (``None``: ``sys.argv[1:]``).
    description : str
        The child script's ``--help`` text.

    Returns
    -------
    RunConfig
        ``RunConfig(clients, rounds, partition="iid", demo_rows, seed)``, the
        settings ``fedapp simulate --partition iid --local-epochs 1`` resolves to.

    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--demo-rows", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    return RunConfig(
        clients=args.clients,
        rounds=args.rounds,
        partition="iid",
        demo_rows=args.demo_rows,
        seed=args.seed,
    )


def fingerprint(text: str) -> str:
    """Short SHA-256 of ``text``, to check that two runs used the same preprocessing.

    Parameters
    ----------
    text : str
        E.g. ``Preprocessor.to_json()``.

    Returns
    -------
    str
        The first 16 hex digits of the digest.

    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def emit(result: dict[str, Any]) -> None:
    """Print the child's result as one JSON line on stdout (the parent reads the last one).

    Parameters
    ----------
    result : dict[str, Any]
        JSON-serialisable metrics and timings.

    """
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
