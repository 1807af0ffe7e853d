"""`fedapp certs`: a CA, the SuperLink's certificate, SuperNode key pairs."""

from __future__ import annotations

import ipaddress
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fedapp.deploy.certs import generate
from fedapp.errors import UsageError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_superlink_certificate_names_every_host_and_chains_to_the_ca(tmp_path: Path) -> None:
    paths = generate(tmp_path, ["superlink.fl.svc", "localhost", "10.0.0.7"], ["bank"])
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(paths.superlink_cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["superlink.fl.svc", "localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)  # raises if the CA did not sign it
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    key = serialization.load_pem_private_key(paths.superlink_key.read_bytes(), password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_each_supernode_gets_an_ec_key_pair_in_openssh_format(tmp_path: Path) -> None:
    paths = generate(tmp_path, ["superlink"], ["bank", "telco"])
    assert set(paths.node_keys) == {"bank", "telco"}
    publics = set()
    for private_path, public_path in paths.node_keys.values():
        private = serialization.load_ssh_private_key(private_path.read_bytes(), password=None)
        public = serialization.load_ssh_public_key(public_path.read_bytes())
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        assert isinstance(private.curve, ec.SECP384R1)  # a NIST curve, as Flower requires
        assert private.public_key().public_numbers() == public.public_numbers()
        publics.add(public_path.read_text())
    assert len(publics) == 2


def test_private_keys_are_mode_0600_and_the_rest_0644(tmp_path: Path) -> None:
    paths = generate(tmp_path, ["superlink"], ["bank"])
    private = [paths.ca_key, paths.superlink_key, paths.node_keys["bank"][0]]
    public = [paths.ca_cert, paths.superlink_cert, paths.node_keys["bank"][1]]
    assert [_mode(p) for p in private] == [0o600] * 3
    assert [_mode(p) for p in public] == [0o644] * 3


def test_existing_files_are_kept_unless_overwrite(tmp_path: Path) -> None:
    first = generate(tmp_path, ["superlink"], ["bank"])
    before = first.ca_cert.read_bytes()
    with pytest.raises(UsageError, match=r"ca\.crt already exists; use --overwrite"):
        generate(tmp_path, ["superlink"], ["bank"])
    assert first.ca_cert.read_bytes() == before
    second = generate(tmp_path, ["superlink"], ["bank"], overwrite=True)
    assert second.ca_cert.read_bytes() != before
    assert _mode(second.ca_key) == 0o600


@pytest.mark.parametrize(
    ("hosts", "nodes", "days", "message"),
    [
        ([], ["bank"], 30, "at least one --superlink-host"),
        (["bad host"], ["bank"], 30, "neither a DNS name nor an IP address"),
        (["superlink"], [], 30, "at least one --node"),
        (["superlink"], ["Bank_1"], 30, "lower-case letters, digits and dashes"),
        (["superlink"], ["bank", "bank"], 30, "unique"),
        (["superlink"], ["bank"], 0, "--days must be > 0"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    tmp_path: Path, hosts: list[str], nodes: list[str], days: int, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        generate(tmp_path / "out", hosts, nodes, days)
    assert not (tmp_path / "out").exists()


def test_the_command_writes_the_files_and_fails_with_one_line(tmp_path: Path) -> None:
    fedapp = [sys.executable, "-m", "fedapp", "certs", "--out", str(tmp_path / "c")]
    done = subprocess.run(
        [*fedapp, "--superlink-host", "superlink", "--node", "bank"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "c").rglob("*") if p.is_file()) == [
        "bank", "bank.pub", "ca.crt", "ca.key", "superlink.crt", "superlink.key",
    ]  # fmt: skip
    again = subprocess.run(
        [*fedapp, "--superlink-host", "superlink", "--node", "bank"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "already exists" in again.stderr
