"""Differential privacy in Flower: the client-level DP wrappers and mods, a client's budget state.

The accounting itself is pure and lives in :mod:`fedapp.protection.privacy`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from flwr.client.mod import fixedclipping_mod
from flwr.common import (
    ConfigRecord,
    Context,
    FitIns,
    FitRes,
    Message,
    Parameters,
    RecordDict,
    Scalar,
)
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    Strategy,
)

from fedapp.protection.privacy import RecordBudget
from fedapp.settings import DpClipping, DpMode, RunConfig

# Where a client keeps the number of rounds it has trained, in its Flower node state.
_STATE_KEY = "fedapp-dp-sgd"


def wrap_strategy(strategy: Strategy, cfg: RunConfig) -> Strategy:
    """Wrap a plugin's strategy in Flower's client-level DP wrapper for ``cfg``.

    The wrapper clips (server-side) or has clients clip, lets the strategy
    aggregate with equal client weights over the clients sampled (see
    :class:`_SampledMean`), and noises the aggregate.
    """
    if cfg.dp != DpMode.CENTRAL:
        return strategy
    wrapper = (
        DifferentialPrivacyClientSideFixedClipping
        if cfg.dp_clipping == DpClipping.CLIENT
        else DifferentialPrivacyServerSideFixedClipping
    )
    noised = wrapper(
        _SampledMean(strategy, cfg.sample_size),
        noise_multiplier=cfg.noise_multiplier,
        clipping_norm=cfg.clip_norm,
        num_sampled_clients=cfg.sample_size,
    )
    return _KeepRoundsWithFailures(noised)


def _equal_weights(results: list[tuple[ClientProxy, FitRes]]) -> list[tuple[ClientProxy, FitRes]]:
    return [(proxy, dataclasses.replace(res, num_examples=1)) for proxy, res in results]


class _SampledMean:
    """A strategy aggregating with equal client weights and the fixed denominator ``m``.

    Inside Flower's DP wrapper, after clipping and before the noise, the
    ``m - k`` sampled clients that sent nothing are filled in with zero
    updates (results equal to the round's global weights ``w``), so that

        w' = w + (1/m) * sum_{i answered} clip(u_i, C) + N(0, (z*C/m)^2 I).

    Why the weights are equal: the noise ``z·C/m`` is calibrated for one
    client moving the average by at most ``C/m``; an example-weighted average
    lets a large client move it by more, so each update counts once.

    Why the denominator is ``m`` whatever the failures: a client moves the
    sum by at most ``C`` whether or not others answered, so the released
    mean has sensitivity ``C/m`` under noise of standard deviation ``z·C/m``:
    the same Gaussian mechanism every round, a failed client contributing
    nothing, as an unsampled one would. The accountant's per-round event
    (the Poisson-subsampled Gaussian, rate ``m/N``, multiplier ``z``)
    therefore still bounds every round, and ε is computed as without
    failures. Dividing by the ``k`` clients that answered would give a
    sensitivity of ``C/k`` under noise calibrated for ``C/m``: fewer answers
    would mean less privacy than accounted. The price is a mean shrunk
    towards ``w`` by ``k/m`` in a round with failures.

    Parameters
    ----------
    strategy : Strategy
        The plugin's strategy.
    sampled : int
        ``m``, the clients sampled per round.

    """

    def __init__(self, strategy: Strategy, sampled: int) -> None:
        self.strategy = strategy
        self.sampled = sampled
        self._current: Parameters | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.strategy, name)

    def __repr__(self) -> str:
        return f"SampledMean({self.strategy!r})"

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Configure as the strategy does, keeping the round's global weights ``w``."""
        self._current = parameters
        return self.strategy.configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list,
    ) -> tuple[Any, dict[str, Scalar]]:
        """Aggregate as the strategy does: every client weighing 1, the failed as zero updates."""
        equal = _equal_weights(results)
        missing = self.sampled - len(equal)
        if missing > 0 and equal and self._current is not None:
            proxy, first = equal[0]
            zero = dataclasses.replace(first, parameters=self._current)
            equal += [(proxy, zero)] * missing
        return self.strategy.aggregate_fit(server_round, equal, failures)


class _KeepRoundsWithFailures:
    """Flower's DP wrapper, but a round with failed clients is aggregated, not discarded.

    Flower's wrappers return no aggregate when any client failed; with
    :class:`_SampledMean` inside, the round's mean stays private (its
    docstring says why), so the failures are not passed on.
    """

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy

    def __getattr__(self, name: str) -> Any:
        return getattr(self.strategy, name)

    def __repr__(self) -> str:
        return repr(self.strategy)

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list,
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Aggregate the results that came back, as if no client had failed."""
        return self.strategy.aggregate_fit(server_round, results, [])


def client_mods(cfg: RunConfig | None) -> list[Callable[..., Message]]:
    """The ClientApp mods client-level DP needs: Flower's ``fixedclipping_mod``.

    With ``cfg`` the choice is made now; without it (a Flower App, settings in
    the run config) each message's run config decides.
    """
    if cfg is None:
        return [_clipping_by_run_config]
    if cfg.dp == DpMode.CENTRAL and cfg.dp_clipping == DpClipping.CLIENT:
        return [fixedclipping_mod]
    return []


def _clipping_by_run_config(
    msg: Message, ctxt: Context, call_next: Callable[[Message, Context], Message]
) -> Message:
    settings = ctxt.run_config
    if settings.get("dp") == DpMode.CENTRAL and settings.get("dp-clipping") == DpClipping.CLIENT:
        return fixedclipping_mod(msg, ctxt, call_next)
    return call_next(msg, ctxt)


# -- record-level DP: a client's budget in its node state -------------------
def record_budget(cfg: RunConfig, rows: int, state: RecordDict) -> RecordBudget:
    """The client's DP-SGD budget, with the rounds it spent read from its node state.

    The count lives in the node's ``Context.state``, so it survives between
    rounds whichever process runs the client.
    """
    rounds = int(state[_STATE_KEY]["rounds"]) if _STATE_KEY in state else 0  # type: ignore[index]
    return RecordBudget(cfg, rows, rounds)


def save_budget(budget: RecordBudget, state: RecordDict) -> None:
    """Keep the rounds ``budget`` has spent in the node state, for the next message."""
    state[_STATE_KEY] = ConfigRecord({"rounds": budget.rounds})
