"""The ServerApp: a strategy plugin wrapped in fedapp's bookkeeping.

:class:`FederatedRun` is a Flower strategy that delegates the learning to the
plugin's strategy and adds what every run needs whatever the plugin:

* before round 1, a statistics query to every client; the merged aggregates
  fit the shared preprocessing, which then travels with every round's config;
* initial weights built here from the seed, so all clients start alike;
* central evaluation of the global model on the server-held test set;
* per-client and aggregated metrics appended to ``metrics.jsonl``, and the
  run's ``status.json`` kept current.

:func:`build_server_app` runs it on Flower's legacy server loop, or, with
secure aggregation, on Flower's SecAgg+ workflow (:mod:`fedapp.flower.secagg`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from logging import WARNING
from pathlib import Path
from typing import Any

import numpy as np
from flwr.common import (
    Context,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    GetPropertiesIns,
    Parameters,
    Scalar,
    log,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server import Grid, ServerApp, ServerAppComponents, ServerConfig, SimpleClientManager
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.compat import start_grid
from flwr.server.criterion import Criterion
from flwr.server.strategy import Strategy

from fedapp import data, registry
from fedapp.flower import dp
from fedapp.flower.protocol import PARTITION_KEY, PREPROCESSING_KEY, ROUND_KEY, STATISTICS_QUERY
from fedapp.flower.run_setup import common_kwargs, prepare_run
from fedapp.protection import anomaly, privacy
from fedapp.runs import METRIC_NAMES, RunDir
from fedapp.settings import NODE_DATA, RunConfig

Event = dict[str, Any]
_STATISTICS_TIMEOUT = 600
_WAIT_SLICE = 10


class SeededClientManager(SimpleClientManager):
    """Samples clients reproducibly: by partition order and a seeded generator.

    Flower's default draws from the global ``random`` module over node ids
    that change from run to run; here the same seed picks the same
    institutions in the same rounds.
    """

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._rng = random.Random(seed)
        self.partition_of: dict[str, int] = {}

    def sample(
        self,
        num_clients: int,
        min_num_clients: int | None = None,
        criterion: Criterion | None = None,
    ) -> list[ClientProxy]:
        """Sample ``num_clients`` clients (blocking until enough are connected)."""
        self.wait_for(min_num_clients or num_clients)
        cids = sorted(self.clients, key=lambda c: (self.partition_of.get(c, 1 << 30), c))
        if criterion is not None:
            cids = [c for c in cids if criterion.select(self.clients[c])]
        if num_clients > len(cids):
            return []
        return [self.clients[c] for c in self._rng.sample(cids, num_clients)]


def weighted_means(results: list[tuple[int, dict[str, Scalar]]]) -> dict[str, float]:
    """Example-weighted mean of each metric over clients (NaNs skipped)."""
    out: dict[str, float] = {}
    for name in METRIC_NAMES:
        pairs = [
            (n, float(m[name])) for n, m in results if name in m and np.isfinite(float(m[name]))
        ]
        total = sum(n for n, _ in pairs)
        if total:
            out[name] = sum(n * v for n, v in pairs) / total
    return out


class FederatedRun(Strategy):
    """Run a plugin strategy with fedapp's statistics, evaluation and records.

    Parameters
    ----------
    cfg : RunConfig
        The run's settings.
    run_dir : RunDir
        Where the events, status and final model are written.
    client_manager : SeededClientManager
        Shared with the server so it can learn which node is which partition.
    on_event : Callable[[Event], None] | None
        Called with every event appended to ``metrics.jsonl`` (progress display).
    finalize : bool
        Write ``summary.json`` and state ``finished`` after the last round.
        The simulation driver leaves this to itself, as it adds the baseline.

    """

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: RunDir,
        client_manager: SeededClientManager,
        on_event: Callable[[Event], None] | None = None,
        finalize: bool = True,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.run_dir = run_dir
        self.client_manager = client_manager
        self.on_event = on_event
        self.finalize = finalize
        self.plugin = registry.get(cfg.strategy)
        self.params = self.plugin.resolve(cfg.strategy_params)
        self.inner: Strategy | None = None
        self.preprocessing = ""
        self._model: Any = None
        self._test: tuple[np.ndarray, np.ndarray] | None = None
        self._started = time.monotonic()
        self.final: dict[str, Any] = {}
        # The last round: fewer than asked when a privacy budget ends the run.
        self.rounds, self.stop_reason = privacy.planned_rounds(cfg)
        self.privacy = privacy.PrivacyLedger(cfg)
        # Training rows of the largest client, from the statistics query.
        self.largest_client = 0
        self._round_start: list[np.ndarray] | None = None

    def __repr__(self) -> str:
        return f"FederatedRun({self.cfg.strategy})"

    # -- set-up ---------------------------------------------------------
    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """Gather statistics, fit preprocessing, build the plugin's strategy."""
        stats = self._collect_statistics(client_manager)
        self.largest_client = max(int(json.loads(s["statistics"])["rows"]) for s in stats)
        schema = data.Schema(
            *map(tuple, json.loads(stats[0]["schema"])), target=self.cfg.resolved_target
        )
        prep = data.fit_preprocessor([json.loads(s["statistics"]) for s in stats], schema, self.cfg)
        self.preprocessing = prep.to_json()
        self.run_dir.preprocessing_file.write_text(self.preprocessing, encoding="utf-8")

        from fedapp.learning.model import build_model

        self._model = build_model(
            prep.n_features, self.cfg.hidden_units, self.cfg.learning_rate, self.cfg.seed
        )
        if self.cfg.data != NODE_DATA:  # deployed, the server holds no rows to test on
            self._test = prep.transform(data.global_test(self.cfg))
        initial = ndarrays_to_parameters(self._model.get_weights())
        self.inner = dp.wrap_strategy(
            self.plugin.build(common_kwargs(self.cfg, initial), self.params), self.cfg
        )
        return initial

    def _collect_statistics(self, client_manager: ClientManager) -> list[dict[str, Scalar]]:
        waited = 0
        while not client_manager.wait_for(self.cfg.clients, timeout=_WAIT_SLICE):
            waited += _WAIT_SLICE
            connected = client_manager.num_available()
            if waited >= _STATISTICS_TIMEOUT:
                raise RuntimeError(
                    f"only {connected} of {self.cfg.clients} clients connected within "
                    f"{waited} s; set `clients` to the federation's number of SuperNodes"
                )
            log(WARNING, "waiting for clients: %s of %s connected", connected, self.cfg.clients)
        proxies = list(client_manager.all().values())
        ins = GetPropertiesIns({STATISTICS_QUERY: True})
        with ThreadPoolExecutor(max_workers=min(len(proxies), 16)) as pool:
            answers = list(
                pool.map(lambda p: p.get_properties(ins, _STATISTICS_TIMEOUT, 0), proxies)
            )
        stats = []
        for proxy, answer in zip(proxies, answers, strict=True):
            if answer.status.code.value != 0 or "statistics" not in answer.properties:
                raise RuntimeError(
                    f"client {proxy.cid} did not send statistics: {answer.status.message}"
                )
            self.client_manager.partition_of[proxy.cid] = int(answer.properties[PARTITION_KEY])
            stats.append(answer.properties)
        return sorted(stats, key=lambda s: int(s[PARTITION_KEY]))

    def _with_config(self, instructions: list, server_round: int) -> list:
        for _, ins in instructions:
            ins.config[PREPROCESSING_KEY] = self.preprocessing
            ins.config[ROUND_KEY] = server_round
        return instructions

    # -- rounds ---------------------------------------------------------
    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Let the plugin choose clients and config; add the shared preprocessing."""
        assert self.inner is not None
        if server_round > self.rounds:  # ended early: Flower's loop runs on, idle
            return []
        # The reference of the round's updates, whatever the plugin keeps itself.
        self._round_start = parameters_to_ndarrays(parameters)
        return self._with_config(
            self.inner.configure_fit(server_round, parameters, client_manager), server_round
        )

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Aggregate in partition order (reproducible sums); record train loss and anomalies.

        Each client's entry also gets its update norm and the cosine of its
        update with the aggregate update, and the event lists the ``flagged``
        partitions (:mod:`fedapp.protection.anomaly`).
        """
        assert self.inner is not None
        if not results:
            raise RuntimeError(
                f"round {server_round}: no client finished fitting ({_describe(failures)})"
            )
        results = sorted(results, key=lambda r: int(r[1].metrics[PARTITION_KEY]))
        # Record-level DP: a client whose budget is spent sends no update.
        results = self.privacy.admit(results, PARTITION_KEY)
        if not results:
            self._account(server_round)
            return None, {}
        # Read before the plugin aggregates: a wrapper may clip the results in place.
        sent = [parameters_to_ndarrays(r.parameters) for _, r in results]
        aggregated, fit_metrics = self.inner.aggregate_fit(server_round, results, failures)
        pids = [int(r.metrics[PARTITION_KEY]) for _, r in results]
        records: list[dict[str, float]] = [{} for _ in results]
        flagged: list[int] = []
        # Under SecAgg+ every result carries the same unmasked mean: there is no
        # client's own update to score.
        secure = self.cfg.secure_aggregation
        if self._round_start is not None and not secure:
            signals = anomaly.round_signals(
                self._round_start,
                sent,
                None if aggregated is None else parameters_to_ndarrays(aggregated),
                self.cfg.anomaly_threshold,
            )
            records = anomaly.client_records(signals)
            flagged = [pids[i] for i in signals.flagged]
        self._emit(
            server_round, "fit", "federated",
            {"train-loss": _mean([float(r.metrics["train-loss"]) for _, r in results])},
            clients={
                str(pid): {"train-loss": r.metrics["train-loss"], "examples": r.num_examples}
                | record | privacy.client_fields(r.metrics)
                for pid, (_, r), record in zip(pids, results, records, strict=True)
            },
            failures=len(failures),
            # Under SecAgg+ no update was scored, so none is said to be unflagged.
            **({"secure-aggregation": True} if secure else {"flagged": flagged}),
        )  # fmt: skip
        self._account(server_round)
        return aggregated, fit_metrics

    def _account(self, server_round: int) -> None:
        """Record ε after this round; end the run here once every client's budget is spent."""
        if not self.privacy.active:
            return
        self._emit(server_round, "privacy", "federated", **self.privacy.round_event(server_round))
        if self.privacy.all_spent and server_round < self.rounds:
            self.rounds, self.stop_reason = server_round, privacy.BUDGET_REACHED

    def evaluate(
        self, server_round: int, parameters: Parameters
    ) -> tuple[float, dict[str, Scalar]] | None:
        """Score the global model on the server-held test set, if there is one."""
        from fedapp.learning.model import evaluate

        assert self._model is not None
        if server_round > self.rounds:
            return None
        self._model.set_weights(parameters_to_ndarrays(parameters))
        last = server_round == self.rounds
        if last:
            self._model.save(self.run_dir.model_file)
        if self._test is None:
            return None
        metrics = evaluate(self._model, *self._test)
        self._emit(server_round, "evaluate", "centralized", metrics)
        if last:
            self.final["federated"] = metrics
        return metrics["loss"], dict(metrics)

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        """Let the plugin choose clients; add the shared preprocessing."""
        assert self.inner is not None
        if server_round > self.rounds:
            return []
        return self._with_config(
            self.inner.configure_evaluate(server_round, parameters, client_manager),
            server_round,
        )

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        """Weighted mean of clients' own-test metrics, recorded per client."""
        results = sorted(results, key=lambda r: int(r[1].metrics[PARTITION_KEY]))
        pairs = [(r.num_examples, r.metrics) for _, r in results]
        metrics = weighted_means(pairs)
        self._emit(
            server_round, "evaluate", "federated", metrics,
            clients={
                str(m[PARTITION_KEY]): {k: m[k] for k in METRIC_NAMES if k in m}
                | {"examples": n}
                for n, m in pairs
            },
            failures=len(failures),
        )  # fmt: skip
        self.run_dir.set_status("running", server_round, self.cfg.rounds)
        if server_round == self.rounds:
            self.final["federated_evaluation"] = metrics
            if self.finalize:
                self.run_dir.write_summary(self.summary())
                self.mark_finished()
        return metrics.get("loss"), dict(metrics)

    def mark_finished(self) -> None:
        """Set the run ``finished`` at its last round, with why it ended early if it did."""
        reason = {"reason": self.stop_reason} if self.stop_reason else {}
        self.run_dir.set_status("finished", self.rounds, self.cfg.rounds, **reason)

    def summary(self) -> dict[str, Any]:
        """Final metrics of the federated model and the wall time so far."""
        out = {
            "federated": self.final.get("federated"),
            "federated_evaluation": self.final.get("federated_evaluation"),
            "wall_seconds": round(time.monotonic() - self._started, 3),
            "rounds": self.rounds,
            "strategy": self.cfg.strategy,
        }
        if self.stop_reason:
            out["reason"] = self.stop_reason
        if self.privacy.active:
            out["privacy"] = self.privacy.summary()
        return out

    def _emit(self, server_round: int, stage: str, scope: str, metrics: dict, **extra: Any) -> None:
        event = {
            "round": server_round,
            "stage": stage,
            "scope": scope,
            "metrics": metrics,
            **extra,
            "time": round(time.monotonic() - self._started, 3),
        }
        self.run_dir.append_metrics(event)
        if self.on_event is not None:
            self.on_event(event)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _describe(failures: list) -> str:
    if not failures:
        return "no results"
    first = failures[0]
    if isinstance(first, BaseException):
        return f"{len(failures)} failed, first: {first!r}"
    return f"{len(failures)} failed, first: {first[1].status.message}"


def server_components(
    cfg: RunConfig,
    run_dir: RunDir,
    on_event: Callable[[Event], None] | None = None,
    finalize: bool = True,
) -> tuple[ServerAppComponents, FederatedRun]:
    """The server's strategy, client manager and round count for ``cfg``."""
    manager = SeededClientManager(cfg.seed)
    strategy = FederatedRun(cfg, run_dir, manager, on_event, finalize)
    components = ServerAppComponents(
        strategy=strategy, config=ServerConfig(num_rounds=strategy.rounds), client_manager=manager
    )
    return components, strategy


def build_server_app(components_fn: Callable[[Context], ServerAppComponents]) -> ServerApp:
    """A ServerApp running the :class:`FederatedRun` that ``components_fn`` builds.

    Without secure aggregation it runs Flower's legacy server loop, exactly what
    ``ServerApp(server_fn=components_fn)`` runs. With it, Flower's default
    workflow with the SecAgg+ fit workflow (:mod:`fedapp.flower.secagg`), which only a
    ``main`` function can run; the statistics query, evaluation and records
    stay the same.
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        components = components_fn(context)
        strategy = components.strategy
        assert isinstance(strategy, FederatedRun)
        if strategy.cfg.secure_aggregation:
            from fedapp.flower import secagg

            secagg.run(grid, context, components, strategy.cfg, lambda: strategy.largest_client)
        else:
            start_grid(
                grid=grid,
                server=components.server,
                config=components.config,
                strategy=strategy,
                client_manager=components.client_manager,
            )

    return app


def _server_fn(context: Context) -> ServerAppComponents:
    """Server components from Flower's run config (``flwr run``)."""
    cfg = RunConfig.from_mapping(dict(context.run_config), source="run config")
    # In a Flower App, `run-dir` names the folder that holds one directory per run.
    run_dir = prepare_run(cfg.replace(run_dir=None), Path(cfg.run_dir or "runs"))
    components, _ = server_components(cfg, run_dir)
    return components


# The Flower App component (`flwr run`).
app = build_server_app(_server_fn)
