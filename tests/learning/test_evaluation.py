"""Central evaluation: which rounds are scored, the scores, the saved model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from fedapp import data
from fedapp.learning.evaluation import CentralEvaluator, is_due
from fedapp.learning.model import build_model, evaluate
from fedapp.settings import RunConfig


@pytest.fixture(scope="module")
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.float32)


@pytest.mark.parametrize(
    ("every", "last", "due"),
    [
        (1, 3, [0, 1, 2, 3]),
        (3, 7, [0, 3, 6, 7]),  # and always the last round
        (5, 5, [0, 5]),
        (10, 4, [0, 4]),  # fewer rounds than N: the start and the end
    ],
)
def test_rounds_scored_every_n_and_the_last(every: int, last: int, due: list[int]) -> None:
    # Execute
    scored = [r for r in range(last + 1) if is_due(r, every, last)]

    # Assert
    assert scored == due


def test_score_is_the_metrics_of_the_given_weights(xy) -> None:
    # Prepare: two weight sets; the evaluator's model has seen another before
    x, y = xy
    first = build_model(4, params={"hidden-units": (8,)}, seed=1).get_weights()
    second = build_model(4, params={"hidden-units": (8,)}, seed=2).get_weights()
    evaluator = CentralEvaluator(build_model(4, params={"hidden-units": (8,)}, seed=0), (x, y))
    evaluator.score(first)

    # Execute
    metrics = evaluator.score(second)

    # Assert
    reference = build_model(4, params={"hidden-units": (8,)}, seed=2)
    assert metrics == evaluate(reference, x, y)


def test_without_a_test_set_nothing_is_due_or_scored() -> None:
    # Prepare
    evaluator = CentralEvaluator(build_model(4, params={"hidden-units": (8,)}, seed=0), None)

    # Execute / Assert
    assert not evaluator.is_due(0, last_round=3) and not evaluator.is_due(3, last_round=3)
    with pytest.raises(ValueError, match="no test set"):
        evaluator.score(evaluator.initial_weights)


def test_save_writes_the_model_with_the_given_weights(tmp_path: Path) -> None:
    # Prepare
    evaluator = CentralEvaluator(build_model(4, params={"hidden-units": (8,)}, seed=0), None)
    final = [w - 0.25 for w in evaluator.initial_weights]

    # Execute
    evaluator.save(final, tmp_path / "model.keras")

    # Assert
    saved = keras.saving.load_model(tmp_path / "model.keras")
    for got, want in zip(saved.get_weights(), final, strict=True):
        np.testing.assert_allclose(got, want)


def test_for_run_builds_the_seeded_model_and_the_global_test_set(small_cfg: RunConfig) -> None:
    # Prepare
    cfg = small_cfg.replace(eval_every=4)
    prep = data.federated_preprocessor(cfg)

    # Execute
    evaluator = CentralEvaluator.for_run(cfg, prep)

    # Assert
    seeded = build_model(prep.n_features, cfg.learning_rate, cfg.seed, params=cfg.model_params)
    for got, want in zip(evaluator.initial_weights, seeded.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert evaluator.test is not None
    x, y = prep.transform(data.global_test(cfg))
    np.testing.assert_array_equal(evaluator.test[0], x)
    np.testing.assert_array_equal(evaluator.test[1], y)
    assert evaluator.every == 4


def test_a_deployed_server_holds_no_test_set(small_cfg: RunConfig) -> None:
    # Prepare
    prep = data.federated_preprocessor(small_cfg)
    cfg = RunConfig(data="node", target="churned", clients=3)

    # Execute
    evaluator = CentralEvaluator.for_run(cfg, prep)

    # Assert
    assert evaluator.test is None


def test_the_saved_model_loads_in_plain_keras_without_fedapp(tmp_path: Path) -> None:
    # Prepare
    model = build_model(4, params={"hidden-units": (8,)}, seed=1)
    evaluator = CentralEvaluator(model, None)
    weights = [w + 0.1 for w in model.get_weights()]
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)

    # Execute
    evaluator.save(weights, tmp_path / "model.keras")

    # Assert: a fresh interpreter, no fedapp import, gives the same predictions
    script = (
        "import sys, keras, numpy as np\n"
        "m = keras.saving.load_model(sys.argv[1])\n"
        "x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)\n"
        "print(','.join(f'{p:.6f}' for p in m.predict_on_batch(x).ravel()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "model.keras")],
        capture_output=True, text=True, timeout=120, check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    model.set_weights(weights)
    expected = model.predict_on_batch(x).ravel()
    got = np.array([float(v) for v in out.stdout.strip().splitlines()[-1].split(",")])
    np.testing.assert_allclose(got, expected, rtol=1e-5)
