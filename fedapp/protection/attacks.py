"""Simulated hostile clients: which ones, and what they send instead of an honest update.

A run with ``malicious = K`` and an ``attack`` spec turns K clients, drawn
reproducibly from the seed, into attackers. Each still receives the global
weights w and trains on its rows like any client; with Δ = w_local - w its
honest update, it then sends:

* ``sign-flip:F`` — w - F·Δ (the update reversed and amplified);
* ``scale:F`` — w + F·Δ (the update amplified);
* ``gaussian:SIGMA`` — w + ε with ε ~ N(0, SIGMA²) per weight (noise instead
  of an update);
* ``label-flip`` — an honest update, trained on flipped targets: binary
  labels y ↦ 1 - y, multiclass codes shifted by one class (y ↦ y + 1 mod k,
  a fixed permutation without a fixed point), a regression's standardised
  target negated (y ↦ -y).

Everything here is a pure function of its arguments, so the server, the
clients and the run directory agree on who attacks without talking about it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedapp.settings.specs import Attack, as_attack

NDArrays = list[np.ndarray]

# Separates the draw of attackers from every other use of the run's seed.
_STREAM = 0x6D616C


def choose_malicious(clients: int, malicious: int, seed: int) -> tuple[int, ...]:
    """The partition ids of the ``malicious`` attackers among ``clients``, sorted.

    The same seed always picks the same clients, and a larger ``malicious``
    never leaves out a client a smaller one picked (the draw is one seeded
    permutation, cut after ``malicious`` entries).
    """
    if not 0 <= malicious <= clients:
        raise ValueError(f"malicious must be in [0, {clients}], got {malicious}")
    order = np.random.default_rng([seed, _STREAM]).permutation(clients)
    return tuple(sorted(int(p) for p in order[:malicious]))


def poison_update(
    attack: Attack,
    global_weights: Sequence[np.ndarray],
    trained: Sequence[np.ndarray],
    rng: np.random.Generator,
) -> NDArrays:
    """What an attacker sends in place of ``trained``, layer by layer.

    Parameters
    ----------
    attack : Attack
        The attack; ``label-flip`` sends ``trained`` unchanged (its harm is
        in the labels it trained on).
    global_weights : Sequence[np.ndarray]
        The round's global model w, as received.
    trained : Sequence[np.ndarray]
        The attacker's locally trained model w + Δ.
    rng : np.random.Generator
        Source of the ``gaussian`` noise.

    Returns
    -------
    NDArrays
        w - F·Δ, w + F·Δ, w + ε, or ``trained``; each layer keeps its dtype.

    """
    out: NDArrays = []
    for w, local in zip(global_weights, trained, strict=True):
        delta = local.astype(np.float64) - w
        if attack.kind == "sign-flip":
            sent = w - attack.strength * delta
        elif attack.kind == "scale":
            sent = w + attack.strength * delta
        elif attack.kind == "gaussian":
            sent = w + rng.normal(0.0, attack.strength, size=w.shape)
        else:
            sent = local
        out.append(np.asarray(sent, dtype=local.dtype))
    return out


def flip_labels(y: np.ndarray, task: str = "binary", classes: int = 2) -> np.ndarray:
    """The targets a label-flipping attacker trains on, in ``y``'s dtype.

    Binary ``1 - y``; multiclass ``(y + 1) mod classes``; regression ``-y``
    (of the standardised target, so the flipped mean is the true one mirrored).
    """
    if task == "regression":
        flipped = -y
    elif task == "multiclass":
        flipped = (y + 1) % classes
    else:
        flipped = 1 - y
    return flipped.astype(y.dtype, copy=False)


def client_attack(
    clients: int, malicious: int, spec: Attack | str | None, seed: int, partition_id: int
) -> Attack | None:
    """The attack partition ``partition_id`` carries out, or ``None`` if it is honest.

    ``spec`` is the run's ``attack`` setting (:class:`Attack`, or its text form).
    """
    if not malicious or spec is None:
        return None
    if partition_id not in choose_malicious(clients, malicious, seed):
        return None
    return as_attack(spec)
