"""The run strategy: a plugin's Flower strategy, delegated to, plus what every run needs.

:class:`RunStrategy` lets the plugin's strategy choose clients and aggregate,
and around it:

* before round 1, the statistics query (:mod:`fedapp.flower.statistics`)
  fits the shared preprocessing, which then travels with every round's
  config, and the initial weights are built from the seed, so all clients
  start alike;
* results are aggregated in partition order, so that sums are reproducible;
* each round's update signals (:mod:`fedapp.protection.anomaly`), ε and the
  privacy budget's early stop (:mod:`fedapp.protection.privacy`);
* with rounds auto, the monitored score's early stop and the best round's
  model (:mod:`fedapp.learning.convergence`);
* central evaluation of the global model (:mod:`fedapp.learning.evaluation`);
* after the last round, when the run asks for it, the closing query
  (:mod:`fedapp.flower.closing`): the clients' confusion counts, which
  calibrate the decision threshold, and their fine-tuned models' scores;
* every event and the run's progress through its :class:`~fedapp.runs.Recorder`.

It never ends the run: once Flower's loop returns, the driver reads
:attr:`RunStrategy.outcome` and calls :func:`fedapp.flower.outcome.finish_run`.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from flwr.common import (
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    NDArrays,
    Parameters,
    Scalar,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import Strategy

from fedapp import registry
from fedapp.flower import closing, dp, faults, reports, statistics
from fedapp.flower.client_manager import SeededClientManager
from fedapp.flower.outcome import RunOutcome, client_rows
from fedapp.flower.protocol import PARTITION_KEY, PREPROCESSING_KEY, ROUND_KEY, RUN_KEY
from fedapp.flower.run_setup import common_kwargs
from fedapp.learning import convergence
from fedapp.learning.evaluation import CentralEvaluator
from fedapp.protection import anomaly, privacy
from fedapp.runs import Recorder, Scope, Stage
from fedapp.runs.checkpoints import Checkpoint, config_hash
from fedapp.settings import RunConfig


class RunStrategy(Strategy):
    """Run a plugin strategy with fedapp's statistics, evaluation and records.

    Parameters
    ----------
    cfg : RunConfig
        The run's settings.
    recorder : Recorder
        Where the events and progress go; its run directory gets
        ``preprocessing.json`` and ``model.keras``.
    client_manager : SeededClientManager
        Shared with the server, so that it learns which node is which partition.
    checkpoint : Checkpoint | None
        Resume from this checkpoint: its rounds are done, its state is taken
        back, and the rounds go on from the next (Flower counts from 1:
        :class:`~fedapp.flower.resume.ResumedRounds`).

    """

    def __init__(
        self,
        cfg: RunConfig,
        recorder: Recorder,
        client_manager: SeededClientManager,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.recorder = recorder
        self.client_manager = client_manager
        self.plugin = registry.get(cfg.strategy)
        self.params = self.plugin.resolve(cfg.strategy_params)
        self.inner: Strategy | None = None
        self.setup: statistics.FederationSetup | None = None
        # The shared preprocessing as JSON, sent with every round's config.
        self.preprocessing = ""
        self.central: CentralEvaluator | None = None
        self.plan = privacy.RoundPlan(cfg)
        self.privacy = privacy.PrivacyLedger(cfg)
        self.rounds_run = 0
        # Rounds with at least min-fit-results results (none of a run is an error).
        self.rounds_answered = 0
        self.skipped_rounds: list[int] = []
        self.faults = faults.plan_of(cfg)
        self._round_start: NDArrays | None = None
        # The partitions asked in the current round, by stage.
        self._asked: dict[Stage, list[int | None]] = {}
        # (round, partition) of every client-round that failed.
        self.failed_client_rounds: set[tuple[int, int | str]] = set()
        # Each partition's evaluated rows (test, or validation when held out),
        # as its latest evaluation counted them.
        self._evaluated_rows: dict[int, int] = {}
        # The newest global weights (what a stopped run keeps), and the newest
        # central ("federated") and clients' ("federated_evaluation") scores with their round.
        self._latest: NDArrays | None = None
        self._scored: dict[str, tuple[int, dict[str, float]]] = {}
        # Flower's server thread may still be evaluating when a stop comes.
        self._model_lock = threading.Lock()
        # The kept global model (what model.keras holds), and the closing
        # query's plan and, once it has run, its results.
        self._kept: NDArrays | None = None
        self.closing = closing.ClosingPlan.of(cfg)
        self._closed: closing.ClosingResults | None = None
        # Rounds auto: the monitored score, and the best round's global weights
        # and scores (by summary key), kept until the run's last round.
        self.monitor = convergence.ConvergenceMonitor.for_run(cfg)
        self._best: NDArrays | None = None
        self._best_scores: dict[str, dict[str, float]] = {}
        # The plugin's own strategy (inside any DP wrapper): what its state is of.
        self._built: Strategy | None = None
        self.resumed_from = checkpoint
        if checkpoint is not None:
            self._restore(checkpoint.state)

    @property
    def rounds_done(self) -> int:
        """The rounds done before this process took the run on (its checkpoint's)."""
        return self.resumed_from.round if self.resumed_from is not None else 0

    def __repr__(self) -> str:
        return f"RunStrategy({self.cfg.strategy})"

    @property
    def largest_client(self) -> int:
        """Training rows of the largest client (0 before the statistics query)."""
        return self.setup.largest_client if self.setup else 0

    @property
    def num_rounds(self) -> int:
        """The rounds Flower's loop runs: the planned ones, and one for the closing query.

        The closing query is the first idle round after the run's actual last
        round (:meth:`is_closing`), which a privacy budget may bring forward.
        """
        return self.plan.last_round + (1 if self.closing.needed else 0)

    def is_closing(self, server_round: int) -> bool:
        """Whether ``server_round`` is the closing query's (never a training round)."""
        return (
            self.closing.needed
            and self._closed is None
            and server_round == self.plan.last_round + 1
        )

    @property
    def outcome(self) -> RunOutcome:
        """What the rounds have produced so far (an automatic run's: its best round's)."""
        return self._with_best(self._rounds_outcome)

    @property
    def _rounds_outcome(self) -> RunOutcome:
        """What the rounds have produced so far."""
        closed = self._closed
        return RunOutcome(
            strategy=self.cfg.strategy,
            rounds=self.plan.last_round,
            rounds_run=self.rounds_run,
            stop_reason=self.plan.stop_reason,
            federated=self._scores_at("federated", self.plan.last_round),
            federated_evaluation=self._scores_at("federated_evaluation", self.plan.last_round),
            privacy=self.privacy.summary() if self.privacy.active else None,
            preprocessing=self.preprocessing,
            failed_client_rounds=len(self.failed_client_rounds),
            skipped_rounds=tuple(self.skipped_rounds),
            clients=client_rows(
                self.setup.train_rows if self.setup else {},
                self._evaluated_rows,
                "validation" if self.cfg.validation_fraction > 0 else "test",
            ),
            threshold=closed.threshold if closed else self.closing.fixed_record(),
            personalized=closed.personalized if closed else None,
        )

    # -- set-up ---------------------------------------------------------
    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """Gather statistics, fit preprocessing, build the model and the plugin's strategy."""
        replies = statistics.query_statistics(
            client_manager, self.cfg.clients, progress=self._setup_progress
        )
        self.setup = statistics.federation_setup(replies, self.cfg)
        self.client_manager.partition_of.update(self.setup.partition_of)
        self.preprocessing = self.setup.preprocessor.to_json()
        self.recorder.run_dir.preprocessing_file.write_text(self.preprocessing, encoding="utf-8")
        self.central = CentralEvaluator.for_run(self.cfg, self.setup.preprocessor)
        if self.monitor is not None:  # deployed, the task is only known now
            task, held = str(self.setup.preprocessor.task), self.central.test is not None
            convergence.check_monitor(self.monitor.monitor, task, held)
        weights = self.central.initial_weights
        if self.resumed_from is not None:
            weights = self._resumed_weights(self.resumed_from)
        initial = ndarrays_to_parameters(weights)
        strategy = self.plugin.build(common_kwargs(self.cfg, initial), self.params)
        if self.resumed_from is not None:
            self._restore_plugin(strategy, self.resumed_from)
        self._built, self.inner = strategy, dp.wrap_strategy(strategy, self.cfg)
        return initial

    # -- rounds ---------------------------------------------------------
    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Let the plugin choose clients and config; add the shared preprocessing."""
        if not self.plan.includes(server_round):
            return []
        assert self.inner is not None
        # The reference of the round's updates, whatever the plugin keeps itself.
        self._round_start = parameters_to_ndarrays(parameters)
        chosen = self.inner.configure_fit(server_round, parameters, client_manager)
        return self._with_config(chosen, server_round, Stage.FIT)

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Aggregate in partition order; record the round, its signals and its ε."""
        failed = self._failed(server_round, Stage.FIT, results, failures)
        out: tuple[Parameters | None, dict[str, Scalar]] = (None, {})
        if len(results) < self.cfg.min_fit_results:
            reason = (
                f"{len(results)} of {len(self._asked.get(Stage.FIT, []))} clients sent a "
                f"result, fewer than min-fit-results ({self.cfg.min_fit_results}); the "
                "previous global model is kept"
            )
            self._skip(server_round, reason, failed)
        else:
            # Record-level DP: a client whose budget is spent sends no update.
            admitted = [r for r in _by_partition(results) if self._admits(r[1])]
            if admitted:
                out = self._aggregate(server_round, admitted, failures, failed)
            self.rounds_answered += 1
        self._end_round(server_round, failed)
        return out

    def skip(self, server_round: int, reason: str) -> None:
        """Record round ``server_round`` as skipped for ``reason`` (it kept the previous model).

        For an aggregation that gave up before :meth:`aggregate_fit` (SecAgg+
        unable to unmask the sum); counted against the privacy budget as a
        round whose results reached the server.
        """
        self._skip(server_round, reason, [])
        self._end_round(server_round, [])

    def _end_round(self, server_round: int, failed: list[reports.ClientFailure]) -> None:
        """Count the round's ε; at the last round, fail a run none of whose rounds had results.

        Conservative: a skipped round's ε is counted as if its results had
        been released, as they did reach the server.

        Raises
        ------
        RuntimeError
            At the last round, when no round had min-fit-results results: a
            run that never trained (a client crashing every round, say).

        """
        self._account(server_round)
        if self.plan.is_last(server_round) and not self.rounds_answered:
            raise RuntimeError(
                f"no round of the run had enough results: every round had fewer than "
                f"{self.cfg.min_fit_results} result(s) (min-fit-results); round "
                f"{server_round}: {_describe(failed)}"
            )

    def _skip(self, server_round: int, reason: str, failed: list[reports.ClientFailure]) -> None:
        """Record a round with too few results; Flower keeps the previous global model."""
        self.skipped_rounds.append(server_round)
        extra = reports.failure_fields(failed) | self._faults(server_round, Stage.FIT)
        self.recorder.event(server_round, Stage.FIT, Scope.FEDERATED, {}, skipped=reason, **extra)

    def evaluate(
        self, server_round: int, parameters: Parameters
    ) -> tuple[float, dict[str, Scalar]] | None:
        """Score the global model on the server-held test set when due; save the last one."""
        assert self.central is not None
        if not self.plan.includes(server_round):
            return None
        weights, last = parameters_to_ndarrays(parameters), self.plan.is_last(server_round)
        with self._model_lock:
            self.rounds_run, self._latest = server_round, weights
            if last and self.monitor is None:  # an automatic run keeps its best round
                self._keep(weights, server_round)
            if not self.central.is_due(server_round, self.plan.last_round):
                return None
            metrics = self.central.score(weights)
        self._scored["federated"] = (server_round, metrics)
        self.recorder.event(server_round, Stage.EVALUATE, Scope.CENTRALIZED, metrics)
        self._observe(convergence.CENTRAL, server_round)
        return metrics["loss"], dict(metrics)

    def keep_stopped(self, timeout: float = 30.0) -> RunOutcome | None:
        """Keep the last completed round's global model of a stopped run, and say what it scores.

        Saves ``model.keras`` (and ``curves.json``) of round ``r``, the last
        one whose global model exists, and returns the outcome of a run of
        ``r`` rounds: its central scores, and the clients' own evaluation if
        round ``r`` got one. ``None`` before round 1 has a model. An automatic
        run keeps its best round so far instead.
        """
        if self.central is None or self._latest is None or self.rounds_run < 1:
            return None
        if not self._model_lock.acquire(timeout=timeout):
            return None  # the server thread holds the model: keep nothing rather than wait
        try:
            last, weights = self._stopped_model()
            self._keep(weights, last)
            central = self._kept_scores("federated", last)
            if central is None and self.central.test is not None:
                central = self.central.score(weights)
        finally:
            self._model_lock.release()
        own = self._kept_scores("federated_evaluation", last)
        return dataclasses.replace(
            self.outcome, rounds=last, rounds_run=last, federated=central,
            federated_evaluation=own, model_round=None,
        )  # fmt: skip

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        """Let the plugin choose clients; add the shared preprocessing.

        In the closing round, every connected client is asked about the kept model instead.
        """
        if self.is_closing(server_round) and self._kept is not None:
            kept = ndarrays_to_parameters(self._kept)
            asked = self.closing.instructions(client_manager.all().values(), kept)
            self.recorder.phase("closing", self.closing.label, 0, len(asked))
            return self._with_config(asked, server_round, Stage.EVALUATE)
        if not self.plan.includes(server_round):
            return []
        assert self.inner is not None
        chosen = self.inner.configure_evaluate(server_round, parameters, client_manager)
        return self._with_config(chosen, server_round, Stage.EVALUATE)

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        """Example-weighted mean of the clients' own-test metrics, recorded per client.

        A round whose clients all failed to evaluate ends the run: it would
        have no federated result. The closing round records no round: its
        answers go to the outcome (:meth:`_close`).
        """
        if self.is_closing(server_round):
            return self._close(results, failures)
        failed = self._failed(server_round, Stage.EVALUATE, results, failures)
        answers = [_report(r) for _, r in _by_partition(results)]
        self._evaluated_rows.update((a.partition_id, a.examples) for a in answers)
        metrics, clients, extra = reports.evaluate_fields(answers, failed)
        if not answers:
            extra["skipped"] = f"no client evaluated ({_describe(failed)})"
        self.recorder.event(
            server_round, Stage.EVALUATE, Scope.FEDERATED, metrics, clients,
            **extra, **self._faults(server_round, Stage.EVALUATE),
        )  # fmt: skip
        self.recorder.progress(server_round)
        if answers:
            self._scored["federated_evaluation"] = (server_round, metrics)
        # A round without scores is no improvement: the monitor still counts it.
        self._observe(convergence.FEDERATED, server_round)
        self._checkpoint(server_round)
        return metrics.get("loss"), dict(metrics)

    # -- checkpoints ----------------------------------------------------
    def _checkpoint(self, server_round: int) -> None:
        """After a round's last step, write its checkpoint when due (every N, and the last)."""
        every = self.cfg.checkpoint_every
        if not every or (server_round % every and not self.plan.is_last(server_round)):
            return
        if self._latest is None or self._built is None:
            return  # no global model yet: nothing a resume could start from
        arrays: dict[str, list] = {"weights": self._latest}
        if self._kept is not None:
            arrays["kept"] = self._kept
        if self._best is not None:
            arrays["best"] = self._best
        plugin_state = self.plugin.state.save(self._built) if self.plugin.state else {}
        values: dict[str, Any] = {}
        for name, value in plugin_state.items():
            if isinstance(value, list):
                arrays[f"strategy/{name}"] = value
            else:
                values[name] = value
        state = self._state() | {"strategy": values}
        settings = config_hash(self.recorder.run_dir.read_config())
        Checkpoint(server_round, settings, arrays, state).save(
            self.recorder.run_dir.checkpoints_dir, self.cfg.keep_checkpoints
        )

    def _state(self) -> dict[str, Any]:
        """Everything but arrays the rounds carry: counters, scores, plans, ledgers, the sampler."""
        monitor = self.monitor
        return {
            "time": self.recorder.elapsed,
            "preprocessing": self.preprocessing,
            "rounds_run": self.rounds_run,
            "rounds_answered": self.rounds_answered,
            "skipped_rounds": self.skipped_rounds,
            "failed_client_rounds": sorted(map(list, self.failed_client_rounds), key=str),
            "evaluated_rows": self._evaluated_rows,
            "scored": {k: [r, m] for k, (r, m) in self._scored.items()},
            "best_scores": self._best_scores,
            "plan": {"last_round": self.plan.last_round, "stop_reason": self.plan.stop_reason},
            "privacy": self.privacy.state(),
            "monitor": dataclasses.asdict(monitor) if monitor is not None else None,
            "sampler": self.client_manager.sampler_state(),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        """Take back :meth:`_state`'s counters, scores and ledgers (the arrays come later)."""
        self.rounds_run = int(state["rounds_run"])
        self.rounds_answered = int(state["rounds_answered"])
        self.skipped_rounds = [int(r) for r in state["skipped_rounds"]]
        self.failed_client_rounds = {(int(r), key) for r, key in state["failed_client_rounds"]}
        self._evaluated_rows = {int(k): int(v) for k, v in state["evaluated_rows"].items()}
        self._scored = {k: (int(r), m) for k, (r, m) in state["scored"].items()}
        self._best_scores = dict(state["best_scores"])
        plan = state["plan"]
        if plan["stop_reason"] is not None:
            # Brought forward (a spent budget, convergence): an unbroken run ends there too.
            self.plan.last_round, self.plan.stop_reason = plan["last_round"], plan["stop_reason"]
        self.privacy.restore(state["privacy"])
        if self.monitor is not None and state["monitor"] is not None:
            for name, value in state["monitor"].items():
                setattr(self.monitor, name, value)
        self.client_manager.restore_sampler(state["sampler"])

    def _resumed_weights(self, checkpoint: Checkpoint) -> NDArrays:
        """The checkpoint's global weights, once the clients' data is seen to be unchanged.

        Raises
        ------
        RuntimeError
            When the preprocessing fitted from the clients' statistics now
            differs from the checkpointed run's: their data changed.

        """
        if self.preprocessing != checkpoint.state["preprocessing"]:
            raise RuntimeError(
                f"the clients' data changed since round {checkpoint.round}'s checkpoint: the "
                "preprocessing fitted from their statistics differs from the run's; resuming "
                "would train on other features"
            )
        arrays = checkpoint.arrays
        self._latest = list(arrays["weights"])
        self._kept = list(arrays["kept"]) if "kept" in arrays else None
        self._best = list(arrays["best"]) if "best" in arrays else None
        return self._latest

    def _restore_plugin(self, strategy: Strategy, checkpoint: Checkpoint) -> None:
        """Give the plugin's new strategy the checkpointed state (if it declares how)."""
        if self.plugin.state is None:
            return  # the resume said so: its state starts afresh (fedapp.runs.resuming)
        prefix = "strategy/"
        state = dict(checkpoint.state["strategy"]) | {
            name[len(prefix) :]: list(values)
            for name, values in checkpoint.arrays.items()
            if name.startswith(prefix)
        }
        self.plugin.state.load(strategy, state)

    # -- hooks ----------------------------------------------------------
    def _scores_at(self, scope: str, server_round: int) -> dict[str, float] | None:
        """The newest ``scope`` scores if they are of round ``server_round``, else ``None``."""
        scored = self._scored.get(scope)
        return scored[1] if scored is not None and scored[0] == server_round else None

    def _observe(self, scope: str, server_round: int) -> None:
        """Rounds auto: feed the monitor round ``server_round``'s ``scope`` scores.

        The best round's weights and scores are kept; once the score has not
        improved for ``patience`` rounds the plan ends at this round (Flower's
        loop runs on idle), and at the run's last round the best round's
        model is saved.
        """
        monitor = self.monitor
        if monitor is None:
            return
        if scope == monitor.scope and monitor.update(server_round, self._scores(scope)):
            self._best, self._best_scores = self._latest, {}
        if self._best is not None and server_round == monitor.best_round:
            self._best_scores |= {k: m for k, (r, m) in self._scored.items() if r == server_round}
        if scope != monitor.scope:
            return
        if monitor.converged:
            self.plan.end_at(server_round, convergence.converged_reason(monitor.best_round))
        if self.plan.is_last(server_round):
            self._keep_best()

    def _scores(self, scope: str) -> dict[str, float]:
        """The newest scores a monitor of ``scope`` watches."""
        scored = self._scored.get(convergence.SUMMARY_KEYS[scope])
        return scored[1] if scored is not None else {}

    def _stopped_model(self) -> tuple[int, NDArrays]:
        """The round and weights a stopped run keeps: the last, or an automatic run's best."""
        if self.monitor is not None and self._best is not None:
            return self.monitor.best_round, self._best
        assert self._latest is not None
        return self.rounds_run, self._latest

    def _kept_scores(self, scope: str, server_round: int) -> dict[str, float] | None:
        """The ``scope`` scores of round ``server_round``: the newest, or the best round's."""
        if self.monitor is not None and server_round == self.monitor.best_round:
            return self._best_scores.get(scope)
        return self._scores_at(scope, server_round)

    def _keep_best(self) -> None:
        """Save the best round's global model, and score it centrally if its round was not."""
        assert self.central is not None and self.monitor is not None
        with self._model_lock:
            if self._best is None:  # no round had a finite score: the last round's model
                weights, kept = self._latest, self.rounds_run
            else:
                weights, kept = self._best, self.monitor.best_round
            if weights is None:
                return
            self._keep(weights, kept)
            if "federated" not in self._best_scores and self.central.test is not None:
                self._best_scores["federated"] = self.central.score(weights)

    def _with_best(self, outcome: RunOutcome) -> RunOutcome:
        """An automatic run's outcome: its best round's scores, and what its monitor saw."""
        monitor = self.monitor
        if monitor is None:
            return outcome
        auto = monitor.summary() | {"max_rounds": self.cfg.round_limit}
        if not monitor.best_round:
            return dataclasses.replace(outcome, auto_rounds=auto)
        return dataclasses.replace(
            outcome,
            federated=self._best_scores.get("federated"),
            federated_evaluation=self._best_scores.get("federated_evaluation"),
            model_round=monitor.best_round,
            auto_rounds=auto,
        )

    def _setup_progress(self, step: str, done: int, total: int) -> None:
        label = _SETUP_LABELS[step]
        self.recorder.phase(step, label, done, total)

    def _keep(self, weights: NDArrays, server_round: int) -> None:
        """Save the global model of ``server_round`` and, with a test set, its curves."""
        assert self.central is not None
        run_dir = self.recorder.run_dir
        self._kept = weights
        self.central.save(weights, run_dir.model_file)
        if self.central.test is not None:
            run_dir.write_curves({"round": server_round, **self.central.curves(weights)})

    def _close(
        self,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        """Pool the closing query's answers into the outcome (no round event, no progress).

        Raises
        ------
        RuntimeError
            When no client answered: the run asked for a calibrated
            threshold or a fine-tuning report it would not have.

        """
        answers = [_report(r) for _, r in _by_partition(results)]
        if not answers:
            first = failures[0] if failures else None
            reason = (
                "no client was connected" if first is None
                else reports.short_reason(first[1].status.message) if isinstance(first, tuple)
                else f"{type(first).__name__}: {first}"
            )  # fmt: skip
            raise RuntimeError(
                "the closing query (threshold calibration, fine-tuning) got no answer from "
                f"any client ({len(failures)} failed; {reason})"
            )
        self._closed = self.closing.results(answers, failed=len(failures))
        return None, {}

    def _with_config(self, instructions: list, server_round: int, stage: Stage) -> list:
        partition_of = self.client_manager.partition_of
        self._asked[stage] = [partition_of.get(proxy.cid) for proxy, _ in instructions]
        for _, ins in instructions:
            ins.config[PREPROCESSING_KEY] = self.preprocessing
            ins.config[ROUND_KEY] = server_round
            ins.config[RUN_KEY] = self.recorder.run_dir.run_id
        return instructions

    def _failed(
        self, server_round: int, stage: Stage, results: list, failures: list
    ) -> list[reports.ClientFailure]:
        """Who of the round's asked clients gave no result, and why; counted for the summary."""
        partition_of = self.client_manager.partition_of
        named: dict[int, str] = {}
        unnamed: list[str] = []
        for failure in failures:
            if isinstance(failure, BaseException):
                unnamed.append(f"{type(failure).__name__}: {failure}")
                continue
            proxy, res = failure
            pid = partition_of.get(proxy.cid)
            if pid is None:
                unnamed.append(res.status.message)
            else:
                named[pid] = reports.short_reason(res.status.message)
        answered = [int(res.metrics[PARTITION_KEY]) for _, res in results]
        failed = reports.failed_clients(self._asked.get(stage, []), answered, named, unnamed)
        for index, failure in enumerate(failed):
            key = failure.partition_id if failure.partition_id is not None else f"?{index}"
            self.failed_client_rounds.add((server_round, key))
        return failed

    def _admits(self, res: FitRes) -> bool:
        report = _report(res)
        return self.privacy.admit(report.partition_id, report.metrics, report.examples)

    def _aggregate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
        failed: list[reports.ClientFailure],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        assert self.inner is not None
        # Read before the plugin aggregates: a wrapper may clip the results in place.
        sent = [parameters_to_ndarrays(r.parameters) for _, r in results]
        aggregated, fit_metrics = self.inner.aggregate_fit(server_round, results, failures)
        signals = self._signals(sent, aggregated)
        metrics, clients, extra = reports.fit_fields(
            [_report(r) for _, r in results], signals, failed,
            secure=self.cfg.secure_aggregation,
        )  # fmt: skip
        extra |= self._faults(server_round, Stage.FIT)
        self.recorder.event(server_round, Stage.FIT, Scope.FEDERATED, metrics, clients, **extra)
        return aggregated, fit_metrics

    def _faults(self, server_round: int, stage: Stage) -> dict[str, list[int]]:
        """The round's injected faults among the clients asked at ``stage``, for its event."""
        return self.faults.of_round(server_round, self._asked.get(stage, []))

    def _signals(
        self, sent: list[NDArrays], aggregated: Parameters | None
    ) -> anomaly.RoundSignals | None:
        """Each client's update norm and cosine with the aggregate update, and who stands out."""
        # Under SecAgg+ every result carries the same unmasked mean: there is no
        # client's own update to score.
        if self._round_start is None or self.cfg.secure_aggregation:
            return None
        new = None if aggregated is None else parameters_to_ndarrays(aggregated)
        return anomaly.round_signals(self._round_start, sent, new, self.cfg.anomaly_threshold)

    def _account(self, server_round: int) -> None:
        """Record ε after this round; end the run here once every client's budget is spent."""
        if not self.privacy.active:
            return
        event = self.privacy.round_event(server_round)
        self.recorder.event(server_round, Stage.PRIVACY, Scope.FEDERATED, **event)
        self.plan.end_if_spent(server_round, self.privacy)


# How the steps before round 1 read in a progress display.
_SETUP_LABELS = {
    "clients": "waiting for the clients to connect",
    "statistics": "collecting the clients' statistics",
}


def _report(res: FitRes | EvaluateRes) -> reports.ClientReport:
    return reports.ClientReport(int(res.metrics[PARTITION_KEY]), res.num_examples, res.metrics)


def _by_partition(results: list) -> list:
    return sorted(results, key=lambda r: int(r[1].metrics[PARTITION_KEY]))


def _describe(failed: list[reports.ClientFailure]) -> str:
    if not failed:
        return "no client was asked"
    return f"{len(failed)} failed, first: {failed[0].reason}"
