"""Secure aggregation (SecAgg+): what the server sees, what it computes, bad settings.

The protocol tests run fedapp's own ServerApp and ClientApp in this process,
joined by :class:`LocalGrid`, which delivers every message to the ClientApp
of its destination node and keeps every reply: exactly what the server side
receives. Spying on the clients' ``fit`` gives the weights each one really
trained, to compare with what reached the server.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest
from flwr.app import Context, Message, RecordDict
from flwr.app.user_config import UserConfig
from flwr.clientapp import ClientApp
from flwr.common import Code as StatusCode
from flwr.common import (
    FitRes,
    NDArrays,
    Status,
    bytes_to_ndarray,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.common.secure_aggregation.secaggplus_constants import (
    RECORD_KEY_CONFIGS,
    Key,
    Stage,
)
from flwr.server.strategy import FedAvg
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity
from typer.testing import CliRunner

from fedapp.cli import app as cli
from fedapp.flower import client_app as client_module
from fedapp.flower import server_app as server_module
from fedapp.flower.client_app import ChurnClient, build_client_app
from fedapp.flower.run_setup import prepare_run
from fedapp.flower.secagg import FedappSecAggPlus
from fedapp.flower.server_app import build_server_app, server_components
from fedapp.flower.strategy import RunStrategy
from fedapp.runs import Recorder
from fedapp.settings import RunConfig

SMALL = {"clients": 3, "rounds": 2, "demo_rows": 900, "seed": 11, "baseline": False}
# Few bits, so that the quantisation error is measurable and the bound below matters.
BITS = 14
CLIP = 4.0


class LocalGrid(Grid):
    """A Grid that runs each node's ClientApp in this process and records the replies."""

    def __init__(
        self, client_app: ClientApp, num_nodes: int, run_config: UserConfig | None = None
    ) -> None:
        self._run = Run.create_empty(run_id=1)
        self._app = client_app
        # One Context per node, kept across messages: the SecAgg+ mod keeps its
        # keys and shares in the node's state between the protocol's stages.
        self._contexts = {
            node_id: Context(
                run_id=1,
                node_id=node_id,
                node_config={"partition-id": pid, "num-partitions": num_nodes},
                state=RecordDict(),
                run_config=dict(run_config or {}),
            )
            for pid, node_id in enumerate(range(101, 101 + num_nodes))
        }
        self._lock = threading.Lock()  # the statistics query arrives from a thread pool
        self.replies: list[Message] = []
        # (round, SecAgg+ stage, partition) whose message is lost: a client dropping out.
        self.drop: set[tuple[str, str, int]] = set()

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def _lost(self, message: Message) -> bool:
        configs = message.content.config_records.get(RECORD_KEY_CONFIGS, {})
        node = message.metadata.dst_node_id
        pid = int(self._contexts[node].node_config["partition-id"])
        return (message.metadata.group_id, configs.get(Key.STAGE), pid) in self.drop

    def get_node_ids(self) -> Iterable[int]:
        return list(self._contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise NotImplementedError("LocalGrid answers in send_and_receive")

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise NotImplementedError("LocalGrid answers in send_and_receive")

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        out = []
        with self._lock:
            for sent in messages:
                sent.metadata.__dict__["_message_id"] = uuid4().hex
                if self._lost(sent):
                    continue
                # A copy, as the wire would deliver: the server may send one
                # content object to several nodes, and a mod may change it.
                message = copy.deepcopy(sent)
                context = self._contexts[message.metadata.dst_node_id]
                reply = self._app(message, context)
                # Kept apart: the server consumes the records of what it is given.
                self.replies.append(copy.deepcopy(reply))
                out.append(reply)
        return out


def _as_flowers_runtime(patch: pytest.MonkeyPatch, grid: Grid) -> None:
    """Set what Flower's ServerApp runtime sets before it calls the app."""
    patch.setattr(TaskIdentity, "_task_id", 1)
    patch.setattr(TaskIdentity, "_run_id", grid.run.run_id)
    patch.setattr(TaskIdentity, "_node_id", SUPERLINK_NODE_ID)


@dataclass
class Recorded:
    """One in-process run: the grid's replies, clients' fits, the strategy's inputs."""

    cfg: RunConfig
    run_dir: Path
    grid: LocalGrid
    # (round, partition) -> (weights the client trained, its example count)
    fits: dict[tuple[int, int], tuple[NDArrays, int]] = field(default_factory=dict)
    # round -> the weights of each result passed to the strategy's aggregate_fit
    received: dict[int, list[NDArrays]] = field(default_factory=dict)
    aggregated: dict[int, NDArrays] = field(default_factory=dict)
    # round -> the global weights the clients started from
    starts: dict[int, NDArrays] = field(default_factory=dict)
    # n_max: the largest client's training rows, the protocol's weight bound
    largest: int = 0


def _run_in_process(
    cfg: RunConfig, root: Path, drop: Iterable[tuple[str, str, int]] = ()
) -> Recorded:
    run_dir = prepare_run(cfg, root)
    components, strategy = server_components(cfg, Recorder(run_dir, cfg.rounds))
    grid = LocalGrid(build_client_app(cfg), cfg.clients)
    grid.drop.update(drop)
    rec = Recorded(cfg, run_dir.path, grid)
    real_fit = ChurnClient.fit
    real_aggregate = RunStrategy.aggregate_fit

    def spy_fit(self: ChurnClient, parameters: NDArrays, config: dict) -> tuple:
        weights, n, metrics = real_fit(self, parameters, config)
        rec.starts[int(config["fedapp-round"])] = [w.copy() for w in parameters]
        rec.fits[(int(config["fedapp-round"]), self.partition_id)] = (
            [w.copy() for w in weights],
            n,
        )
        return weights, n, metrics

    def spy_aggregate(self: RunStrategy, server_round: int, results: list, failures: list):
        rec.received[server_round] = [parameters_to_ndarrays(r.parameters) for _, r in results]
        out = real_aggregate(self, server_round, results, failures)
        rec.aggregated[server_round] = parameters_to_ndarrays(out[0])
        return out

    with pytest.MonkeyPatch.context() as patch:
        _as_flowers_runtime(patch, grid)
        patch.setattr(ChurnClient, "fit", spy_fit)
        patch.setattr(RunStrategy, "aggregate_fit", spy_aggregate)
        server_context = Context(
            run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}
        )
        build_server_app(lambda _context: components)(grid, server_context)
    rec.largest = strategy.largest_client
    return rec


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    cfg = RunConfig(
        **SMALL,
        secure_aggregation=True,
        secagg_quantization_bits=BITS,
        secagg_clipping_range=CLIP,
    )
    return _run_in_process(cfg, tmp_path_factory.mktemp("secure"))


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return _run_in_process(RunConfig(**SMALL), tmp_path_factory.mktemp("plain"))


def _arrays_sent_in_clear(replies: list[Message]) -> Iterator[np.ndarray]:
    for reply in replies:
        if reply.has_content():
            for record in reply.content.array_records.values():
                for array in record.values():
                    yield array.numpy()


def _masked_vectors(replies: list[Message]) -> list[list[np.ndarray]]:
    out = []
    for reply in replies:
        configs = reply.content.config_records.get(RECORD_KEY_CONFIGS)
        if configs is not None and Key.MASKED_PARAMETERS in configs:
            out.append([bytes_to_ndarray(b) for b in configs[Key.MASKED_PARAMETERS]])
    return out


def _flat(arrays: Iterable[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])


def _fedavg(weights: list[tuple[NDArrays, int]]) -> NDArrays:
    """Flower's FedAvg aggregate of the clients' real weights."""
    ok = Status(code=StatusCode.OK, message="")
    results = [(None, FitRes(ok, ndarrays_to_parameters(w), n, {})) for w, n in weights]
    parameters, _ = FedAvg().aggregate_fit(1, results, [])  # type: ignore[arg-type]
    assert parameters is not None
    return parameters_to_ndarrays(parameters)


def test_the_server_receives_only_masked_vectors(secure: Recorded) -> None:
    rounds = secure.cfg.rounds
    assert sorted(secure.fits) == [(r, p) for r in range(1, rounds + 1) for p in range(3)]
    # No array travels in clear: the SecAgg+ mod empties the fit reply's
    # parameters, and statistics and evaluation answers carry none.
    assert list(_arrays_sent_in_clear(secure.grid.replies)) == []

    masked = _masked_vectors(secure.grid.replies)
    assert len(masked) == 3 * rounds
    largest = max(n for _, n in secure.fits.values())
    quantum, modulus = 2**BITS, 2**32
    for vector in masked:
        flat = _flat(vector[1:])  # vector[0] is the masked weighting factor
        assert flat.min() >= 0 and flat.max() < modulus
        # Masked, a vector is uniform over [0, 2**32); quantised but unmasked
        # it would fit in [0, 2**bits].
        assert flat.std() > modulus / 8
        for weights, n in secure.fits.values():
            ratio = round(n / largest * quantum) / quantum
            quantised = (np.clip(ratio * _flat(weights), -CLIP, CLIP) + CLIP) * quantum / (2 * CLIP)
            gap = np.mod(flat - np.floor(quantised), float(modulus))
            # Unmasked, this client's vector would be within one step of its
            # quantised weights everywhere; masked, hardly anywhere.
            near = np.minimum(gap, modulus - gap) <= quantum
            assert near.mean() < 0.01


def test_the_strategy_gets_the_mean_and_never_a_clients_weights(secure: Recorded) -> None:
    assert sorted(secure.received) == [1, 2]
    for server_round, received in secure.received.items():
        clients = [secure.fits[(server_round, p)] for p in range(3)]
        first = _flat(received[0])
        # Every result carries the same unmasked aggregate...
        assert all(np.array_equal(_flat(r), first) for r in received[1:])
        # ...which is no client's weights.
        for weights, _ in clients:
            assert np.abs(first - _flat(weights)).max() > 1e-3

    events = [json.loads(line) for line in (secure.run_dir / "metrics.jsonl").open()]
    fits = [e for e in events if e["stage"] == "fit"]
    assert [e["round"] for e in fits] == [1, 2]
    for event in fits:
        assert event["secure-aggregation"] is True
        assert "flagged" not in event  # nothing was scored
        # What SecAgg+ leaves in clear (example counts, training loss) and no
        # per-client update signal, as there is no client's update.
        assert {k for c in event["clients"].values() for k in c} == {"train-loss", "examples"}
    # The bookkeeping ran to the end under Flower's SecAgg+ workflow.
    central = [e["round"] for e in events if e["scope"] == "centralized"]
    assert central == [0, 1, 2]
    status = json.loads((secure.run_dir / "status.json").read_text())
    assert status["state"] == "finished" and status["round"] == secure.cfg.rounds
    summary = json.loads((secure.run_dir / "summary.json").read_text())
    assert summary["federated_evaluation"]["auc"] is not None


def _error_bound(clients: list[tuple[NDArrays, int]], largest: int, reference: np.ndarray) -> float:
    """How far SecAgg+'s mean may be from FedAvg's, per weight.

    Each client sends r_i w_i stochastically rounded to steps of 2c/2**bits
    (an error below one step), with r_i = n_i / n_max itself rounded to
    1/2**bits; the server divides the sum by the sum of the r_i.
    """
    quantum = 2**BITS
    ratios = [round(n / largest * quantum) / quantum for _, n in clients]
    spread = max(np.abs(_flat(w) - reference).max() for w, _ in clients)
    return len(clients) * (2 * CLIP / quantum + 0.5 * spread / quantum) / sum(ratios)


def test_the_aggregate_is_fedavgs_within_the_quantisation_error(secure: Recorded) -> None:
    assert sorted(secure.aggregated) == [1, 2]
    for server_round, aggregate in secure.aggregated.items():
        clients = [secure.fits[(server_round, p)] for p in range(3)]
        reference = _flat(_fedavg(clients))
        error = np.abs(_flat(aggregate) - reference).max()
        bound = _error_bound(clients, secure.largest, reference)
        assert 0 < error <= bound, (server_round, error, bound)


def test_plain_and_secure_runs_end_with_the_same_model(secure: Recorded, plain: Recorded) -> None:
    # Without SecAgg+, the same spy sees every client's weights, exactly.
    clear = list(_arrays_sent_in_clear(plain.grid.replies))
    for weights, _ in plain.fits.values():
        assert all(any(np.array_equal(w, a) for a in clear) for w in weights)

    def final(rec: Recorded) -> dict:
        events = [json.loads(line) for line in (rec.run_dir / "metrics.jsonl").open()]
        central = [e for e in events if e["scope"] == "centralized"]
        return central[-1]["metrics"]

    assert final(secure)["auc"] == pytest.approx(final(plain)["auc"], abs=0.005)
    assert sorted(secure.aggregated) == sorted(plain.aggregated) == [1, 2]
    secure_weights = _flat(secure.aggregated[secure.cfg.rounds])
    plain_weights = _flat(plain.aggregated[plain.cfg.rounds])
    assert np.abs(secure_weights - plain_weights).max() < 0.01


def test_the_server_app_ends_a_plain_run_finished_with_its_summary(plain: Recorded) -> None:
    # Execute: the `plain` fixture ran fedapp's ServerApp (Flower's legacy loop) to its end
    status = json.loads((plain.run_dir / "status.json").read_text())
    summary = json.loads((plain.run_dir / "summary.json").read_text())

    # Assert
    assert (status["state"], status["round"]) == ("finished", plain.cfg.rounds)
    assert summary["rounds"] == plain.cfg.rounds and summary["strategy"] == "fedavg"
    assert summary["federated"]["auc"] is not None


def test_dropouts_up_to_shares_minus_threshold_are_survived(tmp_path: Path) -> None:
    # 4 shares, threshold 2: the boundary is 2 dropouts.
    cfg = RunConfig(
        **{**SMALL, "clients": 4, "rounds": 1}, secure_aggregation=True, secagg_threshold=2,
        secagg_quantization_bits=BITS, secagg_clipping_range=CLIP,
    )  # fmt: skip
    # Partitions 1 and 2 vanish after sharing their keys, before sending their
    # vectors: the others' pairwise masks with them are rebuilt from their shares.
    lost = {("1", Stage.COLLECT_MASKED_VECTORS, p) for p in (1, 2)}
    rec = _run_in_process(cfg, tmp_path, drop=lost)
    assert sorted(p for _, p in rec.fits) == [0, 3]
    survivors = [rec.fits[(1, p)] for p in (0, 3)]
    reference = _flat(_fedavg(survivors))
    error = np.abs(_flat(rec.aggregated[1]) - reference).max()
    assert error <= _error_bound(survivors, rec.largest, reference)


def test_one_dropout_past_the_boundary_skips_the_round_not_the_run(tmp_path: Path) -> None:
    # 4 shares, threshold 2, 3 dropouts in round 1 of 2
    cfg = RunConfig(
        **{**SMALL, "clients": 4}, secure_aggregation=True, secagg_threshold=2,
        secagg_quantization_bits=BITS, secagg_clipping_range=CLIP,
    )  # fmt: skip
    lost = {("1", Stage.COLLECT_MASKED_VECTORS, p) for p in (0, 1, 2)}

    # Execute
    rec = _run_in_process(cfg, tmp_path, drop=lost)

    # Assert: round 1 kept the initial model and says why; round 2 aggregated; the run finished
    assert sorted(rec.aggregated) == [2]
    np.testing.assert_array_equal(_flat(rec.starts[2]), _flat(rec.starts[1]))
    events = [json.loads(line) for line in (rec.run_dir / "metrics.jsonl").open()]
    [skipped] = [e for e in events if e.get("skipped")]
    assert (skipped["round"], skipped["stage"]) == (1, "fit")
    assert "could not unmask the round's sum" in skipped["skipped"]
    summary = json.loads((rec.run_dir / "summary.json").read_text())
    assert summary["skipped_rounds"] == [1]
    assert json.loads((rec.run_dir / "status.json").read_text())["state"] == "finished"


def test_secure_aggregation_waits_the_round_timeout_not_flowers_12_hours() -> None:
    workflow = FedappSecAggPlus(RunConfig(secure_aggregation=True, round_timeout=42), lambda: 1)
    assert workflow.timeout == 42


def test_composes_with_client_side_clipping_of_client_level_dp(tmp_path: Path) -> None:
    clip_norm = 0.05
    cfg = RunConfig(
        **SMALL, secure_aggregation=True, dp="central", dp_clipping="client",
        noise_multiplier=0.0, clip_norm=clip_norm,
        secagg_quantization_bits=BITS, secagg_clipping_range=CLIP,
    )  # fmt: skip
    rec = _run_in_process(cfg, tmp_path)
    quantum = 2**BITS
    assert sorted(rec.aggregated) == [1, 2]
    for server_round, aggregate in rec.aggregated.items():
        start = _flat(rec.starts[server_round])
        clipped = []
        for p in range(3):
            update = _flat(rec.fits[(server_round, p)][0]) - start
            assert np.linalg.norm(update) > clip_norm  # so that clipping matters here
            clipped.append(start + update * clip_norm / np.linalg.norm(update))
        # Client-level DP weighs clients equally: the plain mean of the clipped
        # weights (no noise at multiplier 0), each client's weight 1 of n_max = 1.
        reference = np.mean(clipped, axis=0)
        bound = len(clipped) * (2 * CLIP / quantum) / len(clipped)
        assert np.abs(_flat(aggregate) - reference).max() <= bound
    events = [json.loads(line) for line in (rec.run_dir / "metrics.jsonl").open()]
    fits = [e for e in events if e["stage"] == "fit"]
    assert [e["round"] for e in fits] == [1, 2]
    assert all(c["examples"] == 1 for e in fits for c in e["clients"].values())
    assert json.loads((rec.run_dir / "status.json").read_text())["state"] == "finished"


def test_the_flower_app_runs_secagg_from_its_run_config(tmp_path: Path) -> None:
    # `flwr run`: both apps are built before any run config exists; the
    # settings arrive in each Context.
    cfg = RunConfig(**SMALL, secure_aggregation=True, runs_dir=str(tmp_path))
    run_config = cfg.to_flwr()
    grid = LocalGrid(client_module.app, cfg.clients, run_config)
    with pytest.MonkeyPatch.context() as patch:
        _as_flowers_runtime(patch, grid)
        context = Context(
            run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config=run_config
        )
        server_module.app(grid, context)
    assert len(_masked_vectors(grid.replies)) == 3 * cfg.rounds
    assert list(_arrays_sent_in_clear(grid.replies)) == []
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert json.loads((run / "summary.json").read_text())["rounds"] == cfg.rounds
    fits = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert [e["round"] for e in fits if e.get("secure-aggregation")] == [1, 2]


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clients", "3", "--secagg-threshold", "3"], "secagg-threshold must be in [2, 2]"),
        (["--clients", "5", "--secagg-threshold", "1"], "secagg-threshold must be in [2, 4]"),
        (
            ["--clients", "6", "--clients-per-round", "4", "--secagg-threshold", "5"],
            "secagg-threshold must be in [2, 3]",
        ),
        (
            ["--clients", "5", "--secagg-shares", "7"],
            "secagg-shares must be an odd number in [3, 5]",
        ),
        (
            ["--clients", "7", "--secagg-shares", "4"],
            "secagg-shares must be an odd number in [3, 7]",
        ),
        (["--clients", "2"], "secure-aggregation needs clients-per-round >= 3"),
        (["--secagg-quantization-bits", "31"], "secagg-quantization-bits must be in [1, 30]"),
        (["--secagg-clipping-range", "0"], "secagg-clipping-range must be > 0"),
        (["--strategy", "fedmedian"], "combines each client's own update"),
        (["--dp", "central"], "needs dp-clipping client"),
        (["--strategy", "weighted", "--policy", "uniform"], "combines each client's own update"),
    ],
)
def test_bad_secure_aggregation_settings_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(
        cli, ["simulate", "--secure-aggregation", "--runs-dir", str(tmp_path), *args]
    )
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not any(tmp_path.iterdir())  # nothing written


def test_secagg_settings_need_secure_aggregation(tmp_path: Path) -> None:
    result = runner.invoke(cli, ["simulate", "--secagg-shares", "3", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "secagg-shares needs secure-aggregation" in result.stderr


def test_secagg_settings_round_trip_through_config_json() -> None:
    cfg = RunConfig(clients=5, secure_aggregation=True, secagg_shares=3, secagg_threshold=2)
    for saved in (json.loads(json.dumps(cfg.to_dict())), cfg.to_flwr()):
        back = RunConfig.from_mapping(saved)
        assert back.secure_aggregation is True
        assert (back.secagg_shares, back.secagg_threshold) == (3, 2)
        assert (back.secagg_clipping_range, back.secagg_quantization_bits) == (8.0, 22)
    defaults = RunConfig(clients=10, secure_aggregation=True)
    assert (defaults.resolved_secagg_shares, defaults.resolved_secagg_threshold) == (10, 7)
    written = defaults.to_dict()  # config.json says what the run used
    assert (written["secagg-shares"], written["secagg-threshold"]) == (10, 7)


@pytest.mark.slow
def test_secure_simulation_end_to_end(tmp_path: Path) -> None:
    result = runner.invoke(
        cli,
        ["simulate", "--secure-aggregation", "--clients", "3", "--rounds", "2",
         "--demo-rows", "900", "--no-baseline", "--runs-dir", str(tmp_path), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (run,) = tmp_path.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["rounds"] == 2 and 0.5 < summary["federated"]["auc"] <= 1
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    config = json.loads((run / "config.json").read_text())
    assert config["secure-aggregation"] is True
    assert (config["secagg-shares"], config["secagg-threshold"]) == (3, 2)  # resolved
    fits = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert [e["round"] for e in fits if e["stage"] == "fit" and e["secure-aggregation"]] == [1, 2]
