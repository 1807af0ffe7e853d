"""A deployed federation: the Flower processes' flags, and checks before they start.

One place decides how ``flower-superlink``, ``flower-superexec`` and
``flower-supernode`` are started, for the Kubernetes manifests in ``k8s/``
(a test asserts they use these lists) and for the local end-to-end test alike:

* SuperLink: Flower 1.42 serves the Fleet, Control and Runtime APIs and
  ``/health`` on one HTTP port (:data:`SUPERLINK_PORT`). ServerApps run in a
  separate SuperExec (``--isolation process``) from the installed fedapp, so
  nothing is installed at run time (``--disable-runtime-dependency-installation``).
* SuperNode: one per institution; its node config names the institution's
  file (``data-path``) and its label in the metrics (``partition-id``). Its
  ClientApps run in subprocesses from the installed fedapp.
* Secure (the ``prod`` overlay): TLS everywhere, and the SuperLink accepts
  only SuperNodes whose public keys were registered (``--enable-supernode-auth``).

``fedapp superlink|superexec|supernode ARGS`` runs :func:`preflight` on the
same arguments and then replaces itself with the Flower process, so a missing
certificate, an unreachable SuperLink or a missing data file stop with one
clear line (exit 2) instead of a stack trace or endless retries.
"""

from __future__ import annotations

import argparse
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_ssh_private_key,
)

from fedapp.errors import UsageError

# Flower 1.42's SuperLink port: Fleet, Control and Runtime APIs and GET /health.
SUPERLINK_PORT = 8000
# A SuperNode's own Runtime API, used only by its ClientApp subprocesses.
SUPERNODE_RUNTIME_PORT = 9094
# SuperExec and SuperNode serve no HTTP; Flower's plain gRPC health service
# on this port is what Kubernetes probes.
HEALTH_PORT = 8081
# The Flower executables, by role.
PROGRAMS = {
    "superlink": "flower-superlink",
    "superexec": "flower-superexec",
    "supernode": "flower-supernode",
}
# How long a SuperNode or SuperExec waits for the SuperLink's /health before
# giving up (the SuperLink may still be starting, e.g. in a fresh cluster).
DEFAULT_WAIT = 60.0


@dataclass(frozen=True)
class ServerTls:
    """The SuperLink's TLS material (PEM files)."""

    ca_cert: str
    cert: str
    key: str


@dataclass(frozen=True)
class NodeCredentials:
    """What a SuperNode needs in a secure federation.

    Attributes
    ----------
    ca_cert : str
        The CA that signed the SuperLink's certificate.
    private_key : str
        The SuperNode's authentication key (OpenSSH format), whose public
        half is registered with the SuperLink.

    """

    ca_cert: str
    private_key: str


def superlink_args(
    tls: ServerTls | None, database: str, host: str = "127.0.0.1", port: int = SUPERLINK_PORT
) -> list[str]:
    """``flower-superlink`` flags: TLS and SuperNode authentication, or neither.

    Parameters
    ----------
    tls : ServerTls | None
        TLS material; ``None`` serves plain HTTP and accepts any SuperNode.
    database : str
        SQLite file of the SuperLink's state (runs, registered SuperNodes),
        kept across restarts.
    host, port : str, int
        Where the one HTTP port listens; a pod listens on ``0.0.0.0`` so that
        its Service reaches it.

    """
    args = ["--host", host, "--port", str(port), "--database", database]
    args += ["--isolation", "process", "--disable-runtime-dependency-installation"]
    if tls is None:
        return [*args, "--insecure"]
    return [
        *args,
        "--ssl-ca-certfile", tls.ca_cert,
        "--ssl-certfile", tls.cert,
        "--ssl-keyfile", tls.key,
        "--enable-supernode-auth",
    ]  # fmt: skip


def superexec_args(superlink: str, ca_cert: str | None, health: str) -> list[str]:
    """``flower-superexec`` flags: runs each ServerApp as a local subprocess.

    Parameters
    ----------
    superlink : str
        The SuperLink's ``host:port`` (its Runtime API).
    ca_cert : str | None
        CA to verify the SuperLink with; ``None`` connects without TLS.
    health : str
        ``host:port`` of the gRPC health service.

    """
    args = ["--runtime-api-address", superlink, "--executor", "subprocess"]
    args += ["--health-server-address", health]
    return [*args, "--insecure"] if ca_cert is None else [*args, "--root-certificates", ca_cert]


def supernode_args(
    superlink: str,
    node_config: Mapping[str, str | int],
    credentials: NodeCredentials | None,
    health: str,
    port: int = SUPERNODE_RUNTIME_PORT,
) -> list[str]:
    """``flower-supernode`` flags for one institution.

    Parameters
    ----------
    superlink : str
        The SuperLink's ``host:port``.
    node_config : Mapping[str, str | int]
        E.g. ``{"data-path": "/data/bank.csv", "partition-id": 0}``.
    credentials : NodeCredentials | None
        CA and authentication key; ``None`` connects without TLS.
    health : str
        ``host:port`` of the gRPC health service.
    port : int
        This SuperNode's own Runtime API port on 127.0.0.1 (distinct per
        SuperNode on one machine).

    """
    args = ["--superlink", superlink, "--node-config", format_node_config(node_config)]
    args += ["--host", "127.0.0.1", "--port", str(port), "--health-server-address", health]
    if credentials is None:
        return [*args, "--insecure"]
    return [
        *args,
        "--root-certificates", credentials.ca_cert,
        "--auth-supernode-private-key", credentials.private_key,
    ]  # fmt: skip


def format_node_config(node_config: Mapping[str, str | int]) -> str:
    """Flower's ``--node-config`` string: space-separated TOML ``key=value`` pairs."""
    parts = []
    for key, value in node_config.items():
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise UsageError(f"node config '{key}' must be a string or an integer")
        # Flower splits the string before reading each value, and escapes
        # do not survive that: a value may not carry quotes or backslashes.
        if isinstance(value, str) and any(c in value for c in "\"'\\\n"):
            raise UsageError(f"node config '{key}' must not contain quotes or backslashes")
        parts.append(f"{key}={value}" if isinstance(value, int) else f'{key}="{value}"')
    return " ".join(parts)


# -- checks before a Flower process starts ---------------------------------


def _parser() -> argparse.ArgumentParser:
    """The flags :func:`preflight` checks; Flower itself parses the rest."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flag in (
        "--ssl-ca-certfile", "--ssl-certfile", "--ssl-keyfile", "--root-certificates",
        "--auth-supernode-private-key", "--superlink", "--runtime-api-address",
        "--node-config", "--database",
    ):  # fmt: skip
        parser.add_argument(flag)
    parser.add_argument("--insecure", action="store_true")
    return parser


def preflight(role: str, argv: Sequence[str], wait: float = DEFAULT_WAIT) -> None:
    """Check what ``role``'s Flower process needs before it starts.

    Parameters
    ----------
    role : str
        ``superlink``, ``superexec`` or ``supernode``.
    argv : Sequence[str]
        The Flower process's arguments.
    wait : float
        Seconds a SuperExec or SuperNode waits for the SuperLink's ``/health``.

    Raises
    ------
    UsageError
        Naming the first problem: a missing or unreadable certificate or key,
        a malformed address, a SuperLink that does not answer (or whose
        certificate does not match), a node config without ``partition-id``,
        a ``data-path`` that cannot be read as a table.

    """
    if role not in PROGRAMS:
        raise UsageError(f"unknown role {role!r}; use one of {', '.join(PROGRAMS)}")
    args, _ = _parser().parse_known_args(list(argv))
    if role == "superlink":
        if not args.insecure:
            _certificate("--ssl-ca-certfile", _need("--ssl-ca-certfile", args.ssl_ca_certfile))
            _certificate("--ssl-certfile", _need("--ssl-certfile", args.ssl_certfile))
            _pem_key("--ssl-keyfile", _need("--ssl-keyfile", args.ssl_keyfile))
        if args.database:
            folder = Path(args.database).parent
            if not os.access(folder, os.W_OK):
                raise UsageError(f"--database: folder {folder} is missing or not writable")
        return
    ca = None
    if not args.insecure:
        ca = _certificate(
            "--root-certificates", _need("--root-certificates", args.root_certificates)
        )
    if role == "superexec":
        address = _need("--runtime-api-address", args.runtime_api_address)
    else:
        address = _need("--superlink", args.superlink)
        if args.auth_supernode_private_key:
            _ssh_key("--auth-supernode-private-key", args.auth_supernode_private_key)
        _node_config(_need("--node-config", args.node_config))
    wait_for_superlink(address, ca, wait)


def wait_for_superlink(address: str, ca_cert: Path | None, wait: float) -> None:
    """Poll the SuperLink's ``/health`` until it answers 200 or ``wait`` runs out.

    Raises
    ------
    UsageError
        For a malformed address, a certificate that does not verify, or no
        answer within ``wait`` seconds.

    """
    host, port = _host_port(address)
    scheme = "http" if ca_cert is None else "https"
    url = f"{scheme}://{host}:{port}/health"
    context = None if ca_cert is None else ssl.create_default_context(cafile=str(ca_cert))
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5, context=context) as answer:
                if answer.status == 200:
                    return
                reason = f"HTTP {answer.status}"
        except urllib.error.HTTPError as err:
            reason = f"HTTP {err.code}"
        except urllib.error.URLError as err:
            if isinstance(err.reason, ssl.SSLCertVerificationError):
                raise UsageError(
                    f"the SuperLink at {address} has a certificate that does not verify "
                    f"against {ca_cert}: {err.reason.verify_message}"
                ) from None
            reason = str(err.reason)
        except (OSError, ValueError) as err:
            reason = str(err) or type(err).__name__
        if time.monotonic() >= deadline:
            raise UsageError(
                f"cannot reach the SuperLink at {address} within {wait:g} s ({reason}); "
                "check the address and that it is running"
            )
        time.sleep(1.0)


def _need(flag: str, value: str | None) -> str:
    if not value:
        raise UsageError(f"{flag} is missing")
    return value


def _readable(flag: str, value: str) -> bytes:
    path = Path(value)
    if not path.is_file():
        raise UsageError(f"{flag}: {path}: no such file")
    try:
        return path.read_bytes()
    except OSError as err:
        raise UsageError(f"{flag}: {path}: {err.strerror}") from None


def _certificate(flag: str, value: str) -> Path:
    content = _readable(flag, value)
    try:
        x509.load_pem_x509_certificates(content)
    except ValueError:
        raise UsageError(f"{flag}: {value} is not a PEM certificate") from None
    return Path(value)


def _pem_key(flag: str, value: str) -> None:
    content = _readable(flag, value)
    try:
        load_pem_private_key(content, password=None)
    except (ValueError, TypeError):
        raise UsageError(f"{flag}: {value} is not an unencrypted PEM private key") from None


def _ssh_key(flag: str, value: str) -> None:
    content = _readable(flag, value)
    try:
        key = load_ssh_private_key(content, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UsageError(
            f"{flag}: {value} is not an elliptic-curve OpenSSH private key "
            "(make one with `fedapp certs`)"
        )


def _host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"SuperLink address {address!r} must be HOST:PORT, without a URL scheme")
    return host, int(port)


def _node_config(text: str) -> dict[str, object]:
    # Flower's parser and pandas only for a SuperNode's pre-flight check.
    from fedapp.data.sources import read_table
    from fedapp.flower.protocol import DATA_PATH_KEY, PARTITION_KEY, parse_node_config

    try:
        config = parse_node_config(text)
    except ValueError as err:
        raise UsageError(f"--node-config {text!r}: {err}") from None
    partition = config.get(PARTITION_KEY)
    if isinstance(partition, bool) or not isinstance(partition, int) or partition < 0:
        raise UsageError(f"--node-config needs {PARTITION_KEY}=N with N >= 0 (got {partition!r})")
    if DATA_PATH_KEY in config:
        try:
            read_table(Path(str(config[DATA_PATH_KEY])))
        except UsageError as err:
            raise UsageError(f"node config {DATA_PATH_KEY}: {err}") from None
    return config


def exec_flower(role: str, argv: Sequence[str]) -> None:
    """Replace this process with ``role``'s Flower executable (never returns)."""
    program = PROGRAMS[role]
    os.execvp(program, [program, *argv])
