"""Differential privacy in Flower: the client-level DP wrappers and mods, a client's budget state.

The accounting itself is pure and lives in :mod:`fedapp.protection.privacy`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from flwr.client.mod import fixedclipping_mod
from flwr.common import ConfigRecord, Context, FitRes, Message, RecordDict, Scalar
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
    aggregate with equal client weights, and noises the aggregate.
    """
    if cfg.dp != DpMode.CENTRAL:
        return strategy
    wrapper = (
        DifferentialPrivacyClientSideFixedClipping
        if cfg.dp_clipping == DpClipping.CLIENT
        else DifferentialPrivacyServerSideFixedClipping
    )
    return wrapper(
        _EqualWeights(strategy),
        noise_multiplier=cfg.noise_multiplier,
        clipping_norm=cfg.clip_norm,
        num_sampled_clients=cfg.sample_size,
    )


def _equal_weights(results: list[tuple[ClientProxy, FitRes]]) -> list[tuple[ClientProxy, FitRes]]:
    return [(proxy, dataclasses.replace(res, num_examples=1)) for proxy, res in results]


class _EqualWeights:
    """A strategy whose clients all weigh the same in ``aggregate_fit``.

    The noise ``z·C/m`` is calibrated for one client moving the average by at
    most ``C/m``; an example-weighted average lets a large client move it by
    more, so under client-level DP each update counts once.
    """

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy

    def __getattr__(self, name: str) -> Any:
        return getattr(self.strategy, name)

    def __repr__(self) -> str:
        return f"EqualWeights({self.strategy!r})"

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list,
    ) -> tuple[Any, dict[str, Scalar]]:
        """Aggregate as the wrapped strategy does, every client weighing 1."""
        return self.strategy.aggregate_fit(server_round, _equal_weights(results), failures)


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
