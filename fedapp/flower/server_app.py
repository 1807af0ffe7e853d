"""The ServerApp: the run strategy on Flower's server loop, then the run's end.

:func:`server_components` builds the :class:`~fedapp.flower.strategy.RunStrategy`
with its seeded client manager and round count; :func:`build_server_app`
runs them on Flower's legacy server loop, or, with secure aggregation, on
Flower's SecAgg+ workflow (:mod:`fedapp.flower.secagg`), and then ends the run
with :func:`~fedapp.flower.outcome.finish_run`, unless the caller (the
simulation driver, which adds its baselines first) does that itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flwr.common import Context
from flwr.server import Grid, ServerApp, ServerAppComponents, ServerConfig
from flwr.server.compat import start_grid

from fedapp.flower import secagg
from fedapp.flower.client_manager import SeededClientManager
from fedapp.flower.outcome import end_unfinished, finish_run
from fedapp.flower.resume import ResumedRounds, run_strategy
from fedapp.flower.run_setup import prepare_resume, prepare_run
from fedapp.flower.strategy import RunStrategy
from fedapp.runs import Recorder
from fedapp.runs.checkpoints import Checkpoint
from fedapp.runs.resuming import newest_unfinished, reopen
from fedapp.settings import RunConfig


def server_components(
    cfg: RunConfig, recorder: Recorder, checkpoint: Checkpoint | None = None
) -> tuple[ServerAppComponents, RunStrategy]:
    """The server's strategy, client manager and round count for ``cfg``.

    Resumed from ``checkpoint``, Flower runs the rounds after its round,
    which the strategy sees by their numbers in the run (:class:`ResumedRounds`).
    """
    manager = SeededClientManager(
        cfg.seed, cfg.resolved_min_available_clients, wait=cfg.resolved_round_timeout
    )
    strategy = RunStrategy(cfg, recorder, manager, checkpoint)
    done = strategy.rounds_done
    # Flower gives each round's messages this time to live: a reply later than
    # that comes back as an error, a failure of the round.
    config = ServerConfig(
        num_rounds=strategy.num_rounds - done, round_timeout=cfg.resolved_round_timeout
    )
    flower_strategy = ResumedRounds(strategy, done) if checkpoint is not None else strategy
    components = ServerAppComponents(
        strategy=flower_strategy, config=config, client_manager=manager
    )
    return components, strategy


def run_rounds(grid: Grid, context: Context, components: ServerAppComponents) -> RunStrategy:
    """Run every round of ``components``' :class:`RunStrategy` on ``grid``.

    Without secure aggregation, Flower's legacy server loop, exactly what
    ``ServerApp(server_fn=...)`` runs. With it, Flower's default workflow with
    the SecAgg+ fit workflow, which only a ``main`` function can run; the
    statistics query, evaluation and records stay the same.
    """
    strategy = run_strategy(components.strategy)
    if strategy.cfg.secure_aggregation:
        secagg.run(grid, context, components, strategy.cfg, lambda: strategy.largest_client)
    else:
        start_grid(
            grid=grid,
            server=components.server,
            config=components.config,
            strategy=components.strategy,
            client_manager=components.client_manager,
        )
    return strategy


def build_server_app(
    components_fn: Callable[[Context], ServerAppComponents], finish: bool = True
) -> ServerApp:
    """A ServerApp running the :class:`RunStrategy` that ``components_fn`` builds.

    Parameters
    ----------
    components_fn : Callable[[Context], ServerAppComponents]
        Builds the components (:func:`server_components`) from Flower's context.
    finish : bool
        End the run after its rounds (``summary.json``, state ``finished``).
        The simulation driver passes ``False``: it adds the baselines to the
        summary and then ends the run with the same function.

    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        components = components_fn(context)
        strategy = run_strategy(components.strategy)
        try:
            run_rounds(grid, context, components)
            if finish:
                finish_run(strategy.recorder, strategy.outcome)
        except BaseException as err:
            # Deployed, this process is the run's only recorder: a failure or
            # a stop must reach status.json (the simulation driver does its own).
            if finish:
                end_unfinished(strategy.recorder, err, strategy.keep_stopped)
            raise

    return app


def _server_fn(context: Context) -> ServerAppComponents:
    """Server components from Flower's run config (``flwr run``).

    With ``resume = true`` the newest unfinished run under ``runs-dir`` goes
    on from its checkpoint, as ``fedapp resume`` does it in simulation; the
    run config must hold that run's settings (its rounds may be more).
    """
    cfg = RunConfig.from_flwr(context.run_config)
    if not cfg.resume:
        run_dir = prepare_run(cfg, Path(cfg.runs_dir))
        components, _ = server_components(cfg, Recorder(run_dir, cfg.round_limit))
        return components
    path = newest_unfinished(Path(cfg.runs_dir))
    # The previous ServerApp may have run in a pod since replaced (another
    # host name): the SuperLink started this run, so that one is gone.
    saved, run, warnings = prepare_resume(path, other_host=True, asked=cfg)
    checkpoint = run.checkpoint
    recorder = Recorder(
        run.run_dir, saved.round_limit,
        elapsed=float(checkpoint.state["time"]), round_=checkpoint.round,
    )  # fmt: skip
    reopen(run, saved.round_limit, recorder, {"warnings": warnings} if warnings else None)
    components, _ = server_components(saved, recorder, checkpoint)
    return components


# The Flower App component (`flwr run`).
app = build_server_app(_server_fn)
