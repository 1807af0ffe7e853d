"""The run configuration: one type built by the CLI, a TOML file, or the UI.

A :class:`RunConfig` is the single source of truth for a run. Its serialised
form uses kebab-case keys (as Flower's ``[tool.flwr.app.config]`` does) and is
written, resolved, into the run directory as ``config.json``.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fedapp.errors import UsageError
from fedapp.settings.enums import DpClipping, DpMode
from fedapp.settings.specs import parse_attack

DEMO_DATA = "demo"
# A deployed federation: each SuperNode reads the file named by its own
# `data-path` node config, and the server never sees a row.
NODE_DATA = "node"

# Flower's own name for the number of rounds, accepted so that `flwr run`
# configs read naturally.
_ALIASES = {"num-server-rounds": "rounds"}
# What a run directory's config.json records beside the settings.
_RECORDED = {"versions", "client-sources", "data-notes", "data-warnings", "malicious-clients"}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a federated run.

    Attributes
    ----------
    clients : int
        Number of institutions (Flower SuperNodes) in the federation.
    clients_per_round : int | None
        Clients sampled per round; ``None`` means all of them.
    rounds : int
        Federated rounds.
    eval_every : int
        Central evaluation of the global model every N rounds (and always
        after the last round).
    local_epochs : int
        Epochs each client trains on its own rows per round.
    batch_size : int
        Mini-batch size for local training.
    learning_rate : float
        Learning rate of each client's Adam optimizer.
    seed : int
        Seed for data generation, partitioning, initial weights and shuffling.
    strategy : str
        Name of an installed strategy plugin.
    strategy_params : dict
        Values for the strategy's declared parameters (kebab-case names).
    data : str
        ``"demo"`` for the built-in synthetic churn table, a CSV/Parquet
        file split into clients by ``partition``, or ``"node"`` when deployed:
        each SuperNode reads its own ``data-path`` node config.
    client_data : tuple[str, ...]
        One CSV/Parquet file per institution (instead of ``data``).
    demo_rows : int
        Rows of the built-in table (all institutions together).
    target : str | None
        Binary target column (the built-in table's is ``churned``).
    positive_label : str | None
        Target value meaning "positive"; ``None`` infers yes/true/1.
    id_column : str | None
        Identifier column, never a feature and never sent.
    drop : tuple[str, ...]
        Further columns that are not features.
    categorical : tuple[str, ...]
        Columns to treat as categorical even if they look numeric.
    partition : str | None
        ``iid``, ``dirichlet:ALPHA``, ``quantity:ALPHA`` or ``column:NAME``;
        ``None`` picks the built-in table's natural split (one client per
        institution), or ``iid`` for a file.
    test_fraction : float
        Share of each client's rows held out for evaluation.
    min_category_count : int
        Categories seen fewer times fold into "other" (and are never reported).
    secure_aggregation : bool
        Aggregate with Flower's SecAgg+ protocol: the server sees only the
        masked sum of the clients' weights, never one client's.
    secagg_shares : int | None
        Shares each client's secret is split into (its SecAgg+ neighbours,
        itself included); ``None`` means every sampled client.
    secagg_threshold : int | None
        Shares needed to reconstruct a secret (tolerates
        ``secagg_shares - secagg_threshold`` dropouts per neighbourhood);
        ``None`` means two thirds of the shares, at least 2.
    secagg_clipping_range : float
        Weights are clipped to ``[-range, range]`` before quantisation.
    secagg_quantization_bits : int
        Each clipped weight is quantised to an integer in ``[0, 2**bits]``.
    hidden_units : tuple[int, ...]
        Widths of the MLP's hidden layers.
    baseline : bool
        Also train the centralized baseline (all training rows pooled) and
        each institution's local-only baseline (its own rows alone).
    run_dir : str | None
        Where the run directory goes; ``None`` makes ``runs/<run-id>``.
    malicious : int
        Simulated attackers among the clients, drawn from the seed
        (:func:`fedapp.protection.attacks.choose_malicious`).
    attack : str | None
        What they do: ``sign-flip:F``, ``scale:F``, ``gaussian:SIGMA`` or
        ``label-flip`` (:mod:`fedapp.protection.attacks`).
    anomaly_threshold : float
        Robust z-score beyond which a client's update is flagged in
        ``metrics.jsonl`` (:mod:`fedapp.protection.anomaly`).
    dp : str
        Differential privacy: ``none``, ``central`` (client-level: Flower's DP
        wrappers clip each update and noise the aggregate) or ``record``
        (record-level: DP-SGD in each client) (:mod:`fedapp.protection.privacy`).
    noise_multiplier : float
        Gaussian noise standard deviation over the clip norm (``z``).
    clip_norm : float
        L2 bound of a client's update (central) or of one example's gradient
        (record).
    dp_clipping : str
        Where central DP clips: ``server`` or ``client`` (Flower's
        ``fixedclipping_mod``).
    target_epsilon : float | None
        Privacy budget: central DP ends the run before the round that would
        exceed it; under record DP each client stops training at its own.
    delta : float
        The δ of (ε, δ)-DP.

    """

    clients: int = 3
    clients_per_round: int | None = None
    rounds: int = 10
    eval_every: int = 1
    local_epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 42
    strategy: str = "fedavg"
    strategy_params: dict[str, Any] = field(default_factory=dict)
    data: str = DEMO_DATA
    client_data: tuple[str, ...] = ()
    demo_rows: int = 12000
    target: str | None = None
    positive_label: str | None = None
    id_column: str | None = None
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    partition: str | None = None
    test_fraction: float = 0.2
    min_category_count: int = 5
    secure_aggregation: bool = False
    secagg_shares: int | None = None
    secagg_threshold: int | None = None
    secagg_clipping_range: float = 8.0
    secagg_quantization_bits: int = 22
    hidden_units: tuple[int, ...] = (64, 32)
    baseline: bool = True
    run_dir: str | None = None
    malicious: int = 0
    attack: str | None = None
    anomaly_threshold: float = 3.5
    dp: str = "none"
    noise_multiplier: float = 1.0
    clip_norm: float = 1.0
    dp_clipping: str = "server"
    target_epsilon: float | None = None
    delta: float = 1e-5

    def __post_init__(self) -> None:
        _check_positive("clients", self.clients)
        _check_positive("rounds", self.rounds)
        _check_positive("eval-every", self.eval_every)
        _check_positive("local-epochs", self.local_epochs)
        _check_positive("batch-size", self.batch_size)
        _check_positive("demo-rows", self.demo_rows)
        _check_positive("min-category-count", self.min_category_count)
        if self.clients_per_round is not None:
            _check_positive("clients-per-round", self.clients_per_round)
            if self.clients_per_round > self.clients:
                raise UsageError(
                    f"clients-per-round ({self.clients_per_round}) must not exceed "
                    f"clients ({self.clients})"
                )
        if not self.learning_rate > 0:
            raise UsageError(f"learning-rate must be > 0, got {self.learning_rate}")
        if not 0 < self.test_fraction < 1:
            raise UsageError(f"test-fraction must be in (0, 1), got {self.test_fraction}")
        if not self.hidden_units or any(u <= 0 for u in self.hidden_units):
            raise UsageError(f"hidden-units must be positive widths, got {self.hidden_units}")
        self._check_attack()
        if self.client_data:
            if self.data != DEMO_DATA:
                raise UsageError("give either --data or --client-data, not both")
            if self.partition is not None:
                raise UsageError(
                    "--partition splits one --data table; with --client-data each file "
                    "is one client"
                )
            if self.clients != len(self.client_data):
                raise UsageError(
                    f"clients ({self.clients}) must equal the number of --client-data "
                    f"files ({len(self.client_data)})"
                )
        if self.data == NODE_DATA and self.partition not in (None, "nodes"):
            raise UsageError("with data = 'node' each SuperNode's own file is one client")
        if not self.is_demo and self.target is None:
            raise UsageError("--target is required with --data or --client-data")
        _check_secure_aggregation(self)
        _check_privacy(self)

    def _check_attack(self) -> None:
        if not 0 <= self.malicious <= self.clients:
            raise UsageError(
                f"malicious must be in [0, {self.clients}] (at most the number of clients), "
                f"got {self.malicious}"
            )
        if self.attack is not None:
            parse_attack(self.attack)
        if self.malicious and self.attack is None:
            raise UsageError("--malicious needs --attack (what the malicious clients do)")
        if self.attack is not None and not self.malicious:
            raise UsageError("--attack needs --malicious K with K >= 1 clients to carry it out")
        if not self.anomaly_threshold > 0:
            raise UsageError(f"anomaly-threshold must be > 0, got {self.anomaly_threshold}")

    @property
    def is_demo(self) -> bool:
        """Whether the run uses the built-in synthetic table."""
        return self.data == DEMO_DATA and not self.client_data

    @property
    def resolved_target(self) -> str:
        """The target column (the built-in table's by default)."""
        return self.target or "churned"

    @property
    def resolved_partition(self) -> str:
        """The partition spec: the built-in table's natural split, ``iid`` for a file."""
        if self.client_data:
            return "files"
        if self.data == NODE_DATA:
            return "nodes"
        return self.partition or ("column:institution" if self.is_demo else "iid")

    @property
    def sample_size(self) -> int:
        """Clients taking part in each round."""
        return self.clients_per_round or self.clients

    @property
    def resolved_secagg_shares(self) -> int:
        """SecAgg+ shares per secret: every sampled client unless set."""
        return self.secagg_shares or self.sample_size

    @property
    def resolved_secagg_threshold(self) -> int:
        """SecAgg+ reconstruction threshold: two thirds of the shares unless set."""
        return self.secagg_threshold or max(2, -(-2 * self.resolved_secagg_shares // 3))

    def replace(self, **changes: Any) -> RunConfig:
        """Return a copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Serialise with kebab-case keys; :meth:`from_mapping` reads it back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name.replace("_", "-")] = value
        out["partition"] = None if self.client_data else self.resolved_partition
        out["target"] = self.resolved_target
        if self.secure_aggregation:
            out["secagg-shares"] = self.resolved_secagg_shares
            out["secagg-threshold"] = self.resolved_secagg_threshold
        return out

    def to_flwr(self) -> dict[str, bool | int | float | str]:
        """Flatten into Flower's run config (scalars only, kebab-case keys)."""
        flat: dict[str, bool | int | float | str] = {}
        for key, value in self.to_dict().items():
            if value is None:
                continue
            if key == "strategy-params":
                for name, param in value.items():
                    flat[f"strategy-params.{name}"] = param
            elif isinstance(value, list):
                flat[key] = ",".join(str(u) for u in value)
            else:
                flat[key] = value
        return flat

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "config") -> RunConfig:
        """Build from kebab-case keys (TOML, JSON or Flower's flat run config).

        Raises
        ------
        UsageError
            On an unknown key or a value of the wrong type.

        """
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        params: dict[str, Any] = {}
        for raw_key, value in data.items():
            if raw_key in _RECORDED:
                continue
            key = _ALIASES.get(raw_key, raw_key)
            if key.startswith("strategy-params."):
                params[key.split(".", 1)[1]] = value
                continue
            name = key.replace("-", "_")
            if name not in known:
                raise UsageError(f"{source}: unknown setting '{raw_key}'")
            if name == "strategy_params":
                if not isinstance(value, Mapping):
                    raise UsageError(f"{source}: 'strategy-params' must be a table")
                params.update(value)
                continue
            kwargs[name] = _coerce(name, value, source)
        if params:
            kwargs["strategy_params"] = params
        if kwargs.get("client_data") and "clients" not in kwargs:
            kwargs["clients"] = len(kwargs["client_data"])
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: Path) -> RunConfig:
        """Read a TOML or JSON run file (the same keys as ``config.json``)."""
        return cls.from_mapping(read_settings(path), source=str(path))


def read_settings(path: Path) -> dict[str, Any]:
    """Read a run file's raw settings: TOML, or JSON such as a run's ``config.json``.

    A run's ``config.json`` names the run directory it was written for; that
    key is dropped so that re-running it makes a new run directory.

    Raises
    ------
    UsageError
        If the file cannot be read or is not valid TOML/JSON.

    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot read config file {path}: {err.strerror}") from err
    except UnicodeDecodeError:
        raise UsageError(f"config file {path} is not UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            settings = json.loads(text)
        except json.JSONDecodeError as err:
            raise UsageError(f"{path}: malformed JSON: {err}") from err
        if not isinstance(settings, dict):
            raise UsageError(f"{path}: expected a JSON object of settings")
        settings.pop("run-dir", None)
        return settings
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise UsageError(f"{path}: malformed TOML: {err}") from err


def _check_positive(name: str, value: int) -> None:
    if value <= 0:
        raise UsageError(f"{name} must be > 0, got {value}")


# SecAgg+ sums quantised weights modulo 2**32 (Flower's modulus range).
SECAGG_MODULUS_BITS = 32


def secagg_max_bits(sampled: int) -> int:
    """The most quantisation bits whose sum over ``sampled`` clients cannot wrap.

    Each client adds integers up to ``2**bits``; the sum must stay below the
    modulus ``2**32`` or the unmasked aggregate is garbage.
    """
    bits = SECAGG_MODULUS_BITS - 1
    while bits > 0 and sampled * 2**bits >= 2**SECAGG_MODULUS_BITS:
        bits -= 1
    return bits


def _check_secure_aggregation(cfg: RunConfig) -> None:
    """Exit-2 checks of the SecAgg+ settings, each naming its allowed range."""
    if not cfg.secure_aggregation:
        for name in ("secagg_shares", "secagg_threshold"):
            if getattr(cfg, name) is not None:
                raise UsageError(f"{name.replace('_', '-')} needs secure-aggregation")
        return
    if cfg.dp == "central" and cfg.dp_clipping != "client":
        raise UsageError(
            "secure-aggregation with --dp central needs dp-clipping client (the server "
            f"cannot clip updates it only sees summed), got dp-clipping {cfg.dp_clipping}"
        )
    sampled = cfg.sample_size
    if sampled < 3:
        # With two clients each one reads the other's update off the sum.
        raise UsageError(
            f"secure-aggregation needs clients-per-round >= 3 (all {cfg.clients} clients "
            f"when unset; with 2, each learns the other's update), got {sampled}"
        )
    shares = cfg.resolved_secagg_shares
    if not 3 <= shares <= sampled or (shares < sampled and shares % 2 == 0):
        raise UsageError(
            f"secagg-shares must be an odd number in [3, {sampled}] or {sampled} "
            f"(the clients sampled per round), got {shares}"
        )
    threshold = cfg.resolved_secagg_threshold
    if not 2 <= threshold < shares:
        raise UsageError(
            f"secagg-threshold must be in [2, {shares - 1}] (below secagg-shares = {shares}, "
            f"with {sampled} clients sampled per round), got {threshold}"
        )
    if not cfg.secagg_clipping_range > 0:
        raise UsageError(f"secagg-clipping-range must be > 0, got {cfg.secagg_clipping_range}")
    max_bits = secagg_max_bits(sampled)
    if not 1 <= cfg.secagg_quantization_bits <= max_bits:
        raise UsageError(
            f"secagg-quantization-bits must be in [1, {max_bits}] with {sampled} clients "
            f"sampled per round (their sum must fit in 2**{SECAGG_MODULUS_BITS}), "
            f"got {cfg.secagg_quantization_bits}"
        )


def _check_privacy(cfg: RunConfig) -> None:
    """Exit-2 checks of the differential-privacy settings, each naming its allowed range."""
    if cfg.dp not in DpMode.__members__.values():
        raise UsageError(f"dp must be one of {', '.join(DpMode)}, got {cfg.dp!r}")
    if cfg.dp_clipping not in DpClipping.__members__.values():
        raise UsageError(
            f"dp-clipping must be one of {', '.join(DpClipping)}, got {cfg.dp_clipping!r}"
        )
    if not cfg.noise_multiplier >= 0:
        raise UsageError(f"noise-multiplier must be >= 0, got {cfg.noise_multiplier:g}")
    if not cfg.clip_norm > 0:
        raise UsageError(f"clip-norm must be > 0, got {cfg.clip_norm:g}")
    if not 0 < cfg.delta < 1:
        raise UsageError(f"delta must be in (0, 1), got {cfg.delta:g}")
    if cfg.target_epsilon is not None:
        if not cfg.target_epsilon > 0:
            raise UsageError(f"target-epsilon must be > 0, got {cfg.target_epsilon:g}")
        if cfg.dp == "none":
            raise UsageError("target-epsilon needs --dp central or --dp record")
    if cfg.dp_clipping == "client" and cfg.dp != "central":
        raise UsageError("dp-clipping client needs --dp central")


_INT_FIELDS = {
    "clients", "clients_per_round", "rounds", "eval_every", "local_epochs", "batch_size",
    "seed", "demo_rows", "min_category_count", "malicious",
    "secagg_shares", "secagg_threshold", "secagg_quantization_bits",
}  # fmt: skip
_FLOAT_FIELDS = {
    "learning_rate", "test_fraction", "anomaly_threshold", "secagg_clipping_range",
    "noise_multiplier", "clip_norm", "target_epsilon", "delta",
}  # fmt: skip
_OPTIONAL_FIELDS = {
    "clients_per_round", "partition", "run_dir", "target", "positive_label", "id_column",
    "attack", "secagg_shares", "secagg_threshold", "target_epsilon",
}  # fmt: skip
_STR_FIELDS = {
    "strategy", "data", "target", "partition", "run_dir", "positive_label", "id_column",
    "attack", "dp", "dp_clipping",
}  # fmt: skip
_LIST_FIELDS = {"client_data", "drop", "categorical"}


def _coerce(name: str, value: Any, source: str) -> Any:
    """Check one value's type, accepting the forms TOML and Flower produce."""
    key = name.replace("_", "-")
    if value is None and name in _OPTIONAL_FIELDS:
        return None
    if name in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{source}: '{key}' must be an integer, got {value!r}")
        return value
    if name in _FLOAT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"{source}: '{key}' must be a number, got {value!r}")
        return float(value)
    if name in _STR_FIELDS:
        if not isinstance(value, str):
            raise UsageError(f"{source}: '{key}' must be a string, got {value!r}")
        return value
    if name in ("baseline", "secure_aggregation"):
        if not isinstance(value, bool):
            raise UsageError(f"{source}: '{key}' must be true or false")
        return value
    if name in _LIST_FIELDS:
        items = [v for v in value.split(",") if v] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
            raise UsageError(f"{source}: '{key}' must be a list of strings, got {value!r}")
        return tuple(items)
    if name == "hidden_units":
        items = value.split(",") if isinstance(value, str) else value
        try:
            return tuple(int(u) for u in items)
        except (TypeError, ValueError) as err:
            raise UsageError(
                f"{source}: 'hidden-units' must be a list of integers, got {value!r}"
            ) from err
    raise UsageError(f"{source}: unknown setting '{key}'")
