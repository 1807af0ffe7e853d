"""Before round 1: every client's aggregate statistics, and the preprocessing they fit.

Two halves:

* :func:`query_statistics` speaks Flower: it waits (a bounded time) for the
  federation's clients and sends each the statistics query
  (``get_properties`` with :data:`~fedapp.flower.protocol.STATISTICS_QUERY`);
* :func:`federation_setup` is pure: it parses the replies, merges the
  statistics into the shared :class:`~fedapp.data.Preprocessor` and notes
  each node's partition and the largest client's training rows (SecAgg+'s
  weight bound).

A reply is what :meth:`fedapp.flower.client_app.ChurnClient.get_properties`
answers: the partition id, the schema and the statistics, both as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from logging import WARNING
from typing import Any

from flwr.common import Code, GetPropertiesIns, Scalar, log
from flwr.server.client_manager import ClientManager

from fedapp import data
from fedapp.errors import UsageError
from fedapp.flower.protocol import PARTITION_KEY, STATISTICS_QUERY
from fedapp.settings import RunConfig

STATISTICS_TIMEOUT = 600.0
WAIT_SLICE = 10.0


# Told (done, total) as the clients connect and as their replies come in.
Progress = Callable[[str, int, int], None]


def wait_for_clients(
    client_manager: ClientManager,
    clients: int,
    timeout: float = STATISTICS_TIMEOUT,
    wait_slice: float = WAIT_SLICE,
    progress: Progress | None = None,
) -> None:
    """Block until ``clients`` clients are connected, logging every ``wait_slice`` seconds.

    ``progress`` is told ``("clients", connected, clients)`` as they connect.

    Raises
    ------
    RuntimeError
        When fewer are connected after ``timeout`` seconds, saying how many.

    """
    waited = 0.0
    # Short waits while a progress display follows the count; the log stays per slice.
    step = min(wait_slice, 1.0) if progress else wait_slice
    logged = 0.0
    while not client_manager.wait_for(clients, timeout=step):  # type: ignore[arg-type]
        waited += step
        connected = client_manager.num_available()
        if progress:
            progress("clients", connected, clients)
        if waited >= timeout:
            raise RuntimeError(
                f"only {connected} of {clients} clients connected within "
                f"{waited:g} s; set `clients` to the federation's number of SuperNodes"
            )
        if waited - logged >= wait_slice:
            logged = waited
            log(WARNING, "waiting for clients: %s of %s connected", connected, clients)


def query_statistics(
    client_manager: ClientManager,
    clients: int,
    timeout: float = STATISTICS_TIMEOUT,
    wait_slice: float = WAIT_SLICE,
    progress: Progress | None = None,
) -> dict[str, dict[str, Scalar]]:
    """Ask every connected client for its statistics, once ``clients`` are connected.

    ``progress`` is told ``("clients", connected, clients)`` while they connect,
    then ``("statistics", replies, clients)`` as the replies come in (in a
    simulation, the first replies wait for the client processes to boot).

    Returns
    -------
    dict[str, dict[str, Scalar]]
        Each node's (Flower's client id's) reply.

    Raises
    ------
    RuntimeError
        When too few clients connect within ``timeout`` seconds, or a client
        answers with an error or without statistics.

    """
    wait_for_clients(client_manager, clients, timeout, wait_slice, progress)
    proxies = list(client_manager.all().values())
    ins = GetPropertiesIns({STATISTICS_QUERY: True})
    if progress:
        progress("statistics", 0, len(proxies))
    # In parallel: a deployed client may take a while to read its rows.
    with ThreadPoolExecutor(max_workers=min(len(proxies), 16)) as pool:
        futures = [pool.submit(p.get_properties, ins, timeout, 0) for p in proxies]
        for done, _ in enumerate(as_completed(futures), start=1):
            if progress:
                progress("statistics", done, len(proxies))
        answers = [future.result() for future in futures]
    replies = {}
    for proxy, answer in zip(proxies, answers, strict=True):
        if answer.status.code != Code.OK or "statistics" not in answer.properties:
            raise RuntimeError(
                f"client {proxy.cid} did not send statistics: {answer.status.message}"
            )
        replies[proxy.cid] = dict(answer.properties)
    return replies


@dataclass(frozen=True)
class FederationSetup:
    """What the statistics query settles for the whole run.

    Attributes
    ----------
    preprocessor : data.Preprocessor
        The shared preprocessing, fitted on the merged statistics.
    partition_of : dict[str, int]
        Each node's partition id, by Flower client id.
    train_rows : dict[int, int]
        Each partition's training rows, as its statistics count them.

    """

    preprocessor: data.Preprocessor
    partition_of: dict[str, int]
    train_rows: dict[int, int]

    @property
    def largest_client(self) -> int:
        """Training rows of the largest client."""
        return max(self.train_rows.values())


def federation_setup(replies: Mapping[str, Mapping[str, Any]], cfg: RunConfig) -> FederationSetup:
    """Merge the clients' statistics replies into the run's preprocessing.

    Parameters
    ----------
    replies : Mapping[str, Mapping[str, Any]]
        Each node's reply to the statistics query, by Flower client id.
    cfg : RunConfig
        The run's settings (target, category threshold, ...).

    Returns
    -------
    FederationSetup
        The preprocessing fitted on the statistics in partition order (the
        schema is the lowest partition's), the partitions and their training rows.

    """
    by_partition = sorted(replies.values(), key=lambda r: int(r[PARTITION_KEY]))
    statistics = [json.loads(r["statistics"]) for r in by_partition]
    numeric, categorical = json.loads(by_partition[0]["schema"])
    _check_schemas(by_partition)
    schema = data.Schema(tuple(numeric), tuple(categorical), target=cfg.resolved_target)
    # The task and classes travel in each client's target statistics; merging checks they agree.
    return FederationSetup(
        preprocessor=data.fit_preprocessor(statistics, schema, cfg),
        partition_of={cid: int(r[PARTITION_KEY]) for cid, r in replies.items()},
        train_rows={
            int(r[PARTITION_KEY]): int(s["rows"])
            for r, s in zip(by_partition, statistics, strict=True)
        },
    )


def _check_schemas(replies: list[Mapping[str, Any]]) -> None:
    """Every client's features must be the lowest partition's: the model has one input.

    A deployed node types its own file and leaves out what is unusable in it
    (a column constant at one institution): its schema may differ.

    Raises
    ------
    UsageError
        Naming the partition and the columns that differ.

    """
    first = replies[0]
    numeric, categorical = (set(c) for c in json.loads(first["schema"]))
    for reply in replies[1:]:
        other_numeric, other_categorical = (set(c) for c in json.loads(reply["schema"]))
        if (other_numeric, other_categorical) == (numeric, categorical):
            continue
        ours, theirs = numeric | categorical, other_numeric | other_categorical
        differ = [
            f"{', '.join(sorted(theirs - ours))} only at partition {reply[PARTITION_KEY]}"
            if theirs - ours else "",
            f"{', '.join(sorted(ours - theirs))} missing at partition {reply[PARTITION_KEY]}"
            if ours - theirs else "",
            "kinds differ: "
            + ", ".join(sorted((numeric ^ other_numeric) & ours & theirs))
            if (numeric ^ other_numeric) & ours & theirs else "",
        ]  # fmt: skip
        raise UsageError(
            f"the clients' features differ from partition {first[PARTITION_KEY]}'s "
            f"({'; '.join(d for d in differ if d)}); give every institution the same columns, "
            "or leave a column out everywhere with --drop"
        )
