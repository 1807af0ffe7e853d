"""The run configuration: every setting declared once, in :class:`RunConfig`'s body.

Each field says its type, default, help, section and range (see
:func:`fedapp.settings.table.setting`); the CLI flags, the TOML /
``config.json`` / Flower run-config parsing, the range checks and the UI
form are all read from those declarations (:func:`describe`,
:func:`fields`). The serialised form uses kebab-case keys (as Flower's
``[tool.flwr.app.config]`` does) and is written, resolved, into the run
directory as ``config.json``.
"""

from __future__ import annotations

import functools
import json
import tomllib
import warnings
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    InstanceOf,
    PlainSerializer,
    ValidationError,
    create_model,
    model_validator,
)

from fedapp.errors import UsageError
from fedapp.settings import rules
from fedapp.settings.enums import (
    AUTO_ROUNDS,
    DEMO_DATA,
    MONITOR_SCOPES,
    NA_VALUES,
    NODE_DATA,
    DpClipping,
    DpMode,
    Task,
)
from fedapp.settings.specs import (
    AUTO,
    Attack,
    PartitionSpec,
    ThresholdMetric,
    as_attack,
    as_partition,
    as_threshold,
    as_threshold_metric,
)
from fedapp.settings.table import (
    ATTACKS,
    DATA,
    FAULTS,
    FEDERATION,
    INSTITUTIONS,
    OUTPUT,
    PRIVACY,
    SECURE_AGGREGATION,
    TRAINING,
    Renamed,
    Setting,
    setting,
    usage_error,
)

# Seconds a round waits for replies per local epoch, unless round-timeout is set.
ROUND_TIMEOUT_PER_EPOCH = 300.0
# What a run directory's config.json records beside the settings.
_RECORDED = {"versions", "client-sources", "data-notes", "data-warnings", "malicious-clients"}
# The plugins' parameter tables, by key and by attribute; Flower's flat run
# config holds each parameter as its own `TABLE.NAME` key.
_PARAM_TABLES = {"strategy-params": "strategy_params", "model-params": "model_params"}
# A key of the fixed MLP before models were plugins; run directories on disk have it.
_OLD_HIDDEN_UNITS = "hidden-units"
# Where the values being validated came from, for the messages: pydantic
# validates through `RunConfig.__init__`, which takes the settings alone.
_SOURCE: ContextVar[str | None] = ContextVar("source", default=None)


def _items(value: Any) -> Any:
    """A list as TOML/JSON give it, or as Flower's flat run config does (``a,b``)."""
    if isinstance(value, str):
        return tuple(v for v in value.split(",") if v)
    return tuple(value) if isinstance(value, list) else value


# A tab typed on a command line or in a form, where a real tab is hard to type.
_TABS = {"\\t": "\t", "tab": "\t"}


def _separator(value: Any) -> Any:
    """A ``sep`` setting as given: one character (a tab typed as a backslash and t, or tab)."""
    if not isinstance(value, str):
        return value
    value = _TABS.get(value.lower(), value)
    if len(value) != 1 or value in '"\r\n':
        raise UsageError(
            "sep must be one character other than a quote (';', '|', or tab as '\\t'), got "
            f"{value!r}"
        )
    return value


def _encoding(value: Any) -> Any:
    """An ``encoding`` setting as given: the name of a text codec Python has."""
    if isinstance(value, str):
        try:
            "".encode(value)
        except LookupError:
            raise UsageError(
                f"encoding {value!r} is not one Python knows (e.g. utf-8, cp1252, latin-1)"
            ) from None
    return value


def _whole_number(value: Any) -> Any:
    """``rounds`` as given: a whole number typed as text (a flag, a form) as an ``int``."""
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit():
            return int(text)
        if text.lower() == AUTO_ROUNDS:
            return AUTO_ROUNDS
    return value


def _monitor(value: Any) -> Any:
    """A ``monitor`` setting as given: ``<scope>_<metric>``; the task decides the metrics."""
    if isinstance(value, str):
        scope, _, metric = value.partition("_")
        if scope not in MONITOR_SCOPES or not metric:
            raise UsageError(
                "monitor must be federated_<metric> (the clients' own held-out rows) or "
                f"central_<metric> (the server's test set), e.g. federated_loss; got {value!r}"
            )
    return value


_Strings = Annotated[tuple[str, ...], BeforeValidator(_items)]
# A number of rounds, or AUTO_ROUNDS: "until the monitored score stops improving".
_Rounds = Annotated[
    Annotated[int, annotated_types.Gt(0)] | Literal["auto"], BeforeValidator(_whole_number)
]
_Monitor = Annotated[str, BeforeValidator(_monitor)]
_Separator = Annotated[str | None, BeforeValidator(_separator)]
_Encoding = Annotated[str | None, BeforeValidator(_encoding)]
# A spec is held parsed and written as its text form.
_Spec = PlainSerializer(str, when_used="json-unless-none")
_Partition = Annotated[InstanceOf[PartitionSpec] | None, BeforeValidator(as_partition), _Spec]
_Attack = Annotated[InstanceOf[Attack] | None, BeforeValidator(as_attack), _Spec]
_Threshold = Annotated[str | None, BeforeValidator(as_threshold)]
_ThresholdMetric = Annotated[
    InstanceOf[ThresholdMetric] | None, BeforeValidator(as_threshold_metric), _Spec
]


class RunConfig(BaseModel):
    """Everything that defines a federated run; the table of run settings.

    Built by keyword (``RunConfig(clients=3, rounds=2)``), from TOML/JSON
    (:meth:`from_mapping`, :meth:`from_file`) or from Flower's run config
    (:meth:`from_flwr`); frozen, and checked when built.

    Raises
    ------
    UsageError
        For a value outside its declared range, of the wrong type, or
        breaking a rule between settings (:mod:`fedapp.settings.rules`).

    """

    # No setting means anything at infinity or NaN, and a run would only fail
    # on one mid-way: refused with the declared range (a "finite number").
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    # --- Data ---------------------------------------------------------------
    data: str = setting(
        DEMO_DATA, section=DATA,
        help="'demo' for the built-in synthetic churn table, a CSV/Parquet file split into "
        "clients by partition, or 'node' when deployed (each SuperNode reads the file its "
        "own data-path node config names).",
    )  # fmt: skip
    client_data: _Strings = setting(
        (), section=DATA, unset="none",
        help="One CSV/Parquet file per institution (instead of data).",
    )  # fmt: skip
    demo_rows: int = setting(
        12000, section=DATA, gt=0, label="Rows", step=1000,
        help="Rows of the built-in churn table, all institutions together.",
    )  # fmt: skip
    target: str | None = setting(
        None, section=DATA, unset="churned for the demo", label="Target column",
        help="The column to predict (required with a file).",
    )  # fmt: skip
    task: Task | None = setting(
        None, section=DATA, strict=False, unset="inferred from the target",
        help="What the target is: binary (two values), multiclass (a few classes, or text) "
        "or regression (a number; trained standardised, reported in its own units). "
        "Inferred: two values are binary, text or at most 10 whole numbers multiclass, "
        "other numbers regression.",
    )  # fmt: skip
    positive_label: str | None = setting(
        None, section=DATA, unset="inferred (yes / true / 1)", label="Positive class",
        help="Target value meaning positive (binary targets).",
    )  # fmt: skip
    id_column: str | None = setting(
        None, section=DATA, unset="none", label="Identifier column",
        help="Identifier column: never a feature, never sent.",
    )  # fmt: skip
    drop: _Strings = setting(
        (), section=DATA, unset="none", label="Columns that are not features",
        help="Columns that are not features.",
    )  # fmt: skip
    categorical: _Strings = setting(
        (), section=DATA, unset="none", label="Categorical columns",
        help="Columns to treat as categorical even if they look numeric (codes, or a "
        "numeric column with typos), whatever their number of values.",
    )  # fmt: skip
    na_values: _Strings = setting(
        NA_VALUES, section=DATA, label="Missing-value markers",
        renamed=(Renamed("missing-values"),),
        help="Values read as missing in every column, matched once the spaces around a cell "
        "are stripped; a number such as -999 also matches as a number (-999.0). Giving "
        "them replaces this list. Blank cells and pandas' own NaN text (NaN, nan, NA, N/A, "
        "n/a, NULL, null, None, <NA>, #N/A, #NA, -NaN, 1.#IND, ...) are always missing.",
    )  # fmt: skip
    sep: _Separator = setting(
        None, section=DATA, label="Column separator",
        unset="detected: one of , ; tab | (tab for .tsv), else ,",
        help="The character between a CSV file's columns ('\\t' or tab for a tab). Unset, it "
        "is sniffed from the first 64 KiB of each file among ',', ';', tab and '|' (a .tsv "
        "file is tab-separated), ',' when unclear; a separator other than ',' is said.",
    )  # fmt: skip
    encoding: _Encoding = setting(
        None, section=DATA, label="Text encoding",
        unset="detected: UTF-8, else cp1252 or latin-1",
        help="The text encoding of CSV files, as Python names it (utf-8, cp1252, latin-1, "
        "utf-16, ...). Unset, a file is read as UTF-8 (its byte-order mark dropped) when "
        "it is UTF-8, else as cp1252 or latin-1, whichever it reads as; an encoding other "
        "than UTF-8 is said.",
    )  # fmt: skip
    max_categories: int = setting(
        50, section=DATA, gt=0,
        help="Most distinct values of a column typed categorical by inference; one with more "
        "(a mistyped number, free text) is refused: --drop it, or name it in --categorical. "
        "A text column with a different value in every row (20 rows or more) is read as an "
        "identifier and left out, with a warning.",
    )  # fmt: skip
    min_category_count: int = setting(
        5, section=DATA, gt=0,
        help="Categories seen fewer times fold into 'other' and are never sent.",
    )  # fmt: skip
    test_fraction: float = setting(
        0.2, section=DATA, gt=0, lt=1,
        help="Share of each client's rows held out for evaluation (stratified).",
    )  # fmt: skip
    validation_fraction: float = setting(
        0.0, section=DATA, ge=0, lt=1,
        help="Share of each client's training rows held out for validation (stratified): "
        "the clients' own evaluation each round (automatic rounds watch it), threshold "
        "calibration and tuning then score these rows, never the test rows.",
    )  # fmt: skip
    seed: int = setting(
        # 32 bits, as NumPy's legacy seeds; Keras' initialisers take seed * 1000 + layer,
        # which a larger seed overflows (an int64) only once the run has started.
        42, section=DATA, ge=0, le=2**32 - 1,
        help="Seed of the demo table, the split, initial weights, sampling and shuffling.",
    )  # fmt: skip
    data_sha256: _Strings = setting(
        (), section=DATA, cli=False, unset="not checked", label="Data SHA-256",
        help="SHA-256 of each data file (data, or each client-data file in order), as a "
        "run's config.json records them: a file whose content differs is reported with a "
        "warning.",
    )  # fmt: skip

    # --- Institutions ---------------------------------------------------------
    clients: int = setting(
        3, section=INSTITUTIONS, gt=0, label="Institutions (clients)",
        unset="3, or one per client-data file",
        help="Institutions (Flower SuperNodes) in the federation.",
    )  # fmt: skip
    partition: _Partition = setting(
        None, section=INSTITUTIONS, unset="column:institution for the demo, iid for a file",
        help="How one table is split into clients: iid, dirichlet:ALPHA (label skew), "
        "quantity:ALPHA (size skew) or column:NAME (one client per value).",
    )  # fmt: skip

    # --- Federation -----------------------------------------------------------
    clients_per_round: int | None = setting(
        None, section=FEDERATION, gt=0, unset="all",
        help="Clients sampled per round.",
    )  # fmt: skip
    rounds: _Rounds = setting(
        10, section=FEDERATION, aliases=("num-server-rounds",),
        help="Federated rounds, or auto: until the monitored score has not improved for "
        "patience rounds (at most max-rounds), keeping the best round's model.",
    )  # fmt: skip
    eval_every: int = setting(
        1, section=FEDERATION, gt=0, label="Evaluate every",
        help="Central evaluation of the global model every N rounds, and always after the "
        "last round.",
    )  # fmt: skip
    strategy: str = setting(
        "fedavg", section=FEDERATION,
        help="Strategy plugin (see `fedapp strategies`).",
    )  # fmt: skip
    strategy_params: dict[str, Any] = setting(
        {}, section=FEDERATION, cli=False,
        help="Values of the strategy's declared parameters, by kebab-case name (further "
        "--NAME VALUE flags on the command line).",
    )  # fmt: skip
    max_rounds: int | None = setting(
        None, section=FEDERATION, gt=0, unset="none (required with rounds auto)",
        help="With rounds auto: the most rounds the run may take.",
    )  # fmt: skip
    patience: int = setting(
        10, section=FEDERATION, ge=1,
        help="With rounds auto: the run stops once the monitored score has not improved "
        "for this many rounds.",
    )  # fmt: skip
    min_delta: float = setting(
        0.0, section=FEDERATION, ge=0, step=0.001, fmt="%g", label="Min delta",
        help="With rounds auto: an improvement is a gain of the monitored score of more "
        "than this over its best so far (a tie is none).",
    )  # fmt: skip
    monitor: _Monitor = setting(
        "federated_loss", section=FEDERATION,
        help="With rounds auto: the score watched, federated_<metric> (the clients' own "
        "held-out rows, every round; works deployed) or central_<metric> (the server's test "
        "set, every eval-every rounds), <metric> one of the task's scores (loss, auc, "
        "accuracy, rmse, ...).",
    )  # fmt: skip

    round_timeout: float | None = setting(
        None, section=FEDERATION, gt=0, fmt="%g",
        unset=f"{ROUND_TIMEOUT_PER_EPOCH:g} s per local epoch, plus straggler-delay",
        help="Seconds a round waits for the clients' replies; a later reply is dropped as a "
        "failure. config.json records the value used.",
    )  # fmt: skip
    min_fit_results: int = setting(
        1, section=FEDERATION, ge=1,
        help="Fewest training results a round aggregates: a round with fewer keeps the "
        "previous global model (recorded as skipped) and the run goes on.",
    )  # fmt: skip
    min_available_clients: int | None = setting(
        None, section=FEDERATION, gt=0, unset="the clients per round",
        help="Clients that must be connected before a round samples; after round-timeout "
        "seconds with fewer the run fails, saying how many are connected.",
    )  # fmt: skip

    # --- Training -------------------------------------------------------------
    local_epochs: int = setting(
        1, section=TRAINING, gt=0,
        help="Epochs each client trains on its own rows per round.",
    )  # fmt: skip
    batch_size: int = setting(
        32, section=TRAINING, gt=0,
        help="Mini-batch size of local training.",
    )  # fmt: skip
    learning_rate: float = setting(
        1e-3, section=TRAINING, gt=0, step=1e-4, fmt="%.4f",
        help="Learning rate of each client's Adam optimizer.",
    )  # fmt: skip
    model: str = setting(
        "mlp", section=TRAINING,
        help="Model plugin: the network each client trains (see `fedapp models`).",
    )  # fmt: skip
    model_params: dict[str, Any] = setting(
        {}, section=TRAINING, cli=False,
        help="Values of the model's declared parameters, by kebab-case name (further "
        "--NAME VALUE flags on the command line).",
    )  # fmt: skip
    label_skew_correction: bool = setting(
        False, section=TRAINING,
        help="Each client trains with its logits shifted by the log ratio of its own label "
        "prior to the federation's, so the shared model learns the federation's "
        "posterior (binary and multiclass); the served model has no shift.",
    )  # fmt: skip
    threshold: _Threshold = setting(
        None, section=TRAINING, unset="0.5", label="Decision threshold",
        help="Probability at or above which a binary prediction is positive: a number in "
        "(0, 1), or auto: after the last round the clients report their held-out rows' "
        "confusion counts at 99 thresholds (counts only) and the server picks the one "
        "that optimises threshold-metric on the pooled counts. Recorded in summary.json "
        "and used by fedapp predict (binary targets).",
    )  # fmt: skip
    threshold_metric: _ThresholdMetric = setting(
        None, section=TRAINING, unset="f1 (with threshold auto)",
        help="What --threshold auto optimises: f1, accuracy, youden (sensitivity + "
        "specificity - 1) or cost:FP,FN (the least total cost, a false positive costing "
        "FP and a false negative FN, e.g. cost:1,5).",
    )  # fmt: skip
    personalize_epochs: int = setting(
        0, section=TRAINING, ge=0, label="Fine-tuning epochs",
        help="After training, each client fine-tunes a copy of the final global model for "
        "this many epochs on its own training rows and scores it on its own held-out "
        "rows: the report's 'federated + fine-tuned' column (0: off).",
    )  # fmt: skip

    # --- Privacy --------------------------------------------------------------
    dp: DpMode = setting(
        DpMode.NONE, section=PRIVACY, strict=False, label="Differential privacy",
        help="Differential privacy: none; central (client-level: clip each update, noise "
        "the aggregate); record (record-level: DP-SGD in each client).",
    )  # fmt: skip
    noise_multiplier: float = setting(
        1.0, section=PRIVACY, ge=0, step=0.1,
        help="Gaussian noise standard deviation over the clip norm (z).",
    )  # fmt: skip
    clip_norm: float = setting(
        1.0, section=PRIVACY, gt=0, step=0.1,
        help="L2 bound of a client's update (central) or of one example's gradient (record).",
    )  # fmt: skip
    dp_clipping: DpClipping = setting(
        DpClipping.SERVER, section=PRIVACY, strict=False, label="Clipping",
        help="Where central DP clips updates: server, or client (Flower's "
        "fixedclipping_mod; composes with secure aggregation).",
    )  # fmt: skip
    target_epsilon: float | None = setting(
        None, section=PRIVACY, gt=0, unset="no budget", label="Target ε", step=0.5,
        help="Privacy budget: central DP ends the run before the round that would exceed "
        "it; under record DP each client stops training at its own.",
    )  # fmt: skip
    delta: float = setting(
        1e-5, section=PRIVACY, gt=0, lt=1, label="δ", fmt="%.0e",
        help="The δ of (ε, δ)-DP.",
    )  # fmt: skip

    # --- Secure aggregation ---------------------------------------------------
    secure_aggregation: bool = setting(
        False, section=SECURE_AGGREGATION, label="Secure aggregation (SecAgg+)",
        help="Aggregate with Flower's SecAgg+: the server sees only the masked sum of the "
        "clients' weights, never one client's.",
    )  # fmt: skip
    secagg_shares: int | None = setting(
        None, section=SECURE_AGGREGATION, unset="every sampled client",
        help="Shares each client's secret is split into (its SecAgg+ neighbours, itself "
        "included): an odd number from 3 up to the clients per round.",
    )  # fmt: skip
    secagg_threshold: int | None = setting(
        None, section=SECURE_AGGREGATION, unset="two thirds of the shares, at least 2",
        help="Shares needed to reconstruct a secret (tolerates shares - threshold "
        "dropouts per neighbourhood).",
    )  # fmt: skip
    secagg_clipping_range: float = setting(
        8.0, section=SECURE_AGGREGATION, gt=0,
        help="Weights are clipped to [-range, range] before quantisation.",
    )  # fmt: skip
    secagg_quantization_bits: int = setting(
        22, section=SECURE_AGGREGATION, ge=1,
        help="Each clipped weight is quantised to an integer in [0, 2**bits]; their sum "
        "over the clients per round must fit in 2**32.",
    )  # fmt: skip

    # --- Attacks --------------------------------------------------------------
    malicious: int = setting(
        0, section=ATTACKS, ge=0, at_most="clients", label="Malicious clients",
        help="Simulated attackers among the clients, drawn from the seed (with attack).",
    )  # fmt: skip
    attack: _Attack = setting(
        None, section=ATTACKS, unset="none",
        help="What attackers send: sign-flip:F, scale:F, gaussian:SIGMA or label-flip.",
    )  # fmt: skip
    anomaly_threshold: float = setting(
        3.5, section=ATTACKS, gt=0,
        help="Robust z-score beyond which a client's update is flagged in metrics.jsonl.",
    )  # fmt: skip

    # --- Faults (simulation) -------------------------------------------------
    dropout_rate: float = setting(
        0.0, section=FAULTS, ge=0, lt=1, step=0.05,
        help="Simulation: chance that a sampled client drops out of a round (its fit and "
        "evaluation fail, as a lost node's), drawn from the seed.",
    )  # fmt: skip
    straggler_rate: float = setting(
        0.0, section=FAULTS, ge=0, lt=1, step=0.05,
        help="Simulation: chance that a client answers a round straggler-delay seconds "
        "late, drawn from the seed.",
    )  # fmt: skip
    straggler_delay: float = setting(
        5.0, section=FAULTS, gt=0, fmt="%g",
        help="Simulation: how many seconds late a straggler answers.",
    )  # fmt: skip

    # --- Output ---------------------------------------------------------------
    baseline: bool = setting(
        True, section=OUTPUT, label="Baselines",
        help="Also train the centralized baseline (all training rows pooled) and each "
        "institution's local-only baseline (its own rows alone).",
    )  # fmt: skip
    run_dir: str | None = setting(
        None, section=OUTPUT, unset="runs-dir/<time>-<strategy>-<id>",
        help="This run's directory.",
    )  # fmt: skip
    runs_dir: str = setting(
        "runs", section=OUTPUT, renamed=(Renamed("run-dir", flwr_only=True),),
        help="Folder that gets one directory per run.",
    )  # fmt: skip
    checkpoint_every: int = setting(
        1, section=OUTPUT, ge=0,
        help="Write a checkpoint (the global model and every piece of state the rounds "
        "carry) under the run's checkpoints/ every N rounds, so `fedapp resume` can "
        "continue the run after a crash (0: never).",
    )  # fmt: skip
    keep_checkpoints: int = setting(
        2, section=OUTPUT, ge=1,
        help="How many of the newest checkpoints to keep.",
    )  # fmt: skip
    resume: bool = setting(
        False, section=OUTPUT, cli=False,
        help="Deployed (the run config): continue the run in run-dir from its newest "
        "checkpoint instead of starting a new one (`fedapp resume` on the command line).",
    )  # fmt: skip

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise usage_error(err, _TABLE, values, _SOURCE.get()) from None

    @model_validator(mode="after")
    def _rules(self) -> RunConfig:
        rules.check(self, _TABLE)
        return self

    @property
    def is_demo(self) -> bool:
        """Whether the run uses the built-in synthetic table."""
        return self.data == DEMO_DATA and not self.client_data

    @property
    def resolved_target(self) -> str:
        """The target column (the built-in table's by default)."""
        return self.target or "churned"

    @property
    def partition_spec(self) -> PartitionSpec | None:
        """How one table is split: the built-in table's natural split, ``iid`` for a file.

        ``None`` when each file (``client-data``) or SuperNode is one client.
        """
        if self.client_data or self.data == NODE_DATA:
            return None
        return self.partition or PartitionSpec.parse(
            "column:institution" if self.is_demo else "iid"
        )

    @property
    def resolved_partition(self) -> str:
        """The split in words: :attr:`partition_spec`'s text, ``files`` or ``nodes``."""
        if self.client_data:
            return "files"
        return str(self.partition_spec or "nodes")

    @property
    def calibrates_threshold(self) -> bool:
        """Whether the federation picks the decision threshold (``threshold = auto``)."""
        return self.threshold == AUTO

    @property
    def fixed_threshold(self) -> float | None:
        """The decision threshold given as a number, else ``None`` (unset, or auto)."""
        return None if self.threshold in (None, AUTO) else float(self.threshold)

    @property
    def resolved_threshold_metric(self) -> ThresholdMetric:
        """What a calibrated threshold optimises: F1 unless set."""
        return self.threshold_metric or ThresholdMetric("f1")

    @property
    def sample_size(self) -> int:
        """Clients taking part in each round."""
        return self.clients_per_round or self.clients

    @property
    def auto_rounds(self) -> bool:
        """Whether the run stops by itself once the monitored score stops improving."""
        return self.rounds == AUTO_ROUNDS

    @property
    def round_limit(self) -> int:
        """The most rounds this run may run: ``rounds``, or ``max-rounds`` with rounds auto."""
        if isinstance(self.rounds, int):
            return self.rounds
        # The rules refuse rounds auto without max-rounds.
        assert self.max_rounds is not None
        return self.max_rounds

    @property
    def resolved_secagg_shares(self) -> int:
        """SecAgg+ shares per secret: every sampled client unless set."""
        return self.secagg_shares or self.sample_size

    @property
    def resolved_round_timeout(self) -> float:
        """Seconds a round waits for replies: as set, or derived from the local epochs.

        The derived bound is generous for tabular training, and a straggler's
        injected delay is added so that a straggler is late, not lost.
        """
        if self.round_timeout is not None:
            return self.round_timeout
        late = self.straggler_delay if self.straggler_rate > 0 else 0.0
        return ROUND_TIMEOUT_PER_EPOCH * self.local_epochs + late

    @property
    def resolved_min_available_clients(self) -> int:
        """Clients that must be connected before a round samples."""
        return self.min_available_clients or self.sample_size

    @property
    def resolved_secagg_threshold(self) -> int:
        """SecAgg+ reconstruction threshold: two thirds of the shares unless set."""
        return self.secagg_threshold or max(2, -(-2 * self.resolved_secagg_shares // 3))

    def replace(self, **changes: Any) -> RunConfig:
        """Return a copy with ``changes`` applied (and checked)."""
        return type(self)(**{**dict(self), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Serialise with kebab-case keys; :meth:`from_mapping` reads it back."""
        out = {_TABLE[k].key: v for k, v in self.model_dump(mode="json").items()}
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
            if key in _PARAM_TABLES:
                flat |= {f"{key}.{name}": param for name, param in value.items()}
            else:
                flat[key] = value
        return {k: _scalar(v) for k, v in flat.items() if v is not None}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "config") -> RunConfig:
        """Build from kebab-case keys (TOML, JSON or Flower's flat run config).

        Parameters
        ----------
        data : Mapping[str, Any]
            Settings by key; ``strategy-params`` and ``model-params`` as
            tables or as flat ``strategy-params.NAME`` keys; lists as lists or
            ``a,b`` text. The old ``hidden-units`` is read as the MLP's
            parameter ``model-params.hidden-units`` (with a ``DeprecationWarning``).
        source : str
            Where they came from, named by the messages.

        Raises
        ------
        UsageError
            On an unknown key, a value of the wrong type or out of range.

        """
        return cls._parse(data, source, flwr=False)

    @classmethod
    def from_flwr(cls, run_config: Mapping[str, Any]) -> RunConfig:
        """Build from Flower's run config (``Context.run_config``).

        As :meth:`from_mapping`, except that the keys Flower's run config
        once used for other settings are read with a ``DeprecationWarning``
        (``run-dir``, which named the folder of run directories: now
        ``runs-dir``).
        """
        return cls._parse(run_config, "run config", flwr=True)

    @classmethod
    def from_file(cls, path: Path) -> RunConfig:
        """Read a TOML or JSON run file (the same keys as ``config.json``)."""
        return cls.from_mapping(read_settings(path), source=str(path))

    @classmethod
    def _parse(cls, data: Mapping[str, Any], source: str, flwr: bool) -> RunConfig:
        keys = _keys(flwr)
        values: dict[str, Any] = {}
        params: dict[str, dict[str, Any]] = {table: {} for table in _PARAM_TABLES.values()}
        renamed: set[str] = set()
        if _OLD_HIDDEN_UNITS in data:
            warnings.warn(
                f"{source}: '{_OLD_HIDDEN_UNITS}' is now the mlp model's parameter "
                f"'model-params.{_OLD_HIDDEN_UNITS}'; use that",
                DeprecationWarning,
                stacklevel=3,
            )
            params["model_params"][_OLD_HIDDEN_UNITS] = data[_OLD_HIDDEN_UNITS]
        for key, value in data.items():
            table, dot, name = key.partition(".")
            if key in _RECORDED or key == _OLD_HIDDEN_UNITS:
                continue
            if dot and table in _PARAM_TABLES:
                params[_PARAM_TABLES[table]][name] = value
                continue
            if key not in keys:
                raise UsageError(f"{source}: unknown setting '{key}'")
            entry, old = keys[key]
            if entry.name in renamed:
                continue  # the old key was given too: it wins (see below)
            if old:
                warnings.warn(
                    f"{source}: '{key}' is the old name of '{entry.key}'; use '{entry.key}'",
                    DeprecationWarning,
                    stacklevel=3,
                )
                # Where both keys appear (Flower merges the app's defaults, already
                # under the new name, with the user's overrides) only the old one
                # can have been typed by the user.
                renamed.add(entry.name)
            if entry.name in params:
                if not isinstance(value, Mapping):
                    raise entry.wrong_type(value, source)
                params[entry.name].update(value)
                continue
            values[entry.name] = value
        values |= {name: table for name, table in params.items() if table}
        if values.get("client_data") and "clients" not in values:
            values["clients"] = len(_items(values["client_data"]))
        token = _SOURCE.set(source)
        try:
            return cls(**values)
        finally:
            _SOURCE.reset(token)


_TABLE = {name: Setting.of(name, info) for name, info in RunConfig.model_fields.items()}


def _scalar(value: Any) -> bool | int | float | str:
    """A value as Flower's run config holds it: a list as ``a,b`` text."""
    return ",".join(str(v) for v in value) if isinstance(value, list | tuple) else value


def _keys(flwr: bool) -> dict[str, tuple[Setting, bool]]:
    """Every key a setting is read by, and whether it is a renamed (deprecated) one."""
    keys: dict[str, tuple[Setting, bool]] = {}
    for entry in _TABLE.values():
        for key in (entry.key, entry.name, *entry.aliases):
            keys[key] = (entry, False)
    for entry in _TABLE.values():
        for old in entry.renamed:
            if flwr or not old.flwr_only:
                keys[old.old] = (entry, True)
    return keys


def describe(name: str) -> Setting:
    """The declaration of one setting, by attribute name or kebab-case key.

    Raises
    ------
    KeyError
        For a name that is no setting.

    """
    return _TABLE[name.replace("-", "_")]


def value_error(name: str, value: Any, others: Mapping[str, Any] | None = None) -> str | None:
    """Why ``value`` is refused for setting ``name`` on its own, as the CLI says it; else ``None``.

    Checks the value against the setting's declaration alone (its type and
    range, with pydantic, as :class:`RunConfig` does, and its ``at_most``
    bound); the rules between settings are :class:`RunConfig`'s. A form
    checks each field with it as it is typed.

    Parameters
    ----------
    name : str
        The setting, by attribute name or key.
    value : Any
        The value to check.
    others : Mapping[str, Any] | None
        The other settings by key, for the messages that name them and for
        an ``at_most`` bound (``malicious`` is at most ``clients``).

    """
    entry = describe(name)
    others = dict(others or {})
    try:
        _one_setting(entry.name)(**{entry.name: value})
    except ValidationError as err:
        return str(usage_error(err, _TABLE, {**others, entry.key: value}, "form"))
    except UsageError as err:  # a spec's own parser (partition, attack)
        return str(err)
    bound = others.get(describe(entry.at_most).key) if entry.at_most else None
    if isinstance(bound, int) and isinstance(value, int) and value > bound:
        return str(entry.out_of_range(value, bound))
    return None


@functools.cache
def _one_setting(name: str) -> type[BaseModel]:
    """A model of setting ``name`` alone, declared as in :class:`RunConfig`."""
    info = RunConfig.model_fields[name]
    return create_model(  # type: ignore[call-overload,no-any-return]
        f"Only_{name}", __config__=RunConfig.model_config, **{name: (info.annotation, info)}
    )


def fields(*sections: str) -> tuple[Setting, ...]:
    """The declared settings of ``sections`` (all without), in declaration order."""
    return tuple(s for s in _TABLE.values() if not sections or s.section in sections)


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
