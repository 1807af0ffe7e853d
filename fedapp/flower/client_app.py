"""The ClientApp: a Keras ``NumPyClient`` that trains on its own institution's rows.

What leaves a client (the privacy ledger): aggregate statistics of its
training rows (on request, once), model weights, example counts and metrics
tagged with its partition id; after the last round, on the closing query,
the confusion counts (true/false positives/negatives) of its held-out rows
at each threshold of a fixed grid, and the scores on those rows of the global
model fine-tuned on its training rows (the fine-tuned weights stay). Never a
row, never an ID. Label-skew correction adds nothing: a client's own label
prior stays in it, and the federation's comes from the class counts the
statistics already sent.

A client process keeps its compiled model and its prepared arrays between
rounds: the model is built once per process and architecture, and each round
only assigns weights (no rebuild, no retrace).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flwr.client import Client, ClientApp, NumPyClient
from flwr.common import Context, NDArrays, RecordDict, Scalar

from fedapp import data, registry
from fedapp.errors import UsageError
from fedapp.flower import dp, faults, node_state
from fedapp.flower.drift import ScaffoldRound
from fedapp.flower.protocol import (
    CLOSING_EPOCHS,
    CLOSING_THRESHOLDS,
    COUNTS_KEY,
    DATA_PATH_KEY,
    FINE_TUNED_KEY,
    PARTITION_KEY,
    PREPROCESSING_KEY,
    ROUND_KEY,
    STATISTICS_QUERY,
)
from fedapp.flower.secagg import secure_aggregation_mod
from fedapp.learning import threshold
from fedapp.learning.drift import LOCAL_STEPS_KEY, LOCAL_STEPS_QUERY, local_steps
from fedapp.learning.model import (
    build_model,
    evaluate,
    label_shift_ratio,
    output_of,
    predict,
    train,
)
from fedapp.protection import attacks
from fedapp.registry import OutputSpec
from fedapp.settings import NODE_DATA, DpMode, RunConfig

# The fine-tuning's row-order stream, above any round number.
_FINE_TUNE_STREAM = 1 << 21


@dataclass(frozen=True)
class _Arrays:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    encoding: data.TargetEncoding
    # The rows its own evaluation scores: the validation rows, else the test rows.
    x_eval: np.ndarray
    y_eval: np.ndarray


@functools.lru_cache(maxsize=8)
def _model(
    n_features: int,
    learning_rate: float,
    model: str,
    params: tuple[tuple[str, Any], ...],
    output: OutputSpec,
    label_shift: bool,
):
    """One compiled model per process, architecture, task and loss, shared by its clients.

    ``params`` are the model's resolved parameters as ``(name, value)`` pairs
    (hashable: a list parameter's value is a tuple).
    """
    return build_model(
        n_features, learning_rate, model=model, params=dict(params), output=output,
        label_shift=label_shift,
    )  # fmt: skip


def _model_of(cfg: RunConfig, n_features: int, encoding: data.TargetEncoding) -> Any:
    """The cached model of ``cfg``'s model plugin and parameters over ``n_features``."""
    params = registry.get_model(cfg.model).resolve(cfg.model_params)
    output = output_of(encoding)
    return _model(
        n_features, cfg.learning_rate, cfg.model, tuple(params.items()), output,
        cfg.label_skew_correction,
    )  # fmt: skip


@functools.lru_cache(maxsize=256)
def _arrays(cfg_json: str, partition_id: int, preprocessing: str) -> _Arrays:
    """This client's rows, transformed once with the federation's preprocessing."""
    cfg = RunConfig.from_mapping(json.loads(cfg_json))
    rows = data.client_share(cfg, partition_id)
    prep = data.Preprocessor.from_json(preprocessing)
    x_train, y_train = prep.transform(rows.train)
    x_test, y_test = prep.transform(rows.test)
    held = rows.validation
    x_eval, y_eval = (x_test, y_test) if held is None else prep.transform(held)
    return _Arrays(x_train, y_train, x_test, y_test, prep.encoding, x_eval, y_eval)


class ChurnClient(NumPyClient):
    """One institution: fits and evaluates the global model on its own rows.

    Parameters
    ----------
    cfg : RunConfig
        The run's settings (local epochs, batch size, ...).
    partition_id : int
        Which institution this is (Flower's ``partition-id`` node config).
    data_cfg : RunConfig | None
        Where the rows come from when not from ``cfg``'s own split: a deployed
        SuperNode's one-file federation (:func:`node_data_config`), where it is the
        only client.
    state : RecordDict | None
        The node's persistent Flower state (``Context.state``): where
        record-level DP keeps the rounds this client has spent.

    """

    def __init__(
        self,
        cfg: RunConfig,
        partition_id: int,
        data_cfg: RunConfig | None = None,
        state: RecordDict | None = None,
    ) -> None:
        self.cfg = cfg
        self.partition_id = partition_id
        self.state = RecordDict() if state is None else state
        self._data_cfg, self._share = (cfg, partition_id) if data_cfg is None else (data_cfg, 0)
        self._cfg_json = json.dumps(self._data_cfg.to_dict(), sort_keys=True)
        # A simulated attacker knows it is one; nothing it sends says so.
        self.attack = attacks.client_attack(
            cfg.clients, cfg.malicious, cfg.attack, cfg.seed, partition_id
        )

    def get_properties(self, config: dict[str, Scalar]) -> dict[str, Scalar]:
        """Answer the server's statistics query with aggregates of the training rows."""
        if not config.get(STATISTICS_QUERY):
            return {PARTITION_KEY: self.partition_id}
        rows = data.client_share(self._data_cfg, self._share)
        stats = data.local_statistics(rows.train, rows.schema, self.cfg.min_category_count)
        return {
            PARTITION_KEY: self.partition_id,
            "schema": json.dumps([rows.schema.numeric, rows.schema.categorical]),
            "statistics": json.dumps(stats),
        }

    def fit(
        self, parameters: NDArrays, config: dict[str, Scalar]
    ) -> tuple[NDArrays, int, dict[str, Scalar]]:
        """Train the global weights on local rows for ``local_epochs``.

        With FedProx the round's config carries ``proximal_mu`` and the loss
        gains ``(mu / 2) * ||w - w_global||^2``. With label-skew correction
        the loss weighs each class by this client's label prior over the
        federation's (:class:`~fedapp.learning.model.LabelShift`). A simulated attacker
        (``malicious``/``attack``) trains on flipped labels or sends a
        poisoned update instead (:mod:`fedapp.protection.attacks`). Under record-level DP
        the steps are DP-SGD's and the client keeps its own budget
        (:class:`fedapp.protection.privacy.RecordBudget`): once spent, it returns the
        global weights with 0 examples and its ε. Asked (FedNova), a fit
        reports its ``local-steps`` τ_i. Under SCAFFOLD the steps are plain SGD
        on the corrected gradient and the metrics carry ``c_i+ - c_i``
        (:class:`~fedapp.flower.drift.ScaffoldRound`).
        """
        arrays, model = self._prepare(parameters, config)
        budget = (
            dp.record_budget(self.cfg, len(arrays.y_train), self.state)
            if self.cfg.dp == DpMode.RECORD
            else None
        )
        if budget is not None and not budget.can_train():
            # Spent: it sends no update, and 0 examples keep it out of the average.
            return parameters, 0, {PARTITION_KEY: self.partition_id, **budget.metrics()}
        attack = self.attack
        y_train = (
            attacks.flip_labels(arrays.y_train, arrays.encoding.task, arrays.encoding.outputs)
            if attack and attack.flips_labels
            else arrays.y_train
        )
        if model.label_shift is not None:
            # From the labels it trains on, which never leave it; the
            # federation's prior came with the preprocessing.
            model.label_shift.set(label_shift_ratio(y_train, arrays.encoding))
        scaffold = ScaffoldRound.of(config, parameters, self.state)
        loss = train(
            model,
            arrays.x_train,
            y_train,
            epochs=self.cfg.local_epochs,
            batch_size=self.cfg.batch_size,
            seed=[self.cfg.seed, int(config.get(ROUND_KEY, 0)), self.partition_id],
            proximal_mu=float(config.get("proximal_mu", 0.0)),
            clip_norm=self.cfg.clip_norm if budget is not None else None,
            noise_multiplier=self.cfg.noise_multiplier,
            correction=scaffold.correction if scaffold else None,
            sgd_learning_rate=scaffold.learning_rate if scaffold else 0.0,
        )
        metrics: dict[str, Scalar] = {PARTITION_KEY: self.partition_id, "train-loss": loss}
        steps = local_steps(len(arrays.y_train), self.cfg.batch_size, self.cfg.local_epochs)
        if config.get(LOCAL_STEPS_QUERY):
            metrics[LOCAL_STEPS_KEY] = steps
        if budget is not None:
            budget.spend_round()
            dp.save_budget(budget, self.state)
            metrics.update(budget.metrics())
        weights = model.get_weights()
        if scaffold is not None:
            metrics.update(scaffold.finish(parameters, weights, steps, self.state))
        if attack is not None:
            # Its own stream: the noise must not replay the training shuffle's draws.
            stream = [self.cfg.seed, int(config.get(ROUND_KEY, 0)), self.partition_id, 1]
            noise = np.random.default_rng(stream)
            weights = attacks.poison_update(attack, parameters, weights, noise)
        return weights, len(arrays.y_train), metrics

    def evaluate(
        self, parameters: NDArrays, config: dict[str, Scalar]
    ) -> tuple[float, int, dict[str, Scalar]]:
        """Score the global weights on this client's held-out rows.

        Each round it scores its validation rows when it holds some out
        (``validation-fraction``), else its test rows. On the closing query
        (after the last round) the reply holds the test rows' scores, the
        validation (else test) rows' confusion counts at the thresholds asked
        for and the scores of the global model fine-tuned for the epochs
        asked for (:meth:`closing_metrics`).
        """
        arrays, model = self._prepare(parameters, config)
        closing = CLOSING_THRESHOLDS in config or CLOSING_EPOCHS in config
        x, y = (arrays.x_test, arrays.y_test) if closing else (arrays.x_eval, arrays.y_eval)
        metrics = evaluate(model, x, y, arrays.encoding)
        reply: dict[str, Scalar] = {PARTITION_KEY: self.partition_id, **metrics}
        if closing:
            reply |= self.closing_metrics(parameters, config, arrays, model)
        return metrics["loss"], len(y), reply

    def closing_metrics(
        self, parameters: NDArrays, config: dict[str, Scalar], arrays: _Arrays, model: Any
    ) -> dict[str, Scalar]:
        """The closing query's answer: confusion counts, and the fine-tuned model's scores.

        The counts are of the global model's predictions on the validation
        rows (the test rows without them), at each threshold of ``config``'s
        JSON list. Fine-tuning trains a copy of the global weights on the
        training rows, from a stream of its own, and scores it on the test
        rows; the cached model gets
        the global weights back, as other clients of this process share it.
        """
        out: dict[str, Scalar] = {}
        grid = json.loads(str(config.get(CLOSING_THRESHOLDS) or "[]"))
        if grid:
            # Validation rows when it holds some: the test rows choose nothing.
            probabilities = predict(model, arrays.x_eval)
            counts = threshold.confusion_counts(arrays.y_eval, probabilities, grid)
            out[COUNTS_KEY] = threshold.encode_counts(counts)
        epochs = int(config.get(CLOSING_EPOCHS, 0))
        if epochs > 0:
            if model.label_shift is not None:
                # The fine-tuned model is this client's own: it learns its prior.
                model.label_shift.set(np.ones(model.label_shift.ratio.shape))
            try:
                train(
                    model, arrays.x_train, arrays.y_train,
                    epochs=epochs, batch_size=self.cfg.batch_size,
                    # Past every round's stream [seed, round, partition].
                    seed=[self.cfg.seed, _FINE_TUNE_STREAM, self.partition_id],
                )  # fmt: skip
                tuned = evaluate(model, arrays.x_test, arrays.y_test, arrays.encoding)
            finally:
                model.set_weights(parameters)
            out[FINE_TUNED_KEY] = json.dumps(tuned)
        return out

    def _prepare(self, parameters: NDArrays, config: dict[str, Any]) -> tuple[_Arrays, Any]:
        arrays = _arrays(self._cfg_json, self._share, str(config[PREPROCESSING_KEY]))
        model = _model_of(self.cfg, arrays.x_train.shape[1], arrays.encoding)
        model.set_weights(parameters)
        return arrays, model


def node_data_config(cfg: RunConfig, path: str) -> RunConfig:
    """The one-file federation of a SuperNode's ``data-path``, read as ``cfg`` says.

    Only the settings that decide how a table is read and split carry over;
    the file is this node's whole share, with ``test-fraction`` held out.
    """
    return RunConfig(
        clients=1,
        client_data=(path,),
        target=cfg.resolved_target,
        task=cfg.task,
        positive_label=cfg.positive_label,
        id_column=cfg.id_column,
        drop=cfg.drop,
        categorical=cfg.categorical,
        na_values=cfg.na_values,
        sep=cfg.sep,
        encoding=cfg.encoding,
        max_categories=cfg.max_categories,
        test_fraction=cfg.test_fraction,
        validation_fraction=cfg.validation_fraction,
        min_category_count=cfg.min_category_count,
        seed=cfg.seed,
    )


def client_fn(context: Context, cfg: RunConfig | None = None) -> Client:
    """Build the client for one message, with ``cfg`` or Flower's run config.

    A SuperNode whose node config names a ``data-path`` trains on that file;
    otherwise its ``partition-id`` picks its share of the run's data.
    """
    if cfg is None:
        cfg = RunConfig.from_mapping(dict(context.run_config), source="run config")
    node = context.node_config
    if PARTITION_KEY not in node:
        raise UsageError(f"this SuperNode's node config has no '{PARTITION_KEY}'")
    partition_id = int(node[PARTITION_KEY])
    if DATA_PATH_KEY in node:
        own = node_data_config(cfg, str(node[DATA_PATH_KEY]))
        return ChurnClient(cfg, partition_id, own, context.state).to_client()
    if cfg.data == NODE_DATA:
        raise UsageError(
            f"the run reads each SuperNode's own data, but this one's node config has no "
            f"'{DATA_PATH_KEY}'"
        )
    return ChurnClient(cfg, partition_id, state=context.state).to_client()


def build_client_app(cfg: RunConfig | None = None, state_root: Path | None = None) -> ClientApp:
    """A ClientApp for ``cfg``; without it, settings come from Flower's run config.

    ``state_root`` is where simulated clients keep their state between
    rounds on disk (:mod:`fedapp.flower.node_state`); deployed, each
    SuperNode's ``state-dir`` node config.
    """

    def for_context(context: Context) -> Client:
        return client_fn(context, cfg)

    # Injected faults first: a dropped client does nothing at all. Its state
    # next, around everything that may change it. SecAgg+ then: it must see
    # the weights after every other mod (clipping). Central DP's client-side
    # clipping comes last, nearest the client: it clips the plain update
    # before SecAgg+ quantises and masks it.
    mods = [
        *faults.client_mods(cfg),
        *node_state.state_mods(cfg, state_root),
        secure_aggregation_mod(cfg),
        *dp.client_mods(cfg),
    ]
    return ClientApp(client_fn=for_context, mods=mods)


# The Flower App component (`flwr run`): settings from `[tool.flwr.app.config]`.
app = build_client_app()
