"""The model card of a finished run (``model_card.md``): what the model is, from what, how good.

:func:`model_card` renders Markdown from the run's own records alone
(``config.json``, ``summary.json``, ``preprocessing.json`` as dicts), so any
reader can render it again, and the recorder writes it when a run finishes,
simulated or deployed alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fedapp.runs.closing import fine_tuned, personalized_note, threshold_columns, threshold_note
from fedapp.runs.directory import client_label
from fedapp.runs.metrics import higher_is_better, metric_label, metric_names, primary, task_of

# Categories listed per feature; the rest are counted.
_SHOWN_CATEGORIES = 12
# The training settings a card lists, in order (config.json's keys).
# (Those a run's config.json does not record are left out.)
_TRAINING = (
    "rounds", "clients", "clients-per-round", "local-epochs", "batch-size", "learning-rate",
    "model", "model-params", "hidden-units", "eval-every", "seed",
)  # fmt: skip
_TASK_WORDS = {
    "binary": "binary classification",
    "multiclass": "multiclass classification",
    "regression": "regression",
}


def model_card(
    config: Mapping[str, Any],
    summary: Mapping[str, Any],
    preprocessing: Mapping[str, Any] | None = None,
) -> str:
    """The Markdown model card of a run.

    Parameters
    ----------
    config : Mapping[str, Any]
        ``config.json``: the settings, client sources, data notes, versions.
    summary : Mapping[str, Any]
        ``summary.json``: the metrics, and each client's rows (``clients``)
        where the run knew them.
    preprocessing : Mapping[str, Any] | None
        ``preprocessing.json`` (``None`` when the run has none).

    """
    task = task_of(dict(config), dict(summary))
    target = summary.get("target") or config.get("target") or "?"
    name = Path(str(config.get("run-dir") or "run")).name
    sections = [
        f"# Model card: {name}",
        f"A {_TASK_WORDS[task]} model of `{target}`, trained by {config.get('clients', '?')} "
        f"institutions with the `{summary.get('strategy') or config.get('strategy')}` strategy "
        "over Flower: each kept its rows, and only model weights, example counts, metrics and "
        "aggregate statistics left them.",
        _task(task, target, summary, preprocessing),
        _clients(config, summary),
        _features(config, preprocessing),
        _training(config, summary),
        _metrics(task, config, summary),
        _privacy(config, summary),
        _versions(config),
        "## Scoring new rows\n\n"
        "The model (`model.keras`, a plain Keras model) expects the rows through the run's "
        "preprocessing (`preprocessing.json`); `fedapp predict` applies both:\n\n"
        f"```bash\nfedapp predict {config.get('run-dir') or name} --data new.csv "
        "--out predictions.csv\n```",
    ]
    return "\n\n".join(s for s in sections if s) + "\n"


def _task(
    task: str, target: str, summary: Mapping[str, Any], preprocessing: Mapping[str, Any] | None
) -> str:
    encoding = (preprocessing or {}).get("encoding") or {}
    classes = list(summary.get("classes") or encoding.get("classes") or [])
    lines = ["## Task", "", f"- Target: `{target}` ({_TASK_WORDS[task]})"]
    if task == "binary" and len(classes) == 2:
        negative, positive = classes
        lines += [
            f"- Positive class: `{positive}` (negative: `{negative}`); the model gives the "
            "positive class's probability, and a row is predicted positive at 0.5 or above",
        ]
    elif task == "multiclass":
        lines += [
            f"- Classes ({len(classes)}): {', '.join(f'`{c}`' for c in classes)}; the model "
            "gives each class's probability, and the prediction is the likeliest",
        ]
    elif task == "regression" and encoding:
        lines += [
            f"- The model predicts the standardised target, (y - {_num(encoding.get('mean'))}) "
            f"/ {_num(encoding.get('std'))} (the federated mean and standard deviation); "
            "predictions are given back in the target's units",
        ]
    return "\n".join(lines)


def _clients(config: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    sources = [str(s) for s in config.get("client-sources") or []]
    rows = summary.get("clients") or {}
    ids = sorted({*map(str, range(len(sources))), *map(str, rows)}, key=_order)
    lines = ["## Data and clients", ""]
    split = config.get("partition")
    if not split:
        split = "one file per client" if config.get("client-data") else "one file per node"
    held = config.get("test-fraction")
    held_out = f"{held:.0%}" if _finite(held) else "a share"
    lines.append(f"- Split: {split}; each client held out {held_out} of its rows to test on")
    for key, what in (("id-column", "Identifier (never a feature)"), ("drop", "Left out")):
        value = config.get(key)
        if value:
            shown = value if isinstance(value, str) else ", ".join(map(str, value))
            lines.append(f"- {what}: `{shown}`")
    files = list(config.get("client-data") or [])
    if config.get("data") not in (None, "demo", "node"):
        files.append(config["data"])
    digests = list(config.get("data-sha256") or [])
    for index, path in enumerate(files):
        digest = f" (sha256 `{digests[index][:16]}…`)" if index < len(digests) else ""
        lines.append(f"- Data file: `{path}`{digest}")
    if config.get("data") == "demo":
        lines.append(f"- Data: the built-in synthetic churn table, {config.get('demo-rows')} rows")
    if ids and rows:
        # A run that held validation rows out counted those when its clients evaluated.
        held = "validation" if any("validation" in r for r in rows.values()) else "test"
        lines += ["", f"| client | source | training rows | {held} rows |"]
        lines.append("| --- | --- | ---: | ---: |")
        for pid in ids:
            known = rows.get(pid) or {}
            lines.append(
                f"| {pid} | {_cell(_source(sources, pid))} | "
                f"{known.get('train', '?')} | {known.get(held, '?')} |"
            )
    elif ids:  # a run recorded before its summary said each client's rows
        lines += ["", "| client | source |", "| --- | --- |"]
        lines += [f"| {pid} | {_cell(_source(sources, pid))} |" for pid in ids]
    warnings = [f"warning: {w}" for w in config.get("data-warnings") or []]
    notes = [*(config.get("data-notes") or []), *warnings]
    if notes:
        lines += ["", "What loading the data noticed:", "", *(f"- {_cell(n)}" for n in notes)]
    return "\n".join(lines)


def _features(config: Mapping[str, Any], preprocessing: Mapping[str, Any] | None) -> str:
    if not preprocessing:
        return ""
    lines = [
        "## Features and their preprocessing",
        "",
        "Fitted on federated statistics alone (per numeric column count, mean and sum of "
        "squared deviations; category counts of at least "
        f"{config.get('min-category-count', '?')}, merged across clients).",
        "",
        "| feature | kind | preprocessing |",
        "| --- | --- | --- |",
    ]
    for column, mean, std in preprocessing.get("numeric") or []:
        lines.append(
            f"| {_cell(column)} | numeric | standardised, (x - {_num(mean)}) / {_num(std)}; "
            "missing values take the mean |"
        )
    for column, vocabulary in preprocessing.get("categorical") or []:
        shown = ", ".join(f"`{_cell(v)}`" for v in vocabulary[:_SHOWN_CATEGORIES])
        more = len(vocabulary) - _SHOWN_CATEGORIES
        shown += f" and {more} more" if more > 0 else ""
        lines.append(
            f"| {_cell(column)} | categorical | one-hot over {shown or 'no category'}, plus "
            f'"other" for missing, unseen and rarer values |'
        )
    markers = config.get("missing-values") or []
    if markers:
        lines += ["", f"Read as missing besides blanks: {', '.join(f'`{m}`' for m in markers)}."]
    return "\n".join(lines)


def _training(config: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    params = config.get("strategy-params") or {}
    shown = ", ".join(f"{k} = {v}" for k, v in params.items() if v not in ("", None))
    strategy = config.get("strategy", "?") + (f" ({shown})" if shown else "")
    lines = ["## Training", "", "| setting | value |", "| --- | --- |"]
    lines.append(f"| strategy | {_cell(strategy)} |")
    for key in _TRAINING:
        if key not in config:
            continue
        value = config[key]
        if key == "clients-per-round" and value is None:
            value = "all"
        if isinstance(value, dict):
            value = ", ".join(f"{k} = {_listed(v)}" for k, v in value.items()) or "-"
        lines.append(f"| {key} | {_cell(_listed(value))} |")
    run = summary.get("rounds")
    if run is not None and run != config.get("rounds"):
        lines.append(f"| rounds run | {run} ({summary.get('reason') or 'ended early'}) |")
    kept = kept_model_text(summary)
    if kept:
        lines.append(f"| kept model | {_cell(kept)} |")
    skipped = skipped_rounds_text(summary)
    if skipped:
        lines.append(f"| skipped rounds | {_cell(skipped)} |")
    lines.append(f"| secure aggregation | {'yes' if config.get('secure-aggregation') else 'no'} |")
    if config.get("malicious"):
        lines.append(f"| simulated attackers | {config['malicious']} ({config.get('attack')}) |")
    return "\n".join(lines)


def _metrics(task: str, config: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    # With validation rows held out, the clients evaluate the rounds on those.
    own = "validation" if (config.get("validation-fraction") or 0) > 0 else "test"
    scopes = [
        ("federated", "federated"),
        ("centralized", "centralized"),
        ("gap", "gap"),
        ("federated_evaluation", f"clients' own {own} sets"),
    ]
    present = [(key, title) for key, title in scopes if summary.get(key)]
    if not present:
        return "## Metrics\n\nThe run scored no test set."
    names = metric_names(task, _keys(summary.get(k) or {} for k, _ in present))
    lines = [
        "## Metrics",
        "",
        "On the global test set (every client's held-out rows): the federated model, the "
        "centralized baseline (the same model trained on all training rows pooled) and their "
        f"gap; then the federated model on each client's own {own} rows, example-weighted.",
        "",
        "| metric | " + " | ".join(title for _, title in present) + " |",
        "| --- |" + " ---: |" * len(present),
    ]
    for name in names:
        cells = [_score((summary.get(key) or {}).get(name), key == "gap") for key, _ in present]
        lines.append(f"| {_cell(metric_label(name, task))} | " + " | ".join(cells) + " |")
    local = summary.get("local_only") or {}
    if local:
        main = primary(task)
        federated = (summary.get("federated") or {}).get(main)
        sources = [str(s) for s in config.get("client-sources") or []]
        label = metric_label(main, task)
        tuned = personalized_note(summary, main, task)
        lines += [
            "",
            f"Each institution trained alone (same model and epochs, its own rows only), "
            f"scored on the global test set ({label}; gain: what joining the federation buys):",
            "",
            "| institution | alone | federated | "
            + ("federated + fine-tuned | " if tuned else "")
            + "gain |",
            "| --- | ---: | ---: |" + (" ---: |" if tuned else "") + " ---: |",
        ]
        sign = 1 if higher_is_better(main) else -1
        for pid in sorted(local, key=_order):
            alone = (local[pid] or {}).get(main)
            gain = None if alone is None or federated is None else sign * (federated - alone)
            who = _source(sources, pid) or pid
            own = f"{_score(fine_tuned(summary, pid, main))} | " if tuned else ""
            lines.append(
                f"| {_cell(f'{pid} {who}')} | {_score(alone)} | {_score(federated)} | "
                f"{own}{_score(gain, True)} |"
            )
        if tuned:
            lines += ["", f"{tuned[0].upper()}{tuned[1:]}."]
    return "\n".join(lines + _thresholds(task, summary))


def _thresholds(task: str, summary: Mapping[str, Any]) -> list[str]:
    """The decision threshold's section lines: the scores at 0.5 and at each threshold."""
    columns = threshold_columns(summary)
    notes = [threshold_note(summary), threshold_note(summary, "centralized_threshold")]
    if not columns:
        return [f"\n{n[0].upper()}{n[1:]}." for n in notes if n]
    lines = ["", "At the decision threshold (a binary prediction is positive at or above it):", ""]
    lines += ["| metric | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for name in next(iter(columns.values())):
        cells = " | ".join(_score(c[name]) for c in columns.values())
        lines.append(f"| {_cell(metric_label(name, task))} | {cells} |")
    return lines + [""] + [f"- {n[0].upper()}{n[1:]}" for n in notes if n]


def _privacy(config: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    private = summary.get("privacy")
    if not private:
        return (
            "## Privacy\n\nNo differential privacy: the weights the clients sent were not noised."
        )
    level = "client-level (central)" if private.get("mode") == "central" else "record-level"
    budget = private.get("target_epsilon")
    spent = f"- ε = {_score(private.get('epsilon'))} at δ = {private.get('delta')}"
    lines = [
        "## Privacy",
        "",
        f"- Differential privacy: {level}, noise multiplier "
        f"{_num(private.get('noise_multiplier'))}, clip norm {_num(private.get('clip_norm'))}",
        spent + (f" (budget ε = {_num(budget)})" if budget else ""),
    ]
    for pid, epsilon in (private.get("clients") or {}).items():
        lines.append(f"- client {pid}: ε = {_score(epsilon)}")
    return "\n".join(lines)


def _versions(config: Mapping[str, Any]) -> str:
    versions = config.get("versions") or {}
    if not versions:
        return ""
    listed = ", ".join(f"{k} {v}" for k, v in versions.items())
    return f"## Versions\n\n{listed}"


def _source(sources: list[str], pid: str) -> str:
    """Client ``pid``'s short name from ``client-sources`` (empty when it has none)."""
    known = pid.isdigit() and int(pid) < len(sources)
    return client_label(sources[int(pid)]) if known else ""


def _listed(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def _keys(parts: Iterable[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for part in parts for k in part))


def _order(pid: str) -> tuple[int, str]:
    return (int(pid), "") if pid.isdigit() else (1 << 30, pid)


def skipped_rounds_text(summary: Mapping[str, Any]) -> str | None:
    """Which rounds kept the previous global model for too few results; ``None`` if none.

    Read from ``summary.json``'s ``skipped_rounds`` (the CLI's closing lines,
    the model card and the Run page all say it so).
    """
    skipped = summary.get("skipped_rounds") or []
    if not skipped:
        return None
    noun = "round" if len(skipped) == 1 else "rounds"
    listed = ", ".join(str(r) for r in skipped)
    return (
        f"{noun} {listed} had fewer training results than min-fit-results and kept the "
        "previous global model"
    )


def kept_model_text(summary: Mapping[str, Any]) -> str | None:
    """Which round's model an automatic run kept, and why its rounds ended; ``None`` otherwise.

    Read from ``summary.json``'s ``auto_rounds`` (the CLI's closing lines,
    the model card and the Run page all say it so).
    """
    auto = summary.get("auto_rounds")
    if not isinstance(auto, Mapping):
        return None
    monitor, best, rounds = auto.get("monitor"), auto.get("best_round"), summary.get("rounds")
    if not best:
        return f"the model of round {rounds}, the last: no round had a finite {monitor}"
    kept = f"the model of round {best}, the best {monitor} ({_score(auto.get('best'))})"
    if auto.get("converged"):
        delta = auto.get("min_delta") or 0
        gain = f"gain of more than {delta:g}" if delta else "improvement"
        patience = auto.get("patience")
        after = "the round" if patience == 1 else f"the {patience} rounds"
        return (
            f"{kept}; converged: no {gain} in {after} after it, "
            f"{rounds} rounds run of at most {auto.get('max_rounds')}"
        )
    if summary.get("reason"):
        return (
            f"{kept}; not converged when the run ended after round {rounds} ({summary['reason']})"
        )
    return f"{kept}; not converged within max-rounds {auto.get('max_rounds')}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any) -> str:
    """A setting or statistic: six significant digits."""
    return f"{value:.6g}" if _finite(value) else "-"


def _score(value: Any, signed: bool = False) -> str:
    """A metric, as the CLI and the UI show it (a dash where it has no value)."""
    if not _finite(value):
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")
