"""``fedapp predict``: score new rows with a finished run's model, as the run read its own."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedapp.cli.app import app
from fedapp.cli.output import console, fail, warn
from fedapp.errors import UsageError
from fedapp.runs import json_safe, metric_label, metric_names, scorable_run
from fedapp.runs.closing import run_threshold

# fedapp.learning.scoring.DEFAULT_CHUNK_ROWS, which --help cannot import (TensorFlow).
_CHUNK_ROWS = 25_000


@app.command()
def predict(
    run_dir: Annotated[
        Path, typer.Argument(help="A finished run's directory (model.keras, preprocessing.json).")
    ],
    data_file: Annotated[
        Path, typer.Option("--data", help="CSV or Parquet file of the rows to score.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where the predictions go, .csv or .parquet: the run's id column (if it had "
            "one), then <target>_probability and <target>_predicted (binary, positive at the "
            "run's decision threshold: its calibrated or set threshold, else 0.5), "
            "<target>_probability_<class> per class and <target>_predicted (multiclass), or "
            "<target>_predicted in the target's units (regression). An existing file is "
            "refused unless --force.",
        ),
    ] = None,
    evaluate: Annotated[
        bool,
        typer.Option(
            "--evaluate",
            help="The file has the target column: print the task's metrics of the predictions.",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows read and scored at a time.")
    ] = _CHUNK_ROWS,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print {rows, out, columns, metrics, evaluated, threshold} as JSON on stdout.",
        ),
    ] = False,
) -> None:
    """Score the rows of a CSV or Parquet file with a finished run's model.

    The rows go through the run's own preprocessing: the same missing-value
    markers and blanks, rare and unseen categories as "other", missing
    numbers as the federated mean. Columns may come in any order and extra
    ones are ignored; a missing feature column stops with exit code 2. The
    file is read and scored in chunks (bounded memory), and the output is
    written whole or not at all.
    """
    if out is None and not evaluate:
        raise fail("give --out FILE (.csv or .parquet) for the predictions, or --evaluate")
    try:
        # pandas: only scoring reads tables; the file's checks come before the model loads.
        from fedapp.data.chunks import check_output
        from fedapp.data.files import check_file

        if out is not None:
            check_output(out, force)
        view = scorable_run(run_dir)
        check_file(data_file)
        # TensorFlow: the model loads only once everything cheap to check is.
        from fedapp.learning.scoring import RunScorer, predict_file

        scorer = RunScorer.of(view)
        if view.partial_round is not None:
            warn(f"run {view.run_id} was stopped: this is its model of round {view.partial_round}")
        result = predict_file(
            scorer, data_file, out, evaluate=evaluate, chunk_rows=chunk_rows, force=force,
            progress=_progress(chunk_rows),
        )  # fmt: skip
    except UsageError as err:
        raise fail(str(err)) from None
    # On stderr: --json's stdout holds the JSON alone.
    if result.threshold is not None:
        _, source = run_threshold(view.summary)
        console.print(
            f"predicted class positive at probability >= {result.threshold:g} ({source})",
            highlight=False,
        )
    if as_json:
        sys.stdout.write(json.dumps(json_safe(result.to_dict()), indent=2) + "\n")
        return
    if result.out is not None:
        console.print(
            f"wrote {result.rows:,} predictions to {escape(str(result.out))} "
            f"({escape(', '.join(result.columns))})",
            highlight=False,
            soft_wrap=True,
        )
    if result.metrics is not None:
        _print_metrics(result.metrics, view.task, result.evaluated, result.rows)


def _progress(chunk_rows: int) -> Callable[[int], None]:
    """Say the rows scored so far on stderr, once a file takes more than one chunk."""

    def told(rows: int) -> None:
        if rows > chunk_rows:
            console.print(f"scored {rows:,} rows", highlight=False)

    return told


def _print_metrics(metrics: dict[str, float], task: str, evaluated: int, rows: int) -> None:
    table = Table(title=f"{task} metrics over {evaluated:,} rows with a target")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in metric_names(task, metrics.keys()):
        value = metrics.get(name)
        shown = "-" if value is None or not math.isfinite(value) else f"{value:.4f}"
        table.add_row(escape(metric_label(name, task)), shown)
    Console().print(table)
    if evaluated < rows:
        warn(f"{rows - evaluated:,} rows without a target value are not in the metrics")
