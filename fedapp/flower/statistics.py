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
    schemas = [_features(r, cfg.resolved_target) for r in by_partition]
    _check_schemas(schemas, [int(r[PARTITION_KEY]) for r in by_partition])
    schema = schemas[0]
    # The task and classes travel in each client's target statistics; merging checks they agree.
    return FederationSetup(
        preprocessor=data.fit_preprocessor(statistics, schema, cfg),
        partition_of={cid: int(r[PARTITION_KEY]) for cid, r in replies.items()},
        train_rows={
            int(r[PARTITION_KEY]): int(s["rows"])
            for r, s in zip(by_partition, statistics, strict=True)
        },
    )


def _features(reply: Mapping[str, Any], target: str) -> data.Schema:
    """The features a client's reply says it has (its ``schema``: numeric and categorical)."""
    numeric, categorical = json.loads(reply["schema"])
    return data.Schema(tuple(numeric), tuple(categorical), target=target)


def _check_schemas(schemas: list[data.Schema], partitions: list[int]) -> None:
    """Every client's features must be the lowest partition's: the model has one input.

    A deployed node types its own file and leaves out what is unusable in it
    (a column constant at one institution): its schema may differ.

    Raises
    ------
    UsageError
        Naming the partition and the columns that differ.

    """
    first = schemas[0].kinds
    for schema, pid in zip(schemas[1:], partitions[1:], strict=True):
        other = schema.kinds
        if other == first:
            continue
        extra = sorted(other.keys() - first.keys())
        missing = sorted(first.keys() - other.keys())
        kinds = sorted(c for c in first.keys() & other.keys() if first[c] != other[c])
        differ = [
            f"{', '.join(extra)} only at partition {pid}" if extra else "",
            f"{', '.join(missing)} missing at partition {pid}" if missing else "",
            f"kinds differ: {', '.join(kinds)}" if kinds else "",
        ]
        raise UsageError(
            f"the clients' features differ from partition {partitions[0]}'s "
            f"({'; '.join(d for d in differ if d)}); give every institution the same columns, "
            "or leave a column out everywhere with --drop"
        )
