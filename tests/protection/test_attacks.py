"""Attack simulation: specs, who attacks, what attackers send (Prepare / Execute / Assert)."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fedapp import data
from fedapp.cli import app
from fedapp.errors import UsageError
from fedapp.flower.client_app import PREPROCESSING_KEY, ROUND_KEY, ChurnClient
from fedapp.protection import attacks
from fedapp.protection.attacks import choose_malicious, poison_update
from fedapp.settings import RunConfig
from fedapp.settings.specs import Attack, parse_attack

runner = CliRunner()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("sign-flip:10", Attack("sign-flip", 10.0)),
        ("scale:2.5", Attack("scale", 2.5)),
        ("gaussian:0.1", Attack("gaussian", 0.1)),
        ("label-flip", Attack("label-flip")),
    ],
)
def test_parse_attack(spec: str, expected: Attack) -> None:
    assert parse_attack(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("flip:3", "attack must be one of sign-flip:F, scale:F, gaussian:SIGMA or label-flip"),
        ("sign-flip", "attack sign-flip needs a number, as in sign-flip:F"),
        ("scale:x", "attack scale needs a number, as in scale:F"),
        ("gaussian:0", "attack gaussian: SIGMA must be > 0, got 0"),
        ("sign-flip:-2", "attack sign-flip: F must be > 0, got -2"),
        ("scale:inf", "attack scale: F must be > 0, got inf"),
        ("label-flip:1", "attack label-flip takes no value"),
    ],
)
def test_malformed_attack_spec(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_attack(spec)


def test_choose_malicious_is_seeded_sorted_and_nested() -> None:
    # Execute
    picked = choose_malicious(10, 3, seed=42)
    # Assert: reproducible, distinct, in range, sorted
    assert picked == choose_malicious(10, 3, seed=42)
    assert len(set(picked)) == 3 and all(0 <= p < 10 for p in picked)
    assert list(picked) == sorted(picked)
    # more attackers never drop one already picked
    assert set(picked) <= set(choose_malicious(10, 5, seed=42))
    assert choose_malicious(10, 0, seed=42) == ()
    assert choose_malicious(4, 4, seed=1) == (0, 1, 2, 3)
    # the seed decides who attacks
    assert len({choose_malicious(10, 3, seed=s) for s in range(8)}) > 1
    with pytest.raises(ValueError, match=r"malicious must be in \[0, 4\], got 5"):
        choose_malicious(4, 5, seed=0)


def _global_and_trained() -> tuple[list[np.ndarray], list[np.ndarray]]:
    # w = (1, 2 | 0.5); the client trained to (1.5, 1 | 0.5): delta = (0.5, -1 | 0)
    w = [np.array([1.0, 2.0], dtype=np.float32), np.array([0.5], dtype=np.float32)]
    trained = [np.array([1.5, 1.0], dtype=np.float32), np.array([0.5], dtype=np.float32)]
    return w, trained


@pytest.mark.parametrize(
    ("attack", "expected"),
    [
        # w - 10 * delta
        (Attack("sign-flip", 10.0), [[-4.0, 12.0], [0.5]]),
        # w + 3 * delta
        (Attack("scale", 3.0), [[2.5, -1.0], [0.5]]),
        # an honest update: the labels did the harm
        (Attack("label-flip"), [[1.5, 1.0], [0.5]]),
    ],
)
def test_poison_update_by_hand(attack: Attack, expected: list[list[float]]) -> None:
    w, trained = _global_and_trained()
    sent = poison_update(attack, w, trained, np.random.default_rng(0))
    for layer, want in zip(sent, expected, strict=True):
        np.testing.assert_allclose(layer, want, rtol=1e-6)
        assert layer.dtype == np.float32


def test_gaussian_sends_noise_around_the_global_model_not_the_update() -> None:
    # Prepare: a large layer so that the noise's moments are measurable
    w = [np.full(40_000, 3.0, dtype=np.float32)]
    trained = [np.full(40_000, 100.0, dtype=np.float32)]
    # Execute
    sent = poison_update(Attack("gaussian", 0.5), w, trained, np.random.default_rng(1))
    again = poison_update(Attack("gaussian", 0.5), w, trained, np.random.default_rng(1))
    # Assert: w + N(0, 0.5^2), whatever the client trained, and reproducible
    noise = sent[0].astype(np.float64) - 3.0
    assert abs(noise.mean()) < 0.01 and noise.std() == pytest.approx(0.5, rel=0.02)
    np.testing.assert_array_equal(sent[0], again[0])


def test_flip_labels() -> None:
    y = np.array([0, 1, 1, 0], dtype=np.float32)
    flipped = attacks.flip_labels(y)
    np.testing.assert_array_equal(flipped, [1, 0, 0, 1])
    assert flipped.dtype == np.float32


def test_client_attack_only_for_the_chosen() -> None:
    chosen = choose_malicious(5, 2, seed=9)
    for pid in range(5):
        got = attacks.client_attack(5, 2, "scale:4", 9, pid)
        assert got == (Attack("scale", 4.0) if pid in chosen else None)
    assert attacks.client_attack(5, 0, None, 9, chosen[0]) is None


@pytest.fixture
def round_config(small_cfg: RunConfig) -> dict:
    prep = data.federated_preprocessor(small_cfg)
    return {PREPROCESSING_KEY: prep.to_json(), ROUND_KEY: 1, "n_features": prep.n_features}


def test_malicious_client_sends_minus_f_times_its_honest_update(small_cfg, round_config) -> None:
    from fedapp.learning.model import build_model

    # Prepare: the same client, honest and as a sign-flip:3 attacker
    start = build_model(
        round_config["n_features"], params=small_cfg.model_params, seed=0
    ).get_weights()
    hostile = small_cfg.replace(malicious=1, attack="sign-flip:3")
    [pid] = choose_malicious(small_cfg.clients, 1, small_cfg.seed)
    honest_pid = next(p for p in range(small_cfg.clients) if p != pid)
    # Execute
    honest, n_honest, _ = ChurnClient(small_cfg, pid).fit(start, round_config)
    sent, n_sent, metrics = ChurnClient(hostile, pid).fit(start, round_config)
    bystander, _, _ = ChurnClient(hostile, honest_pid).fit(start, round_config)
    reference, _, _ = ChurnClient(small_cfg, honest_pid).fit(start, round_config)
    # Assert: w - 3 * (w_honest - w), the same count, nothing in the metrics betrays it
    for w, h, s in zip(start, honest, sent, strict=True):
        np.testing.assert_allclose(s, w - 3.0 * (h - w), rtol=1e-5, atol=1e-6)
    assert n_sent == n_honest and set(metrics) == {"partition-id", "train-loss"}
    for b, r in zip(bystander, reference, strict=True):
        np.testing.assert_array_equal(b, r)


def test_label_flip_client_trains_on_flipped_labels(small_cfg, round_config) -> None:
    from fedapp.learning.model import build_model

    start = build_model(
        round_config["n_features"], params=small_cfg.model_params, seed=0
    ).get_weights()
    [pid] = choose_malicious(small_cfg.clients, 1, small_cfg.seed)
    honest, _, _ = ChurnClient(small_cfg, pid).fit(start, round_config)
    flipped, _, _ = ChurnClient(small_cfg.replace(malicious=1, attack="label-flip"), pid).fit(
        start, round_config
    )
    # ~25% churners: the honest client lowers the output bias (fewer positives than
    # the start predicts), the one with flipped labels (~75% positives) raises it.
    assert honest[-1][0] < start[-1][0] < flipped[-1][0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--malicious", "4", "--attack", "sign-flip:10"],
         "malicious must be in [0, 3] (at most the number of clients), got 4"),
        (["--malicious", "-1", "--attack", "scale:2"], "malicious must be in [0, 3]"),
        (["--malicious", "1", "--attack", "flip:3"], "attack must be one of sign-flip:F"),
        (["--malicious", "1", "--attack", "gaussian:"], "attack gaussian needs a number"),
        (["--malicious", "1"], "--malicious needs --attack"),
        (["--attack", "label-flip"], "--attack needs --malicious K with K >= 1"),
        (["--anomaly-threshold", "0"], "anomaly-threshold must be > 0, got 0.0"),
    ],
)  # fmt: skip
def test_bad_attack_input_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["simulate", "--runs-dir", str(tmp_path / "runs"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_attack_settings_round_trip_through_config_json() -> None:
    cfg = RunConfig(clients=5, malicious=2, attack="scale:3", anomaly_threshold=2.0)
    recorded = {**cfg.to_dict(), "malicious-clients": [1, 3]}
    again = RunConfig.from_mapping(json.loads(json.dumps(recorded)))
    assert (again.malicious, again.attack, again.anomaly_threshold) == (2, "scale:3", 2.0)
    flat = RunConfig(clients=5, malicious=2, attack="scale:3").to_flwr()
    assert RunConfig.from_mapping(flat).attack == "scale:3"


@pytest.mark.slow
def test_attack_with_krum_end_to_end(tmp_path: Path) -> None:
    from fedapp.simulation import simulate

    # Prepare: 5 clients (the fewest a round flags in), one of them sends w - 10 * delta
    cfg = RunConfig(
        clients=5, rounds=2, demo_rows=1200, seed=5, strategy="krum",
        malicious=1, attack="sign-flip:10", baseline=False,
    )  # fmt: skip
    # Execute
    run, summary = simulate(cfg, tmp_path)
    # Assert: the attacker is recorded, every client has its signals, the attacker is flagged
    config = run.read_config()
    attackers = choose_malicious(5, 1, 5)
    assert config["malicious-clients"] == list(attackers)
    assert config["attack"] == "sign-flip:10" and config["malicious"] == 1
    fits = [e for e in run.read_metrics() if e["stage"] == "fit"]
    assert [e["round"] for e in fits] == [1, 2]
    for event in fits:
        assert set(event["clients"]) == {"0", "1", "2", "3", "4"}
        for entry in event["clients"].values():
            assert {"update-norm", "cosine", "update-norm-z", "cosine-z"} <= set(entry)
            assert entry["update-norm"] > 0 and -1 <= entry["cosine"] <= 1
        assert event["flagged"] == list(attackers)
        bad = event["clients"][str(attackers[0])]
        honest = [v for k, v in event["clients"].items() if int(k) not in attackers]
        assert bad["update-norm"] > 5 * max(v["update-norm"] for v in honest)
        assert bad["cosine"] < 0
    assert run.read_status()["state"] == "finished"
    assert summary["federated"]["auc"] > 0.5
