"""New rows scored with a finished run's model: ``fedapp predict`` and the UI's "Score a file".

A run directory holds all it takes: ``model.keras``, ``preprocessing.json``
(the federated means, vocabularies and the target's encoding) and
``config.json`` (how the run read its tables: missing-value markers, the
identifier column). :class:`RunScorer` types each chunk of new rows by the
run's schema (:func:`fedapp.data.sources.typed_features`: the same blanks,
markers and text as training, columns in any order, extra ones ignored),
transforms it with the run's preprocessing (unseen and rare categories fold
into "other", missing numbers take the federated mean) and scores it.
:class:`Evaluation` gathers targets and outputs over the chunks, so that its
metrics are those of scoring every row at once.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from fedapp.data import ReadOptions, read_options, table_spec
from fedapp.data.chunks import TableWriter, check_output, read_chunks
from fedapp.data.sources import TableSpec, check_present, typed_features, typed_target
from fedapp.data.stats import Preprocessor, TargetEncoding
from fedapp.errors import UsageError
from fedapp.learning.metrics import THRESHOLD, score
from fedapp.learning.model import predict
from fedapp.learning.threshold import metrics_at
from fedapp.runs import RunView, scorable_run
from fedapp.runs.closing import run_threshold
from fedapp.settings import RunConfig, Task

# Rows scored at a time: some 150 MiB of text, typed columns and model input at the most,
# whatever the file's length (bench/bench_predict.py).
DEFAULT_CHUNK_ROWS = 25_000


def id_column_of(config: Mapping[str, Any], preprocessing: Mapping[str, Any]) -> str | None:
    """The identifier column a run's predictions carry, if it had one.

    The run's ``id-column`` setting. An identifier the run found by itself
    (recorded in ``config.json`` or ``preprocessing.json``) would be read
    here too, so that predictions carry whatever the run left out as an id.
    """
    del preprocessing  # no identifier is recorded there yet
    named = config.get("id-column")
    return str(named) if named else None


def output_columns(encoding: TargetEncoding, target: str) -> tuple[str, ...]:
    """The prediction columns for a run's target, after the id column.

    Binary: ``<target>_probability`` (of the positive class) and
    ``<target>_predicted`` (the class, positive at or above the threshold);
    multiclass: ``<target>_probability_<class>`` per class and
    ``<target>_predicted`` (the likeliest class); regression:
    ``<target>_predicted`` in the target's units.
    """
    predicted = f"{target}_predicted"
    if encoding.task is Task.BINARY:
        return f"{target}_probability", predicted
    if encoding.task is Task.MULTICLASS:
        return (*(f"{target}_probability_{c}" for c in encoding.classes), predicted)
    return (predicted,)


@dataclass(frozen=True)
class Scored:
    """One chunk scored.

    Attributes
    ----------
    predictions : pandas.DataFrame
        The id column (if the run had one) and :func:`output_columns`.
    output : numpy.ndarray
        The model's raw output for every row.
    y : numpy.ndarray | None
        With a target: the encoded target of the rows that have one.
    labelled : numpy.ndarray | None
        With a target: the positions of those rows in the chunk.

    """

    predictions: pd.DataFrame
    output: np.ndarray
    y: np.ndarray | None = None
    labelled: np.ndarray | None = None


class RunScorer:
    """A run's model with its preprocessing and table settings, ready to score rows.

    Parameters
    ----------
    model : keras.Model
        The run's model (``model.keras``).
    preprocessor : Preprocessor
        The run's preprocessing (``preprocessing.json``).
    spec : TableSpec
        How the run read its tables (its missing-value markers).
    id_column : str | None
        The column the predictions carry to name their rows.
    threshold : float
        A binary prediction is the positive class at or above this probability.
    read : ReadOptions | None
        How the run read its files (separator, encoding, markers); ``None``
        sniffs and detects with the default markers.

    """

    def __init__(
        self,
        model: keras.Model,
        preprocessor: Preprocessor,
        spec: TableSpec,
        id_column: str | None = None,
        threshold: float = THRESHOLD,
        read: ReadOptions | None = None,
    ) -> None:
        self.read = read
        self.model = model
        self.preprocessor = preprocessor
        self.spec = spec
        self.id_column = id_column
        self.threshold = threshold
        self.schema = preprocessor.schema

    @classmethod
    def load(cls, path: Path) -> RunScorer:
        """The scorer of the run in directory ``path`` (:func:`fedapp.runs.scorable_run`).

        Raises
        ------
        UsageError
            For a path that is no run, a run without a model, or a model that
            does not load.

        """
        view = scorable_run(path)
        return cls.of(view)

    @classmethod
    def of(cls, view: RunView) -> RunScorer:
        """The scorer of a run that has a model (see :meth:`load`)."""
        run = view.run_dir
        text = run.preprocessing_file.read_text(encoding="utf-8")
        preprocessor = Preprocessor.from_json(text)
        cfg = RunConfig.from_mapping(view.config, source=str(run.config_file))
        try:
            model = keras.saving.load_model(run.model_file, compile=False)
        except (OSError, ValueError) as err:
            raise UsageError(f"{run.model_file}: cannot be loaded as a Keras model: {err}") from err
        id_column = id_column_of(view.config, json.loads(text))
        # The run's decision threshold (calibrated or set; 0.5 for runs without one).
        threshold, _ = run_threshold(view.summary)
        return cls(
            model, preprocessor, table_spec(cfg), id_column, threshold, read=read_options(cfg)
        )

    @property
    def encoding(self) -> TargetEncoding:
        """The run's target encoding (task and classes)."""
        return self.preprocessor.encoding

    @property
    def target(self) -> str:
        """The run's target column."""
        return self.preprocessor.target

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns of the predictions, the id column first."""
        ids = (self.id_column,) if self.id_column else ()
        return (*ids, *output_columns(self.encoding, self.target))

    def check(self, frame: pd.DataFrame, source: str, evaluate: bool = False) -> None:
        """Refuse a table lacking a column the run needs, naming every one.

        The features, the id column (if the run had one) and, to ``evaluate``,
        the target.
        """
        needed = dict.fromkeys(self.schema.features, "feature")
        if self.id_column:
            needed[self.id_column] = "the run's id column"
        if evaluate:
            needed[self.target] = "the target, to evaluate"
        check_present(frame, needed, source)

    def score(self, frame: pd.DataFrame, source: str, evaluate: bool = False) -> Scored:
        """Score one table (or chunk of one); with ``evaluate``, read its target too.

        Raises
        ------
        UsageError
            For a missing column, text in a numeric column, or (to evaluate)
            a target class the run was not trained on.

        """
        self.check(frame, source, evaluate)
        features = typed_features(frame, self.schema, self.spec, source)
        output = predict(self.model, self.preprocessor.features_of(features))
        ids = frame[self.id_column] if self.id_column else None
        predictions = self.predictions(output, ids)
        if not evaluate:
            return Scored(predictions, output)
        target = typed_target(frame, self.schema, self.spec, source)
        labelled = frame.index.get_indexer(target.index)
        return Scored(predictions, output, self.encoding.encode(target), labelled)

    def predictions(self, output: np.ndarray, ids: pd.Series | None = None) -> pd.DataFrame:
        """The predictions frame of the model's ``output`` (:func:`output_columns`)."""
        encoding = self.encoding
        names = output_columns(encoding, self.target)
        columns: dict[str, Any] = {}
        if ids is not None and self.id_column:
            columns[self.id_column] = ids.to_numpy()
        if encoding.task is Task.BINARY:
            negative, positive = encoding.classes
            columns[names[0]] = output
            columns[names[1]] = np.where(output >= self.threshold, positive, negative)
        elif encoding.task is Task.MULTICLASS:
            for k, name in enumerate(names[:-1]):
                columns[name] = output[:, k]
            columns[names[-1]] = np.asarray(encoding.classes, dtype=object)[output.argmax(axis=1)]
        else:
            columns[names[0]] = encoding.decode(output)
        return pd.DataFrame(columns)


@dataclass
class Evaluation:
    """Encoded targets and outputs gathered over chunks, scored once at the end.

    AUCs and the like rank every row against every other, so the metrics of
    the whole file are those of its rows pooled, not a mean over chunks.
    A binary target's accuracy, F1, precision and recall are at ``threshold``.
    """

    encoding: TargetEncoding
    threshold: float = THRESHOLD
    _y: list[np.ndarray] = field(default_factory=list)
    _output: list[np.ndarray] = field(default_factory=list)

    def add(self, scored: Scored) -> None:
        """Add a chunk's labelled rows."""
        assert scored.y is not None and scored.labelled is not None
        self._y.append(scored.y)
        self._output.append(scored.output[scored.labelled])

    @property
    def rows(self) -> int:
        """Rows with a target so far."""
        return sum(len(y) for y in self._y)

    def metrics(self) -> dict[str, float] | None:
        """The task's metrics over every row added (``None`` before any)."""
        if not self.rows:
            return None
        y, output = np.concatenate(self._y), np.concatenate(self._output)
        scores = score(self.encoding, y, output)
        if self.encoding.task is Task.BINARY and self.threshold != THRESHOLD:
            scores |= metrics_at(y, output, self.threshold)
        return scores


@dataclass(frozen=True)
class PredictResult:
    """What :func:`predict_file` did.

    Attributes
    ----------
    rows : int
        Rows scored.
    out : Path | None
        The predictions file written (``None`` when none was asked for).
    columns : tuple[str, ...]
        Its columns.
    metrics : dict[str, float] | None
        With ``evaluate``: the task's metrics over the rows with a target.
    evaluated : int
        Rows with a target (the rows the metrics are of).
    threshold : float | None
        A binary run's decision threshold, which the predicted class and the
        thresholded metrics use; ``None`` for other tasks.

    """

    rows: int
    out: Path | None
    columns: tuple[str, ...]
    metrics: dict[str, float] | None = None
    evaluated: int = 0
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as ``fedapp predict --json`` prints it."""
        return {
            "rows": self.rows,
            "out": None if self.out is None else str(self.out),
            "columns": list(self.columns),
            "metrics": self.metrics,
            "evaluated": self.evaluated if self.metrics is not None else None,
            "threshold": self.threshold,
        }


def predict_file(
    scorer: RunScorer,
    data: Path,
    out: Path | None = None,
    *,
    evaluate: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PredictResult:
    """Score every row of ``data`` a chunk at a time, writing the predictions to ``out``.

    Parameters
    ----------
    scorer : RunScorer
        The run's scorer.
    data : Path
        A CSV or Parquet file of rows to score.
    out : Path | None
        Where the predictions go (``.csv`` or ``.parquet``), written
        atomically: whole, or not at all when any chunk fails.
    evaluate : bool
        Score the predictions against the file's target column as well.
    chunk_rows : int
        Rows read and scored at a time.
    force : bool
        Replace ``out`` if it exists (refused otherwise).
    progress : Callable[[int], None] | None
        Told the rows scored so far after each chunk.

    Raises
    ------
    UsageError
        For an unusable output path, an unreadable file, missing columns,
        text in a numeric column, or (to evaluate) a target with no value.

    """
    if out is not None:
        check_output(out, force)
    if chunk_rows < 1:
        raise UsageError(f"chunk-rows must be at least 1, not {chunk_rows}")
    source = str(data)
    evaluation = Evaluation(scorer.encoding, scorer.threshold) if evaluate else None
    rows = 0
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(TableWriter(out)) if out is not None else None
        for chunk in read_chunks(data, chunk_rows, scorer.read):
            scored = scorer.score(chunk, source, evaluate)
            if writer is not None:
                writer.write(scored.predictions)
            if evaluation is not None:
                evaluation.add(scored)
            rows += len(chunk)
            if progress is not None:
                progress(rows)
        if evaluation is not None and not evaluation.rows:
            raise UsageError(
                f"{source}: target '{scorer.target}' has no values to evaluate against"
            )
    metrics = evaluation.metrics() if evaluation is not None else None
    evaluated = evaluation.rows if evaluation is not None else 0
    binary = scorer.encoding.task is Task.BINARY
    threshold = scorer.threshold if binary else None
    return PredictResult(rows, out, scorer.columns, metrics, evaluated, threshold)
