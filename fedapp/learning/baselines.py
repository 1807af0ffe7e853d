"""Baselines: what pooling everyone's rows, or staying alone, would have given.

Both train the federated run's model (same preprocessing, initial weights,
batch size, learning rate and ``rounds * local_epochs`` epochs) on other rows
and score it on the same global test set as the federated model:

* :func:`centralized` trains on all clients' training rows pooled: the
  yardstick for what federation costs;
* :func:`local_only` trains one model per client on that client's training
  rows alone: what each institution gains by joining.

Only a simulation can afford them, as they need every client's rows in one
place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from fedapp import data
from fedapp.data.stats import Preprocessor
from fedapp.learning.model import evaluate, predict, run_model, train
from fedapp.learning.threshold import Calibration, calibrate_predictions
from fedapp.settings import RunConfig

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Row-order streams of the baselines, above any round number so that they never
# repeat a client's federated stream `[seed, round, partition]`. One entry, not
# `[stream, partition]`: NumPy pads seeds with zeros, so `[seed, s]` would draw
# the same orders as `[seed, s, 0]`.
_CENTRALIZED_STREAM = 1 << 20
_LOCAL_STREAM = _CENTRALIZED_STREAM + 1


def shuffle_seed(cfg: RunConfig, partition_id: int | None = None) -> list[int]:
    """The seed of a baseline's row order.

    Parameters
    ----------
    cfg : RunConfig
        The run's settings.
    partition_id : int | None
        The client of a local-only baseline; ``None`` for the centralized one.

    Returns
    -------
    list[int]
        A seed for :func:`fedapp.learning.model.train`.

    """
    if partition_id is None:
        return [cfg.seed, _CENTRALIZED_STREAM]
    return [cfg.seed, _LOCAL_STREAM + partition_id]


class GlobalTestTrainer:
    """Trains the run's model on given rows and scores it on the global test set.

    One compiled model serves every baseline: building and tracing it costs
    more than a small client's training, so each baseline only resets its
    weights to the initial ones (and :func:`fedapp.learning.model.train` resets the
    optimizer).

    Parameters
    ----------
    cfg : RunConfig
        The run's settings (model, training and data split).
    prep : Preprocessor
        The federated preprocessing, applied to training and test rows alike.
    rounds : int | None
        The federated rounds to match (``rounds * local_epochs`` epochs): by
        default the run's round limit; an automatic run's best round.

    """

    def __init__(self, cfg: RunConfig, prep: Preprocessor, rounds: int | None = None) -> None:
        self.cfg = cfg
        self.prep = prep
        self.rounds = rounds or cfg.round_limit
        # Built from the seed exactly as the server builds the federation's start.
        self.model = run_model(cfg, prep)
        self.initial = self.model.get_weights()
        self.test = prep.transform(data.global_test(cfg))

    def score(self, rows: pd.DataFrame, seed: Sequence[int]) -> dict[str, float]:
        """Train from the initial weights on ``rows``; return global-test metrics.

        Parameters
        ----------
        rows : pd.DataFrame
            Training rows, untransformed.
        seed : Sequence[int]
            Seed of the row order (see :func:`shuffle_seed`).

        Returns
        -------
        dict[str, float]
            :func:`fedapp.learning.metrics.score` on the global test set.

        """
        x, y = self.prep.transform(rows)
        self.model.set_weights(self.initial)
        train(
            self.model, x, y,
            epochs=self.rounds * self.cfg.local_epochs,
            batch_size=self.cfg.batch_size,
            seed=seed,
        )  # fmt: skip
        return evaluate(self.model, *self.test, self.prep.encoding)

    def calibrate(self) -> Calibration | None:
        """The decision threshold of the model as last trained, chosen as the federation's is.

        On the rows whose pooled counts calibrate the federated threshold
        (:func:`fedapp.data.pooled_evaluation`: every client's validation
        rows, or without them its held-out rows), so the two thresholds
        differ by their models alone. ``None`` for a run without ``threshold``.
        """
        metric = self.cfg.resolved_threshold_metric if self.cfg.calibrates_threshold else None
        fixed = self.cfg.fixed_threshold
        if metric is None and fixed is None:
            return None
        x, y = self._calibration_rows()
        return calibrate_predictions(y, predict(self.model, x), metric, fixed or 0.5)

    def _calibration_rows(self) -> tuple[np.ndarray, np.ndarray]:
        if self.cfg.validation_fraction == 0:
            return self.test
        return self.prep.transform(data.pooled_evaluation(self.cfg))


def centralized(
    cfg: RunConfig, prep: Preprocessor, trainer: GlobalTestTrainer | None = None
) -> dict[str, float]:
    """Train on the pooled training rows for ``rounds * local_epochs`` epochs.

    Parameters
    ----------
    cfg : RunConfig
        The run's settings.
    prep : Preprocessor
        The federated preprocessing.
    trainer : GlobalTestTrainer | None
        A trainer to reuse (its compiled model); ``None`` builds one.

    Returns
    -------
    dict[str, float]
        The metrics on the global test set.

    """
    trainer = trainer or GlobalTestTrainer(cfg, prep)
    return trainer.score(data.pooled_train(cfg), shuffle_seed(cfg))


def local_only(
    cfg: RunConfig,
    prep: Preprocessor,
    trainer: GlobalTestTrainer | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Train one model per client on its own training rows only.

    Parameters
    ----------
    cfg : RunConfig
        The run's settings.
    prep : Preprocessor
        The federated preprocessing (a lone institution would fit its own;
        sharing it keeps the comparison about the model alone).
    trainer : GlobalTestTrainer | None
        A trainer to reuse (its compiled model); ``None`` builds one.
    progress : Callable[[int], None] | None
        Told how many clients' models are done after each one.

    Returns
    -------
    dict[str, dict[str, float]]
        Partition id (as a string, like the per-client records of
        ``metrics.jsonl``) to the metrics on the global test set.

    """
    trainer = trainer or GlobalTestTrainer(cfg, prep)
    scores = {}
    for pid in range(cfg.clients):
        scores[str(pid)] = trainer.score(data.client_share(cfg, pid).train, shuffle_seed(cfg, pid))
        if progress:
            progress(pid + 1)
    return scores


def gap(federated: Mapping[str, float], centralized: Mapping[str, float]) -> dict[str, float]:
    """What federation costs: ``federated[k] - centralized[k]`` for each metric ``k``."""
    return {k: federated[k] - centralized[k] for k in federated if k in centralized}
