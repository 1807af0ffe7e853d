"""Differential privacy: accountants, per-client budgets and the server's ledger.

Two guarantees, chosen with ``--dp``:

* ``central`` (client-level): every sampled client's update ``Δ_i`` is clipped
  to L2 norm ``C`` (by the server, or with ``--dp-clipping client`` by the
  client's ``fixedclipping_mod``), the ``m`` clipped updates are averaged with
  equal weights and the server adds Gaussian noise of standard deviation
  ``z·C/m`` to the average (Flower's ``DifferentialPrivacy*FixedClipping``
  wrappers). One round is then a Gaussian mechanism with noise multiplier ``z``
  on the clients sampled at rate ``q = m/n``; ε protects a whole institution.
* ``record`` (record-level, DP-SGD): each client clips every example's gradient
  to ``C`` and adds noise ``N(0, (z·C)²)`` to each batch's sum
  (:func:`fedapp.learning.model.dp_gradients`). One local step is a Gaussian mechanism
  with noise multiplier ``z`` on rows sampled at rate ``q = batch/rows``; each
  client accounts for its own steps and stops when its budget is spent.

ε comes from ``dp-accounting``'s RDP accountant, each round (central) or step
(record) being a Poisson-subsampled Gaussian event: the usual accounting for
fixed-size client samples and shuffled fixed-size batches, which it
approximates.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedapp.errors import UsageError
from fedapp.settings import DpMode

if TYPE_CHECKING:
    from fedapp.settings import RunConfig

BUDGET_REACHED = "privacy budget reached"
# What a record-level DP client adds to its fit metrics.
EPSILON_KEY = "dp-epsilon"
SPENT_KEY = "dp-spent"


class _OrderNotConverged(logging.Filter):
    """Silence dp-accounting's note that it skipped one fractional RDP order.

    The accountant drops an order whose series does not converge and takes ε
    over the others; the warning says nothing a user can act on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to converge" not in record.getMessage()


logging.getLogger("absl").addFilter(_OrderNotConverged())


@functools.lru_cache(maxsize=4096)
def epsilon(noise_multiplier: float, sampling_rate: float, steps: int, delta: float) -> float:
    """ε of ``steps`` Poisson-subsampled Gaussian mechanisms, by RDP accounting.

    Parameters
    ----------
    noise_multiplier : float
        Noise standard deviation over the L2 sensitivity (``z``).
    sampling_rate : float
        Probability that one unit (a client, or a row) takes part in a step.
    steps : int
        How many times the mechanism ran.
    delta : float
        The δ of (ε, δ)-DP.

    Returns
    -------
    float
        ε; ``0`` for no step and ``inf`` without noise.

    """
    if steps <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    # 1.3 s of imports (SciPy, absl), paid only by a run that accounts for DP:
    # not by the CLI's checks or by every client process.
    import dp_accounting
    from dp_accounting import rdp

    event: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(noise_multiplier)
    if sampling_rate < 1:
        event = dp_accounting.PoissonSampledDpEvent(sampling_rate, event)
    accountant = rdp.RdpAccountant()
    accountant.compose(dp_accounting.SelfComposedDpEvent(event, steps))
    return float(accountant.get_epsilon(delta))


@dataclass(frozen=True)
class RoundAccountant:
    """The privacy cost of rounds that each run a subsampled Gaussian mechanism.

    Attributes
    ----------
    noise_multiplier : float
        ``z``.
    sampling_rate : float
        ``q``: clients per round / clients (central), batch / rows (record).
    steps_per_round : int
        Mechanism runs per round: 1 (central), local steps (record).
    delta : float
        The δ of (ε, δ)-DP.

    """

    noise_multiplier: float
    sampling_rate: float
    steps_per_round: int
    delta: float

    def epsilon(self, rounds: int) -> float:
        """ε after ``rounds`` rounds."""
        return epsilon(
            self.noise_multiplier, self.sampling_rate, rounds * self.steps_per_round, self.delta
        )

    def affordable_rounds(self, target: float, limit: int) -> int:
        """The most rounds, at most ``limit``, whose ε stays within ``target``."""
        return last_within(self.epsilon, target, limit)


def last_within(cost: Callable[[int], float], target: float, limit: int) -> int:
    """Largest ``r`` in ``[0, limit]`` with ``cost(r) <= target``, for a non-decreasing cost.

    Binary search: each ``cost`` is an accountant call, and budgets often allow
    thousands of rounds.
    """
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if cost(middle) <= target:
            low = middle
        else:
            high = middle - 1
    return low


def central_accountant(cfg: RunConfig) -> RoundAccountant:
    """Client-level accounting: one Gaussian release per round, clients sampled at m/n."""
    return RoundAccountant(cfg.noise_multiplier, cfg.sample_size / cfg.clients, 1, cfg.delta)


def record_accountant(cfg: RunConfig, rows: int) -> RoundAccountant:
    """Record-level accounting for a client with ``rows`` training rows (DP-SGD steps)."""
    batch = min(cfg.batch_size, rows)
    steps = cfg.local_epochs * math.ceil(rows / batch)
    return RoundAccountant(cfg.noise_multiplier, batch / rows, steps, cfg.delta)


def planned_rounds(cfg: RunConfig) -> tuple[int, str | None]:
    """Rounds the server will run and, when fewer than asked, why.

    With ``--dp central --target-epsilon`` the accountant knows before round 1
    how many rounds the budget pays for; the run is planned to end there.
    """
    if cfg.dp == DpMode.CENTRAL and cfg.target_epsilon is not None:
        limit = cfg.round_limit
        affordable = central_accountant(cfg).affordable_rounds(cfg.target_epsilon, limit)
        if affordable < limit:
            return affordable, BUDGET_REACHED
    return cfg.round_limit, None


def check_budget(cfg: RunConfig, train_rows: Sequence[int]) -> None:
    """Refuse a target ε that does not pay for a single round.

    Parameters
    ----------
    cfg : RunConfig
        The run's settings.
    train_rows : Sequence[int]
        Each client's number of training rows (record-level DP's sampling rates).

    Raises
    ------
    UsageError
        Naming ``target-epsilon`` and the smallest value that allows one round.

    """
    if cfg.dp == DpMode.NONE or cfg.target_epsilon is None:
        return
    if cfg.dp == DpMode.CENTRAL:
        first = central_accountant(cfg).epsilon(1)
    else:
        first = min(record_accountant(cfg, rows).epsilon(1) for rows in train_rows if rows)
    if first > cfg.target_epsilon:
        raise UsageError(
            f"target-epsilon must be >= {first:.4g} (the ε of one round with "
            f"noise-multiplier {cfg.noise_multiplier:g}), got {cfg.target_epsilon:g}"
        )


# -- record-level DP: a client's own budget ---------------------------------
class RecordBudget:
    """One client's DP-SGD ledger: rounds trained so far, ε, and whether it may train.

    The client keeps the count itself (in deployment, in its Flower node
    state: :func:`fedapp.flower.dp.record_budget`), so the server's word is
    not needed to spend or stop.

    Parameters
    ----------
    cfg : RunConfig
        The run's settings (noise multiplier, batch size, epochs, δ, target ε).
    rows : int
        The client's training rows.
    rounds : int
        Rounds this client has already trained with DP-SGD in this run.

    """

    def __init__(self, cfg: RunConfig, rows: int, rounds: int = 0) -> None:
        self.accountant = record_accountant(cfg, rows)
        self.target = cfg.target_epsilon
        self.rounds = rounds

    def can_train(self) -> bool:
        """Whether one more round keeps ε within the target."""
        return self.target is None or self.accountant.epsilon(self.rounds + 1) <= self.target

    def spend_round(self) -> None:
        """Record one more round of DP-SGD."""
        self.rounds += 1

    def metrics(self) -> dict[str, float | bool]:
        """ε so far and whether the budget is spent, for the fit metrics."""
        return {EPSILON_KEY: self.accountant.epsilon(self.rounds), SPENT_KEY: not self.can_train()}


# -- the server's view -------------------------------------------------------
def client_fields(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A record-level DP client's ε, for its entry in the fit event."""
    return {"epsilon": metrics[EPSILON_KEY]} if EPSILON_KEY in metrics else {}


class PrivacyLedger:
    """The server's record of ε: per round in ``metrics.jsonl``, final in ``summary.json``.

    Under record-level DP it also keeps clients that declined to train (their
    budget is spent: no update, 0 examples) out of aggregation, and knows when
    every client is spent.

    Parameters
    ----------
    cfg : RunConfig
        The run's settings.

    """

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.client_epsilon: dict[str, float] = {}
        self.spent: set[str] = set()
        self.rounds = 0

    @property
    def active(self) -> bool:
        """Whether the run is differentially private at all."""
        return self.cfg.dp != DpMode.NONE

    def admit(self, partition_id: int, metrics: Mapping[str, Any], examples: int) -> bool:
        """Note one client's ε from its fit metrics; say whether it sent a trained update.

        Parameters
        ----------
        partition_id : int
            The client.
        metrics : Mapping[str, Any]
            Its fit metrics (record-level DP adds its ε and whether it is spent).
        examples : int
            The examples it trained on: 0 when it declined to train.

        Returns
        -------
        bool
            Whether its result belongs in the aggregate (always, without record-level DP).

        """
        if self.cfg.dp != DpMode.RECORD:
            return True
        pid = str(partition_id)
        self.client_epsilon[pid] = float(metrics[EPSILON_KEY])
        if metrics[SPENT_KEY]:
            self.spent.add(pid)
        return examples > 0

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the ledger (JSON)."""
        return {
            "client_epsilon": self.client_epsilon,
            "spent": sorted(self.spent, key=int),
            "rounds": self.rounds,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back :meth:`state`."""
        self.client_epsilon = {str(k): float(v) for k, v in state["client_epsilon"].items()}
        self.spent = {str(pid) for pid in state["spent"]}
        self.rounds = int(state["rounds"])

    @property
    def all_spent(self) -> bool:
        """Under record-level DP with a target ε: every client's budget is spent."""
        return self.cfg.dp == DpMode.RECORD and len(self.spent) == self.cfg.clients

    def round_event(self, server_round: int) -> dict[str, Any]:
        """The fields of round ``server_round``'s ``privacy`` event."""
        self.rounds = server_round
        event: dict[str, Any] = {"metrics": {"epsilon": self.epsilon, "delta": self.cfg.delta}}
        if self.cfg.dp == DpMode.RECORD:
            event["clients"] = {
                pid: {"epsilon": eps, "spent": pid in self.spent}
                for pid, eps in sorted(self.client_epsilon.items(), key=lambda kv: int(kv[0]))
            }
        return event

    @property
    def epsilon(self) -> float:
        """ε so far: the federation's (central) or the largest client's (record)."""
        if self.cfg.dp == DpMode.CENTRAL:
            return central_accountant(self.cfg).epsilon(self.rounds)
        return max(self.client_epsilon.values(), default=0.0)

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` says about privacy."""
        out: dict[str, Any] = {
            "mode": self.cfg.dp,
            "epsilon": self.epsilon,
            "delta": self.cfg.delta,
            "noise_multiplier": self.cfg.noise_multiplier,
            "clip_norm": self.cfg.clip_norm,
            "target_epsilon": self.cfg.target_epsilon,
        }
        if self.cfg.dp == DpMode.CENTRAL:
            out["clipping"] = self.cfg.dp_clipping
            out["sampling_rate"] = self.cfg.sample_size / self.cfg.clients
        else:
            out["clients"] = dict(sorted(self.client_epsilon.items(), key=lambda kv: int(kv[0])))
        return out


class RoundPlan:
    """The rounds a run runs: all it asked for, or fewer once its privacy budget is spent.

    Client-level DP with a target ε knows before round 1 how many rounds the
    budget pays for (:func:`planned_rounds`); under record-level DP the run
    ends after the round in which the last client's budget ran out. An
    automatic run (``rounds = "auto"``) plans ``max-rounds`` and ends where it
    converges (:meth:`end_at`).

    Parameters
    ----------
    cfg : RunConfig
        The run's settings.

    Attributes
    ----------
    last_round : int
        The run's last round.
    stop_reason : str | None
        Why ``last_round`` is before the rounds asked for, if it is.

    """

    def __init__(self, cfg: RunConfig) -> None:
        self.last_round, self.stop_reason = planned_rounds(cfg)

    def includes(self, server_round: int) -> bool:
        """Whether round ``server_round`` is run (Flower's loop runs on, idle, after the last)."""
        return server_round <= self.last_round

    def is_last(self, server_round: int) -> bool:
        """Whether ``server_round`` is the run's last round."""
        return server_round == self.last_round

    def end_if_spent(self, server_round: int, ledger: PrivacyLedger) -> None:
        """Make ``server_round`` the last round when every client's budget is spent."""
        if ledger.all_spent and server_round < self.last_round:
            self.end_at(server_round, BUDGET_REACHED)

    def end_at(self, server_round: int, reason: str) -> None:
        """Make ``server_round`` the last round, for ``reason``, unless the plan ends before it.

        At the planned last round itself the reason is said too: an automatic
        run that converges there says so.
        """
        if server_round <= self.last_round:
            self.last_round, self.stop_reason = server_round, reason
