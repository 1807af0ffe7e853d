"""The run directory: the contract between a run and its readers (CLI, UI, bench).

A run is written by its :class:`Recorder` and read through one :class:`RunView`.
It depends on :mod:`fedapp.errors` alone, so every layer above can read runs.
"""

from fedapp.runs.card import kept_model_text, model_card, skipped_rounds_text
from fedapp.runs.directory import (
    METRIC_NAMES,
    STATES,
    RunDir,
    client_label,
    json_safe,
    new_run_id,
    write_json_atomic,
    write_text_atomic,
)
from fedapp.runs.events import Event, Phase, Scope, Stage
from fedapp.runs.metrics import (
    METRIC_LABELS,
    TASK_METRICS,
    higher_is_better,
    metric_label,
    metric_names,
    primary,
    task_of,
)  # fmt: skip
from fedapp.runs.recorder import EventListener, PhaseListener, Recorder
from fedapp.runs.scorable import scorable_run
from fedapp.runs.state import (
    RunState,
    StopRequest,
    requested_stop,
    sigterm_stops,
    stop_signal,
)
from fedapp.runs.view import RunView, is_pid, list_runs, process_alive

__all__ = [
    "METRIC_LABELS",
    "METRIC_NAMES",
    "STATES",
    "TASK_METRICS",
    "Event",
    "EventListener",
    "Phase",
    "PhaseListener",
    "Recorder",
    "RunDir",
    "RunState",
    "RunView",
    "Scope",
    "Stage",
    "StopRequest",
    "client_label",
    "higher_is_better",
    "is_pid",
    "json_safe",
    "kept_model_text",
    "list_runs",
    "metric_label",
    "metric_names",
    "model_card",
    "new_run_id",
    "primary",
    "process_alive",
    "requested_stop",
    "scorable_run",
    "sigterm_stops",
    "skipped_rounds_text",
    "stop_signal",
    "task_of",
    "write_json_atomic",
    "write_text_atomic",
]
