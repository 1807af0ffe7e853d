"""What the client-drift corrections exchange beside the weights, in NumPy alone.

SCAFFOLD (Karimireddy et al. 2020) and FedNova (Wang et al. 2020) need more
from a round than each client's weights: FedNova the number of local steps
each client took, SCAFFOLD control variates, one array per weight, in both
directions. The strategy plugins (``fedapp_strategies``) and fedapp's client
(:mod:`fedapp.flower.client_app`) meet here, below both: the message keys,
how arrays travel as one ``bytes`` value of a Flower config or metrics
record, and the client's side of SCAFFOLD's arithmetic.

No TensorFlow, no Flower: the strategy listing imports this.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Server -> client, in a fit config: report the local steps taken (FedNova asks).
LOCAL_STEPS_QUERY = "fedapp-local-steps"
# Client -> server, in the fit reply when asked: the local steps tau_i the client took.
LOCAL_STEPS_KEY = "local-steps"
# Server -> client, in SCAFFOLD's fit config: c, packed, and the local SGD step size.
SCAFFOLD_CONTROL_KEY = "fedapp-scaffold-c"
SCAFFOLD_LEARNING_RATE_KEY = "fedapp-scaffold-learning-rate"
# Client -> server, in SCAFFOLD's fit reply: c_i+ - c_i, packed.
SCAFFOLD_DELTA_KEY = "fedapp-scaffold-delta-c"

# Control variates travel as float32, the dtype of the weights they correct.
_DTYPE = np.dtype("<f4")


def local_steps(rows: int, batch_size: int, epochs: int) -> int:
    """The optimiser steps of one fit: ``epochs * ceil(rows / batch_size)``.

    Each epoch of :func:`fedapp.learning.model.train` takes one step per
    batch, the last one possibly short.
    """
    return epochs * math.ceil(rows / batch_size)


def pack(arrays: Sequence[np.ndarray]) -> bytes:
    """``arrays`` as one ``bytes`` value: their float32 values, flattened and concatenated.

    The receiver knows the shapes: they are the model's (:func:`unpack`).
    """
    if not arrays:
        return b""
    flat = np.concatenate([np.asarray(a, dtype=_DTYPE).ravel() for a in arrays])
    return flat.tobytes()


def unpack(blob: bytes, like: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The arrays :func:`pack` made, shaped as ``like`` (the model's weights).

    Raises
    ------
    ValueError
        When ``blob`` does not hold exactly as many values as ``like``.

    """
    sizes = [int(np.prod(np.shape(a))) for a in like]
    flat = np.frombuffer(blob, dtype=_DTYPE)
    if flat.size != sum(sizes):
        raise ValueError(
            f"control variates of {flat.size} values do not fit a model of {sum(sizes)} weights"
        )
    ends = np.cumsum(sizes)
    return [
        flat[end - size : end].reshape(np.shape(a)).copy()
        for a, size, end in zip(like, sizes, ends, strict=True)
    ]


def scaffold_client_control(
    own: Sequence[np.ndarray],
    server: Sequence[np.ndarray],
    start: Sequence[np.ndarray],
    end: Sequence[np.ndarray],
    steps: int,
    learning_rate: float,
) -> list[np.ndarray]:
    """SCAFFOLD's option II: ``c_i+ = c_i - c + (x - y_i) / (K * eta_l)``.

    Parameters
    ----------
    own : Sequence[np.ndarray]
        The client's control variate ``c_i`` the round started with.
    server : Sequence[np.ndarray]
        The server's ``c`` the round was sent.
    start : Sequence[np.ndarray]
        The global weights ``x`` the client started from.
    end : Sequence[np.ndarray]
        Its weights ``y_i`` after the round's local steps.
    steps : int
        ``K``: the plain SGD steps it took, each on the corrected gradient
        ``g - c_i + c``.
    learning_rate : float
        ``eta_l``: their step size.

    Returns
    -------
    list[np.ndarray]
        ``c_i+``, in float32. Since ``x - y_i = eta_l * sum_k (g_k - c_i + c)``,
        this is the mean gradient ``(1/K) sum_k g_k`` of the round's steps.

    Raises
    ------
    ValueError
        For no steps or a step size that is not positive.

    """
    if steps < 1 or not learning_rate > 0:
        raise ValueError(f"need steps >= 1 and learning_rate > 0, got {steps}, {learning_rate}")
    scale = 1.0 / (steps * learning_rate)
    return [
        (np.asarray(ci, np.float64) - c + scale * (np.asarray(x, np.float64) - y)).astype(_DTYPE)
        for ci, c, x, y in zip(own, server, start, end, strict=True)
    ]
