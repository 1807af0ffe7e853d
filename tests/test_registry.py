import pytest

from fedapp import registry
from fedapp.config import RunConfig
from fedapp.errors import UsageError
from fedapp.server import check_strategy


def test_builtins_come_through_entry_points() -> None:
    assert {"fedavg", "fedprox", "weighted"} <= set(registry.installed())
    assert [p.name for p in registry.get("fedprox").params] == ["proximal-mu"]


def test_unknown_strategy_lists_the_installed_ones() -> None:
    with pytest.raises(
        UsageError, match="unknown strategy 'fedsgd'; installed: bulyan, fedadagrad"
    ):
        registry.get("fedsgd")


def test_parameters_are_parsed_and_checked() -> None:
    fedprox = registry.get("fedprox")
    assert fedprox.resolve({}) == {"proximal-mu": 0.1}
    assert fedprox.resolve({"proximal-mu": "0.5"}) == {"proximal-mu": 0.5}
    with pytest.raises(UsageError, match=r"--proximal-mu must be >= 0, got -1.0"):
        fedprox.resolve({"proximal-mu": "-1"})
    with pytest.raises(UsageError, match="--proximal-mu expects float, got 'abc'"):
        fedprox.resolve({"proximal-mu": "abc"})
    with pytest.raises(UsageError, match="has no parameter --mu"):
        fedprox.resolve({"mu": 1})
    weighted = registry.get("weighted")
    with pytest.raises(UsageError, match="--policy must be one of examples, uniform, custom"):
        weighted.resolve({"policy": "random"})


def test_bool_and_int_parameters() -> None:
    flag = registry.Param("flag", bool, False, "")
    assert flag.parse("yes") is True and flag.parse(False) is False
    with pytest.raises(UsageError):
        flag.parse("maybe")
    count = registry.Param("count", int, 1, "", minimum=1)
    assert count.parse("3") == 3
    with pytest.raises(UsageError):
        count.parse(2.5)


def test_custom_weights_must_match_the_clients() -> None:
    cfg = RunConfig(strategy="weighted", strategy_params={"policy": "custom"})
    with pytest.raises(UsageError, match="one value per client \\(3\\), got 0"):
        check_strategy(cfg)
    check_strategy(cfg.replace(strategy_params={"policy": "custom", "client-weights": "1,2,1"}))


def test_third_party_plugin_is_discovered(install_plugin, median_plugin: str) -> None:
    install_plugin("median", "fedapp_median_plugin", median_plugin)
    plugin = registry.get("median")
    assert plugin.summary.startswith("Coordinate-wise median")
    strategy = plugin.build({"min_available_clients": 2}, plugin.resolve({"tag": "x"}))
    assert type(strategy).__name__ == "FedMedian" and strategy.tag == "x"


def test_broken_plugin_is_a_clear_error(install_plugin) -> None:
    install_plugin("broken", "fedapp_broken_plugin", "plugin = 42\n")
    with pytest.raises(UsageError, match=r"'broken' .* is not a StrategyPlugin"):
        registry.installed()
