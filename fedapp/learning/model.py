"""The Keras model, its output head and loss per task, and its FedProx/DP-SGD/SCAFFOLD training.

TensorFlow is imported here and only here (plus where a caller imports this
module), so that the CLI's help, the plugin listing and the UI stay fast.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fedapp import registry
from fedapp.data.stats import BINARY, Preprocessor, TargetEncoding
from fedapp.errors import UsageError
from fedapp.learning.metrics import score
from fedapp.registry import ModelPlugin, OutputSpec
from fedapp.settings import RunConfig, Task

# Keras 3.15 trips NumPy 2's `__array__(copy=...)` deprecation when saving.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"keras\.")

_configured = False

# The loss fedapp trains each task's head with.
_LOSSES = {
    Task.BINARY: "binary_crossentropy",
    Task.MULTICLASS: "sparse_categorical_crossentropy",
    Task.REGRESSION: "mean_squared_error",
}


def _configure_runtime() -> None:
    """Pin TensorFlow to one thread per process.

    A small MLP gains nothing from intra-op parallelism, and simulated clients
    already run one per core; extra threads only contend.
    """
    global _configured
    if _configured:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime was initialised before we got here
        pass
    _configured = True


class ProximalTerm:
    """FedProx's anchor: ``mu`` and the global weights of the current round.

    Kept outside Keras' attribute tracking so that ``model.get_weights()``
    stays exactly the trainable model and nothing else.
    """

    def __init__(self, variables: Sequence[keras.Variable]) -> None:
        self.mu = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        self.anchors = [tf.Variable(v, trainable=False) for v in variables]

    def set(self, mu: float, weights: Sequence[np.ndarray]) -> None:
        """Anchor to ``weights``; assignments do not retrace the train step."""
        self.mu.assign(mu)
        for anchor, value in zip(self.anchors, weights, strict=True):
            anchor.assign(value)

    def penalty(self, variables: Sequence[keras.Variable]) -> tf.Tensor:
        """``(mu / 2) * ||w - w_global||^2`` over ``variables``."""
        squared = tf.add_n(
            [tf.reduce_sum(tf.square(w - a)) for w, a in zip(variables, self.anchors, strict=True)]
        )
        return 0.5 * self.mu * squared


class NoisyClipping:
    """DP-SGD's clip norm and noise multiplier, and its noise source.

    Variables, so that a new round's settings do not retrace the train step;
    kept outside Keras' attribute tracking like :class:`ProximalTerm`.
    """

    def __init__(self) -> None:
        self.clip_norm = tf.Variable(1.0, trainable=False, dtype=tf.float32)
        self.noise_multiplier = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        # From OS entropy, never from the run's seed: whoever knows the seed
        # (the server does) could regenerate the noise and subtract it.
        self.generator = tf.random.Generator.from_non_deterministic_state()

    def set(self, clip_norm: float, noise_multiplier: float) -> None:
        """Use these settings from the next step on (no retrace)."""
        self.clip_norm.assign(clip_norm)
        self.noise_multiplier.assign(noise_multiplier)


class ControlVariates:
    """SCAFFOLD's local step: plain SGD on the corrected gradient ``g - c_i + c``.

    ``learning_rate`` is the step size eta_l and ``correction`` holds
    ``c - c_i``, one variable per trainable weight. Variables, so that a new
    round's values do not retrace the train step; kept outside Keras'
    attribute tracking like :class:`ProximalTerm`.

    SCAFFOLD's option II reads the round's mean gradient off the weights,
    ``(x - y_i) / (K * eta_l)``, which holds for K steps of plain SGD only:
    Adam's steps are not ``eta_l`` times the gradient. So these steps bypass
    the compiled optimizer.
    """

    def __init__(self, variables: Sequence[keras.Variable]) -> None:
        self.learning_rate = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        self.correction = [
            tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in variables
        ]

    def set(self, learning_rate: float, correction: Sequence[np.ndarray]) -> None:
        """Step by ``learning_rate`` on the gradient plus ``correction`` (no retrace)."""
        self.learning_rate.assign(learning_rate)
        for variable, value in zip(self.correction, correction, strict=True):
            variable.assign(value)

    def step(self, variables: Sequence[keras.Variable], gradients: Sequence[tf.Tensor]) -> None:
        """``w <- w - eta_l * (g + c - c_i)`` for each weight."""
        for w, g, c in zip(variables, gradients, self.correction, strict=True):
            w.assign_sub(self.learning_rate * (g + c))


def batch_gradients(
    model: FedModel, x: tf.Tensor, y: tf.Tensor
) -> tuple[list[tf.Tensor], tf.Tensor]:
    """The gradient of one batch's training loss (``compute_loss``, as ``train_step`` takes it)."""
    with tf.GradientTape() as tape:
        predicted = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=predicted, training=True)
    return tape.gradient(loss, model.trainable_variables), loss


def clip_and_noise(
    per_example: Sequence[tf.Tensor],
    clip_norm: tf.Tensor | float,
    noise_multiplier: tf.Tensor | float,
    generator: tf.random.Generator,
) -> list[tf.Tensor]:
    """Sum per-example gradients, each clipped to L2 norm ``C``, plus Gaussian noise.

    Parameters
    ----------
    per_example : Sequence[tf.Tensor]
        One tensor per variable, shaped ``(batch, *variable.shape)``.
    clip_norm : tf.Tensor | float
        ``C``: each example's gradient, over all variables together, is
        scaled to norm at most ``C``.
    noise_multiplier : tf.Tensor | float
        ``z``: the noise added to the sum has standard deviation ``z * C``.
    generator : tf.random.Generator
        Source of the noise.

    Returns
    -------
    list[tf.Tensor]
        ``sum_i g_i * min(1, C / ||g_i||) + N(0, (z C)^2 I)``, shaped like the variables.

    """
    rows = tf.shape(per_example[0])[0]
    squares = tf.add_n(
        [tf.reduce_sum(tf.reshape(tf.square(g), [rows, -1]), axis=1) for g in per_example]
    )
    scale = tf.minimum(1.0, clip_norm / tf.maximum(tf.sqrt(squares), 1e-12))
    stddev = noise_multiplier * clip_norm
    return [
        tf.tensordot(scale, g, axes=1) + stddev * generator.normal(tf.shape(g)[1:])
        for g in per_example
    ]


class LabelShift:
    """Label-skew correction: how a client's own label prior differs from the federation's.

    A client's rows follow ``p_i(y | x) ∝ p(x | y) π_i(y)``, the federation's
    ``p(y | x) ∝ p(x | y) π(y)``. Training on the client's rows with each
    class's probability weighed by ``r_y = π_i(y) / π(y)`` (logit adjustment:
    the model's logits plus ``log r``, as FedLC calibrates them) lets the
    model itself estimate the federation's posterior; the model that is
    aggregated and served has no shift. A variable, so that a new round's
    ratios do not retrace the train step; outside Keras' attribute tracking
    like :class:`ProximalTerm`.

    Parameters
    ----------
    classes : int
        Classes of the target (2 for a binary one).

    """

    def __init__(self, classes: int) -> None:
        self.ratio = tf.Variable(tf.ones([classes]), trainable=False, dtype=tf.float32)

    def set(self, ratio: np.ndarray) -> None:
        """Weigh class ``k`` by ``ratio[k]`` from the next step on."""
        self.ratio.assign(np.asarray(ratio, dtype=np.float32))

    def example_losses(self, task: Task, y: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
        """Each row's cross-entropy under the shifted probabilities: ``(batch,)``.

        ``q_k = p_k r_k / sum_j p_j r_j``, computed from the head's
        probabilities, clipped as Keras' own cross-entropy clips them.
        """
        eps = keras.config.epsilon()
        p = tf.clip_by_value(predicted, eps, 1.0 - eps)
        if task is Task.BINARY:
            p = tf.concat([1.0 - p, p], axis=-1)
        weighed = p * self.ratio
        own = tf.gather(weighed, tf.cast(tf.reshape(y, [-1]), tf.int32), batch_dims=1)
        return tf.math.log(tf.reduce_sum(weighed, axis=-1)) - tf.math.log(own)


def label_shift_ratio(y: np.ndarray, encoding: TargetEncoding) -> np.ndarray:
    """``π_i(k) / π(k)`` of a client's training labels ``y`` against the federation's prior.

    One pseudo-row per class keeps a class the client lacks from weighing
    0: its rows then still teach the model about their own classes.

    Raises
    ------
    UsageError
        For a regression target, or a preprocessing without the federation's prior.

    """
    if encoding.task is Task.REGRESSION:
        raise UsageError("label-skew correction needs a binary or multiclass target")
    if not encoding.prior:
        raise UsageError("this run's preprocessing has no class prior: label-skew correction "
                         "needs one (a run made before it existed)")  # fmt: skip
    classes = len(encoding.prior)
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=classes)[:classes] + 1.0
    own = counts / counts.sum()
    return own / np.maximum(np.asarray(encoding.prior, dtype=np.float64), 1e-12)


def dp_gradients(model: FedModel, x: tf.Tensor, y: tf.Tensor) -> tuple[list[tf.Tensor], tf.Tensor]:
    """DP-SGD's gradient of one batch, and the batch's loss.

    The task loss's per-example gradients are clipped and noised
    (:func:`clip_and_noise`) and averaged over the batch; FedProx's proximal
    gradient, which reads no row, is added unchanged.
    """
    assert model.proximal is not None and model.dp_sgd is not None
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        predicted = model(x, training=True)
        losses = model.example_losses(y, predicted)
        penalty = model.proximal.penalty(variables)
    # pfor vectorises the backward pass over the batch: per-example gradients
    # for about the cost of one batched gradient.
    per_example = tape.jacobian(losses, variables, experimental_use_pfor=True)
    proximal = tape.gradient(penalty, variables)
    del tape
    dp = model.dp_sgd
    noisy = clip_and_noise(per_example, dp.clip_norm, dp.noise_multiplier, dp.generator)
    rows = tf.cast(tf.shape(x)[0], tf.float32)
    gradients = [g / rows + p for g, p in zip(noisy, proximal, strict=True)]
    return gradients, tf.reduce_mean(losses) + penalty


def example_losses(task: Task, y: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
    """Each row's loss, as the compiled loss averages it: ``(batch,)``."""
    if task is Task.MULTICLASS:
        return keras.losses.sparse_categorical_crossentropy(y, predicted)
    if task is Task.REGRESSION:
        return keras.losses.mean_squared_error(tf.expand_dims(y, -1), predicted)
    return keras.losses.binary_crossentropy(tf.expand_dims(y, -1), predicted)


@keras.saving.register_keras_serializable(package="fedapp")
class FedModel(keras.Model):
    """A functional Keras model whose loss carries FedProx's proximal term.

    ``loss = task_loss + (mu / 2) * ||w - w_global||^2`` over the trainable
    weights; with ``mu == 0`` this is the plain loss. With a
    :attr:`label_shift` (a client's label-skew correction) the task loss is
    its shifted cross-entropy in training, and the plain one otherwise.
    """

    proximal: ProximalTerm | None = None
    dp_sgd: NoisyClipping | None = None
    label_shift: LabelShift | None = None
    control: ControlVariates | None = None
    task: Task = Task.BINARY

    def example_losses(self, y: tf.Tensor, predicted: tf.Tensor) -> tf.Tensor:
        """Each row's training loss: the task's, or its label-shifted form (:class:`LabelShift`)."""
        if self.label_shift is not None:
            return self.label_shift.example_losses(self.task, y, predicted)
        return example_losses(self.task, y, predicted)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):  # noqa: D102
        if training and self.label_shift is not None:
            loss = tf.reduce_mean(self.example_losses(y, y_pred))
        else:
            loss = super().compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
            )
        term = self.proximal
        if term is None or not training:
            return loss
        return loss + term.penalty(self.trainable_variables)


# The head fedapp adds to a plugin's raw scores, by task.
HEADS = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}
_BINARY = OutputSpec("binary", 1)


def build_model(
    n_features: int,
    learning_rate: float = 1e-3,
    seed: int = 0,
    model: str = "mlp",
    params: Mapping[str, Any] | None = None,
    output: OutputSpec = _BINARY,
    label_shift: bool = False,
) -> FedModel:
    """Build and compile model plugin ``model``'s network with the head of ``output``'s task.

    The plugin builds the body (raw scores, :class:`~fedapp.registry.ModelPlugin`);
    fedapp appends the activation of :data:`HEADS` and owns the loss, the
    optimizer and the train steps. The model is traced on first use and then
    reused: callers change its weights with ``set_weights`` instead of
    building a new one. With ``label_shift`` it trains with a client's
    label-skew correction (:class:`LabelShift`, ratios 1 until set).

    Raises
    ------
    UsageError
        For an unknown model or parameter, and for a plugin whose build fails
        or whose network does not map ``(None, n_features)`` to ``(None,
        output.units)``.

    """
    _configure_runtime()
    plugin = registry.get_model(model)
    inputs = keras.Input(shape=(n_features,), dtype="float32")
    scores = _body(plugin, inputs, output, plugin.resolve(params or {}), seed)
    outputs = keras.layers.Activation(HEADS[output.task], name=f"{output.task}_head")(scores)
    fed = FedModel(inputs=inputs, outputs=outputs)
    fed.task = Task(output.task)
    fed.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=_LOSSES[fed.task]
    )
    fed.proximal = ProximalTerm(fed.trainable_variables)
    if label_shift:
        if fed.task is Task.REGRESSION:
            raise UsageError("label-skew correction needs a binary or multiclass target")
        fed.label_shift = LabelShift(max(output.units, 2))
    fed.optimizer.build(fed.trainable_variables)
    fed._fresh_optimizer_state = [v.numpy() for v in fed.optimizer.variables]
    return fed


def _body(
    plugin: ModelPlugin,
    inputs: keras.KerasTensor,
    output: OutputSpec,
    params: dict[str, Any],
    seed: int,
) -> keras.KerasTensor:
    """The plugin's raw scores of ``inputs``, checked against the contract."""
    what = f"model '{plugin.name}'"
    try:
        body = plugin.build(inputs.shape[-1], output, params, seed)
    except UsageError:
        raise
    except Exception as err:  # whatever a third-party build raises, said as the CLI says it
        raise UsageError(f"{what} failed to build: {type(err).__name__}: {err}") from None
    if not isinstance(body, keras.Model):
        raise UsageError(f"{what} built a {type(body).__name__}, not a keras.Model")
    try:
        scores = body(inputs)
    except Exception as err:  # a network built for other inputs
        raise UsageError(
            f"{what} does not take {tuple(inputs.shape)} inputs: {type(err).__name__}: {err}"
        ) from None
    wanted = (None, output.units)
    shape = tuple(scores.shape) if isinstance(scores, keras.KerasTensor) else None
    if shape != wanted:
        raise UsageError(
            f"{what} must map {tuple(inputs.shape)} to {wanted} raw scores (a "
            f"{output.task} output); it gives {shape or type(scores).__name__}"
        )
    return scores


def output_of(encoding: TargetEncoding) -> OutputSpec:
    """The output a run's target needs: its task, and one unit per class of a multiclass one."""
    return OutputSpec(str(encoding.task), encoding.outputs)


def model_for(
    encoding: TargetEncoding,
    n_features: int,
    learning_rate: float,
    seed: int = 0,
    model: str = "mlp",
    params: Mapping[str, Any] | None = None,
) -> FedModel:
    """:func:`build_model` for a run's target encoding (its task and classes)."""
    return build_model(n_features, learning_rate, seed, model, params, output_of(encoding))


def run_model(cfg: RunConfig, prep: Preprocessor) -> FedModel:
    """The model of run ``cfg`` over ``prep``'s features, seeded as the federation starts."""
    return model_for(
        prep.encoding, prep.n_features, cfg.learning_rate, cfg.seed, cfg.model, cfg.model_params
    )


def reset_optimizer(model: FedModel) -> None:
    """Give the optimizer a fresh state, as if it had just been built.

    Each fit is a new local optimisation; Adam's moments must not carry over
    between rounds or between the clients that share one cached model.
    """
    for variable, value in zip(
        model.optimizer.variables, model._fresh_optimizer_state, strict=True
    ):
        variable.assign(value)


def _epoch_function(model: FedModel, private: bool = False, corrected: bool = False):
    """One compiled pass over shuffled rows, traced once per model and kind of step.

    ``model.fit`` costs tens of milliseconds per call in set-up alone, which
    dominates a federated round of a few dozen steps; a single ``tf.function``
    looping over ``model.train_step`` runs the same step for a fraction of it.
    With ``private`` each step is DP-SGD's (:func:`dp_gradients`) instead; with
    ``corrected`` the step is SCAFFOLD's plain SGD on the corrected gradient
    (:class:`ControlVariates`) instead of the optimizer's.
    """
    cache = "_fedapp_dp_epoch" if private else "_fedapp_epoch"
    if corrected:
        cache = cache.replace("_epoch", "_scaffold_epoch")
    epoch = getattr(model, cache, None)
    if epoch is not None:
        return epoch
    width = model.inputs[0].shape[-1]

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, width], tf.float32),
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([], tf.int32),
        ]
    )
    def epoch(x: tf.Tensor, y: tf.Tensor, batch_size: tf.Tensor) -> tf.Tensor:
        rows = tf.shape(x)[0]
        loss = tf.constant(0.0)
        total = tf.constant(0.0)
        for start in tf.range(0, rows, batch_size):
            x_batch, y_batch = x[start : start + batch_size], y[start : start + batch_size]
            if private or corrected:
                gradients, batch_loss = (dp_gradients if private else batch_gradients)(
                    model, x_batch, y_batch
                )
                if corrected:
                    assert model.control is not None
                    model.control.step(model.trainable_variables, gradients)
                else:
                    model.optimizer.apply_gradients(
                        zip(gradients, model.trainable_variables, strict=True)
                    )
                # The running mean over the epoch, as Keras' loss tracker reports it.
                total += batch_loss * tf.cast(tf.shape(y_batch)[0], tf.float32)
                loss = total / tf.cast(start + tf.shape(y_batch)[0], tf.float32)
            else:
                loss = tf.cast(model.train_step((x_batch, y_batch))["loss"], tf.float32)
        return loss

    setattr(model, cache, epoch)
    return epoch


def train(
    model: FedModel,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int | Sequence[int],
    proximal_mu: float = 0.0,
    clip_norm: float | None = None,
    noise_multiplier: float = 0.0,
    correction: Sequence[np.ndarray] | None = None,
    sgd_learning_rate: float = 0.0,
) -> float:
    """Train from the model's current weights; return the last epoch's mean loss.

    Each epoch visits the rows in an order drawn from a generator seeded by
    ``seed``, so a run is reproducible whichever process executes it. The
    optimizer starts fresh and the proximal anchor is the starting weights.
    With ``clip_norm`` the steps are DP-SGD's: per-example gradients clipped
    to ``clip_norm`` and noise of ``noise_multiplier * clip_norm`` added to
    each batch's sum (its noise is not reproducible from ``seed``). With
    ``correction`` (SCAFFOLD's ``c - c_i``, one array per weight) each step
    is ``w <- w - sgd_learning_rate * (g + correction)``, ``g`` the batch's
    gradient (DP-SGD's noised one with ``clip_norm``), and the optimizer is
    not used (:class:`ControlVariates`).
    """
    reset_optimizer(model)
    assert model.proximal is not None
    model.proximal.set(proximal_mu, model.get_weights())
    if clip_norm is not None:
        if model.dp_sgd is None:
            model.dp_sgd = NoisyClipping()
        model.dp_sgd.set(clip_norm, noise_multiplier)
    if correction is not None:
        if not sgd_learning_rate > 0:
            raise ValueError(f"corrected SGD needs a learning rate > 0, got {sgd_learning_rate}")
        if model.control is None:
            model.control = ControlVariates(model.trainable_variables)
        model.control.set(sgd_learning_rate, correction)
    epoch = _epoch_function(model, private=clip_norm is not None, corrected=correction is not None)
    rng = np.random.default_rng(seed)
    _reseed(model, np.random.SeedSequence(seed).spawn(1)[0])
    loss = float("nan")
    for _ in range(epochs):
        model.reset_metrics()
        order = rng.permutation(len(x))
        loss = float(epoch(x[order], y[order], np.int32(batch_size)))
    return loss


def _reseed(model: keras.Model, seed: np.random.SeedSequence) -> None:
    """Start the random layers (dropout) of ``model`` from ``seed``, a stream of the fit's own.

    Their state would otherwise carry over from whichever fits the process
    ran before, so a run would depend on how clients share processes.
    """
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        generator = getattr(layer, "seed_generator", None)
        if isinstance(generator, keras.random.SeedGenerator):
            state = generator.state
            state.assign(rng.integers(0, 2**31, size=state.shape).astype(state.dtype))


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The model's output for ``x`` (one call, no callbacks).

    ``(n,)`` for one output unit (a probability, a standardised value),
    ``(n, k)`` class probabilities for several.
    """
    out = np.asarray(model.predict_on_batch(x), dtype=np.float64)
    return out.ravel() if out.shape[-1] == 1 else out


def evaluate(
    model: keras.Model, x: np.ndarray, y: np.ndarray, encoding: TargetEncoding | None = None
) -> dict[str, float]:
    """Score the model's current weights on ``(x, y)`` (:func:`fedapp.learning.metrics.score`).

    Without ``encoding``, a binary target.
    """
    return score(encoding or BINARY, y, predict(model, x))
