"""Benchmark child (b): centralized training on the pooled training rows.

Fits the preprocessing from federated statistics exactly as fedapp's server
does, then runs :func:`fedapp.learning.baselines.centralized` (``rounds x local_epochs``
epochs, same model, batch size, learning rate and initial weights) and prints
its metrics on the global test set as one JSON line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from _common import emit, fingerprint, parse_config

from fedapp import data
from fedapp.learning.baselines import centralized


def main(argv: Sequence[str] | None = None) -> int:
    """Train centrally and print ``{"auc", "accuracy", "loss", ...}``.

    Parameters
    ----------
    argv : Sequence[str] | None
        Command-line arguments (``None``: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.

    """
    cfg = parse_config(argv, "Benchmark (b): centralized baseline on the pooled rows.")
    prep = data.federated_preprocessor(cfg)
    started = time.perf_counter()
    metrics = centralized(cfg, prep)
    emit(
        {
            **metrics,
            "epochs": cfg.rounds * cfg.local_epochs,
            "inner_seconds": round(time.perf_counter() - started, 3),
            "preprocessing": fingerprint(prep.to_json()),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
