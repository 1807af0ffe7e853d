"""Shared fixtures: small configs and plugins registered explicitly for a test."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fedapp import registry
from fedapp.registry import StrategyPlugin
from fedapp.settings import RunConfig


@pytest.fixture
def small_cfg() -> RunConfig:
    """A federation small enough for unit tests (no Ray involved)."""
    return RunConfig(clients=3, rounds=2, demo_rows=900, seed=7)


@pytest.fixture
def install_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, str, str], None]]:
    """Install a strategy plugin as a real distribution with entry points.

    Writes a module and a ``.dist-info`` folder onto ``sys.path``, exactly what
    ``pip install`` of a third-party package would leave behind, and lets
    ``importlib.metadata`` discover it. ``install(name, module, source)``
    declares the entry point ``name = module:plugin``.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def install(name: str, module: str, source: str) -> None:
        (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = site / f"{module}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            f"[{registry.GROUP}]\n{name} = {module}:plugin\n", encoding="utf-8"
        )
        modules.append(module)
        # The path finders cache directory listings; they must see the new files.
        importlib.invalidate_caches()
        registry.refresh()

    yield install
    for module in modules:
        # Another test may install different source under the same module name.
        sys.modules.pop(module, None)
    registry.refresh()


@pytest.fixture
def register_plugin() -> Iterator[Callable[[StrategyPlugin], Callable[[], None]]]:
    """Register strategy plugins in code for one test, and undo that after it.

    ``register(plugin)`` returns the undo function too, for a test about undoing.
    """
    undos: list[Callable[[], None]] = []

    def register(plugin: StrategyPlugin) -> Callable[[], None]:
        undo = registry.register(plugin)
        undos.append(undo)
        return undo

    yield register
    for undo in reversed(undos):
        undo()


@pytest.fixture
def median_plugin() -> str:
    """Source of a third-party plugin wrapping Flower's FedMedian."""
    return MEDIAN_PLUGIN


MEDIAN_PLUGIN = """
    from flwr.server.strategy import FedMedian

    from fedapp.registry import Param, StrategyPlugin


    def _build(common, params):
        strategy = FedMedian(**common)
        strategy.tag = params["tag"]
        return strategy


    plugin = StrategyPlugin(
        name="median",
        summary="Coordinate-wise median of client models.",
        build=_build,
        params=(Param("tag", str, "none", "A label, to show parameters reach the plugin."),),
    )
"""
