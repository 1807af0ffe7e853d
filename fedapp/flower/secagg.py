"""Secure aggregation with Flower's SecAgg+ protocol.

Each sampled client clips its weights to ``[-c, c]``, scales them by its
weight ``r_i = n_i / n_max`` (``n_i`` its training examples, ``n_max`` the
largest client's), quantises them stochastically to integers in
``[0, 2**bits]`` and adds pairwise masks that cancel in the sum, plus a
private mask whose seed it secret-shares with its neighbours. The server sums
the masked vectors modulo ``2**32``, rebuilds the private masks of the
clients that answered (and the pairwise masks of those that dropped out) from
``threshold`` of ``shares`` shares, and obtains only

    Σ_i r_i w_i / Σ_i r_i,

the example-weighted mean of the clients' weights (FedAvg's aggregate), to
within the quantisation error: a step of ``2c / 2**bits`` per client and
weight, divided by ``Σ_i r_i``.

What still travels in clear under SecAgg+: each client's example count and
its fit metrics (training loss, partition id). What no longer exists on the
server: any one client's weights, so per-client update signals cannot be
computed and strategies that combine individual updates (medians, Krum,
trimmed means, custom weights, server-side DP clipping) do not apply.

The client side is Flower's ``secaggplus_mod``; it must be the outermost mod,
so that a clipping mod (``fixedclipping_mod`` of client-side DP) acts on the
weights before they are quantised and masked, as in Flower's ``fl-dp-sa``
example. Under client-level DP every client weighs the same (the noise is
calibrated for one client moving the mean by at most ``C/m``), so there each
client reports a weight of 1 to the protocol, and ``n_max`` is 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flwr.app import Context, Message, MessageType
from flwr.client.mod import secaggplus_mod
from flwr.clientapp.typing import ClientAppCallable
from flwr.compat.common import recorddict_compat as compat
from flwr.server import LegacyContext, ServerAppComponents
from flwr.server.strategy import (
    Bulyan,
    DifferentialPrivacyServerSideFixedClipping,
    FedMedian,
    FedTrimmedAvg,
    Krum,
    Strategy,
)
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey

from fedapp.errors import UsageError
from fedapp.settings import SECAGG_MODULUS_BITS, DpMode, RunConfig

if TYPE_CHECKING:
    from flwr.server.workflow.secure_aggregation.secaggplus_workflow import WorkflowState
    from flwr.serverapp import Grid

# Flower's strategies that combine each client's own weights: under SecAgg+
# every result carries the same masked-sum mean, so they would silently
# reduce to FedAvg.
_NEEDS_INDIVIDUAL_UPDATES: tuple[type[Strategy], ...] = (
    Bulyan,
    DifferentialPrivacyServerSideFixedClipping,
    FedMedian,
    FedTrimmedAvg,
    Krum,
)
_RUN_CONFIG_KEY = "secure-aggregation"


def check_strategy(cfg: RunConfig, strategy: Strategy) -> None:
    """Refuse a strategy that needs what SecAgg+ hides: each client's weights.

    Raises
    ------
    UsageError
        Naming the strategy and why.

    """
    if not cfg.secure_aggregation:
        return
    layers = [strategy]
    inner = getattr(strategy, "strategy", None)  # Flower's DP wrappers keep it here
    if isinstance(inner, Strategy):
        layers.append(inner)
    for layer in layers:
        individual = isinstance(layer, _NEEDS_INDIVIDUAL_UPDATES)
        # A custom weighting of clients (e.g. `weighted --policy uniform`) is not
        # the example weighting SecAgg+ computes.
        if individual or getattr(layer, "policy", "examples") != "examples":
            raise UsageError(
                f"secure-aggregation: strategy '{cfg.strategy}' ({type(layer).__name__}) "
                "combines each client's own update, which SecAgg+ hides; use a strategy "
                "that takes the example-weighted mean (fedavg, fedprox, fedavgm, fedadam, "
                "fedyogi, fedadagrad, weighted --policy examples)"
            )


def secure_aggregation_mod(cfg: RunConfig | None = None) -> Callable[..., Message]:
    """Flower's ``secaggplus_mod`` when the run asks for secure aggregation.

    Parameters
    ----------
    cfg : RunConfig | None
        The run's settings; ``None`` reads ``secure-aggregation`` from each
        message's run config (the Flower App, whose mods are fixed before any
        run config is known).

    """
    fixed = None if cfg is None else cfg.to_flwr()

    def mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        settings = context.run_config if fixed is None else fixed
        if not settings.get(_RUN_CONFIG_KEY, False):
            return call_next(msg, context)
        if _equal_weights(settings):
            return secaggplus_mod(msg, context, _weighing_one(call_next))
        return secaggplus_mod(msg, context, call_next)

    return mod


def _weighing_one(call_next: ClientAppCallable) -> ClientAppCallable:
    """``call_next`` whose fit result reports one example: equal client weights."""

    def fit(msg: Message, context: Context) -> Message:
        reply = call_next(msg, context)
        if msg.metadata.message_type != MessageType.TRAIN or reply.has_error():
            return reply
        res = compat.recorddict_to_fitres(reply.content, keep_input=True)
        res.num_examples = 1
        reply.content = compat.fitres_to_recorddict(res, keep_input=True)
        return reply

    return fit


def _equal_weights(settings: Mapping[str, Any]) -> bool:
    """Whether clients weigh the same (client-level DP), from flat run settings."""
    return settings.get("dp") == DpMode.CENTRAL


def _one() -> float:
    return 1.0


class FedappSecAggPlus(SecAggPlusWorkflow):
    """Flower's SecAgg+ fit workflow with fedapp's settings and weight bound.

    Parameters
    ----------
    cfg : RunConfig
        Shares, threshold, clipping range and quantisation bits.
    max_weight : Callable[[], float]
        The largest client's example count, known only once the statistics
        query has run (before round 1). Clients scale their weights by
        ``n_i / max_weight`` before clipping, so a bound below some ``n_i``
        would clip that client's weights.

    """

    def __init__(self, cfg: RunConfig, max_weight: Callable[[], float]) -> None:
        super().__init__(
            num_shares=cfg.resolved_secagg_shares,
            reconstruction_threshold=cfg.resolved_secagg_threshold,
            clipping_range=cfg.secagg_clipping_range,
            quantization_range=2**cfg.secagg_quantization_bits,
            modulus_range=2**SECAGG_MODULUS_BITS,
            # Each stage's messages live this long, not Flower's default 12 h.
            timeout=cfg.resolved_round_timeout,
        )
        self._max_weight = max_weight
        self._sampled = self._unmasked = False

    def __call__(self, grid: Grid, context: Context) -> None:
        """Run one round of the protocol; record a round it gave up on, where Flower only logs.

        When clients were sampled but too few answered to unmask the sum
        (more dropouts than shares - threshold in some neighbourhood), the
        round is skipped: it keeps the previous global model, and the run
        goes on.
        """
        self._sampled = self._unmasked = False
        super().__call__(grid, context)
        if self._sampled and not self._unmasked:
            assert isinstance(context, LegacyContext)
            config = context.state.config_records[MAIN_CONFIGS_RECORD]
            reason = (
                "SecAgg+ could not unmask the round's sum: fewer clients answered than "
                f"secagg-threshold ({self.reconstruction_threshold}) in some neighbourhood; "
                "the previous global model is kept"
            )
            server_round = int(config[WorkflowKey.CURRENT_ROUND])  # type: ignore[arg-type]
            context.strategy.skip(server_round, reason)  # type: ignore[attr-defined]

    def setup_stage(self, grid: Grid, context: LegacyContext, state: WorkflowState) -> bool:
        """Set the weight bound from the federation's statistics, then run Flower's setup."""
        self.max_weight = float(self._max_weight())
        done = super().setup_stage(grid, context, state)
        # No sampled client (a run ended early by its privacy budget) is no failure.
        self._sampled = bool(state.nid_to_proxies)
        return done

    def unmask_stage(self, grid: Grid, context: LegacyContext, state: WorkflowState) -> bool:
        """Flower's unmasking, remembering whether the sum came out."""
        self._unmasked = super().unmask_stage(grid, context, state)
        return self._unmasked


def run(
    grid: Grid,
    context: Context,
    components: ServerAppComponents,
    cfg: RunConfig,
    max_weight: Callable[[], float],
) -> None:
    """Run ``components`` with every fit round aggregated by SecAgg+.

    Flower's default workflow drives the rest as the legacy server does: the
    strategy's ``initialize_parameters`` (fedapp's statistics query), central
    evaluation after every round and the clients' evaluation.
    """
    assert components.strategy is not None and components.config is not None
    if _equal_weights(cfg.to_flwr()):
        max_weight = _one
    legacy = LegacyContext(
        context=context,
        config=components.config,
        strategy=components.strategy,
        client_manager=components.client_manager,
    )
    DefaultWorkflow(fit_workflow=FedappSecAggPlus(cfg, max_weight))(grid, legacy)
