import csv
import io
from typing import Any

import plotly.graph_objects as go
import pytest

from fedapp.runs import METRIC_LABELS
from fedapp_ui.charts import (
    PALETTE,
    chart_csv,
    clients_by_round,
    compare_runs,
    confusion_matrix,
    epsilon_by_round,
    final_model_charts,
    metric_by_round,
    palette,
    pr_curve,
    predicted_vs_actual,
    residual_quantiles,
    roc_curve,
    rounds_shown,
    series,
    update_norms,
)


def central(round_: int, **metrics: Any) -> dict[str, Any]:
    return {"round": round_, "stage": "evaluate", "scope": "centralized", "metrics": metrics}


def federated(round_: int, clients: dict[str, dict[str, Any]], **metrics: Any) -> dict[str, Any]:
    return {
        "round": round_,
        "stage": "evaluate",
        "scope": "federated",
        "metrics": metrics,
        "clients": clients,
        "failures": 0,
    }


def fit(round_: int, clients: dict[str, dict[str, Any]], **metrics: Any) -> dict[str, Any]:
    return {
        "round": round_,
        "stage": "fit",
        "scope": "federated",
        "metrics": metrics,
        "clients": clients,
        "failures": 0,
    }


def two_rounds() -> list[dict[str, Any]]:
    """Rounds 0..2 of a two-client run, in the order the server writes them."""
    return [
        central(0, auc=0.5, loss=0.7),
        fit(
            1,
            {"0": {"train-loss": 0.6, "examples": 10}, "1": {"train-loss": 0.8}},
            **{"train-loss": 0.7},
        ),
        central(1, auc=0.6, loss=0.6),
        federated(1, {"0": {"auc": 0.61}, "1": {"auc": 0.63}}, auc=0.62, loss=0.61),
        fit(2, {"0": {"train-loss": 0.5}, "1": {"train-loss": 0.7}}, **{"train-loss": 0.6}),
        central(2, auc=0.7, loss=0.5),
        federated(2, {"0": {"auc": 0.71}, "1": {"auc": 0.73}}, auc=0.72, loss=0.51),
    ]


def names(figure: go.Figure) -> list[str]:
    return [trace.name for trace in figure.data]


def xy(figure: go.Figure, name: str) -> tuple[list[Any], list[Any]]:
    (trace,) = [trace for trace in figure.data if trace.name == name]
    return list(trace.x), list(trace.y)


def test_series_reads_one_stage_scope_and_client() -> None:
    # Prepare
    events = two_rounds()

    # Execute
    centralized = series(events, "auc")
    weighted = series(events, "auc", scope="federated")
    client = series(events, "auc", scope="federated", client="1")
    training = series(events, "train-loss", stage="fit", scope="federated", client="0")

    # Assert
    assert centralized == ([0, 1, 2], [0.5, 0.6, 0.7])
    assert weighted == ([1, 2], [0.62, 0.72])
    assert client == ([1, 2], [0.63, 0.73])
    assert training == ([1, 2], [0.6, 0.5])


def test_series_sorts_and_keeps_the_last_event_of_a_round() -> None:
    # Prepare
    events = [central(2, auc=0.7), central(0, auc=0.5), central(2, auc=0.75), central(1, auc=0.6)]

    # Execute
    rounds, values = series(events, "auc")

    # Assert
    assert rounds == [0, 1, 2]
    assert values == [0.5, 0.6, 0.75]


def test_series_turns_unplottable_values_into_gaps() -> None:
    # Prepare
    events = [
        central(0, auc=None),
        central(1, auc=float("nan")),
        central(2, auc="0.8"),
        central(3, auc=True),
        central(4, auc=1),
    ]

    # Execute
    rounds, values = series(events, "auc")

    # Assert
    assert rounds == [0, 1, 2, 3, 4]
    assert values == [None, None, None, None, 1.0]


def test_series_ignores_what_it_does_not_know() -> None:
    # Prepare
    events: list[Any] = [
        central(0, auc=0.5),
        {"round": 1, "stage": "evaluate", "scope": "somewhere", "metrics": {"auc": 0.9}},
        {"round": 1, "stage": "distill", "scope": "centralized", "metrics": {"auc": 0.9}},
        {"stage": "evaluate", "scope": "centralized", "metrics": {"auc": 0.9}},
        {"round": "2", "stage": "evaluate", "scope": "centralized", "metrics": {"auc": 0.9}},
        {"round": 3, "stage": "evaluate", "scope": "centralized", "metrics": None},
        {**central(4, loss=0.4), "extra": {"anything": 1}},
        None,
        central(5, auc=0.8, brand_new_metric=3),
    ]

    # Execute
    rounds, values = series(events, "auc")

    # Assert
    assert rounds == [0, 5]
    assert values == [0.5, 0.8]


def test_series_leaves_out_rounds_without_the_client() -> None:
    # Prepare
    events = [
        federated(1, {"0": {"auc": 0.6}}),
        federated(2, {"1": {"auc": 0.7}}),
        federated(3, {"0": {"auc": 0.8}}),
        {"round": 4, "stage": "evaluate", "scope": "federated", "metrics": {}},
    ]

    # Execute
    rounds, values = series(events, "auc", scope="federated", client="0")

    # Assert
    assert rounds == [1, 3]
    assert values == [0.6, 0.8]


def test_metric_by_round_draws_global_and_clients_lines() -> None:
    # Prepare
    events = iter(two_rounds())  # a generator, as `RunDir.read_metrics` gives

    # Execute
    figure = metric_by_round(events, "auc")

    # Assert
    assert names(figure) == ["global test set", "clients' held-out data (weighted)"]
    assert xy(figure, "global test set") == ([0, 1, 2], [0.5, 0.6, 0.7])
    assert xy(figure, "clients' held-out data (weighted)") == ([1, 2], [0.62, 0.72])
    assert figure.layout.title.text == f"{METRIC_LABELS['auc']} per round"
    assert figure.layout.yaxis.title.text == METRIC_LABELS["auc"]
    assert figure.layout.xaxis.title.text == "round"
    assert not figure.layout.shapes


def test_metric_by_round_uses_the_shared_look() -> None:
    # Prepare
    events = two_rounds()

    # Execute
    figure = metric_by_round(events, "loss")

    # Assert
    layout = figure.layout
    assert layout.template.layout.paper_bgcolor == "white"  # plotly_white
    assert layout.hovermode == "x unified"
    # Below the plot, clear of Plotly's toolbar.
    assert layout.legend.orientation == "h" and layout.legend.y < 0
    assert (layout.margin.l, layout.margin.r, layout.margin.t, layout.margin.b) == (10, 10, 50, 10)
    assert layout.height == 400
    assert layout.yaxis.hoverformat == ".4f"
    assert layout.xaxis.dtick == 1 and layout.xaxis.tick0 == 0
    colours = [trace.line.color for trace in figure.data]
    assert len(set(colours)) == 2


def test_metric_by_round_draws_the_baseline_with_its_value() -> None:
    # Prepare
    events = two_rounds()

    # Execute
    figure = metric_by_round(events, "auc", baseline=0.81234)

    # Assert
    (shape,) = figure.layout.shapes
    assert shape.y0 == shape.y1 == 0.81234
    assert shape.line.dash == "dash"
    texts = [annotation.text for annotation in figure.layout.annotations]
    assert texts == ["centralized baseline 0.8123"]
    assert len(figure.data) == 2  # a reference line, not a series


@pytest.mark.parametrize("baseline", [None, float("nan")])
def test_metric_by_round_without_a_usable_baseline(baseline: float | None) -> None:
    # Prepare
    events = two_rounds()

    # Execute
    figure = metric_by_round(events, "auc", baseline=baseline)

    # Assert
    assert not figure.layout.shapes and not figure.layout.annotations


def test_metric_by_round_shows_null_values_as_gaps() -> None:
    # Prepare
    events = [
        central(0, auc=0.5),
        central(1, auc=None),
        central(2, auc=0.7),
        federated(1, {}, auc=None),
        federated(2, {}, auc=0.72),
    ]

    # Execute
    figure = metric_by_round(events, "auc")

    # Assert
    assert xy(figure, "global test set") == ([0, 1, 2], [0.5, None, 0.7])
    assert xy(figure, "clients' held-out data (weighted)") == ([1, 2], [None, 0.72])
    assert all(trace.connectgaps is False for trace in figure.data)


def test_metric_by_round_of_a_run_in_progress() -> None:
    # Prepare
    events = [central(0, auc=0.5)]

    # Execute
    figure = metric_by_round(events, "auc", baseline=0.8)

    # Assert
    assert names(figure) == ["global test set"]
    assert rounds_shown(figure) == 0
    assert figure.layout.xaxis.range[0] < 0 < figure.layout.xaxis.range[1]


def test_metric_by_round_of_the_training_loss_reads_fit_events() -> None:
    # Prepare
    events = two_rounds()

    # Execute
    figure = metric_by_round(events, "train-loss")

    # Assert
    assert names(figure) == ["clients' training data (weighted)"]
    assert xy(figure, "clients' training data (weighted)") == ([1, 2], [0.7, 0.6])
    assert figure.layout.yaxis.title.text == METRIC_LABELS["train-loss"]


@pytest.mark.parametrize(
    "chart",
    [
        lambda events: metric_by_round(events, "auc", baseline=0.8),
        lambda events: clients_by_round(events, "auc"),
        lambda events: compare_runs({"a": events}, "auc", baselines={"a": 0.8}),
        lambda events: epsilon_by_round(events, target=3.0),
        lambda events: update_norms(events, malicious=["0"]),
    ],
)
def test_no_events_give_an_empty_chart_that_says_so(chart: Any) -> None:
    # Prepare
    events: list[dict[str, Any]] = []

    # Execute
    figure = chart(events)

    # Assert
    assert len(figure.data) == 0
    assert [annotation.text for annotation in figure.layout.annotations] == ["No rounds yet"]
    assert rounds_shown(figure) == 0


def test_clients_by_round_orders_clients_by_number() -> None:
    # Prepare
    events = [
        federated(1, {"10": {"auc": 0.1}, "2": {"auc": 0.2}, "0": {"auc": 0.3}}),
        federated(2, {"10": {"auc": 0.4}, "2": {"auc": None}, "0": {"auc": 0.5}}),
    ]

    # Execute
    figure = clients_by_round(events, "auc")

    # Assert
    assert names(figure) == ["client 0", "client 2", "client 10"]
    assert xy(figure, "client 0") == ([1, 2], [0.3, 0.5])
    assert xy(figure, "client 2") == ([1, 2], [0.2, None])
    assert xy(figure, "client 10") == ([1, 2], [0.1, 0.4])
    assert len({trace.line.color for trace in figure.data}) == 3
    assert figure.layout.yaxis.title.text == "AUC"


def test_clients_by_round_uses_the_given_labels() -> None:
    # Prepare
    events = two_rounds()

    # Execute
    figure = clients_by_round(events, "auc", labels={"0": "inst-0"})

    # Assert
    assert names(figure) == ["inst-0", "client 1"]
    assert xy(figure, "inst-0") == ([1, 2], [0.61, 0.71])


def test_clients_by_round_reads_the_training_loss_from_fit_events() -> None:
    # Prepare
    events = two_rounds()

    # Execute
    figure = clients_by_round(events, "train-loss", labels={"0": "inst-0", "1": "inst-1"})

    # Assert
    assert names(figure) == ["inst-0", "inst-1"]
    assert xy(figure, "inst-0") == ([1, 2], [0.6, 0.5])
    assert xy(figure, "inst-1") == ([1, 2], [0.8, 0.7])
    assert figure.layout.yaxis.title.text == "training loss"


def test_compare_runs_draws_one_line_per_run_and_its_baseline() -> None:
    # Prepare
    other = [central(0, auc=0.4), central(1, auc=0.55), central(2, auc=0.65), central(3, auc=0.7)]
    runs = {"fedavg": two_rounds(), "fedprox": other, "stopped": [central(0, auc=0.45)]}

    # Execute
    figure = compare_runs(runs, "auc", baselines={"fedavg": 0.8, "fedprox": None})

    # Assert
    assert names(figure) == ["fedavg", "fedprox", "stopped", "fedavg (centralized baseline)"]
    assert xy(figure, "fedavg") == ([0, 1, 2], [0.5, 0.6, 0.7])
    assert xy(figure, "fedprox") == ([0, 1, 2, 3], [0.4, 0.55, 0.65, 0.7])
    assert xy(figure, "stopped") == ([0], [0.45])
    run, *_, baseline = figure.data
    assert baseline.x == (0, 1, 2, 3) and set(baseline.y) == {0.8}
    assert baseline.line.color == run.line.color and baseline.line.dash == "dot"
    assert baseline.legendgroup == run.legendgroup == "fedavg"
    assert baseline.showlegend is False
    assert len({trace.line.color for trace in figure.data[:3]}) == 3
    assert rounds_shown(figure) == 3


def test_compare_runs_keeps_colours_when_a_run_has_no_rounds_yet() -> None:
    # Prepare
    runs = {"starting": [], "done": two_rounds()}

    # Execute
    alone = compare_runs({"done": two_rounds()}, "auc")
    beside = compare_runs(runs, "auc")

    # Assert
    assert names(beside) == ["done"]
    assert beside.data[0].line.color != alone.data[0].line.color


def test_rounds_shown_is_the_largest_round_with_a_value() -> None:
    # Prepare
    figure = go.Figure(
        [
            go.Scatter(x=[0, 1, 2], y=[0.1, 0.2, 0.3]),
            go.Scatter(x=[1, 4], y=[0.5, None]),
            go.Scatter(x=[3], y=[0.5]),
        ]
    )

    # Execute
    shown = rounds_shown(figure)

    # Assert
    assert shown == 3
    assert rounds_shown(go.Figure()) == 0


def privacy(round_: int, epsilon: float, clients: dict[str, float] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "round": round_, "stage": "privacy", "scope": "federated",
        "metrics": {"epsilon": epsilon, "delta": 1e-5},
    }  # fmt: skip
    if clients is not None:
        event["clients"] = {c: {"epsilon": e, "spent": False} for c, e in clients.items()}
    return event


def test_epsilon_by_round_draws_the_run_each_client_and_the_budget() -> None:
    # Prepare
    events = [
        *two_rounds(),
        privacy(1, 1.5, {"0": 1.5, "1": 0.9}),
        privacy(2, 2.4, {"0": 2.4, "1": 1.6}),
    ]

    # Execute
    figure = epsilon_by_round(events, target=3.0, labels={"0": "bank"})

    # Assert
    assert names(figure) == ["run", "bank", "client 1"]
    assert [list(t.y) for t in figure.data] == [[1.5, 2.4], [1.5, 2.4], [0.9, 1.6]]
    assert list(figure.data[0].x) == [1, 2]
    [budget] = figure.layout.shapes
    assert (budget.y0, budget.y1, budget.line.dash) == (3.0, 3.0, "dash")
    assert figure.layout.annotations[0].text == "budget ε = 3"


def test_epsilon_by_round_of_client_level_dp_has_one_line_and_no_budget() -> None:
    # Execute
    figure = epsilon_by_round([privacy(1, 4.7), privacy(2, 6.1)])

    # Assert
    assert names(figure) == ["run"]
    assert list(figure.data[0].y) == [4.7, 6.1]
    assert not figure.layout.shapes


def test_update_norms_dashes_attackers_and_marks_flagged_rounds() -> None:
    # Prepare
    def norms(round_: int, values: dict[str, float], flagged: list[int]) -> dict[str, Any]:
        event = fit(round_, {c: {"update-norm": v, "cosine": 0.9} for c, v in values.items()})
        event["flagged"] = flagged
        return event

    events = [
        norms(1, {"0": 0.2, "1": 2.5, "2": 0.3}, [1]),
        norms(2, {"0": 0.1, "1": 2.0, "2": 0.2}, [1, 2]),
    ]

    # Execute
    figure = update_norms(events, labels={"0": "bank"}, malicious=["1"])

    # Assert
    assert names(figure) == ["bank", "client 1 (attacker)", "client 2", "flagged"]
    assert [t.line.dash for t in figure.data[:3]] == [None, "dash", None]
    flagged = figure.data[3]
    assert list(zip(flagged.x, flagged.y, strict=True)) == [(1, 2.5), (2, 2.0), (2, 0.2)]
    assert flagged.mode == "markers" and flagged.marker.symbol == "x"


def test_update_norms_under_secure_aggregation_is_empty() -> None:
    # Prepare: per-client fit entries without any individual update signal
    events = [fit(1, {"0": {"train-loss": 0.5}, "1": {"train-loss": 0.6}})]

    # Execute
    figure = update_norms(events)

    # Assert
    assert len(figure.data) == 0
    assert [a.text for a in figure.layout.annotations] == ["No rounds yet"]


# many clients, and weighted values that leave some out (16)


@pytest.mark.parametrize("clients", [3, 12, 24, 40])
def test_clients_by_round_never_repeats_a_colour(clients: int) -> None:
    # Prepare
    events = [federated(1, {str(c): {"auc": 0.5 + c / 100} for c in range(clients)})]

    # Execute
    figure = clients_by_round(events, "auc")

    # Assert
    colours = [trace.line.color for trace in figure.data]
    assert len(colours) == clients
    assert len(set(colours)) == clients


@pytest.mark.parametrize("count", [1, 10, 11, 24, 25, 60])
def test_palette_gives_distinct_colours(count: int) -> None:
    # Execute
    colours = palette(count)

    # Assert
    assert len(colours) == len(set(colours)) == count
    assert palette(min(count, 10)) == PALETTE[: min(count, 10)]  # the usual ten stay the same


def test_clients_by_round_names_a_client_without_any_value() -> None:
    # Prepare
    events = [federated(r, {"0": {"auc": 0.6}, "1": {"auc": None}}) for r in (1, 2)]

    # Execute
    figure = clients_by_round(events, "auc", labels={"0": "a", "1": "b"})

    # Assert
    assert names(figure) == ["a", "b (no AUC)"]


def test_metric_by_round_says_how_many_clients_each_weighted_value_covers() -> None:
    # Prepare
    events = [
        central(0, auc=0.5),
        {**federated(1, {}, auc=1.0), "coverage": {"auc": 1, "loss": 12}, "reported": 12},
        {**federated(2, {}, auc=1.0), "coverage": {"auc": 1, "loss": 12}, "reported": 12},
    ]

    # Execute
    figure = metric_by_round(events, "auc")

    # Assert
    (weighted,) = [t for t in figure.data if t.name.startswith("clients' held-out data")]
    assert weighted.name == "clients' held-out data (weighted, 1 of 12 clients)"
    assert list(weighted.text) == ["1 of 12 clients", "1 of 12 clients"]
    assert "%{text}" in weighted.hovertemplate


def test_metric_by_round_keeps_its_name_when_every_client_counts() -> None:
    # Prepare
    events = [{**federated(1, {}, auc=0.7), "coverage": {"auc": 3}, "reported": 3}]

    # Execute
    figure = metric_by_round(events, "auc")

    # Assert
    assert names(figure) == ["clients' held-out data (weighted)"]


def test_compare_runs_tells_overlapping_runs_apart() -> None:
    # Prepare: weighted with server rate 1 and example weights is FedAvg: same curve
    runs = {"fedavg": two_rounds(), "weighted": two_rounds(), "fedprox": two_rounds()}

    # Execute
    figure = compare_runs(runs, "auc", baselines={"fedavg": 0.8})

    # Assert: each run its own dash and marker, so one curve never hides another
    lines = [t for t in figure.data if t.showlegend is not False]
    assert [t.name for t in lines] == ["fedavg", "weighted", "fedprox"]
    assert len({t.line.dash for t in lines}) == 3
    assert len({t.marker.symbol for t in lines}) == 3
    assert "dot" not in {t.line.dash for t in lines}  # the baselines' dash


# the final model's curves (22)

CURVES = {
    "round": 5,
    "threshold": 0.5,
    "rows": 200,
    "positives": 50,
    "roc": {"fpr": [0.0, 0.1, 0.4, 1.0], "tpr": [0.0, 0.5, 0.8, 1.0], "auc": 0.79},
    "pr": {"recall": [0.0, 0.5, 0.8, 1.0], "precision": [1.0, 0.7, 0.5, 0.25], "auc": 0.61},
    "confusion": {"tn": 140, "fp": 10, "fn": 25, "tp": 25},
}


def test_roc_curve_draws_the_curve_against_chance() -> None:
    # Execute
    figure = roc_curve(CURVES)

    # Assert
    assert names(figure) == ["ROC (AUC 0.7900)", "chance"]
    assert xy(figure, "ROC (AUC 0.7900)") == ([0.0, 0.1, 0.4, 1.0], [0.0, 0.5, 0.8, 1.0])
    assert xy(figure, "chance") == ([0, 1], [0, 1])
    assert figure.layout.xaxis.title.text == "false positive rate"
    assert figure.layout.yaxis.title.text == "true positive rate"


def test_pr_curve_draws_precision_by_recall_and_the_positive_rate() -> None:
    # Execute
    figure = pr_curve(CURVES)

    # Assert
    assert names(figure) == ["precision-recall (AUC 0.6100)", "positive rate 0.25"]
    assert xy(figure, "positive rate 0.25") == ([0, 1], [0.25, 0.25])
    assert figure.layout.xaxis.title.text == "recall"


def test_confusion_matrix_shows_the_counts_at_the_threshold() -> None:
    # Execute
    figure = confusion_matrix(CURVES)

    # Assert
    (heatmap,) = figure.data
    assert [list(row) for row in heatmap.z] == [[140, 10], [25, 25]]  # actual 0, then 1
    assert list(heatmap.x) == list(heatmap.y) == ["negative", "positive"]
    assert figure.layout.xaxis.title.text == "predicted"
    assert figure.layout.yaxis.title.text == "actual"
    assert "0.5" in figure.layout.title.text


@pytest.mark.parametrize("chart", [roc_curve, pr_curve, confusion_matrix])
def test_the_curves_of_a_file_without_them_are_an_empty_chart(chart: Any) -> None:
    # Execute
    figure = chart({"round": 5})

    # Assert
    assert len(figure.data) == 0
    assert figure.layout.annotations[0].text == "Not recorded"


def test_chart_csv_holds_every_point_of_every_line() -> None:
    # Prepare
    figure = metric_by_round(two_rounds(), "auc", baseline=0.9)

    # Execute
    rows = list(csv.reader(io.StringIO(chart_csv(figure))))

    # Assert
    assert rows[0] == ["series", "x", "y"]
    assert rows[1:4] == [["global test set", "0", "0.5"], ["global test set", "1", "0.6"],
                         ["global test set", "2", "0.7"]]  # fmt: skip
    assert ["clients' held-out data (weighted)", "2", "0.72"] in rows
    assert len(rows) == 1 + 3 + 2


def test_chart_csv_of_a_gap_and_of_a_heatmap() -> None:
    # Prepare
    gap = metric_by_round([central(0, auc=None), central(1, auc=0.6)], "auc")

    # Execute
    line = list(csv.reader(io.StringIO(chart_csv(gap))))
    heat = list(csv.reader(io.StringIO(chart_csv(confusion_matrix(CURVES)))))

    # Assert
    assert line[1] == ["global test set", "0", ""]  # a missing value stays empty
    assert heat[0] == ["series", "x", "y", "value"]
    assert ["confusion", "positive", "negative", "10"] in heat  # predicted positive, actually not


# per task: the metrics' names, multiclass and regression curves


def test_the_per_round_charts_name_the_loss_as_the_runs_task_does() -> None:
    # Prepare
    events = [central(0, rmse=600.0, loss=1.2), central(1, rmse=500.0, loss=0.8)]
    events.append(federated(1, {"0": {"loss": 0.9}}, loss=0.9))

    # Execute
    regression = metric_by_round(events, "loss", task="regression")
    clients = clients_by_round(events, "loss", task="regression")
    binary = metric_by_round(events, "loss")
    runs = compare_runs({"a": events}, "loss", task="regression")

    # Assert
    assert regression.layout.title.text == "MSE (standardised) per round"
    assert clients.layout.yaxis.title.text == "MSE (standardised)"
    assert binary.layout.yaxis.title.text == "log-loss"
    assert runs.layout.yaxis.title.text == "MSE (standardised)"


@pytest.mark.parametrize(("metric", "position"), [("rmse", "bottom left"), ("r2", "top left")])
def test_the_baselines_label_sits_on_the_side_the_metric_improves_towards(
    metric: str, position: str
) -> None:
    # Prepare
    events = [central(0, rmse=600.0, r2=-0.1), central(1, rmse=500.0, r2=0.2)]

    # Execute
    figure = metric_by_round(events, metric, baseline=450.0, task="regression")

    # Assert: round 0 is worse than the baseline, which leaves the other side free
    (annotation,) = figure.layout.annotations
    assert (annotation.yanchor, annotation.xanchor) == tuple(
        {"bottom left": ("top", "left"), "top left": ("bottom", "left")}[position]
    )


MULTICLASS_CURVES = {
    "round": 3,
    "task": "multiclass",
    "rows": 602,
    "classes": ["basic", "premium", "standard"],
    "confusion": [[109, 27, 4], [30, 234, 3], [15, 6, 174]],
}


def test_confusion_matrix_of_a_multiclass_run_is_k_by_k_over_its_classes() -> None:
    # Execute
    figure = confusion_matrix(MULTICLASS_CURVES)

    # Assert
    (heatmap,) = figure.data
    assert [list(row) for row in heatmap.z] == MULTICLASS_CURVES["confusion"]
    assert list(heatmap.x) == list(heatmap.y) == ["basic", "premium", "standard"]
    assert figure.layout.title.text == "Confusion matrix"  # no threshold: the likeliest class
    assert figure.layout.xaxis.type == figure.layout.yaxis.type == "category"
    assert heatmap.customdata[0][0] == pytest.approx(109 / 140)  # share of actual basic


def test_confusion_matrix_of_classes_that_are_numbers_keeps_them_categories() -> None:
    # Prepare: whole-number classes; and a file without its classes
    numbered = {"task": "multiclass", "classes": [1, 2], "confusion": [[3, 1], [0, 4]]}
    unnamed = {"task": "multiclass", "confusion": [[3, 1], [0, 4]]}

    # Execute
    heatmaps = [confusion_matrix(c).data[0] for c in (numbered, unnamed)]

    # Assert
    assert [list(h.x) for h in heatmaps] == [["1", "2"], ["0", "1"]]


@pytest.mark.parametrize("confusion", [[], [[1, 2], [3]], "junk", [[1, 2, 3], [4, 5, 6]]])
def test_confusion_matrix_of_a_torn_multiclass_file_is_an_empty_chart(confusion: Any) -> None:
    # Execute
    figure = confusion_matrix({"task": "multiclass", "classes": ["a", "b"], "confusion": confusion})

    # Assert
    assert len(figure.data) == 0
    assert figure.layout.annotations[0].text == "Not recorded"


REGRESSION_CURVES = {
    "round": 3,
    "task": "regression",
    "rows": 598,
    "actual": [64.17, 993.0, 198.95, 1213.49],
    "predicted": [285.26, 1062.72, 739.47, 943.11],
    "residual_quantiles": {"0.05": -702.3, "0.25": -304.8, "0.5": -55.7, "0.75": 256.5,
                           "0.95": 814.4},
}  # fmt: skip


def test_predicted_vs_actual_draws_the_rows_the_diagonal_and_the_residual_band() -> None:
    # Execute
    figure = predicted_vs_actual(REGRESSION_CURVES)

    # Assert
    assert names(figure) == [
        "4 of 598 test rows", "predicted = actual", "residual 5% quantile (-702.3)",
        "residual 95% quantile (+814.4)",
    ]  # fmt: skip
    assert xy(figure, "4 of 598 test rows") == (
        REGRESSION_CURVES["actual"],
        REGRESSION_CURVES["predicted"],
    )
    assert xy(figure, "predicted = actual") == ([64.17, 1213.49], [64.17, 1213.49])
    assert xy(figure, "residual 95% quantile (+814.4)") == (
        [64.17, 1213.49],
        [pytest.approx(64.17 + 814.4), pytest.approx(1213.49 + 814.4)],
    )
    assert figure.data[0].mode == "markers"
    assert (figure.layout.xaxis.title.text, figure.layout.yaxis.title.text) == (
        "actual", "predicted",
    )  # fmt: skip
    assert figure.layout.xaxis.range is None  # the target's own units, not [0, 1]


def test_predicted_vs_actual_of_every_row_without_quantiles() -> None:
    # Prepare: no row count or quantiles, and a value that cannot be drawn
    curves = {"task": "regression", "actual": [1.0, 2.0, None], "predicted": [1.5, 2.5, 3.0]}

    # Execute
    figure = predicted_vs_actual(curves)

    # Assert
    assert names(figure) == ["test rows", "predicted = actual"]
    assert xy(figure, "test rows") == ([1.0, 2.0], [1.5, 2.5])


def test_residual_quantiles_are_bars_in_order_with_their_values() -> None:
    # Execute
    figure = residual_quantiles(REGRESSION_CURVES)

    # Assert
    (bars,) = figure.data
    assert isinstance(bars, go.Bar)
    assert list(bars.x) == ["5%", "25%", "median", "75%", "95%"]
    assert list(bars.y) == [-702.3, -304.8, -55.7, 256.5, 814.4]
    assert list(bars.text) == ["-702.3", "-304.8", "-55.7", "+256.5", "+814.4"]
    assert [shape.y0 for shape in figure.layout.shapes] == [0]


@pytest.mark.parametrize("chart", [predicted_vs_actual, residual_quantiles])
def test_the_regression_charts_of_a_file_without_them_are_empty(chart: Any) -> None:
    # Execute
    figure = chart({"task": "regression", "actual": [], "predicted": []})

    # Assert
    assert len(figure.data) == 0
    assert figure.layout.annotations[0].text == "Not recorded"


@pytest.mark.parametrize(
    ("curves", "expected"),
    [
        (CURVES, ["roc", "precision-recall", "confusion"]),  # written before tasks
        ({**CURVES, "task": "binary"}, ["roc", "precision-recall", "confusion"]),
        (MULTICLASS_CURVES, ["confusion"]),
        (REGRESSION_CURVES, ["predicted", "residuals"]),
    ],
)
def test_final_model_charts_are_the_tasks_own(curves: dict[str, Any], expected: list[str]) -> None:
    # Execute
    shown = final_model_charts(curves)

    # Assert
    assert [name for name, _ in shown] == expected
    assert all(isinstance(figure, go.Figure) and figure.data for _, figure in shown)


def test_chart_csv_of_the_multiclass_and_regression_charts() -> None:
    # Execute
    heat = list(csv.reader(io.StringIO(chart_csv(confusion_matrix(MULTICLASS_CURVES)))))
    bars = list(csv.reader(io.StringIO(chart_csv(residual_quantiles(REGRESSION_CURVES)))))
    scatter = list(csv.reader(io.StringIO(chart_csv(predicted_vs_actual(REGRESSION_CURVES)))))

    # Assert
    assert len(heat) == 1 + 9
    assert ["confusion", "premium", "basic", "27"] in heat  # actual basic, predicted premium
    assert bars[1:] == [["residual", "5%", "-702.3"], ["residual", "25%", "-304.8"],
                        ["residual", "median", "-55.7"], ["residual", "75%", "256.5"],
                        ["residual", "95%", "814.4"]]  # fmt: skip
    assert ["4 of 598 test rows", "64.17", "285.26"] in scatter
