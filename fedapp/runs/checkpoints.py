"""A run's checkpoints: what a crashed run needs to go on as if it never stopped.

``checkpoints/round-NNNNN.npz`` holds, after round ``NNNNN``, the arrays of
the rounds' state (the global weights, the strategy's moments or control
variate, the best round's model of ``--rounds auto``, ...) and one JSON
document with the rest (the round, the config hash, counters, the sampling
generator's state). Each file is written whole or not at all, durably
(:func:`~fedapp.runs.directory.write_bytes_durably`). Only NumPy's own array format is
read back (``allow_pickle=False``): a checkpoint is data, never code.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedapp.errors import UsageError
from fedapp.runs.directory import write_bytes_durably

# Settings that change how a run is carried out, not what it computes: a
# resumed run may differ in them (``--rounds N`` extends a run).
OPERATIONAL_SETTINGS = frozenset(
    {"rounds", "resume", "checkpoint-every", "keep-checkpoints", "round-timeout"}
)

_NAME = re.compile(r"round-(\d+)\.npz")
# The JSON document's key in the file, beside the arrays' ``group/index`` keys.
_META = "meta"
_FORMAT = 1


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of a resolved config's settings, the operational ones left out.

    ``config`` is a RunConfig's kebab-case mapping (``RunConfig.to_dict``,
    or ``config.json``'s settings).
    """
    kept = {k: v for k, v in config.items() if k not in OPERATIONAL_SETTINGS}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """The state of a run after one round.

    Attributes
    ----------
    round : int
        The last round completed.
    config_hash : str
        :func:`config_hash` of the run's settings.
    arrays : Mapping[str, list[np.ndarray]]
        Named lists of arrays (``weights``, ``strategy/m_t``, ...).
    state : Mapping[str, Any]
        Everything else, JSON-serialisable.

    """

    round: int
    config_hash: str
    arrays: Mapping[str, list[np.ndarray]] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)

    def save(self, directory: Path, keep: int) -> Path:
        """Write this checkpoint into ``directory`` atomically; keep the newest ``keep``.

        Returns
        -------
        Path
            The file written.

        """
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"round-{self.round:05d}.npz"
        meta = {
            "format": _FORMAT,
            "round": self.round,
            "config_hash": self.config_hash,
            "state": self.state,
            "arrays": {name: len(values) for name, values in self.arrays.items()},
        }
        payload = {
            f"{name}/{i}": np.asarray(value)
            for name, values in self.arrays.items()
            for i, value in enumerate(values)
        }
        payload[_META] = np.array(json.dumps(meta))
        buffer = io.BytesIO()
        np.savez(buffer, **payload)  # type: ignore[arg-type]
        write_bytes_durably(path, buffer.getvalue())
        for old in rounds_in(directory)[:-keep]:
            (directory / f"round-{old:05d}.npz").unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        """Read a checkpoint file.

        Raises
        ------
        UsageError
            When the file is not a checkpoint fedapp can read.

        """
        try:
            with np.load(path, allow_pickle=False) as npz:
                meta = json.loads(str(npz[_META]))
                arrays = {
                    name: [npz[f"{name}/{i}"] for i in range(count)]
                    for name, count in meta["arrays"].items()
                }
        except (OSError, ValueError, KeyError) as err:
            raise UsageError(f"{path} is not a readable checkpoint: {err}") from err
        if meta.get("format") != _FORMAT:
            raise UsageError(
                f"{path} is a checkpoint of format {meta.get('format')}, not {_FORMAT}"
            )
        return cls(int(meta["round"]), str(meta["config_hash"]), arrays, meta["state"])


def rounds_in(directory: Path) -> list[int]:
    """The rounds of the checkpoints in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    found = (_NAME.fullmatch(p.name) for p in directory.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def latest(directory: Path) -> Checkpoint | None:
    """The newest checkpoint in ``directory``, or ``None`` without one."""
    found = rounds_in(directory)
    return Checkpoint.load(directory / f"round-{found[-1]:05d}.npz") if found else None
