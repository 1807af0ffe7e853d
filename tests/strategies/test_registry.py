from collections.abc import Callable
from typing import Any

import pytest

from fedapp import registry
from fedapp.errors import UsageError
from fedapp.flower.run_setup import check_strategy
from fedapp.registry import Param, StrategyPlugin
from fedapp.settings import RunConfig

Register = Callable[[StrategyPlugin], Callable[[], None]]
Install = Callable[[str, str, str], None]


def make_plugin(name: str, summary: str = "A strategy made for one test.") -> StrategyPlugin:
    def build(common: dict[str, Any], params: dict[str, Any]) -> Any:
        raise AssertionError("these tests never build a strategy")

    return StrategyPlugin(name=name, summary=summary, build=build)


# --- Built-ins, through the entry points ------------------------------------


def test_builtins_come_through_entry_points() -> None:
    # Execute
    plugins = registry.installed()

    # Assert
    assert {"fedavg", "fedprox", "weighted"} <= set(plugins)


def test_builtins_declare_their_parameters() -> None:
    # Execute
    fedprox = registry.get("fedprox")

    # Assert
    assert [p.name for p in fedprox.params] == ["proximal-mu"]


def test_unknown_strategy_lists_the_installed_ones() -> None:
    # Execute / Assert
    with pytest.raises(
        UsageError, match="unknown strategy 'fedsgd'; installed: bulyan, fedadagrad"
    ):
        registry.get("fedsgd")


# --- Parameters ---------------------------------------------------------------


def test_parameters_take_their_defaults() -> None:
    # Execute
    resolved = registry.get("fedprox").resolve({})

    # Assert
    assert resolved == {"proximal-mu": 0.1}


def test_parameters_are_parsed_from_strings() -> None:
    # Execute
    resolved = registry.get("fedprox").resolve({"proximal-mu": "0.5"})

    # Assert
    assert resolved == {"proximal-mu": 0.5}


@pytest.mark.parametrize(
    ("strategy", "values", "message"),
    [
        ("fedprox", {"proximal-mu": "-1"}, r"--proximal-mu must be >= 0, got -1.0"),
        ("fedprox", {"proximal-mu": "abc"}, "--proximal-mu expects float, got 'abc'"),
        ("fedprox", {"mu": 1}, "has no parameter --mu"),
        ("weighted", {"policy": "random"}, "--policy must be one of examples, uniform, custom"),
        ("fedprox", {"proximal-mu": "inf"}, "--proximal-mu must be a finite number, got 'inf'"),
        ("fedprox", {"proximal-mu": "nan"}, "--proximal-mu must be a finite number, got 'nan'"),
        ("scaffold", {"local-learning-rate": "0"}, "--local-learning-rate must be > 0, got 0.0"),
    ],
    ids=[
        "below-minimum",
        "wrong-type",
        "undeclared",
        "not-a-choice",
        "infinite",
        "nan",
        "at-an-exclusive-bound",
    ],
)
def test_bad_parameters_are_refused(strategy: str, values: dict[str, Any], message: str) -> None:
    # Prepare
    plugin = registry.get(strategy)

    # Execute / Assert
    with pytest.raises(UsageError, match=message):
        plugin.resolve(values)


@pytest.mark.parametrize(("raw", "expected"), [("yes", True), (False, False)])
def test_bool_parameters_accept_words_and_bools(raw: Any, expected: bool) -> None:
    # Prepare
    flag = Param("flag", bool, False, "")

    # Execute
    value = flag.parse(raw)

    # Assert
    assert value is expected


def test_bool_parameters_refuse_other_words() -> None:
    # Prepare
    flag = Param("flag", bool, False, "")

    # Execute / Assert
    with pytest.raises(UsageError):
        flag.parse("maybe")


def test_int_parameters_parse_strings() -> None:
    # Prepare
    count = Param("count", int, 1, "", minimum=1)

    # Execute
    value = count.parse("3")

    # Assert
    assert value == 3


def test_int_parameters_refuse_fractions() -> None:
    # Prepare
    count = Param("count", int, 1, "", minimum=1)

    # Execute / Assert
    with pytest.raises(UsageError):
        count.parse(2.5)


def test_custom_weights_must_match_the_clients() -> None:
    # Prepare
    cfg = RunConfig(strategy="weighted", strategy_params={"policy": "custom"})

    # Execute / Assert
    with pytest.raises(UsageError, match="one value per client \\(3\\), got 0"):
        check_strategy(cfg)


def test_custom_weights_one_per_client_are_accepted() -> None:
    # Prepare
    params = {"policy": "custom", "client-weights": "1,2,1"}
    cfg = RunConfig(strategy="weighted", strategy_params=params)

    # Execute / Assert: no UsageError
    check_strategy(cfg)


# --- Plugins registered in code ----------------------------------------------


def test_a_registered_plugin_is_installed(register_plugin: Register) -> None:
    # Prepare
    toy = make_plugin("toy")

    # Execute
    register_plugin(toy)

    # Assert
    assert registry.installed()["toy"] is toy
    assert registry.get("toy") is toy


def test_a_registered_plugin_replaces_the_installed_one_of_its_name(
    register_plugin: Register,
) -> None:
    # Prepare
    mine = make_plugin("fedavg", summary="Not Flower's FedAvg.")

    # Execute
    register_plugin(mine)

    # Assert
    assert registry.get("fedavg") is mine


def test_a_second_registration_replaces_the_first(register_plugin: Register) -> None:
    # Prepare
    register_plugin(make_plugin("toy", summary="First."))
    second = make_plugin("toy", summary="Second.")

    # Execute
    register_plugin(second)

    # Assert
    assert registry.get("toy") is second


def test_undoing_a_second_registration_brings_back_the_first(register_plugin: Register) -> None:
    # Prepare
    first = make_plugin("toy", summary="First.")
    register_plugin(first)
    undo = register_plugin(make_plugin("toy", summary="Second."))

    # Execute
    undo()

    # Assert
    assert registry.get("toy") is first


def test_undoing_a_registration_brings_back_the_installed_plugin(
    register_plugin: Register,
) -> None:
    # Prepare
    original = registry.get("fedavg")
    undo = register_plugin(make_plugin("fedavg"))

    # Execute
    undo()

    # Assert
    assert registry.get("fedavg") is original


def test_undoing_a_registration_removes_a_new_name(register_plugin: Register) -> None:
    # Prepare
    undo = register_plugin(make_plugin("toy"))

    # Execute
    undo()

    # Assert
    assert "toy" not in registry.installed()


def test_installed_is_sorted_by_name(register_plugin: Register) -> None:
    # Prepare: registered last, sorted first
    register_plugin(make_plugin("zzz-last"))
    register_plugin(make_plugin("aaa-first"))

    # Execute
    names = list(registry.installed())

    # Assert
    assert names == sorted(names)
    assert names[0] == "aaa-first"


def test_refresh_keeps_the_plugins_registered_in_code(register_plugin: Register) -> None:
    # Prepare
    toy = make_plugin("toy")
    register_plugin(toy)

    # Execute
    registry.refresh()

    # Assert
    assert registry.get("toy") is toy


def test_register_refuses_what_is_not_a_plugin() -> None:
    # Execute / Assert
    with pytest.raises(TypeError, match="expected a StrategyPlugin, got dict"):
        registry.register({"name": "toy"})  # type: ignore[arg-type]


# --- Third-party plugins, through real entry points ----------------------------


def test_third_party_plugin_is_discovered(install_plugin: Install, median_plugin: str) -> None:
    # Prepare
    install_plugin("median", "fedapp_median_plugin", median_plugin)

    # Execute
    plugin = registry.get("median")

    # Assert
    assert plugin.summary.startswith("Coordinate-wise median")
    strategy = plugin.build({"min_available_clients": 2}, plugin.resolve({"tag": "x"}))
    assert type(strategy).__name__ == "FedMedian" and strategy.tag == "x"


@pytest.fixture
def broken_plugins(install_plugin: Install) -> None:
    """Two broken third-party plugins: one is not a plugin, one fails to import."""
    install_plugin("notaplugin", "fedapp_notaplugin_plugin", "plugin = 42\n")
    install_plugin(
        "needscuda", "fedapp_needscuda_plugin", "raise ImportError('needs the cuda extra')\n"
    )


@pytest.mark.usefixtures("broken_plugins")
def test_broken_plugins_are_listed_apart_and_the_rest_still_load() -> None:
    # Execute
    working = registry.installed()
    broken = registry.broken()

    # Assert
    assert {"fedavg", "fedprox", "weighted"} <= set(working)
    assert not {"notaplugin", "needscuda"} & set(working)
    assert {name: b.error for name, b in broken.items()} == {
        "needscuda": "strategy plugin 'needscuda' (fedapp_needscuda_plugin:plugin) "
        "failed to load: ImportError: needs the cuda extra",
        "notaplugin": "strategy plugin 'notaplugin' (fedapp_notaplugin_plugin:plugin) "
        "is not a StrategyPlugin (got int)",
    }


@pytest.mark.usefixtures("broken_plugins")
def test_get_of_a_broken_plugin_says_it_is_installed_but_broken() -> None:
    # Execute / Assert
    with pytest.raises(
        UsageError,
        match=r"strategy 'needscuda' is installed but broken: .* ImportError: needs the cuda extra",
    ):
        registry.get("needscuda")
