"""The closing query: what the clients are asked about the kept model once the rounds are over.

Flower's server loop has no step after its last round, so a run that needs
one (``threshold``, ``personalize-epochs``) gets one more, idle, round: no
client trains in it, and its evaluate step asks every connected client, with
the kept global weights (:class:`ClosingPlan`)

* for the confusion counts of its held-out rows at each threshold of
  :data:`fedapp.learning.threshold.GRID` (``threshold = auto``) or at the
  fixed threshold, from which the server picks and scores the run's
  decision threshold on the pooled counts;
* to fine-tune a copy of the weights for ``personalize-epochs`` epochs on its
  training rows and score it on its held-out rows.

It is no training round: no event in ``metrics.jsonl``, no progress, not in
``rounds``. The pooled counts are of every client's held-out rows: in a
simulation, exactly the global test set the federated scores are of.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flwr.common import EvaluateIns, Parameters
from flwr.server.client_proxy import ClientProxy

from fedapp.flower import reports
from fedapp.flower.protocol import CLOSING_EPOCHS, CLOSING_THRESHOLDS, COUNTS_KEY, FINE_TUNED_KEY
from fedapp.learning import threshold
from fedapp.settings import RunConfig
from fedapp.settings.specs import ThresholdMetric

# The keys of a closing reply that are not the global model's own scores.
_CLOSING_KEYS = (COUNTS_KEY, FINE_TUNED_KEY)


@dataclass(frozen=True)
class ClosingResults:
    """What the closing query found.

    Attributes
    ----------
    threshold : dict[str, Any] | None
        The run's decision threshold (:meth:`fedapp.learning.threshold.Calibration.to_dict`)
        with ``clients``, how many clients' counts it pooled; ``None`` when not asked.
    personalized : dict[str, Any] | None
        ``epochs``; per client (``clients``, by partition id) the kept model's
        scores on its held-out rows (``federated``), the fine-tuned model's
        (``fine_tuned``) and the rows (``test``); and their example-weighted
        means (``mean``). ``None`` when not asked.

    """

    threshold: dict[str, Any] | None
    personalized: dict[str, Any] | None


@dataclass(frozen=True)
class ClosingPlan:
    """What the closing query asks, from the run's settings.

    Attributes
    ----------
    thresholds : tuple[float, ...]
        Where the clients count confusions: the grid (``threshold = auto``),
        the fixed threshold, or none.
    metric : ThresholdMetric | None
        What calibration optimises; ``None`` for a fixed threshold.
    epochs : int
        Fine-tuning epochs (0: none).

    """

    thresholds: tuple[float, ...] = ()
    metric: ThresholdMetric | None = None
    epochs: int = 0

    @classmethod
    def of(cls, cfg: RunConfig) -> ClosingPlan:
        """The plan of ``cfg``'s ``threshold``, ``threshold-metric`` and ``personalize-epochs``."""
        fixed = cfg.fixed_threshold
        if cfg.calibrates_threshold:
            return cls(threshold.GRID, cfg.resolved_threshold_metric, cfg.personalize_epochs)
        return cls(() if fixed is None else (fixed,), None, cfg.personalize_epochs)

    @property
    def needed(self) -> bool:
        """Whether the run has a closing query."""
        return bool(self.thresholds) or self.epochs > 0

    @property
    def label(self) -> str:
        """What the closing query does, as a progress display says it."""
        asks = []
        if self.thresholds:
            asks.append("calibrating the threshold" if self.metric else "scoring the threshold")
        if self.epochs:
            asks.append("fine-tuning on each client")
        return " and ".join(asks)

    def fixed_record(self) -> dict[str, Any] | None:
        """A fixed threshold's record before (or without) its counts: a stopped run keeps it."""
        if self.metric is None and len(self.thresholds) == 1:
            return {"value": self.thresholds[0], "source": "fixed"}
        return None

    def instructions(
        self, proxies: Iterable[ClientProxy], parameters: Parameters
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        """The closing query to each of ``proxies``, about ``parameters``."""
        config = {
            CLOSING_THRESHOLDS: json.dumps(list(self.thresholds)) if self.thresholds else "",
            CLOSING_EPOCHS: self.epochs,
        }
        return [(proxy, EvaluateIns(parameters, dict(config))) for proxy in proxies]

    def results(self, answers: Sequence[reports.ClientReport], failed: int = 0) -> ClosingResults:
        """Pool the clients' answers (in partition order).

        Raises
        ------
        ValueError
            For a reply whose counts are not the grid's.

        """
        return ClosingResults(self._threshold(answers, failed), self._personalized(answers))

    def _threshold(
        self, answers: Sequence[reports.ClientReport], failed: int
    ) -> dict[str, Any] | None:
        counted = [a for a in answers if COUNTS_KEY in a.metrics]
        if not self.thresholds or not counted:
            return None
        size = len(self.thresholds)
        counts = threshold.pooled(
            threshold.decode_counts(str(a.metrics[COUNTS_KEY]), size) for a in counted
        )
        found = threshold.calibrate(counts, self.metric, self.thresholds)
        return found.to_dict() | {"clients": len(counted), "failed": failed}

    def _personalized(self, answers: Sequence[reports.ClientReport]) -> dict[str, Any] | None:
        tuned = [a for a in answers if FINE_TUNED_KEY in a.metrics]
        if self.epochs <= 0 or not tuned:
            return None
        own = [_without_closing(a) for a in tuned]
        fine = [
            reports.ClientReport(
                a.partition_id, a.examples, json.loads(str(a.metrics[FINE_TUNED_KEY]))
            )
            for a in tuned
        ]
        _, federated, _ = reports.evaluate_fields(own)
        _, fine_tuned, _ = reports.evaluate_fields(fine)
        clients = {
            pid: {"federated": _scores(federated[pid]), "fine_tuned": _scores(fine_tuned[pid]),
                  "test": federated[pid]["examples"]}
            for pid in federated
        }  # fmt: skip
        mean = {
            "federated": reports.weighted_means(own),
            "fine_tuned": reports.weighted_means(fine),
        }
        return {"epochs": self.epochs, "clients": clients, "mean": mean}


def _without_closing(answer: reports.ClientReport) -> reports.ClientReport:
    """A closing reply's own scores of the kept model, without the closing keys."""
    kept = {k: v for k, v in answer.metrics.items() if k not in _CLOSING_KEYS}
    return reports.ClientReport(answer.partition_id, answer.examples, kept)


def _scores(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "examples"}
