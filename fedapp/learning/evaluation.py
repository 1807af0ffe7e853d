"""Central evaluation: the server's copy of the global model, scored on the server-held test set.

The server builds the federation's initial weights here (from the seed, so
every client starts alike), scores the global weights every ``eval_every``
rounds and after the last one, and saves the final model. In a deployed
federation (``data = 'node'``) the server holds no rows: nothing is scored,
and the final model is still saved.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from fedapp import data
from fedapp.data.stats import BINARY, Preprocessor, TargetEncoding
from fedapp.learning.curves import task_curves
from fedapp.learning.metrics import score
from fedapp.learning.model import FedModel, predict, run_model
from fedapp.settings import NODE_DATA, RunConfig


def is_due(server_round: int, every: int, last_round: int) -> bool:
    """Whether round ``server_round`` is centrally evaluated.

    Rounds ``0, every, 2·every, ...`` (round 0 scores the initial model) and
    always ``last_round``, whose metrics are the run's final ones.
    """
    return server_round % every == 0 or server_round == last_round


class CentralEvaluator:
    """Holds the server's model and test set; scores and saves the global weights.

    Parameters
    ----------
    model : FedModel
        The run's model, built once; each round only assigns weights.
    test : tuple[np.ndarray, np.ndarray] | None
        The transformed global test set, or ``None`` when the server holds no rows.
    every : int
        Score every ``every`` rounds (and after the last round).
    encoding : TargetEncoding
        The target's encoding (its task); a 0/1 target by default.

    """

    def __init__(
        self,
        model: FedModel,
        test: tuple[np.ndarray, np.ndarray] | None,
        every: int = 1,
        encoding: TargetEncoding = BINARY,
    ) -> None:
        self.model = model
        self.test = test
        self.every = every
        self.encoding = encoding

    @classmethod
    def for_run(cls, cfg: RunConfig, prep: Preprocessor) -> CentralEvaluator:
        """The evaluator of ``cfg``: the seeded model over ``prep``'s features, the test set."""
        model = run_model(cfg, prep)
        # Deployed, the rows stay on the SuperNodes: there is nothing to test on here.
        test = None if cfg.data == NODE_DATA else prep.transform(data.global_test(cfg))
        return cls(model, test, cfg.eval_every, prep.encoding)

    @property
    def initial_weights(self) -> list[np.ndarray]:
        """The weights the model was built with (before any :meth:`score` or :meth:`save`)."""
        return self.model.get_weights()

    def is_due(self, server_round: int, last_round: int) -> bool:
        """Whether round ``server_round`` is scored (see :func:`is_due`)."""
        return self.test is not None and is_due(server_round, self.every, last_round)

    def score(self, weights: Sequence[np.ndarray]) -> dict[str, float]:
        """The task's scores (:func:`fedapp.learning.metrics.score`) of ``weights`` on the test set.

        Raises
        ------
        ValueError
            When the server holds no test set.

        """
        return score(self.encoding, *self._predicted(weights))

    def curves(self, weights: Sequence[np.ndarray]) -> dict:
        """:func:`~fedapp.learning.curves.task_curves` of ``weights`` on the test set.

        Raises
        ------
        ValueError
            When the server holds no test set.

        """
        return task_curves(self.encoding, *self._predicted(weights))

    def _predicted(self, weights: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The test set's encoded targets and the model's output for its rows with ``weights``."""
        if self.test is None:
            raise ValueError("the server holds no test set to score on")
        self.model.set_weights(list(weights))
        x, y = self.test
        return y, predict(self.model, x)

    def save(self, weights: Sequence[np.ndarray], path: Path) -> None:
        """Save the model with ``weights`` to ``path`` (``model.keras``).

        What is saved is a plain functional Keras model over the same layers:
        training's own model class (FedProx's loss term) stays out of the
        file, so any Keras loads it without fedapp.
        """
        self.model.set_weights(list(weights))
        plain = keras.Model(self.model.inputs, self.model.outputs, name="fedapp_model")
        # Keras 3.15 under NumPy 2 warns on saving; Flower's loop resets the
        # process-wide filter (fedapp.learning.model's), so it is set here again.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            plain.save(path)
