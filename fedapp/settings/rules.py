"""Rules between settings, checked once every setting is in its own range.

A setting's own range is declared beside it (:mod:`fedapp.settings.config`)
and checked by pydantic; what one setting allows depending on another is
here, in one place, each rule with the message the CLI exits 2 with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from fedapp.errors import UsageError
from fedapp.settings.enums import (
    AUTO_ROUNDS,
    AUTO_ROUNDS_SETTINGS,
    DEMO_DATA,
    NODE_DATA,
    DpClipping,
    DpMode,
    Task,
)
from fedapp.settings.specs import NODES

if TYPE_CHECKING:
    from fedapp.settings.config import RunConfig
    from fedapp.settings.table import Setting

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


def check(cfg: RunConfig, table: Mapping[str, Setting]) -> None:
    """Check the rules between ``cfg``'s settings.

    Raises
    ------
    UsageError
        For the first rule broken, naming the settings and what they allow.

    """
    _check_bounds(cfg, table)
    _check_sampling(cfg)
    _check_attack(cfg)
    _check_data(cfg)
    _check_secure_aggregation(cfg, table)
    _check_privacy(cfg)
    _check_closing(cfg)
    if cfg.task is not None:
        check_task(cfg, cfg.task)
    _check_auto_rounds(cfg, table)


def _check_bounds(cfg: RunConfig, table: Mapping[str, Setting]) -> None:
    """Settings declared ``at_most`` another (``malicious`` at most ``clients``)."""
    for entry in table.values():
        if entry.at_most is None:
            continue
        value, bound = getattr(cfg, entry.name), getattr(cfg, entry.at_most)
        if value > bound:
            raise entry.out_of_range(value, bound)


def _check_sampling(cfg: RunConfig) -> None:
    if cfg.clients_per_round is not None and cfg.clients_per_round > cfg.clients:
        raise UsageError(
            f"clients-per-round ({cfg.clients_per_round}) must not exceed clients ({cfg.clients})"
        )
    if cfg.min_fit_results > cfg.sample_size:
        raise UsageError(
            f"min-fit-results ({cfg.min_fit_results}) must not exceed the clients sampled per "
            f"round ({cfg.sample_size})"
        )
    if cfg.min_available_clients is not None and cfg.min_available_clients > cfg.clients:
        raise UsageError(
            f"min-available-clients ({cfg.min_available_clients}) must not exceed clients "
            f"({cfg.clients})"
        )


def _check_attack(cfg: RunConfig) -> None:
    if cfg.malicious and cfg.attack is None:
        raise UsageError("--malicious needs --attack (what the malicious clients do)")
    if cfg.attack is not None and not cfg.malicious:
        raise UsageError("--attack needs --malicious K with K >= 1 clients to carry it out")


def _check_data(cfg: RunConfig) -> None:
    if cfg.client_data:
        if cfg.data != DEMO_DATA:
            raise UsageError("give either --data or --client-data, not both")
        if cfg.partition is not None:
            raise UsageError(
                "--partition splits one --data table; with --client-data each file is one client"
            )
        if cfg.clients != len(cfg.client_data):
            raise UsageError(
                f"clients ({cfg.clients}) must equal the number of --client-data "
                f"files ({len(cfg.client_data)})"
            )
    if cfg.data == NODE_DATA and cfg.partition not in (None, NODES):
        raise UsageError("with data = 'node' each SuperNode's own file is one client")
    if cfg.data != NODE_DATA and cfg.partition == NODES:
        raise UsageError("partition 'nodes' needs data = 'node' (a deployed federation)")
    if not cfg.is_demo and cfg.target is None:
        raise UsageError("--target is required with --data or --client-data")
    _check_target(cfg)
    files = len(cfg.client_data) or (0 if cfg.data in (DEMO_DATA, NODE_DATA) else 1)
    if cfg.data_sha256 and len(cfg.data_sha256) != files:
        setting = "client-data" if cfg.client_data else "data"
        raise UsageError(
            f"data-sha256 holds {_count(len(cfg.data_sha256), 'hash', 'hashes')} but there "
            f"are {_count(files, 'data file', 'data files')} ({setting}); give one per file, "
            "in order, or none"
        )


def _check_target(cfg: RunConfig) -> None:
    """The target is what the model predicts: never left out, an identifier or a split."""
    target = cfg.resolved_target
    roles = (("drop", cfg.drop, "left out"), ("id-column", (cfg.id_column,), "an identifier"))
    for key, given, role in roles:
        if target in given:
            raise UsageError(
                f"--{key} {target}: '{target}' is the target column (--target); it cannot "
                f"also be {role}"
            )
    spec = cfg.partition_spec
    if spec is not None and spec.column == target:
        raise UsageError(
            f"partition {spec} splits by the target column: every client would hold a "
            "single class; split by another column, or use dirichlet:ALPHA for label skew"
        )


def _check_secure_aggregation(cfg: RunConfig, table: Mapping[str, Setting]) -> None:
    """SecAgg+'s shares, threshold and quantisation against the clients sampled per round."""
    if not cfg.secure_aggregation:
        for name in ("secagg_shares", "secagg_threshold"):
            if getattr(cfg, name) is not None:
                raise UsageError(f"{table[name].key} needs secure-aggregation")
        return
    if cfg.dp == DpMode.CENTRAL and cfg.dp_clipping != DpClipping.CLIENT:
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
    bits = table["secagg_quantization_bits"]
    max_bits = secagg_max_bits(sampled)
    if cfg.secagg_quantization_bits > max_bits:
        raise UsageError(
            f"{bits.key} must be in [{bits.minimum}, {max_bits}] with {sampled} clients "
            f"sampled per round (their sum must fit in 2**{SECAGG_MODULUS_BITS}), "
            f"got {cfg.secagg_quantization_bits}"
        )


def _check_privacy(cfg: RunConfig) -> None:
    if cfg.target_epsilon is not None and cfg.dp == DpMode.NONE:
        raise UsageError("target-epsilon needs --dp central or --dp record")
    if cfg.dp_clipping == DpClipping.CLIENT and cfg.dp != DpMode.CENTRAL:
        raise UsageError("dp-clipping client needs --dp central")


def _check_closing(cfg: RunConfig) -> None:
    """The decision threshold and the fine-tuning after the last round."""
    if cfg.threshold_metric is not None and not cfg.calibrates_threshold:
        raise UsageError(
            "--threshold-metric needs --threshold auto (it is what calibration optimises; "
            f"got threshold {cfg.threshold or 'unset, 0.5'})"
        )
    if cfg.personalize_epochs and cfg.dp == DpMode.RECORD:
        # Fine-tuning trains on the client's rows outside DP-SGD's accounting:
        # the scores it sends would be a release that the run's ε does not cover.
        raise UsageError(
            "--personalize-epochs needs --dp none or central: under record-level DP the "
            "fine-tuning would train on each client's rows outside its privacy budget"
        )


def check_task(cfg: RunConfig, task: Task | str) -> None:
    """Check the settings that depend on the target's task, once it is known.

    An explicit ``task`` is checked with the other rules; an inferred one
    once the data is loaded.

    Raises
    ------
    UsageError
        Naming the setting and why it does not apply to the task.

    """
    task = Task(task)
    if cfg.label_skew_correction and task is Task.REGRESSION:
        raise UsageError(
            "--label-skew-correction shifts class probabilities: it needs a binary or "
            "multiclass target, and this one is a regression target"
        )
    if task is Task.BINARY or (cfg.threshold is None and cfg.threshold_metric is None):
        return
    given = "threshold" if cfg.threshold is not None else "threshold-metric"
    predicted = "its likeliest class" if task is Task.MULTICLASS else "a number"
    raise UsageError(
        f"--{given} is for binary targets: the target '{cfg.resolved_target}' is {task}, "
        f"whose prediction is {predicted}, with no probability threshold"
    )


def _check_auto_rounds(cfg: RunConfig, table: Mapping[str, Setting]) -> None:
    """Rounds auto needs its limit; its settings mean nothing to a run of fixed rounds."""
    if cfg.rounds != AUTO_ROUNDS:
        for name in AUTO_ROUNDS_SETTINGS:
            entry = table[name]
            if getattr(cfg, name) != entry.default:
                raise UsageError(
                    f"{entry.key} only applies with --rounds auto (the run then stops by "
                    f"itself), got rounds {cfg.rounds}"
                )
        return
    if cfg.max_rounds is None:
        raise UsageError("--rounds auto needs --max-rounds N (the most rounds the run may take)")
    scope, _, metric = cfg.monitor.partition("_")
    if scope == "central" and cfg.data == NODE_DATA:
        raise UsageError(
            f"monitor {cfg.monitor} needs the server's test set, and deployed (data = 'node') "
            f"the server holds no rows: monitor federated_{metric} (the clients' own)"
        )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
