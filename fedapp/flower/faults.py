"""Fault injection on the client: a ClientApp mod that drops or delays a round's replies.

The mod follows the run's :class:`~fedapp.protection.faults.FaultPlan`: a
dropped client's reply to a round's ``train`` or ``evaluate`` message is an
error, as the server sees from a node that went away; a straggler's reply
comes ``straggler_delay`` seconds late, or, when that is past the round's
timeout (the message's time to live), not at all. The statistics query before round 1
and the closing query after the last round are never touched: a fault there
would end the run rather than exercise its tolerance of faults.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flwr.common import Context, Error, Message, MessageType
from flwr.common.constant import ErrorCode

from fedapp.flower.protocol import CLOSING_THRESHOLDS, PARTITION_KEY, ROUND_KEY
from fedapp.protection.faults import Fault, FaultPlan
from fedapp.settings import RunConfig

_CONFIG_RECORD = {MessageType.TRAIN: "fitins.config", MessageType.EVALUATE: "evaluateins.config"}


def plan_of(cfg: RunConfig) -> FaultPlan:
    """The run's fault plan."""
    return FaultPlan(cfg.seed, cfg.dropout_rate, cfg.straggler_rate, cfg.straggler_delay)


def client_mods(cfg: RunConfig | None) -> list[Callable[..., Message]]:
    """The fault-injection mod, when ``cfg`` injects faults (or may: no ``cfg``).

    Without ``cfg`` (a Flower App, settings in the run config) each message's
    run config decides.
    """
    if cfg is not None and not plan_of(cfg).active:
        return []
    fixed = plan_of(cfg) if cfg is not None else None
    # A deployed node serves run after run: each run's plan, parsed once.
    plans: dict[int, FaultPlan] = {}

    def plan_for(ctxt: Context) -> FaultPlan:
        if fixed is not None:
            return fixed
        if ctxt.run_id not in plans:
            run_cfg = RunConfig.from_mapping(dict(ctxt.run_config), source="run config")
            plans[ctxt.run_id] = plan_of(run_cfg)
        return plans[ctxt.run_id]

    def inject_faults(
        msg: Message, ctxt: Context, call_next: Callable[[Message, Context], Message]
    ) -> Message:
        plan = plan_for(ctxt)
        fault, server_round = _fault_of(msg, ctxt, plan)
        if fault is Fault.DROPPED:
            return _lost(msg, f"fault injection: this client dropped out of round {server_round}")
        if fault is Fault.LATE:
            # Never past the message's time to live: the server has given up on
            # the reply by then, and in simulation the sleeping client would
            # hold back the clients queued behind it into the next round.
            alive = msg.metadata.created_at + msg.metadata.ttl - time.time()
            time.sleep(max(0.0, min(plan.straggler_delay, alive)))
            if plan.straggler_delay > alive:
                return _lost(
                    msg,
                    f"fault injection: this client answered round {server_round} "
                    f"{plan.straggler_delay:g} s late, after the round timeout",
                )
        return call_next(msg, ctxt)

    return [inject_faults]


def _lost(msg: Message, reason: str) -> Message:
    """The reply a node that went away leaves: an error, as the server sees from a lost node."""
    return Message(Error(code=ErrorCode.NODE_UNAVAILABLE, reason=reason), reply_to=msg)


def _fault_of(msg: Message, ctxt: Context, plan: FaultPlan) -> tuple[Fault, int]:
    """The plan's fault for this message's round and this node, and the round."""
    record = _CONFIG_RECORD.get(msg.metadata.message_type)
    if not plan.active or record is None or record not in msg.content.config_records:
        return Fault.NONE, 0
    config = msg.content.config_records[record]
    if ROUND_KEY not in config or CLOSING_THRESHOLDS in config:
        return Fault.NONE, 0
    server_round = int(config[ROUND_KEY])  # type: ignore[arg-type]
    partition_id = int(ctxt.node_config[PARTITION_KEY])  # type: ignore[arg-type]
    return plan.fault(server_round, partition_id), server_round
