"""The model plugins' registry: discovery, broken plugins, code registration, parameters."""

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fedapp import registry
from fedapp.errors import UsageError
from fedapp.registry import ModelPlugin, OutputSpec, Param

RegisterModel = Callable[[ModelPlugin], Callable[[], None]]


def make_model(name: str, summary: str = "A model made for one test.") -> ModelPlugin:
    def build(n_features: int, output: OutputSpec, params: dict[str, Any], seed: int) -> Any:
        raise AssertionError("these tests never build a model")

    return ModelPlugin(name=name, summary=summary, build=build)


# --- The built-in MLP, through the entry points ---------------------------------


def test_the_mlp_comes_through_the_model_entry_points() -> None:
    # Execute
    plugin = registry.get_model("mlp")

    # Assert
    assert "mlp" in registry.models()
    assert [(p.name, p.default) for p in plugin.params] == [
        ("hidden-units", (64, 32)),
        ("dropout", 0.0),
    ]


def test_the_mlp_parameters_resolve_from_cli_text() -> None:
    # Execute
    resolved = registry.get_model("mlp").resolve({"hidden-units": "128,64", "dropout": "0.1"})

    # Assert
    assert resolved == {"hidden-units": (128, 64), "dropout": 0.1}


def test_models_and_strategies_are_apart() -> None:
    # Execute / Assert
    assert "mlp" not in registry.installed()
    assert "fedavg" not in registry.models()


def test_unknown_model_lists_the_installed_ones() -> None:
    # Execute / Assert
    with pytest.raises(UsageError, match=r"^unknown model 'resnet9000'; installed: mlp$"):
        registry.get_model("resnet9000")


def test_unknown_model_parameter_names_the_model_and_its_parameters() -> None:
    # Execute / Assert
    with pytest.raises(
        UsageError,
        match=r"model 'mlp' has no parameter --width \(its parameters: --hidden-units, --dropout\)",
    ):
        registry.get_model("mlp").resolve({"width": 3})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"dropout": "1"}, "--dropout must be < 1, got 1.0"),
        ({"dropout": -0.1}, "--dropout must be >= 0, got -0.1"),
        ({"hidden-units": "64,0"}, "--hidden-units must be >= 1, got 0"),
        ({"hidden-units": ""}, "--hidden-units expects one or more int"),
        ({"hidden-units": "a,b"}, "--hidden-units expects one or more int"),
    ],
    ids=["dropout-one", "dropout-negative", "zero-width", "empty", "not-numbers"],
)
def test_bad_mlp_parameters_are_refused(values: dict[str, Any], message: str) -> None:
    # Execute / Assert
    with pytest.raises(UsageError, match=message):
        registry.get_model("mlp").resolve(values)


# --- Code registration ---------------------------------------------------------


def test_a_registered_model_is_listed_and_found(register_model: RegisterModel) -> None:
    # Prepare
    toy = make_model("toy")

    # Execute
    register_model(toy)

    # Assert
    assert registry.models()["toy"] is toy and registry.get_model("toy") is toy
    assert "toy" not in registry.installed()


def test_undoing_a_model_registration_brings_back_the_installed_one(
    register_model: RegisterModel,
) -> None:
    # Prepare
    original = registry.get_model("mlp")
    undo = register_model(make_model("mlp", summary="Not the built-in one."))
    assert registry.get_model("mlp") is not original

    # Execute
    undo()

    # Assert
    assert registry.get_model("mlp") is original


def test_register_model_refuses_a_strategy_plugin() -> None:
    # Prepare
    strategy = registry.get("fedavg")

    # Execute / Assert
    with pytest.raises(TypeError, match="expected a ModelPlugin, got StrategyPlugin"):
        registry.register_model(strategy)  # type: ignore[arg-type]


def test_register_refuses_a_model_plugin() -> None:
    # Execute / Assert
    with pytest.raises(TypeError, match="expected a StrategyPlugin, got ModelPlugin"):
        registry.register(make_model("toy"))  # type: ignore[arg-type]


# --- Third-party model plugins, through real entry points ---------------------------


def test_a_third_party_model_is_discovered(install_plugin, resnet_plugin: str) -> None:
    # Prepare
    install_plugin("my_pkg_resnet", "my_pkg_resnet", resnet_plugin, group=registry.MODEL_GROUP)

    # Execute
    plugin = registry.get_model("my_pkg_resnet")

    # Assert
    assert plugin.summary.startswith("A small residual MLP")
    assert plugin.resolve({"blocks": "3"}) == {"width": 32, "blocks": 3}
    assert "my_pkg_resnet" not in registry.installed()


@pytest.fixture
def broken_models(install_plugin) -> None:
    """Two broken model plugins: one is a strategy plugin, one fails to import."""
    install_plugin(
        "astrategy",
        "fedapp_astrategy_model",
        "from fedapp.registry import StrategyPlugin\n"
        "plugin = StrategyPlugin('astrategy', 'Not a model.', lambda c, p: None)\n",
        group=registry.MODEL_GROUP,
    )
    install_plugin(
        "needsgpu",
        "fedapp_needsgpu_model",
        "raise ImportError('needs the gpu extra')\n",
        group=registry.MODEL_GROUP,
    )


@pytest.mark.usefixtures("broken_models")
def test_broken_models_are_listed_apart_and_the_rest_still_load() -> None:
    # Execute
    working = registry.models()
    broken = registry.broken_models()

    # Assert
    assert "mlp" in working and not {"astrategy", "needsgpu"} & set(working)
    assert {name: b.error for name, b in broken.items()} == {
        "astrategy": "model plugin 'astrategy' (fedapp_astrategy_model:plugin) "
        "is not a ModelPlugin (got StrategyPlugin)",
        "needsgpu": "model plugin 'needsgpu' (fedapp_needsgpu_model:plugin) "
        "failed to load: ImportError: needs the gpu extra",
    }
    assert registry.broken() == {}  # the strategy group knows nothing of them


@pytest.mark.usefixtures("broken_models")
def test_get_model_of_a_broken_plugin_says_it_is_installed_but_broken() -> None:
    # Execute / Assert
    with pytest.raises(
        UsageError,
        match=r"model 'needsgpu' is installed but broken: .* ImportError: needs the gpu extra; "
        r"working models: mlp",
    ):
        registry.get_model("needsgpu")


# --- Output specs ----------------------------------------------------------------


@pytest.mark.parametrize(("task", "units"), [("binary", 1), ("multiclass", 4), ("regression", 1)])
def test_output_specs_of_each_task(task: str, units: int) -> None:
    # Execute
    spec = OutputSpec(task, units)

    # Assert
    assert (spec.task, spec.units) == (task, units)


@pytest.mark.parametrize(
    ("task", "units"), [("binary", 2), ("multiclass", 1), ("regression", 3), ("ranking", 1)]
)
def test_output_specs_refuse_units_their_task_cannot_have(task: str, units: int) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match=task):
        OutputSpec(task, units)


# --- List parameters -----------------------------------------------------------------


WIDTHS = Param("widths", int, (8,), "Layer widths.", minimum=1, many=True)


@pytest.mark.parametrize(
    "raw",
    ["128,64", "128, 64", [128, 64], (128, 64), "128,64,"],
    ids=["cli-text", "spaced", "toml-list", "tuple", "trailing-comma"],
)
def test_list_parameters_parse_text_and_lists(raw: Any) -> None:
    # Execute
    value = WIDTHS.parse(raw)

    # Assert
    assert value == (128, 64)


@pytest.mark.parametrize("raw", ["", [], "8,x", [8, 2.5], [True], {"a": 1}])
def test_list_parameters_refuse_what_is_no_list_of_their_type(raw: Any) -> None:
    # Execute / Assert
    with pytest.raises(UsageError, match="--widths expects one or more int"):
        WIDTHS.parse(raw)


def test_list_parameters_check_each_value() -> None:
    # Execute / Assert
    with pytest.raises(UsageError, match="--widths must be >= 1, got 0"):
        WIDTHS.parse("4,0")


@pytest.mark.parametrize("raw", ["16", 16])
def test_a_single_value_is_a_list_of_one(raw: Any) -> None:
    # Execute / Assert: Flower's run config reads `model-params.widths=16` as a number
    assert WIDTHS.parse(raw) == (16,)


def test_the_readme_example_is_the_plugin_the_tests_install(resnet_plugin: str) -> None:
    # Prepare
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")

    # Execute / Assert
    assert textwrap.dedent(resnet_plugin).strip() in readme
