"""Run a federation on Flower's simulation engine and fill the run directory.

``run_simulation`` is deprecated in Flower 1.42 in favour of ``flwr run``; it
is still the only in-process entry to the simulation runtime, so it is called
from :func:`_run_flower_simulation` alone and can be swapped there.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedapp.flower.outcome import RunOutcome, end_unfinished, failure_reason, finish_run
from fedapp.flower.run_setup import check, prepare_resume, prepare_run
from fedapp.runs import (
    EventListener,
    PhaseListener,
    Recorder,
    RunDir,
    requested_stop,
    sigterm_stops,
)
from fedapp.runs.checkpoints import Checkpoint
from fedapp.runs.resuming import Resumable, reopen
from fedapp.settings import RunConfig

if TYPE_CHECKING:  # the strategy module loads TensorFlow: only a run imports it
    from collections.abc import Iterator

    from fedapp.flower.strategy import RunStrategy


def simulate(
    cfg: RunConfig,
    root: Path = Path("runs"),
    on_event: EventListener | None = None,
    verbose: bool = False,
    on_phase: PhaseListener | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Run ``cfg`` on the simulation engine; return the run directory and summary.

    The run directory ends ``finished`` with ``summary.json`` and
    ``model.keras``, or ``failed``/``stopped`` with the reason; it never looks
    finished when it is not.

    Parameters
    ----------
    cfg : RunConfig
        The run's settings.
    root : Path
        Where a generated run directory goes.
    on_event : EventListener | None
        Called with each event once it is in ``metrics.jsonl`` (progress display).
    verbose : bool
        Show Flower's and Ray's logs.
    on_phase : PhaseListener | None
        Called with each step outside the rounds (engine start, the clients'
        statistics, the baselines) once it is in ``status.json``.

    """
    sigterm_stops()
    run_dir = prepare_run(cfg, root)
    recorder = Recorder(run_dir, cfg.round_limit, on_event, on_phase)
    return _run(cfg, recorder, None, verbose)


def resume(
    path: Path,
    rounds: int | None = None,
    other_host: bool = False,
    on_event: EventListener | None = None,
    verbose: bool = False,
    on_phase: PhaseListener | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Go on with the run in ``path`` from its newest checkpoint, to its end or to ``rounds``.

    Its ``metrics.jsonl`` is rewound to the checkpoint's round and gets a
    ``resumed`` event; then the run goes on as :func:`simulate`'s would
    have, and ends the same way.

    Parameters
    ----------
    path : Path
        The run's directory.
    rounds : int | None
        Extend the run to this many rounds (a finished run needs it).
    other_host : bool
        Resume a run recorded as running on another machine.
    on_event, verbose, on_phase
        As :func:`simulate`'s.

    Raises
    ------
    UsageError
        When the run cannot be resumed (see
        :func:`fedapp.flower.run_setup.prepare_resume`); nothing is changed then.

    """
    sigterm_stops()
    cfg, run, warnings = prepare_resume(path, rounds, other_host)
    return continue_run(cfg, run, warnings, on_event, verbose, on_phase)


def continue_run(
    cfg: RunConfig,
    run: Resumable,
    warnings: list[str],
    on_event: EventListener | None = None,
    verbose: bool = False,
    on_phase: PhaseListener | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """:func:`resume`'s second half: go on with a run :func:`prepare_resume` has checked."""
    sigterm_stops()
    checkpoint = run.checkpoint
    recorder = Recorder(
        run.run_dir, cfg.round_limit, on_event, on_phase,
        elapsed=float(checkpoint.state["time"]), round_=checkpoint.round,
    )  # fmt: skip
    reopen(run, cfg.round_limit, recorder, {"warnings": warnings} if warnings else None)
    return _run(cfg, recorder, checkpoint, verbose)


def _run(
    cfg: RunConfig, recorder: Recorder, checkpoint: Checkpoint | None, verbose: bool
) -> tuple[RunDir, dict[str, Any]]:
    """Run the rounds of a prepared run (from ``checkpoint``, if given), then end it."""
    run_dir = recorder.run_dir
    strategy: RunStrategy | None = None
    try:
        recorder.phase("engine", "starting the simulation engine")
        _start_ray(verbose)
        # TensorFlow and Flower's server load only now: after the checks, so a
        # bad setting fails fast, and after ray.init, so Ray's actors boot meanwhile.
        from fedapp.flower.client_app import build_client_app
        from fedapp.flower.server_app import server_components

        components, strategy = server_components(cfg, recorder, checkpoint)
        client_app = build_client_app(cfg, run_dir.checkpoints_dir / "clients")
        _run_flower_simulation(components, client_app, cfg.clients, verbose)
        outcome = strategy.outcome
        if not outcome.complete:
            raise RuntimeError("the simulation ended before its last round")
        extra = baselines(cfg, outcome, recorder) if cfg.baseline else {}
        summary = finish_run(recorder, outcome, extra)
        return run_dir, summary
    except BaseException as err:
        stop = end_unfinished(recorder, err, strategy.keep_stopped if strategy else lambda: None)
        # A run that did not finish leaves no Ray process behind (a finished
        # one keeps Ray for the process's next run; Ray stops at exit), unless
        # its listener ended it: the process goes on to its next run (a tuner's trial).
        if requested_stop(err) is None:
            _stop_ray()
        if stop is None:
            raise
        # Whatever Flower or Ray wrapped it in, the caller sees a stop.
        raise RunStopped(stop, run_dir) from None


class RunStopped(KeyboardInterrupt):
    """A run was stopped (Ctrl-C, SIGTERM); its directory says so.

    Parameters
    ----------
    signal_name : str
        The signal that stopped it.
    run_dir : RunDir
        The stopped run's directory.

    """

    def __init__(self, signal_name: str, run_dir: RunDir) -> None:
        super().__init__(signal_name)
        self.run_dir = run_dir


def baselines(
    cfg: RunConfig, outcome: RunOutcome, recorder: Recorder | None = None
) -> dict[str, Any]:
    """The centralized and local-only baselines of a finished run, and the federation's gap.

    Both reuse the run's federated preprocessing and one compiled model
    (:class:`~fedapp.learning.baselines.GlobalTestTrainer`); ``recorder``, if
    given, is told the progress (one model pooled, then one per client).
    """
    # TensorFlow: a run without baselines never needs it in this function.
    from fedapp.data.stats import Preprocessor
    from fedapp.learning.baselines import GlobalTestTrainer, centralized, gap, local_only

    assert outcome.federated is not None
    models = 1 + cfg.clients

    def progress(done: int) -> None:
        if recorder is not None:
            recorder.phase("baselines", "training the centralized and local-only baselines",
                           done, models)  # fmt: skip

    prep = Preprocessor.from_json(outcome.preprocessing)
    # As many epochs as the rounds that made the kept model: a fair comparison.
    trainer = GlobalTestTrainer(cfg, prep, rounds=outcome.kept_round)
    progress(0)
    pooled = centralized(cfg, prep, trainer)
    # Before the local-only models replace the centralized one in the trainer.
    calibrated = trainer.calibrate()
    progress(1)
    out = {
        "centralized": pooled,
        "gap": gap(outcome.federated, pooled),
        "local_only": local_only(cfg, prep, trainer, lambda done: progress(1 + done)),
    }
    if calibrated is not None:
        out["centralized_threshold"] = calibrated.to_dict()
    return out


def _stop_ray() -> None:
    """Stop the Ray node this process started, so no Ray process outlives the run.

    ``ray.shutdown`` ends the processes the driver started; the agents the
    raylet starts may be mid start-up when a stop comes, and then miss the
    raylet's death and live on as orphans. So every process below this one
    before the shutdown is waited for briefly afterwards, then killed.
    """
    ray = sys.modules.get("ray")
    if ray is None:
        return
    # psutil: only a run that did not finish looks for leftover processes.
    import psutil

    _adopt_orphans()
    below = psutil.Process().children(recursive=True)
    # In a thread of its own and bounded: interrupted mid start-up, Ray's
    # shutdown can wait for a node that never answers, and a stop must end.
    stopper = threading.Thread(target=_shutdown, args=(ray,), name="ray-shutdown", daemon=True)
    stopper.start()
    stopper.join(_RAY_SHUTDOWN_TIMEOUT)
    if stopper.is_alive():
        logging.getLogger(__name__).warning(
            "Ray did not shut down within %g s; ending its processes", _RAY_SHUTDOWN_TIMEOUT
        )
    # Those started since, and orphans adopted meanwhile, end too.
    below = list({*below, *psutil.Process().children(recursive=True)})
    _, alive = psutil.wait_procs(below, timeout=_RAY_GRACE)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=_RAY_GRACE)


def _adopt_orphans() -> None:
    """Become the parent of orphaned descendants (Linux), so that they can be found and ended.

    A raylet that dies leaves its agents to the nearest "subreaper" instead
    of init, and so below this process.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


# prctl(2)'s option number (linux/prctl.h).
_PR_SET_CHILD_SUBREAPER = 36


def _shutdown(ray: Any) -> None:
    try:
        ray.shutdown()
    except Exception:  # a half-started node may fail to stop cleanly
        logging.getLogger(__name__).debug("ray.shutdown failed", exc_info=True)


# Seconds ray.shutdown may take, then Ray's processes get to end by themselves.
_RAY_SHUTDOWN_TIMEOUT = 10.0
_RAY_GRACE = 3.0


def _start_ray(verbose: bool) -> None:
    """Start Ray with one worker per core this process may use (once per process)."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Opt in to Ray's future behaviour now; it only silences a FutureWarning.
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    # Ray: seconds of imports, for a simulation only.
    import ray

    if ray.is_initialized():
        return
    # Started here rather than by Flower: without a per-job runtime_env
    # (fedapp is installed, its actors need no PYTHONPATH), Ray can hand
    # the actors the workers it pre-started, and they boot while this
    # process imports TensorFlow.
    with _keeping_the_sigterm_handler(ray):
        ray.init(
            # Without an address Ray joins the cluster of the machine's last
            # `ray start`, even one long stopped, and then refuses num_cpus:
            # a simulation always starts its own instance.
            address="local",
            num_cpus=len(os.sched_getaffinity(0)),  # the cores this process may use
            include_dashboard=False,
            log_to_driver=verbose,
            logging_level=logging.INFO if verbose else logging.ERROR,
        )
    sigterm_stops()  # in case a Ray without that hook set its own


@contextlib.contextmanager
def _keeping_the_sigterm_handler(ray: Any) -> Iterator[None]:
    """Keep fedapp's SIGTERM handler while ``ray.init`` runs.

    Ray sets its own for the driver (``sys.exit`` with the signal's number,
    wherever it lands); a SIGTERM in the seconds ``ray.init`` forks Ray's
    processes then hits ``logging``'s fork hooks, leaves its lock held and
    hangs the run. fedapp's handler waits for the fork to end. The hook is
    Ray's private one: where it is missing, Ray's handler is replaced after.
    """
    utils = getattr(getattr(ray, "_private", None), "utils", None)
    original = getattr(utils, "set_sigterm_handler", None)
    if original is None:
        yield
        return
    utils.set_sigterm_handler = lambda _handler: None
    try:
        yield
    finally:
        utils.set_sigterm_handler = original


def _run_flower_simulation(
    components: Any, client_app: Any, num_clients: int, verbose: bool
) -> None:
    """Run Flower's simulation runtime (Ray backend), one client actor per core."""
    # Flower's simulation runtime, for a simulation only.
    from flwr.simulation import run_simulation

    from fedapp.flower.server_app import build_server_app

    if not verbose:
        # A failed client's traceback comes once per round from Flower's
        # backend; the run's events and the CLI name who failed and why, and a
        # failed run's reason reaches status.json. --verbose shows them all.
        logging.getLogger("flwr").setLevel(logging.CRITICAL)
    backend_config = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}}
    run_simulation(
        # `simulate` ends the run itself, after the baselines.
        server_app=build_server_app(lambda _context: components, finish=False),
        client_app=client_app,
        num_supernodes=num_clients,
        backend_config=backend_config,
        verbose_logging=verbose,
    )


__all__ = [
    "RunStopped",
    "check",
    "continue_run",
    "failure_reason",
    "prepare_resume",
    "prepare_run",
    "resume",
    "simulate",
]
