"""Everything checked and written before a run's first round, wherever it runs.

The simulation driver and the Flower App's ServerApp both start a run here:
the strategy plugin is built once (bad parameters fail before any round), the
data is loaded and checked, and the run directory gets its resolved config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flwr
from flwr.common import Parameters
from flwr.server.strategy import Strategy

from fedapp import __version__, data, registry
from fedapp.errors import UsageError
from fedapp.flower import secagg
from fedapp.flower.outcome import end_unfinished
from fedapp.learning import convergence
from fedapp.protection import attacks, privacy
from fedapp.runs import Recorder, RunDir, RunState
from fedapp.runs.checkpoints import OPERATIONAL_SETTINGS
from fedapp.runs.resuming import Resumable, resumable
from fedapp.settings import NODE_DATA, RunConfig, rules


def common_kwargs(cfg: RunConfig, initial: Parameters | None = None) -> dict[str, Any]:
    """The keyword arguments every plugin passes to its Flower strategy.

    ``min_available_clients`` is the federation's size, which SCAFFOLD (its N)
    and the weighted policies read; how many clients must be connected before
    a round samples is the client manager's (``min-available-clients``).
    """
    sample = cfg.sample_size / cfg.clients
    return {
        "fraction_fit": sample,
        "fraction_evaluate": sample,
        "min_fit_clients": cfg.sample_size,
        "min_evaluate_clients": cfg.sample_size,
        "min_available_clients": cfg.clients,
        "initial_parameters": initial or Parameters(tensors=[], tensor_type="numpy.ndarray"),
    }


def check_strategy(cfg: RunConfig) -> None:
    """Build the plugin's strategy once, so bad parameters fail before the run."""
    plugin = registry.get(cfg.strategy)
    strategy = plugin.build(common_kwargs(cfg), plugin.resolve(cfg.strategy_params))
    check_refused(cfg, strategy)
    secagg.check_strategy(cfg, strategy)


def check_refused(cfg: RunConfig, strategy: Strategy) -> None:
    """Refuse the run settings the strategy declares it cannot honour.

    A strategy may declare ``refuses``: a mapping from a run setting as the
    command line spells it (``--secure-aggregation``, ``--dp central``,
    ``--dp record``, even ``--dp none``) to why it cannot run with it
    (SCAFFOLD's control variates, for instance, cannot travel masked by SecAgg+).

    Raises
    ------
    UsageError
        Naming the strategy, the setting and the strategy's reason.

    """
    refused = getattr(strategy, "refuses", None) or {}
    used = [f"--dp {cfg.dp}"]
    if cfg.secure_aggregation:
        used.append("--secure-aggregation")
    for setting in used:
        if setting in refused:
            raise UsageError(
                f"strategy '{cfg.strategy}' cannot run with {setting}: {refused[setting]}"
            )


def model_params(cfg: RunConfig) -> dict[str, Any]:
    """The model plugin's parameters, resolved: an unknown model or a bad value fails here."""
    return registry.get_model(cfg.model).resolve(cfg.model_params)


def check(cfg: RunConfig) -> data.Federation:
    """Validate everything that can be checked before a run starts.

    Returns
    -------
    data.Federation
        The loaded clients, with the notes (the positive class chosen, blanks
        read as missing, ...) and warnings (a leaking feature) to show.

    Raises
    ------
    UsageError
        For an unknown strategy or model, a bad strategy or model parameter,
        unusable data or an impossible split.

    """
    check_strategy(cfg)
    model_params(cfg)
    if cfg.data == NODE_DATA:
        raise UsageError(
            "data = 'node' is for a deployed federation, where each SuperNode reads its "
            "own data-path; here, give --data or --client-data"
        )
    loaded = data.federation(cfg)
    # The task is known only now when it is inferred from the target's values.
    rules.check_task(cfg, loaded.schema.task)
    privacy.check_budget(cfg, [len(c.train) for c in loaded.clients])
    if cfg.auto_rounds:
        convergence.check_monitor(cfg.monitor, str(loaded.task))
    return loaded


def prepare_run(cfg: RunConfig, root: Path) -> RunDir:
    """Check ``cfg``, create the run directory and write the resolved config."""
    if cfg.data == NODE_DATA:
        # Deployed: the rows never leave the SuperNodes, which read their own files.
        check_strategy(cfg)
        model_params(cfg)
        sources: list[str] = []
        notes: list[str] = []
        warnings: list[str] = []
        files: dict[str, Any] = {}
    else:
        loaded = check(cfg)
        sources = [c.source for c in loaded.clients]
        notes, warnings = list(loaded.notes), list(loaded.warnings)
        # The task as loading settled it: readers label the scores by it.
        files = data.recorded_settings(cfg, loaded) | {"task": loaded.schema.task}
    run_dir = RunDir.create(Path(cfg.run_dir) if cfg.run_dir else None, root, cfg.strategy)
    plugin = registry.get(cfg.strategy)
    resolved = cfg.replace(
        strategy_params=plugin.resolve(cfg.strategy_params),
        model_params=model_params(cfg),
        round_timeout=cfg.resolved_round_timeout,
        run_dir=str(run_dir.path),
        **files,
    )
    try:
        run_dir.write_config(
            {
                **resolved.to_dict(),
                "client-sources": sources,
                "data-notes": notes,
                "data-warnings": warnings,
                "malicious-clients": list(
                    attacks.choose_malicious(cfg.clients, cfg.malicious, cfg.seed)
                ),
                "versions": {"fedapp": __version__, "flwr": flwr.__version__},
            }
        )
        run_dir.mark_started(cfg.round_limit)
    except BaseException as err:
        # Stopped (or failed) between the claim and the first status: say so
        # rather than leave a directory that looks like a run starting for ever.
        end_unfinished(Recorder(run_dir, cfg.round_limit), err, keep=lambda: None)
        raise
    return run_dir


def prepare_resume(
    path: Path,
    rounds: int | None = None,
    other_host: bool = False,
    asked: RunConfig | None = None,
) -> tuple[RunConfig, Resumable, list[str]]:
    """Check that the run in ``path`` can go on from its newest checkpoint, to ``rounds``.

    Nothing is changed but ``config.json``'s ``rounds`` when extended, and
    that only once every check has passed. Deployed, ``asked`` is the new
    Flower run's config (``resume = true``): it must hold the run's own
    settings, and its rounds extend the run when they are more.

    Returns
    -------
    tuple[RunConfig, Resumable, list[str]]
        The run's settings (extended to ``rounds``), the run and its
        checkpoint, and warnings for the ``resumed`` event.

    Raises
    ------
    UsageError
        As :func:`fedapp.runs.resuming.resumable` does; for a finished run
        without more ``rounds``, for ``rounds`` that do not extend it, or
        when its data no longer loads as :func:`check` wants.

    """
    run = resumable(path, other_host)
    cfg = RunConfig.from_mapping(run.view.config, source=str(run.run_dir.config_file))
    if asked is not None:
        changed = _changed_settings(cfg, asked)
        if changed:
            raise UsageError(
                f"the run config differs from run {run.view.run_id}'s settings in "
                f"{', '.join(changed)}: a resumed run keeps its settings (only rounds may grow)"
            )
        rounds = asked.round_limit if asked.round_limit > cfg.round_limit else None
    name, done = run.view.run_id, run.checkpoint.round
    stopped_early = run.checkpoint.state["plan"]["stop_reason"]
    if rounds is not None:
        if cfg.auto_rounds:
            raise UsageError(
                f"run {name} chooses its rounds itself (rounds auto, at most "
                f"{cfg.round_limit}): --rounds cannot extend it"
            )
        if rounds <= cfg.round_limit:
            raise UsageError(
                f"--rounds {rounds} does not extend run {name}: it runs {cfg.round_limit} rounds"
            )
        if stopped_early:
            raise UsageError(f"run {name} ended at round {done} ({stopped_early}): it cannot go on")
        cfg = cfg.replace(rounds=rounds)
    elif run.view.state is RunState.FINISHED:
        raise UsageError(
            f"run {name} finished its {cfg.round_limit} rounds; give --rounds N (more than "
            f"{cfg.round_limit}) to extend it"
        )
    warnings = []
    if cfg.data == NODE_DATA:
        check_strategy(cfg)  # deployed: the rows are the SuperNodes', read by them
        model_params(cfg)
        warnings.append(
            "deployed, a SuperNode keeps its state between rounds (SCAFFOLD's c_i, "
            "record-level DP's spent rounds) for a resumed run only with a state-dir in its "
            "node config; without one it starts that state afresh"
        )
    else:
        check(cfg)
    if registry.get(cfg.strategy).state is None:
        warnings.append(
            f"strategy '{cfg.strategy}' declares no state to checkpoint: whatever it carries "
            f"between rounds starts afresh after round {done}"
        )
    if rounds is not None:
        run.run_dir.write_config({**run.view.config, "rounds": rounds})
    return cfg, run, warnings


def _changed_settings(saved: RunConfig, asked: RunConfig) -> list[str]:
    """The settings, by key, in which ``asked`` differs from the run's ``saved`` ones.

    Both are compared resolved (the plugins' defaults filled in), the
    operational settings left out (:data:`~fedapp.runs.checkpoints.OPERATIONAL_SETTINGS`).
    """

    def resolved(cfg: RunConfig) -> dict[str, Any]:
        plugin = registry.get(cfg.strategy)
        return cfg.replace(
            strategy_params=plugin.resolve(cfg.strategy_params),
            model_params=model_params(cfg),
            run_dir=None,
        ).to_dict()

    ours, theirs = resolved(saved), resolved(asked)
    keys = (ours.keys() | theirs.keys()) - OPERATIONAL_SETTINGS
    return sorted(k for k in keys if ours.get(k) != theirs.get(k))
