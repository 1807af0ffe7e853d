"""Shared fixtures: small configs and plugins registered explicitly for a test."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fedapp import registry
from fedapp.registry import ModelPlugin, StrategyPlugin
from fedapp.settings import RunConfig


@pytest.fixture
def small_cfg() -> RunConfig:
    """A federation small enough for unit tests (no Ray involved)."""
    return RunConfig(clients=3, rounds=2, demo_rows=900, seed=7)


@pytest.fixture
def install_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., None]]:
    """Install a plugin as a real distribution with entry points.

    Writes a module and a ``.dist-info`` folder onto ``sys.path``, exactly what
    ``pip install`` of a third-party package would leave behind, and lets
    ``importlib.metadata`` discover it. ``install(name, module, source)``
    declares the entry point ``name = module:plugin`` of the strategy group;
    ``group=registry.MODEL_GROUP`` makes it a model plugin.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def install(name: str, module: str, source: str, group: str = registry.GROUP) -> None:
        (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = site / f"{module}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            f"[{group}]\n{name} = {module}:plugin\n", encoding="utf-8"
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


def _registering(register: Callable[[Any], Callable[[], None]]) -> Iterator[Any]:
    """A fixture's ``register(plugin)``: registers and returns the undo, run after the test."""
    undos: list[Callable[[], None]] = []

    def registering(plugin: Any) -> Callable[[], None]:
        undo = register(plugin)
        undos.append(undo)
        return undo

    yield registering
    for undo in reversed(undos):
        undo()


@pytest.fixture
def register_plugin() -> Iterator[Callable[[StrategyPlugin], Callable[[], None]]]:
    """Register strategy plugins in code for one test, and undo that after it.

    ``register(plugin)`` returns the undo function too, for a test about undoing.
    """
    yield from _registering(registry.register)


@pytest.fixture
def register_model() -> Iterator[Callable[[ModelPlugin], Callable[[], None]]]:
    """Register model plugins in code for one test, and undo that after it."""
    yield from _registering(registry.register_model)


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


@pytest.fixture
def resnet_plugin() -> str:
    """Source of a third-party model plugin: a small residual MLP (README's example)."""
    return RESNET_PLUGIN


# The README's "Writing a model plugin" example, to the letter.
RESNET_PLUGIN = """
    import keras

    from fedapp.registry import ModelPlugin, Param


    def relu_layer(width, seed):
        init = keras.initializers.GlorotUniform(seed)
        return keras.layers.Dense(width, activation="relu", kernel_initializer=init)


    def build(n_features, output, params, seed):
        width = params["width"]
        inputs = keras.Input(shape=(n_features,))
        x = relu_layer(width, seed)(inputs)
        for block in range(params["blocks"]):
            h = relu_layer(width, seed + 1 + block)(x)
            x = keras.layers.Add()([x, h])  # the skip connection
        # Raw scores, one per output unit (no activation): fedapp adds the head.
        init = keras.initializers.GlorotUniform(seed + 999)
        scores = keras.layers.Dense(output.units, kernel_initializer=init)(x)
        return keras.Model(inputs, scores, name="my_pkg_resnet")


    WIDTH = Param("width", int, 32, "Units of every layer.", minimum=1)
    BLOCKS = Param("blocks", int, 2, "Residual blocks after the first layer.", minimum=0)
    SUMMARY = "A small residual MLP: dense blocks with skip connections."
    plugin = ModelPlugin("my_pkg_resnet", SUMMARY, build, params=(WIDTH, BLOCKS))
"""
