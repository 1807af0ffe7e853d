"""Per-client anomaly signals of a round's updates.

With w the round's global model, w_i what client i sent and w_agg the model
the strategy aggregated, client i's update is Δ_i = w_i - w and the round's
aggregate update is Δ = w_agg - w. Two signals per client:

* its update norm ‖Δ_i‖ (an amplified or noise update stands out);
* the cosine similarity cos(Δ_i, Δ) (a reversed update points away).

Each is turned into a robust z-score across the round's clients (median and
MAD, Iglewicz & Hoaglin's modified z-score), so that the attackers themselves
cannot drag the reference the way they would a mean and standard deviation::

    z_i = 0.6745 · (x_i - median(x)) / median(|x - median(x)|)

A client is flagged when |z| of its norm, or -z of its cosine, exceeds the
threshold (3.5 in the literature). Cosines are judged on one side only: an
update closer to the aggregate than its peers' is not suspicious (under Krum
the chosen client's cosine is exactly 1). A round of fewer than
:data:`MIN_CLIENTS_TO_FLAG` updates flags none but a non-finite one: a median
and MAD of three or four values move with every honest difference, and over
three clients the score flagged an honest one in most rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# 0.6745 = Φ⁻¹(0.75): makes the MAD a consistent estimate of sigma for normal data.
_MAD_SCALE = 0.6745
DEFAULT_THRESHOLD = 3.5
MIN_CLIENTS_TO_FLAG = 5


def can_flag(clients: int) -> bool:
    """Whether a round of ``clients`` scored updates is large enough to flag any by z-score."""
    return clients >= MIN_CLIENTS_TO_FLAG


def flat_update(weights: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> np.ndarray:
    """Δ = weights - reference over all layers, as one float64 vector."""
    if not weights:
        return np.zeros(0)
    return np.concatenate(
        [
            (np.asarray(w, dtype=np.float64) - r).ravel()
            for w, r in zip(weights, reference, strict=True)
        ]
    )


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """cos(a, b) = a·b / (‖a‖‖b‖), in [-1, 1]; NaN when either vector is zero (no direction).

    Rounding can put a vector's cosine with itself a hair above 1 (Krum's
    aggregate is the chosen client's update): it is clipped to the range.
    """
    norms = float(np.linalg.norm(a)) * float(np.linalg.norm(b))
    if norms == 0 or not np.isfinite(norms):
        return float("nan")
    return float(np.clip(np.dot(a, b) / norms, -1.0, 1.0))


def robust_z_scores(values: Sequence[float]) -> np.ndarray:
    """Modified z-scores 0.6745 · (x - median) / MAD of the finite ``values``.

    Non-finite values get NaN and do not move the median. When more than half
    the values agree exactly (MAD = 0) any other value is infinitely far:
    ±inf, and 0 for the values at the median.
    """
    x = np.asarray(values, dtype=np.float64)
    z = np.full(x.shape, np.nan)
    finite = np.isfinite(x)
    if not finite.any():
        return z
    median = np.median(x[finite])
    mad = np.median(np.abs(x[finite] - median))
    deviation = x[finite] - median
    if mad > 0:
        z[finite] = _MAD_SCALE * deviation / mad
    else:
        z[finite] = np.where(deviation == 0, 0.0, np.copysign(np.inf, deviation))
    return z


@dataclass(frozen=True)
class RoundSignals:
    """One round's signals, in the order of the clients given.

    Attributes
    ----------
    norms : np.ndarray
        ‖Δ_i‖ per client.
    cosines : np.ndarray
        cos(Δ_i, Δ) per client (NaN without an aggregate).
    norm_z, cosine_z : np.ndarray
        Their robust z-scores.
    flagged : tuple[int, ...]
        Indices (into the clients given) of the flagged clients.

    """

    norms: np.ndarray
    cosines: np.ndarray
    norm_z: np.ndarray
    cosine_z: np.ndarray
    flagged: tuple[int, ...]


def round_signals(
    global_weights: Sequence[np.ndarray],
    client_weights: Sequence[Sequence[np.ndarray]],
    aggregated: Sequence[np.ndarray] | None,
    threshold: float = DEFAULT_THRESHOLD,
) -> RoundSignals:
    """Norms, cosines, their robust z-scores and the flagged clients of one round.

    Parameters
    ----------
    global_weights : Sequence[np.ndarray]
        The model the round started from (w).
    client_weights : Sequence[Sequence[np.ndarray]]
        What each client sent (w_i).
    aggregated : Sequence[np.ndarray] | None
        The strategy's new global model (w_agg); ``None`` when it produced
        none, which leaves the cosines NaN.
    threshold : float
        Flag beyond this robust z-score (in rounds :func:`can_flag` allows).

    """
    updates = [flat_update(w, global_weights) for w in client_weights]
    norms = np.array([np.linalg.norm(u) for u in updates], dtype=np.float64)
    if aggregated is None:
        cosines = np.full(len(updates), np.nan)
    else:
        reference = flat_update(aggregated, global_weights)
        cosines = np.array([cosine_similarity(u, reference) for u in updates])
    norm_z = robust_z_scores(norms)
    cosine_z = robust_z_scores(cosines)
    # A NaN comparison is False: a signal that cannot be scored flags nobody,
    # except an update that is itself not finite.
    with np.errstate(invalid="ignore"):
        outlying = (np.abs(norm_z) > threshold) | (-cosine_z > threshold)
    suspicious = (outlying & can_flag(len(updates))) | ~np.isfinite(norms)
    return RoundSignals(
        norms, cosines, norm_z, cosine_z, tuple(int(i) for i in np.flatnonzero(suspicious))
    )


def client_records(signals: RoundSignals) -> list[dict[str, float]]:
    """Per-client entries for ``metrics.jsonl``, in the order of the clients given."""
    return [
        {"update-norm": float(n), "cosine": float(c), "update-norm-z": float(nz),
         "cosine-z": float(cz)}
        for n, c, nz, cz in zip(
            signals.norms, signals.cosines, signals.norm_z, signals.cosine_z, strict=True
        )
    ]  # fmt: skip
