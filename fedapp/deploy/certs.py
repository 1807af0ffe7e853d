"""TLS and SuperNode-authentication material for a deployed federation.

:func:`generate` writes, under one folder:

* ``ca.crt`` / ``ca.key`` — a private certificate authority;
* ``superlink.crt`` / ``superlink.key`` — the SuperLink's server certificate,
  signed by the CA, valid for the host names and IP addresses given;
* ``supernodes/<name>`` / ``supernodes/<name>.pub`` — one elliptic-curve key
  pair per SuperNode, in the OpenSSH formats ``flower-supernode
  --auth-supernode-private-key`` and ``flwr supernode register`` read.

Private keys are written with mode 0600 from the start (never world-readable,
even briefly); certificates and public keys with 0644.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedapp.errors import UsageError

# Flower accepts NIST curves for SuperNode keys; P-384 is the one its docs use.
_CURVE = ec.SECP384R1
_NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOST_NAME = re.compile(
    r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_FILES = ("ca.crt", "ca.key", "superlink.crt", "superlink.key")


@dataclass(frozen=True)
class CertPaths:
    """Where :func:`generate` put each file.

    Attributes
    ----------
    ca_cert, ca_key : Path
        The certificate authority.
    superlink_cert, superlink_key : Path
        The SuperLink's server certificate and key.
    node_keys : dict[str, tuple[Path, Path]]
        Per SuperNode name: its private key and its public key.

    """

    ca_cert: Path
    ca_key: Path
    superlink_cert: Path
    superlink_key: Path
    node_keys: dict[str, tuple[Path, Path]]


def generate(
    out: Path,
    superlink_hosts: Sequence[str],
    nodes: Sequence[str],
    days: int = 365,
    overwrite: bool = False,
) -> CertPaths:
    """Create a CA, a SuperLink certificate and one key pair per SuperNode.

    Parameters
    ----------
    out : Path
        Folder to write into (created if needed).
    superlink_hosts : Sequence[str]
        DNS names and IP addresses the SuperLink is reached at; all become
        subject alternative names, the first is also the common name.
    nodes : Sequence[str]
        SuperNode names (lower-case letters, digits and dashes, as Kubernetes
        names): one key pair each.
    days : int
        Validity of the certificates.
    overwrite : bool
        Replace existing files; without it an existing file is an error, so a
        working CA is never replaced by accident.

    Raises
    ------
    UsageError
        For a bad host or node name, no hosts, duplicate nodes, a
        non-positive validity, or files that already exist.

    """
    sans = [_san(h) for h in superlink_hosts]
    if not sans:
        raise UsageError("give at least one --superlink-host (DNS name or IP address)")
    if not nodes:
        raise UsageError("give at least one --node")
    for name in nodes:
        if not _NODE_NAME.match(name):
            raise UsageError(
                f"node name {name!r} must be lower-case letters, digits and dashes "
                "(at most 63, starting and ending with a letter or digit)"
            )
    if len(set(nodes)) != len(nodes):
        raise UsageError("node names must be unique")
    if days <= 0:
        raise UsageError(f"--days must be > 0, got {days}")
    node_dir = out / "supernodes"
    targets = [out / f for f in _FILES]
    targets += [node_dir / n for n in nodes] + [node_dir / f"{n}.pub" for n in nodes]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise UsageError(f"{existing[0]} already exists; use --overwrite to replace it")
    try:
        node_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create {node_dir}: {err.strerror}") from err

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(_CURVE())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedapp federation CA")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), now, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA384())
    )
    link_key = ec.generate_private_key(_CURVE())
    link_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, superlink_hosts[0])])
    link_cert = (
        _builder(link_name, ca_name, link_key.public_key(), now, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA384())
    )
    paths = CertPaths(
        out / "ca.crt", out / "ca.key", out / "superlink.crt", out / "superlink.key", {}
    )
    _write(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(paths.ca_key, _pem_private(ca_key), private=True)
    _write(paths.superlink_cert, link_cert.public_bytes(serialization.Encoding.PEM), False)
    _write(paths.superlink_key, _pem_private(link_key), private=True)
    for name in nodes:
        key = ec.generate_private_key(_CURVE())
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        pair = (node_dir / name, node_dir / f"{name}.pub")
        _write(pair[0], private, private=True)
        _write(pair[1], public + f" {name}\n".encode(), private=False)
        paths.node_keys[name] = pair
    return paths


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOST_NAME.match(host) or len(host) > 253:
        raise UsageError(f"--superlink-host {host!r} is neither a DNS name nor an IP address")
    return x509.DNSName(host)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # A little slack for clocks that lag the issuing machine's.
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _pem_private(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, content: bytes, private: bool) -> None:
    """Write ``content``, creating a private file 0600 before any byte lands."""
    mode = 0o600 if private else 0o644
    path.unlink(missing_ok=True)  # os.open's mode applies only to a new file
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.chmod(path, mode)  # the umask may have narrowed a public file's mode
