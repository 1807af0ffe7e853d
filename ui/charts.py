"""Per-round charts of a run's metrics, built from the events of ``metrics.jsonl``.

Every chart is a pure function of already-read events (see :mod:`fedapp.runs`)
that returns a :class:`plotly.graph_objects.Figure`; nothing here reads files or
knows about Streamlit, so the same charts serve the UI, notebooks and reports.

The events are read defensively: a run in progress or one that was stopped has
rounds missing, a metric may be ``null`` (AUC is undefined on a one-class test
set), and stages, scopes or keys this module does not know are ignored.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale

from fedapp.runs import higher_is_better, metric_label

__all__ = [
    "chart_csv",
    "clients_by_round",
    "compare_runs",
    "confusion_matrix",
    "epsilon_by_round",
    "final_model_charts",
    "metric_by_round",
    "palette",
    "pr_curve",
    "predicted_vs_actual",
    "residual_quantiles",
    "roc_curve",
    "rounds_shown",
    "series",
    "trials_chart",
    "update_norms",
]

# D3's palette stays legible on white, unlike the pastel first colours of `Safe`.
PALETTE: tuple[str, ...] = tuple(qualitative.D3)
# For more lines than D3 has colours: 24 that stay apart, then hues along Turbo.
_MANY: tuple[str, ...] = tuple(qualitative.Dark24)
BASELINE_COLOR = "#555555"
# Compared runs' lines: dashes and markers that tell coinciding curves apart
# ("dot" is left to the baselines).
RUN_DASHES = ("solid", "dash", "dashdot", "longdash", "longdashdot", "5px,2px,1px,2px")
RUN_MARKERS = ("circle", "square", "diamond", "triangle-up", "x", "star")
HEIGHT = 400
EMPTY_MESSAGE = "No rounds yet"
# What a chart of curves.json says when the file lacks the curve.
NOT_RECORDED = "Not recorded"

# The federated training loss only exists in the fit events; everything else is
# an evaluation score.
TRAIN_LOSS = "train-loss"
# The clients' own evaluation of the global model, weighted by their held-out rows.
WEIGHTED = "clients' held-out data (weighted)"
# The residual quantiles (curves.json's keys) a regression's charts show, and their names.
RESIDUAL_QUANTILES = {"0.05": "5%", "0.25": "25%", "0.5": "median", "0.75": "75%", "0.95": "95%"}


def palette(count: int) -> tuple[str, ...]:
    """``count`` colours, none repeated: D3's ten, then Dark24's 24, then hues along Turbo.

    Lines beyond 24 get evenly spaced hues: distinct, if harder to tell apart
    than the named colours; the legend and the hover name each one.
    """
    if count <= len(PALETTE):
        return PALETTE[:count]
    if count <= len(_MANY):
        return _MANY[:count]
    return tuple(sample_colorscale("Turbo", [i / (count - 1) for i in range(count)]))


def series(
    events: Iterable[Mapping[str, Any]],
    metric: str,
    *,
    stage: str = "evaluate",
    scope: str = "centralized",
    client: str | None = None,
) -> tuple[list[int], list[float | None]]:
    """Rounds and values of one metric, sorted by round.

    Parameters
    ----------
    events : Iterable[Mapping[str, Any]]
        The events of ``metrics.jsonl``, in the order they were written.
    metric : str
        The metric key, e.g. ``"auc"`` or ``"train-loss"``.
    stage : str
        The events' ``stage`` to read (``"evaluate"`` or ``"fit"``).
    scope : str
        The events' ``scope`` to read (``"centralized"`` or ``"federated"``).
    client : str | None
        ``None`` reads the aggregate ``event["metrics"]``; a client id reads
        ``event["clients"][client]``.

    Returns
    -------
    tuple[list[int], list[float | None]]
        The rounds, ascending, and the metric's value in each. A value that is
        ``null``, not a number or not finite is ``None``, so that a line shows a
        gap there. A round whose event lacks the metric (or the client, which
        was not sampled that round) is left out. When a round appears more than
        once, the last event wins.

    """
    by_round: dict[int, float | None] = {}
    for event in events:
        if not isinstance(event, Mapping):
            continue
        if event.get("stage") != stage or event.get("scope") != scope:
            continue
        round_ = event.get("round")
        if not isinstance(round_, int) or isinstance(round_, bool):
            continue
        values = event.get("metrics")
        if client is not None:
            clients = event.get("clients")
            values = clients.get(str(client)) if isinstance(clients, Mapping) else None
        if not isinstance(values, Mapping) or metric not in values:
            continue
        by_round[round_] = _number(values[metric])
    rounds = sorted(by_round)
    return rounds, [by_round[r] for r in rounds]


def metric_by_round(
    events: Iterable[Mapping[str, Any]],
    metric: str,
    *,
    baseline: float | None = None,
    task: str = "binary",
) -> go.Figure:
    """The global model's score per round, on the global test set and on the clients' data.

    Parameters
    ----------
    events : Iterable[Mapping[str, Any]]
        The events of ``metrics.jsonl``.
    metric : str
        The metric key. ``"train-loss"`` has no evaluation; it is drawn from the
        fit events as a single line, ``"clients' training data (weighted)"``.
    baseline : float | None
        The centralized baseline's score, drawn as a dashed horizontal line
        labelled with its value; ``None`` (or a non-finite value) draws none.
    task : str
        The run's task, which names the metric (``loss`` is a log-loss or an MSE).

    Returns
    -------
    go.Figure
        A line ``"global test set"`` (the centralized evaluation, from round 0,
        the initial weights) and a line ``"clients' held-out data (weighted)"``
        (the federated evaluation); a line without any round is left out. Where
        the events say how many clients each weighted value covers
        (``coverage`` and ``reported``), the hover says it per round, and the
        line's name says it when the last round's leaves clients out. With no
        rounds at all, an empty chart that says so.

    """
    events = list(events)  # read twice, and callers may pass a generator
    label = metric_label(metric, task)
    if metric == TRAIN_LOSS:
        fit = series(events, metric, stage="fit", scope="federated")
        lines = [("clients' training data (weighted)", fit)]
    else:
        lines = [
            ("global test set", series(events, metric, scope="centralized")),
            (WEIGHTED, series(events, metric, scope="federated")),
        ]
    figure = _figure(f"{label} per round", label)
    for index, (name, (rounds, values)) in enumerate(lines):
        if rounds:
            figure.add_trace(_line(name, rounds, values, PALETTE[index]))
    if not figure.data:
        return _empty(figure)
    if metric != TRAIN_LOSS:
        _show_coverage(figure, events, metric)
    finite = _number(baseline)
    if finite is not None:
        # Round 0 starts worse than the baseline: below it for a score and
        # above it for a loss, which leaves the other side free for text.
        _reference_line(
            figure, finite, f"centralized baseline {finite:.4f}",
            "top left" if higher_is_better(metric) else "bottom left",
        )  # fmt: skip
    return _finish(figure)


def clients_by_round(
    events: Iterable[Mapping[str, Any]],
    metric: str,
    *,
    labels: Mapping[str, str] | None = None,
    task: str = "binary",
) -> go.Figure:
    """Each client's own value of a metric per round.

    Parameters
    ----------
    events : Iterable[Mapping[str, Any]]
        The events of ``metrics.jsonl``.
    metric : str
        The metric key. ``"train-loss"`` reads the fit events; any other the
        clients' evaluation on their held-out data (federated evaluate events).
    labels : Mapping[str, str] | None
        Display names by client id (e.g. ``{"0": "inst-0"}``); a client
        without one is shown as ``"client <id>"``.
    task : str
        The run's task, which names the metric.

    Returns
    -------
    go.Figure
        One line per client that reported the metric, ordered by client id
        (numerically), each in its own colour (:func:`palette`); a client
        that reported it without a value in any round is named ``"<name>
        (no <metric>)"``. With no rounds at all, an empty chart that says so.

    """
    events = list(events)
    label = metric_label(metric, task)
    stage = "fit" if metric == TRAIN_LOSS else "evaluate"
    matching = [
        event
        for event in events
        if isinstance(event, Mapping)
        and event.get("stage") == stage
        and event.get("scope") == "federated"
    ]
    labels = labels or {}
    figure = _figure(f"{label} per client", label)
    clients = _client_ids(matching)
    for client, colour in zip(clients, palette(len(clients)), strict=True):
        rounds, values = series(matching, metric, stage=stage, scope="federated", client=client)
        if rounds:
            name = labels.get(client, f"client {client}")
            if all(v is None for v in values):  # its line would be invisible: the legend says why
                name = f"{name} (no {label})"
            figure.add_trace(_line(name, rounds, values, colour))
    if not figure.data:
        return _empty(figure)
    return _finish(figure)


def compare_runs(
    runs: Mapping[str, Iterable[Mapping[str, Any]]],
    metric: str,
    *,
    baselines: Mapping[str, float | None] | None = None,
    task: str = "binary",
) -> go.Figure:
    """Several runs' global models on the same chart (runs of one task).

    Parameters
    ----------
    runs : Mapping[str, Iterable[Mapping[str, Any]]]
        Each run's events, keyed by the label to show for the run.
    metric : str
        The metric key, read from the centralized evaluation (global test set).
    baselines : Mapping[str, float | None] | None
        Each run's centralized baseline by run label; a missing or ``None``
        one is not drawn.
    task : str
        The runs' task, which names the metric.

    Returns
    -------
    go.Figure
        One line per run with rounds, in the order of ``runs``, each with its
        own colour, dash and marker (curves that coincide stay apart), and for each
        baseline a dotted horizontal line in its run's colour, grouped with the
        run in the legend (clicking the run hides both) but without an entry
        of its own. With no rounds at all, an empty chart that says so.

    """
    label = metric_label(metric, task)
    baselines = baselines or {}
    figure = _figure(f"{label} per round on the global test set", label)
    # A run keeps its colour by position even when another one has no rounds yet,
    # so that colours do not shift while runs are starting.
    colours = dict(zip(runs, palette(len(runs)), strict=True))
    all_rounds: set[int] = set()
    for run, events in runs.items():
        rounds, values = series(events, metric, scope="centralized")
        if rounds:
            all_rounds.update(rounds)
            trace = _line(run, rounds, values, colours[run])
            # Runs whose curves coincide (weighted with η = 1 is FedAvg) stay
            # visible one over the other: each has its own dash and marker.
            position = list(runs).index(run)
            trace.line.dash = RUN_DASHES[position % len(RUN_DASHES)]
            trace.marker.symbol = RUN_MARKERS[position % len(RUN_MARKERS)]
            trace.marker.size = 8
            trace.legendgroup = run
            figure.add_trace(trace)
    if not figure.data:
        return _empty(figure)
    # One point per plotted round, so that the unified hover lists the baseline
    # next to the run at any round.
    span = sorted(all_rounds)
    for run in runs:
        value = _number(baselines.get(run))
        if value is None:
            continue
        # The baselines have no legend entries of their own; this says what they are.
        figure.update_layout(
            legend_title={
                "text": "dotted: centralized baseline ",
                "font": {"size": 11, "color": BASELINE_COLOR},
            }
        )
        figure.add_trace(
            go.Scatter(
                x=span,
                y=[value] * len(span),
                name=f"{run} (centralized baseline)",
                mode="lines",
                line={"color": colours[run], "width": 1.5, "dash": "dot"},
                legendgroup=run,
                showlegend=False,
            )
        )
    return _finish(figure)


def epsilon_by_round(
    events: Iterable[Mapping[str, Any]],
    *,
    target: float | None = None,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """The privacy spent (ε) after each round, from the ``privacy`` events.

    Parameters
    ----------
    events : Iterable[Mapping[str, Any]]
        The events of ``metrics.jsonl``.
    target : float | None
        The run's ε budget, drawn as a dashed horizontal line; ``None`` draws none.
    labels : Mapping[str, str] | None
        Display names by client id, for the per-client lines of record-level DP.

    Returns
    -------
    go.Figure
        A line ``"run"`` (the run's ε: the federation's under client-level DP,
        the largest client's under record-level DP) and, when the events carry
        them, a thinner line per client. With no privacy events, an empty chart
        that says so.

    """
    events = [e for e in events if isinstance(e, Mapping) and e.get("stage") == "privacy"]
    figure = _figure("Privacy spent (ε) per round", "ε")
    rounds, values = series(events, "epsilon", stage="privacy", scope="federated")
    if rounds:
        figure.add_trace(_line("run", rounds, values, PALETTE[0]))
    labels = labels or {}
    clients = _client_ids(events)
    for client, colour in zip(clients, palette(len(clients) + 1)[1:], strict=True):
        rounds, values = series(
            events, "epsilon", stage="privacy", scope="federated", client=client
        )
        if rounds:
            trace = _line(labels.get(client, f"client {client}"), rounds, values, colour)
            trace.line.width = 1
            figure.add_trace(trace)
    if not figure.data:
        return _empty(figure)
    budget = _number(target)
    if budget is not None:
        _reference_line(figure, budget, f"budget ε = {budget:g}", "bottom right")
    return _finish(figure)


def update_norms(
    events: Iterable[Mapping[str, Any]],
    *,
    labels: Mapping[str, str] | None = None,
    malicious: Iterable[str] = (),
) -> go.Figure:
    """Each client's update norm ‖w_i - w_global‖ per round, with the flagged ones marked.

    Parameters
    ----------
    events : Iterable[Mapping[str, Any]]
        The events of ``metrics.jsonl``; the fit events carry ``update-norm``
        per client and the ``flagged`` client ids.
    labels : Mapping[str, str] | None
        Display names by client id.
    malicious : Iterable[str]
        Ids of the simulated attackers: their lines are dashed and named so.

    Returns
    -------
    go.Figure
        One line per client, and a trace ``"flagged"`` of red crosses at each
        flagged client's norm in the round it was flagged. With no update
        norms (e.g. under secure aggregation), an empty chart that says so.

    """
    fits = [
        e for e in events
        if isinstance(e, Mapping) and e.get("stage") == "fit" and e.get("scope") == "federated"
    ]  # fmt: skip
    labels = labels or {}
    attackers = {str(m) for m in malicious}
    figure = _figure("Update norm per client", "‖w_i - w_global‖")
    norms: dict[tuple[int, str], float | None] = {}
    clients = _client_ids(fits)
    for client, colour in zip(clients, palette(len(clients)), strict=True):
        rounds, values = series(fits, "update-norm", stage="fit", scope="federated", client=client)
        if not rounds:
            continue
        norms.update(((r, client), v) for r, v in zip(rounds, values, strict=True))
        name = labels.get(client, f"client {client}")
        trace = _line(f"{name} (attacker)" if client in attackers else name, rounds, values, colour)
        if client in attackers:
            trace.line.dash = "dash"
        figure.add_trace(trace)
    if not figure.data:
        return _empty(figure)
    marks = [
        (event["round"], norms[(event["round"], str(c))])
        for event in fits
        for c in event.get("flagged") or []
        if norms.get((event.get("round"), str(c))) is not None
    ]
    if marks:
        figure.add_trace(
            go.Scatter(
                x=[r for r, _ in marks],
                y=[v for _, v in marks],
                name="flagged",
                mode="markers",
                marker={"symbol": "x", "size": 11, "color": "#d62728", "line": {"width": 1}},
            )
        )
    return _finish(figure)


def roc_curve(curves: Mapping[str, Any]) -> go.Figure:
    """The final model's ROC curve on the global test set, from ``curves.json``.

    Parameters
    ----------
    curves : Mapping[str, Any]
        ``curves.json``: its ``roc`` holds ``fpr``, ``tpr`` and ``auc``.

    Returns
    -------
    go.Figure
        A line ``"ROC (AUC x)"`` and the dashed diagonal ``"chance"``; without
        a ``roc`` entry, an empty chart that says so.

    """
    figure = _curve_figure("ROC curve", "false positive rate", "true positive rate")
    roc = curves.get("roc")
    if not isinstance(roc, Mapping):
        return _empty(figure, NOT_RECORDED)
    figure.add_trace(_curve(f"ROC (AUC {_auc_text(roc)})", roc.get("fpr"), roc.get("tpr")))
    figure.add_trace(_reference("chance", [0, 1], [0, 1]))
    return figure


def pr_curve(curves: Mapping[str, Any]) -> go.Figure:
    """The final model's precision-recall curve on the global test set, from ``curves.json``.

    Returns
    -------
    go.Figure
        A line ``"precision-recall (AUC x)"`` and, where ``curves.json`` has
        ``rows`` and ``positives``, the dashed ``"positive rate p"``: the
        precision of guessing; without a ``pr`` entry, an empty chart that
        says so.

    """
    figure = _curve_figure("Precision-recall curve", "recall", "precision")
    pr = curves.get("pr")
    if not isinstance(pr, Mapping):
        return _empty(figure, NOT_RECORDED)
    figure.add_trace(
        _curve(f"precision-recall (AUC {_auc_text(pr)})", pr.get("recall"), pr.get("precision"))
    )
    rows, positives = _number(curves.get("rows")), _number(curves.get("positives"))
    if rows and positives is not None:
        rate = positives / rows
        figure.add_trace(_reference(f"positive rate {rate:.2f}", [0, 1], [rate, rate]))
    return figure


def confusion_matrix(curves: Mapping[str, Any]) -> go.Figure:
    """The final model's confusion matrix on the global test set, from ``curves.json``.

    Returns
    -------
    go.Figure
        A heatmap, rows the actual class, columns the predicted one, each
        cell with its count and, on hover, its share of the actual class: 2 x 2
        (``negative``, ``positive``) at the threshold for a binary run, k x k
        over ``classes`` for a multiclass one (its ``confusion`` a k x k
        list); without a ``confusion`` entry, an empty chart that says so.

    """
    threshold = _number(curves.get("threshold"))
    title = "Confusion matrix" + (f" at threshold {threshold:g}" if threshold is not None else "")
    figure = _curve_figure(title, "predicted", "actual")
    found = _confusion_cells(curves)
    if found is None:
        return _empty(figure, NOT_RECORDED)
    classes, z = found
    totals = [sum(v for v in row if v is not None) for row in z]
    shares = [
        [None if v is None or not total else v / total for v in row]
        for row, total in zip(z, totals, strict=True)
    ]
    figure.add_trace(
        go.Heatmap(
            z=z,
            x=classes,
            y=classes,
            name="confusion",
            text=[["" if v is None else str(v) for v in row] for row in z],
            texttemplate="%{text}",
            textfont={"size": 16 if len(classes) <= 4 else 11},
            customdata=shares,
            colorscale="Blues",
            showscale=False,
            hovertemplate="actual %{y}, predicted %{x}: %{z} (%{customdata:.1%} of actual %{y})"
            "<extra></extra>",
        )
    )
    # Categories (even classes that are numbers), not [0, 1]; the first class on
    # top, as such tables read.
    figure.update_xaxes(range=None, autorange=True, showgrid=False, type="category")
    figure.update_yaxes(range=None, autorange="reversed", showgrid=False, type="category")
    return figure


def _confusion_cells(curves: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]] | None:
    """The classes and counts of ``curves.json``'s confusion matrix, binary or multiclass."""
    counts = curves.get("confusion")
    if isinstance(counts, Mapping):
        z = [[counts.get("tn"), counts.get("fp")], [counts.get("fn"), counts.get("tp")]]
        return ["negative", "positive"], [[_count(v) for v in row] for row in z]
    if not isinstance(counts, list) or not counts:
        return None
    classes = curves.get("classes")
    if not isinstance(classes, list) or len(classes) != len(counts):
        classes = list(range(len(counts)))
    if not all(isinstance(row, list) and len(row) == len(counts) for row in counts):
        return None
    return [str(c) for c in classes], [[_count(v) for v in row] for row in counts]


def predicted_vs_actual(curves: Mapping[str, Any]) -> go.Figure:
    """A regression's predictions against the actual values, from ``curves.json``.

    Parameters
    ----------
    curves : Mapping[str, Any]
        ``curves.json`` of a regression: ``actual`` and ``predicted`` (a
        sample of the global test set's rows, in the target's units),
        ``rows`` (all of them) and ``residual_quantiles``.

    Returns
    -------
    go.Figure
        Markers ``"n of N test rows"`` (x actual, y predicted), the dashed
        ``"predicted = actual"`` line across them and, where the quantiles are
        recorded, dotted lines offset by the residuals' 5% and 95% quantiles:
        nine rows in ten fall between them. Without points, an empty chart
        that says so.

    """
    figure = _xy_figure("Predicted against actual", "actual", "predicted")
    xs, ys = (
        v if isinstance(v, list) else [] for v in (curves.get("actual"), curves.get("predicted"))
    )
    # Read as pairs: a torn or hand-edited file may have one list longer.
    pairs = [
        (x, y)
        for x, y in zip(xs, ys, strict=False)
        if _number(x) is not None and _number(y) is not None
    ]
    if not pairs:
        return _empty(figure, NOT_RECORDED)
    rows = _number(curves.get("rows"))
    shown = f"{len(pairs)} of {rows:g} test rows" if rows and rows > len(pairs) else "test rows"
    figure.add_trace(
        go.Scatter(
            x=[x for x, _ in pairs], y=[y for _, y in pairs], name=shown, mode="markers",
            marker={"color": PALETTE[0], "size": 5, "opacity": 0.6},
            hovertemplate="actual %{x:.4g}, predicted %{y:.4g}<extra></extra>",
        )
    )  # fmt: skip
    low = min(min(x, y) for x, y in pairs)
    high = max(max(x, y) for x, y in pairs)
    figure.add_trace(_reference("predicted = actual", [low, high], [low, high]))
    quantiles = _residual_quantiles(curves)
    for key in ("0.05", "0.95"):
        if key in quantiles:
            offset = quantiles[key]
            band = _reference(
                f"residual {RESIDUAL_QUANTILES[key]} quantile ({offset:+.4g})",
                [low, high], [low + offset, high + offset],
            )  # fmt: skip
            band.line.dash = "dot"
            figure.add_trace(band)
    return figure


def residual_quantiles(curves: Mapping[str, Any]) -> go.Figure:
    """A regression's residuals (predicted minus actual) on the whole global test set.

    Returns
    -------
    go.Figure
        One bar per quantile of ``curves.json``'s ``residual_quantiles`` (5%,
        25%, median, 75%, 95%), labelled with its value in the target's
        units: half the rows' errors lie between the 25% and 75% bars. Without
        quantiles, an empty chart that says so.

    """
    figure = _xy_figure("Residuals (predicted - actual)", "quantile", "predicted - actual")
    quantiles = _residual_quantiles(curves)
    if not quantiles:
        return _empty(figure, NOT_RECORDED)
    names = [RESIDUAL_QUANTILES[k] for k in quantiles]
    values = list(quantiles.values())
    figure.add_trace(
        go.Bar(
            x=names, y=values, name="residual", marker={"color": PALETTE[0]},
            text=[f"{v:+.4g}" for v in values], textposition="outside",
            hovertemplate="%{x}: %{y:+.4g}<extra></extra>",
        )
    )  # fmt: skip
    figure.update_xaxes(type="category")
    figure.add_hline(y=0, line={"color": BASELINE_COLOR, "width": 1})
    return figure


def _residual_quantiles(curves: Mapping[str, Any]) -> dict[str, float]:
    """``curves.json``'s residual quantiles that :data:`RESIDUAL_QUANTILES` names, in order."""
    found = curves.get("residual_quantiles")
    found = found if isinstance(found, Mapping) else {}
    values = {key: _number(found.get(key)) for key in RESIDUAL_QUANTILES}
    return {key: value for key, value in values.items() if value is not None}


def final_model_charts(curves: Mapping[str, Any]) -> list[tuple[str, go.Figure]]:
    """The charts of ``curves.json`` for its task, each with a short name.

    Binary (also a file that names no task, written before tasks): ROC,
    precision-recall and the confusion matrix; multiclass: the confusion
    matrix over the classes; regression: predicted against actual, and the
    residuals' quantiles.
    """
    task = curves.get("task")
    if task == "multiclass":
        return [("confusion", confusion_matrix(curves))]
    if task == "regression":
        return [
            ("predicted", predicted_vs_actual(curves)),
            ("residuals", residual_quantiles(curves)),
        ]
    return [
        ("roc", roc_curve(curves)),
        ("precision-recall", pr_curve(curves)),
        ("confusion", confusion_matrix(curves)),
    ]


def chart_csv(figure: go.Figure) -> str:
    """The data a chart of this module draws, as CSV: one row per point.

    Columns ``series`` (the trace's name), ``x`` and ``y``; a heatmap adds
    ``value``, one row per cell. A gap in a line is an empty ``y``.
    """
    heatmap = any(isinstance(trace, go.Heatmap) for trace in figure.data)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["series", "x", "y", "value"] if heatmap else ["series", "x", "y"])
    for trace in figure.data:
        if isinstance(trace, go.Heatmap):
            for y, row in zip(trace.y, trace.z, strict=True):
                writer.writerows(
                    [trace.name, x, y, _cell(v)] for x, v in zip(trace.x, row, strict=True)
                )
            continue
        writer.writerows(
            [trace.name, _cell(x), _cell(y)]
            for x, y in zip(trace.x or (), trace.y or (), strict=False)
        )
    return out.getvalue()


def rounds_shown(figure: go.Figure) -> int:
    """The largest round plotted by any trace of a figure.

    Parameters
    ----------
    figure : go.Figure
        A chart of this module.

    Returns
    -------
    int
        The largest ``x`` with a value (a gap is not plotted); 0 if there is none.

    """
    largest = 0
    for trace in figure.data:
        xs = getattr(trace, "x", None)
        ys = getattr(trace, "y", None)
        if xs is None or ys is None:
            continue
        for x, y in zip(xs, ys, strict=False):
            if x is not None and y is not None:
                largest = max(largest, int(x))
    return largest


def _show_coverage(figure: go.Figure, events: Sequence[Mapping[str, Any]], metric: str) -> None:
    """Say on the weighted line how many clients each round's value covers."""
    weighted = [t for t in figure.data if t.name == WEIGHTED]
    covered: dict[int, tuple[int, int]] = {}
    for event in events:
        if event.get("stage") != "evaluate" or event.get("scope") != "federated":
            continue
        k = (event.get("coverage") or {}).get(metric)
        n = event.get("reported")
        if isinstance(event.get("round"), int) and isinstance(k, int) and isinstance(n, int):
            covered[event["round"]] = (k, n)
    if not weighted or not covered:
        return
    (trace,) = weighted
    trace.text = [
        f"{covered[r][0]} of {covered[r][1]} clients" if r in covered else "" for r in trace.x
    ]
    trace.hovertemplate = "%{y:.4f}, weighted over %{text}"
    last = covered.get(max(trace.x))
    if last is not None and last[0] < last[1]:
        trace.name = f"clients' held-out data (weighted, {last[0]} of {last[1]} clients)"


def _number(value: Any) -> float | None:
    """A finite float, or ``None`` for anything a chart cannot plot."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _count(value: Any) -> int | None:
    """A cell of a confusion matrix: a count, or ``None`` for anything else."""
    number = _number(value)
    return None if number is None else int(number)


def _client_ids(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """The client ids the events report on, in :func:`_client_order`."""
    ids: set[str] = set()
    for event in events:
        clients = event.get("clients")
        if isinstance(clients, Mapping):
            ids.update(str(key) for key in clients)
    return sorted(ids, key=_client_order)


def _client_order(client: str) -> tuple[int, int, str]:
    """Numeric ids first, by value; anything else after them, by name."""
    try:
        return (0, int(client), client)
    except ValueError:
        return (1, 0, client)


def _line(
    name: str, rounds: Sequence[int], values: Sequence[float | None], colour: str
) -> go.Scatter:
    # Markers keep a round that sits between two gaps visible.
    return go.Scatter(
        x=list(rounds),
        y=list(values),
        name=name,
        mode="lines+markers",
        line={"color": colour, "width": 2},
        marker={"color": colour, "size": 6},
        connectgaps=False,
    )


def _figure(title: str, y_title: str) -> go.Figure:
    """A figure with the layout shared by every chart here."""
    figure = go.Figure()
    figure.update_layout(
        template="plotly_white",
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 16}},
        height=HEIGHT,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        # Below the plot: above it, Plotly's toolbar would cover the legend.
        legend={
            "orientation": "h",
            "yanchor": "top",
            "y": -0.22,
            "xanchor": "left",
            "x": 0,
            "title": {"text": ""},
        },
        hovermode="x unified",
        # The template's zero line would read as a marker at round 0.
        xaxis={
            "title": {"text": "round"},
            "unifiedhovertitle": {"text": "round %{x}"},
            "zeroline": False,
        },
        yaxis={"title": {"text": y_title}, "hoverformat": ".4f"},
    )
    return figure


def _reference_line(figure: go.Figure, y: float, text: str, position: str) -> None:
    """A dashed grey horizontal line labelled with ``text`` (a baseline, a budget)."""
    figure.add_hline(
        y=y,
        line={"color": BASELINE_COLOR, "width": 1.5, "dash": "dash"},
        annotation_text=text,
        annotation_position=position,
        annotation_font={"color": BASELINE_COLOR, "size": 11},
    )


def _finish(figure: go.Figure) -> go.Figure:
    """Integer round ticks, a few of them however many rounds there are."""
    xs = [int(x) for trace in figure.data for x in trace.x]
    low, high = min(xs), max(xs)
    step = 1
    for factor in _nice_steps():
        step = factor
        if (high - low) / step <= 10:
            break
    # A fixed range: autorange around a single round would show ticks at -1 and 1.
    pad = max(0.3, 0.02 * (high - low))
    figure.update_xaxes(tickmode="linear", tick0=0, dtick=step, range=[low - pad, high + pad])
    return figure


def _nice_steps() -> Iterable[int]:
    """1, 2, 5, 10, 20, 50, ... without end."""
    scale = 1
    while True:
        for factor in (1, 2, 5):
            yield factor * scale
        scale *= 10


def _xy_figure(title: str, x_title: str, y_title: str) -> go.Figure:
    """A figure laid out as the others, for values against values rather than rounds."""
    figure = _figure(title, y_title)
    figure.update_layout(hovermode="closest", xaxis={"title": {"text": x_title}})
    figure.update_xaxes(unifiedhovertitle=None)
    return figure


def _curve_figure(title: str, x_title: str, y_title: str) -> go.Figure:
    """A figure laid out as the others, for a curve over [0, 1] rather than rounds."""
    figure = _xy_figure(title, x_title, y_title)
    figure.update_xaxes(range=[-0.02, 1.02])
    figure.update_yaxes(range=[-0.02, 1.02])
    return figure


def _curve(name: str, xs: Any, ys: Any) -> go.Scatter:
    return go.Scatter(
        x=list(xs or []), y=list(ys or []), name=name, mode="lines",
        line={"color": PALETTE[0], "width": 2},
    )  # fmt: skip


def _reference(name: str, xs: list[float], ys: list[float]) -> go.Scatter:
    return go.Scatter(
        x=xs, y=ys, name=name, mode="lines",
        line={"color": BASELINE_COLOR, "width": 1.5, "dash": "dash"}, hoverinfo="skip",
    )  # fmt: skip


def _auc_text(curve: Mapping[str, Any]) -> str:
    auc = _number(curve.get("auc"))
    return "—" if auc is None else f"{auc:.4f}"


def _cell(value: Any) -> str:
    """A CSV cell: empty for a missing value, else the value as Python writes it."""
    return "" if value is None else str(value)


def _empty(figure: go.Figure, message: str = EMPTY_MESSAGE) -> go.Figure:
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.add_annotation(
        text=message,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 14, "color": "#888888"},
    )
    return figure


def trials_chart(
    trials: Sequence[tuple[int, str, float | None]], metric: str, task: str = "binary"
) -> go.Figure:
    """A tuning study's objective per trial, and the best so far.

    Parameters
    ----------
    trials : Sequence[tuple[int, str, float | None]]
        Each trial's number, state (``complete``, ``pruned``, ...) and value:
        the clients' own score at its last round, or at the round a pruned
        trial was stopped.
    metric : str
        The optimised score (its direction decides the best so far).
    task : str
        The study's task, for the score's label.

    """
    label = metric_label(metric, task)
    figure = _figure(f"Clients' own {label} per trial", label)
    figure.update_xaxes(title={"text": "trial"}, unifiedhovertitle={"text": "trial %{x}"})
    scored = [(n, s, v) for n, s, v in trials if v is not None and math.isfinite(v)]
    if not scored:
        return _empty(figure, "No trial has a score yet.")
    for index, state in enumerate(dict.fromkeys(s for _, s, _ in scored)):
        shown = [(n, v) for n, s, v in scored if s == state]
        figure.add_trace(
            go.Scatter(
                x=[n for n, _ in shown], y=[v for _, v in shown], name=state, mode="markers",
                marker={"color": PALETTE[index % len(PALETTE)], "size": 9},
            )
        )  # fmt: skip
    better = max if higher_is_better(metric) else min
    best: list[tuple[int, float]] = []
    for number, _, value in (t for t in scored if t[1] == "complete"):
        best.append((number, value if not best else better(best[-1][1], value)))
    if best:
        figure.add_trace(
            go.Scatter(
                x=[n for n, _ in best], y=[v for _, v in best], name="best so far",
                mode="lines", line={"color": BASELINE_COLOR, "dash": "dot", "shape": "hv"},
            )
        )  # fmt: skip
    return _finish(figure)
