"""A client's state between rounds, kept on disk so that a resumed run finds it.

fedapp's clients keep what they carry from round to round (SCAFFOLD's
``c_i``, record-level DP's spent rounds) in their node's ``Context.state``,
under ``fedapp-`` keys. That lives in memory for one Flower run: a run that
crashed and is resumed (a new process, or deployed, a new Flower run) would
find it empty. The :func:`state_mods` mod writes it after each round's
training, ``<root>/<run>/partition-<id>/round-<NNNNN>.rec``, and before a
round's training takes back the newest state of an earlier round: exactly
what an unbroken run's client holds then, even when the crash came after
this client had trained in a round that is now being redone.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path

from flwr.common import Context, Message, MessageType, RecordDict
from flwr.common.serde import recorddict_from_proto, recorddict_to_proto
from flwr.proto.recorddict_pb2 import RecordDict as ProtoRecordDict

from fedapp.flower.protocol import PARTITION_KEY, ROUND_KEY, RUN_KEY, STATE_DIR_KEY
from fedapp.runs.directory import write_bytes_durably
from fedapp.settings import RunConfig

# Only fedapp's own records: Flower's mods (SecAgg+) keep theirs in the same state.
_PREFIX = "fedapp-"
_NAME = re.compile(r"round-(\d+)\.rec")
_FIT_CONFIG = "fitins.config"


class NodeStateStore:
    """One client's saved states of one run, by the round that produced them.

    Parameters
    ----------
    directory : Path
        ``<root>/<run>/partition-<id>``.

    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def rounds(self) -> list[int]:
        """The rounds with a saved state, oldest first."""
        if not self.directory.is_dir():
            return []
        found = (_NAME.fullmatch(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def load_before(self, server_round: int, state: RecordDict) -> None:
        """Set ``state``'s fedapp records to the newest saved before round ``server_round``.

        States of ``server_round`` and later are of rounds being redone after
        a resume: they are dropped. With no earlier state, the client starts
        as in round 1, with none.
        """
        for key in [k for k in state if k.startswith(_PREFIX)]:
            del state[key]
        earlier = []
        for found in self.rounds():
            if found >= server_round:
                self._path(found).unlink(missing_ok=True)
            else:
                earlier.append(found)
        if earlier:
            proto = ProtoRecordDict()
            proto.ParseFromString(self._path(earlier[-1]).read_bytes())
            for key, record in recorddict_from_proto(proto).items():
                state[key] = record

    def save(self, server_round: int, state: RecordDict) -> None:
        """Write ``state``'s fedapp records as round ``server_round``'s, whole or not at all.

        Only the newest earlier state is kept besides: it is the one a
        resumed redo of this round would need.
        """
        own = RecordDict({k: v for k, v in state.items() if k.startswith(_PREFIX)})
        if not own:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(server_round)
        write_bytes_durably(path, recorddict_to_proto(own).SerializeToString())
        for old in [r for r in self.rounds() if r < server_round][:-1]:
            with contextlib.suppress(OSError):
                self._path(old).unlink()

    def _path(self, server_round: int) -> Path:
        return self.directory / f"round-{server_round:05d}.rec"


def state_mods(cfg: RunConfig | None, root: Path | None) -> list[Callable[..., Message]]:
    """The mod keeping each client's state on disk, under ``root`` (a run's directory's).

    Without ``root`` (a Flower App) a SuperNode keeps it under its node
    config's ``state-dir``, when it has one. A run that never checkpoints
    (``checkpoint-every 0``) cannot be resumed: its clients keep nothing.
    """
    if cfg is not None and (root is None or not cfg.checkpoint_every):
        return []

    def keep_node_state(
        msg: Message, ctxt: Context, call_next: Callable[[Message, Context], Message]
    ) -> Message:
        store, server_round = _store_of(msg, ctxt, root)
        if store is None:
            return call_next(msg, ctxt)
        store.load_before(server_round, ctxt.state)
        reply = call_next(msg, ctxt)
        if not reply.has_error():
            store.save(server_round, ctxt.state)
        return reply

    return [keep_node_state]


def _store_of(msg: Message, ctxt: Context, root: Path | None) -> tuple[NodeStateStore | None, int]:
    """The store of this training message's run and node, and its round; ``None`` when none."""
    if msg.metadata.message_type != MessageType.TRAIN:
        return None, 0
    config = msg.content.config_records.get(_FIT_CONFIG)
    if config is None or ROUND_KEY not in config or RUN_KEY not in config:
        return None, 0
    base = root if root is not None else ctxt.node_config.get(STATE_DIR_KEY)
    if not base:
        return None, 0
    partition = ctxt.node_config[PARTITION_KEY]
    directory = Path(str(base)) / str(config[RUN_KEY]) / f"partition-{partition}"
    return NodeStateStore(directory), int(config[ROUND_KEY])  # type: ignore[arg-type]
