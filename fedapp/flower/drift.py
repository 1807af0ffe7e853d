"""SCAFFOLD's client side in Flower: the round's control variates, and ``c_i`` in the node state.

The server sends its control variate ``c`` and the local SGD step size in
the fit config (:mod:`fedapp.learning.drift` names the keys); the client
keeps its own ``c_i`` in its node's ``Context.state``, as record-level DP
keeps its budget there (:func:`fedapp.flower.dp.record_budget`), so that it
survives between rounds whichever process runs the client, and answers with
``c_i+ - c_i`` in its fit metrics. The weights it returns stay exactly
``model.get_weights()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.common import ArrayRecord, RecordDict, Scalar

from fedapp.learning import drift

# Where a client keeps its control variate c_i, in its Flower node state.
_STATE_KEY = "fedapp-scaffold-ci"


@dataclass(frozen=True)
class ScaffoldRound:
    """What one SCAFFOLD fit starts from.

    Attributes
    ----------
    learning_rate : float
        The clients' plain SGD step size eta_l.
    server : list[np.ndarray]
        The server's control variate ``c``.
    own : list[np.ndarray]
        This client's ``c_i`` (zeros before its first SCAFFOLD round).

    """

    learning_rate: float
    server: list[np.ndarray]
    own: list[np.ndarray]

    @classmethod
    def of(
        cls, config: Mapping[str, Any], weights: Sequence[np.ndarray], state: RecordDict
    ) -> ScaffoldRound | None:
        """The round's control variates, or ``None`` when the strategy is not SCAFFOLD.

        ``weights`` are the global weights received, which give the shapes.
        """
        if drift.SCAFFOLD_CONTROL_KEY not in config:
            return None
        server = drift.unpack(config[drift.SCAFFOLD_CONTROL_KEY], weights)
        if _STATE_KEY in state:
            own = state[_STATE_KEY].to_numpy_ndarrays()  # type: ignore[union-attr]
        else:
            own = [np.zeros_like(c) for c in server]
        return cls(float(config[drift.SCAFFOLD_LEARNING_RATE_KEY]), server, own)

    @property
    def correction(self) -> list[np.ndarray]:
        """``c - c_i``, added to every local gradient."""
        return [c - ci for c, ci in zip(self.server, self.own, strict=True)]

    def finish(
        self,
        start: Sequence[np.ndarray],
        end: Sequence[np.ndarray],
        steps: int,
        state: RecordDict,
    ) -> dict[str, Scalar]:
        """Keep ``c_i+`` (option II) in ``state``; return fit metrics carrying ``c_i+ - c_i``."""
        new = drift.scaffold_client_control(
            self.own, self.server, start, end, steps, self.learning_rate
        )
        state[_STATE_KEY] = ArrayRecord(new)
        delta = [n - ci for n, ci in zip(new, self.own, strict=True)]
        return {drift.SCAFFOLD_DELTA_KEY: drift.pack(delta)}
