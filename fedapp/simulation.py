"""Run a federation on Flower's simulation engine and fill the run directory.

``run_simulation`` is deprecated in Flower 1.42 in favour of ``flwr run``; it
is still the only in-process entry to the simulation runtime, so it is called
from :func:`_run_flower_simulation` alone and can be swapped there.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedapp.flower.run_setup import check, prepare_run
from fedapp.runs import RunDir
from fedapp.settings import RunConfig

Event = dict[str, Any]


def simulate(
    cfg: RunConfig,
    root: Path = Path("runs"),
    on_event: Callable[[Event], None] | None = None,
    verbose: bool = False,
) -> tuple[RunDir, dict[str, Any]]:
    """Run ``cfg`` on the simulation engine; return the run directory and summary.

    The run directory ends ``finished`` with ``summary.json`` and
    ``model.keras``, or ``failed``/``stopped`` with the reason; it never looks
    finished when it is not.
    """
    run_dir = prepare_run(cfg, root)
    started = time.monotonic()
    _stop_on_sigterm()
    try:
        from fedapp.flower.client_app import build_client_app
        from fedapp.flower.server_app import server_components

        components, strategy = server_components(cfg, run_dir, on_event, finalize=False)
        _run_flower_simulation(components, build_client_app(cfg), cfg.clients, verbose)
        if "federated" not in strategy.final:
            raise RuntimeError("the simulation ended before its last round")
        summary = strategy.summary()
        if cfg.baseline:
            from fedapp.data.stats import Preprocessor
            from fedapp.learning.baselines import GlobalTestTrainer, centralized, local_only

            prep = Preprocessor.from_json(strategy.preprocessing)
            trainer = GlobalTestTrainer(cfg, prep)  # one compiled model for all baselines
            summary["centralized"] = centralized(cfg, prep, trainer)
            summary["gap"] = {
                k: summary["federated"][k] - summary["centralized"][k] for k in summary["federated"]
            }
            summary["local_only"] = local_only(cfg, prep, trainer)
        summary["wall_seconds"] = round(time.monotonic() - started, 3)
        run_dir.write_summary(summary)
        strategy.mark_finished()
        return run_dir, summary
    except KeyboardInterrupt as stop:
        _set_final(run_dir, "stopped", cfg, f"stopped ({stop or 'SIGINT'})")
        raise
    except BaseException as err:
        _set_final(run_dir, "failed", cfg, failure_reason(err))
        raise


def _set_final(run_dir: RunDir, state: str, cfg: RunConfig, reason: str) -> None:
    try:
        current = run_dir.read_status().get("round", 0)
    except (OSError, ValueError):
        current = 0
    run_dir.set_status(state, current, cfg.rounds, error=reason)


def failure_reason(err: BaseException) -> str:
    """The innermost message: Flower wraps the app's exception in its own."""
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{type(err).__name__}: {err}"


def _stop_on_sigterm() -> None:
    """Treat SIGTERM (e.g. a UI's stop button) like Ctrl-C: the run ends ``stopped``."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _run_flower_simulation(
    components: Any, client_app: Any, num_clients: int, verbose: bool
) -> None:
    """Start Flower's simulation runtime (Ray backend) with one actor per core."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Opt in to Ray's future behaviour now; it only silences a FutureWarning.
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    import ray

    if not ray.is_initialized():
        # Started here rather than by Flower: without a per-job runtime_env
        # (fedapp is installed, its actors need no PYTHONPATH), Ray can hand
        # the actors the workers it pre-started, and they boot while this
        # process imports TensorFlow below.
        ray.init(
            num_cpus=len(os.sched_getaffinity(0)),  # the cores this process may use
            include_dashboard=False,
            log_to_driver=verbose,
            logging_level=logging.INFO if verbose else logging.ERROR,
        )
        _stop_on_sigterm()  # again: ray.init turns SIGTERM into SystemExit
    from flwr.simulation import run_simulation

    from fedapp.flower.server_app import build_server_app

    if not verbose:
        logging.getLogger("flwr").setLevel(logging.ERROR)
    backend_config = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}}
    run_simulation(
        server_app=build_server_app(lambda _context: components),
        client_app=client_app,
        num_supernodes=num_clients,
        backend_config=backend_config,
        verbose_logging=verbose,
    )


__all__ = ["check", "failure_reason", "prepare_run", "simulate"]
