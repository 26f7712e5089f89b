"""The cluster PKI on disk: first start, reload, renewal, damage, file modes."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controlplane.apiserver.auth.atomic import write_private
from controlplane.apiserver.auth.certs import certificate_sans
from controlplane.apiserver.auth.pki import (
    Pki,
    PkiError,
    ca_fingerprint,
    default_hostnames,
    ensure_cluster_pki,
    issue_client_certificate,
    issue_serving_certificate,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FILES = (
    "ca.crt",
    "ca.key",
    "apiserver.crt",
    "apiserver.key",
    "apiserver-agent-client.crt",
    "apiserver-agent-client.key",
)


def make(
    data_dir: Path, *, now: datetime = NOW, ips: list[str] | None = None, **kw: list[str]
) -> Pki:
    hostnames = kw.get("hostnames", ["pi-1", "pi-1.local"])
    return ensure_cluster_pki(data_dir, hostnames=hostnames, ips=ips or ["192.168.1.10"], now=now)


def snapshot(pki_dir: Path) -> dict[str, bytes]:
    return {name: (pki_dir / name).read_bytes() for name in FILES}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_creates_ca_serving_and_client_certificates(tmp_path: Path) -> None:
    pki = make(tmp_path)

    assert pki.issued == ("ca", "serving", "client")
    ca = pki.ca_cert
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "bramble-ca"
    assert isinstance(pki.ca_key, ec.EllipticCurvePrivateKey)
    assert isinstance(pki.ca_key.curve, ec.SECP256R1)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.not_valid_after_utc - NOW == timedelta(days=3650)

    serving = pki.serving_cert
    serving.verify_directly_issued_by(ca)
    assert serving.not_valid_after_utc - NOW == timedelta(days=365)
    assert serving.not_valid_before_utc <= NOW
    dns, ips = certificate_sans(serving)
    assert dns == {
        "pi-1",
        "pi-1.local",
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    }
    assert ips == {ipaddress.ip_address(a) for a in ("192.168.1.10", "127.0.0.1", "::1")}
    eku = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]

    client = pki.client_cert
    client.verify_directly_issued_by(ca)
    assert client.subject.rfc4514_string() == "CN=bramble:apiserver"
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]

    # The files are the certificates the Pki holds.
    on_disk = x509.load_pem_x509_certificate(pki.serving_cert_path.read_bytes())
    assert on_disk == serving
    assert pki.ca_cert_path.read_bytes() == pki.ca_pem


def test_file_modes(tmp_path: Path) -> None:
    pki = make(tmp_path)

    assert mode(pki.dir) == 0o700
    for key in (pki.ca_key_path, pki.serving_key_path, pki.client_key_path):
        assert mode(key) == 0o600, key
    for cert in (pki.ca_cert_path, pki.serving_cert_path, pki.client_cert_path):
        assert mode(cert) == 0o644, cert
    assert sorted(p.name for p in pki.dir.iterdir()) == sorted(FILES)  # no temp files left


def test_loosened_modes_are_tightened_on_load(tmp_path: Path) -> None:
    pki = make(tmp_path)
    pki.serving_key_path.chmod(0o644)
    pki.dir.chmod(0o755)

    make(tmp_path)

    assert mode(pki.serving_key_path) == 0o600
    assert mode(pki.dir) == 0o700


def test_reload_reissues_nothing(tmp_path: Path) -> None:
    first = make(tmp_path)
    before = snapshot(first.dir)

    again = make(tmp_path, now=NOW + timedelta(days=100))

    assert again.issued == ()
    assert snapshot(again.dir) == before
    assert again.ca_cert == first.ca_cert
    assert again.serving_cert == first.serving_cert
    assert ca_fingerprint(again) == ca_fingerprint(first)


@pytest.mark.parametrize(
    ("hostnames", "ips", "reissued"),
    [
        (["pi-1", "pi-1.local"], ["192.168.1.10"], ()),
        (["PI-1.local.", "pi-1", ""], [" 192.168.1.10"], ()),  # same set, other spelling
        (["pi-1", "pi-1.local", "localhost"], ["192.168.1.10", "::1"], ()),  # fixed ones
        (["pi-1", "pi-1.local"], ["192.168.1.11"], ("serving",)),
        (["pi-1", "pi-1.local"], ["192.168.1.10", "fd00::10"], ("serving",)),
        (["pi-1"], ["192.168.1.10"], ("serving",)),
        (["pi-1", "pi-1.local", "bramble.lan"], ["192.168.1.10"], ("serving",)),
    ],
)
def test_san_change_reissues_only_the_serving_certificate(
    tmp_path: Path, hostnames: list[str], ips: list[str], reissued: tuple[str, ...]
) -> None:
    first = make(tmp_path)
    before = snapshot(first.dir)

    again = make(tmp_path, hostnames=hostnames, ips=ips)

    assert again.issued == reissued
    after = snapshot(again.dir)
    changed = {name for name in FILES if after[name] != before[name]}
    assert changed == ({"apiserver.crt", "apiserver.key"} if reissued else set())
    dns, addrs = certificate_sans(again.serving_cert)
    for ip in ips:
        assert ipaddress.ip_address(ip.strip()) in addrs
    assert {h.strip().rstrip(".").lower() for h in hostnames if h} <= dns
    again.serving_cert.verify_directly_issued_by(first.ca_cert)


@pytest.mark.parametrize(
    ("later", "reissued"),
    [
        (timedelta(days=334), ()),  # 31 days left
        (timedelta(days=335, seconds=1), ("serving", "client")),  # just under 30 days left
        (timedelta(days=364), ("serving", "client")),
        (timedelta(days=400), ("serving", "client")),  # already expired
        (-timedelta(days=2), ("serving", "client")),  # the clock went back: not yet valid
    ],
)
def test_near_expiry_reissues_leaf_certificates(
    tmp_path: Path, later: timedelta, reissued: tuple[str, ...]
) -> None:
    first = make(tmp_path)
    then = NOW + later

    again = make(tmp_path, now=then)

    assert again.issued == reissued
    assert again.ca_cert == first.ca_cert  # the CA is never re-issued
    if reissued:
        assert again.serving_cert.not_valid_after_utc - then == timedelta(days=365)
        assert again.serving_cert.not_valid_before_utc <= then
        assert make(tmp_path, now=then).issued == ()  # and then it is stable


def test_missing_leaf_file_is_issued_again(tmp_path: Path) -> None:
    pki = make(tmp_path)
    pki.client_key_path.unlink()

    again = make(tmp_path)

    assert again.issued == ("client",)
    assert again.client_cert != pki.client_cert


@pytest.mark.parametrize(
    ("name", "content", "expect"),
    [
        ("ca.key", b"garbage", "restore it from a backup"),
        ("ca.key", b"", "restore it from a backup"),
        ("ca.crt", b"-----BEGIN CERTIFICATE-----\nAAAA\n", "restore it from a backup"),
        ("ca.crt", None, "is missing"),
        ("apiserver.key", b"garbage", "is not an unencrypted PEM private key"),
        ("apiserver.crt", b"\x00" * 300, "is not a PEM certificate"),
        ("apiserver-agent-client.key", b"-----BEGIN PRIVATE KEY-----\n", "delete"),
    ],
)
def test_corrupt_or_missing_file_is_a_pki_error_naming_it(
    tmp_path: Path, name: str, content: bytes | None, expect: str
) -> None:
    pki = make(tmp_path)
    if content is None:
        (pki.dir / name).unlink()
    else:
        (pki.dir / name).write_bytes(content)

    with pytest.raises(PkiError) as caught:
        make(tmp_path)

    assert str(pki.dir / name) in caught.value.message
    assert expect in caught.value.message


def test_key_that_is_not_the_certificates_is_a_pki_error(tmp_path: Path) -> None:
    pki = make(tmp_path)
    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(pki.serving_key_path, pem)

    with pytest.raises(PkiError, match=r"apiserver\.key is not the key of .*apiserver\.crt"):
        make(tmp_path)


def test_certificate_from_another_ca_is_a_pki_error(tmp_path: Path) -> None:
    pki = make(tmp_path / "a")
    other = make(tmp_path / "b")
    for name in ("apiserver.crt", "apiserver.key"):
        (pki.dir / name).write_bytes((other.dir / name).read_bytes())

    with pytest.raises(PkiError, match="was not issued by the cluster CA: delete"):
        make(tmp_path / "a")


def test_copied_ca_is_adopted_and_leaves_issued_for_it(tmp_path: Path) -> None:
    first = make(tmp_path / "server-1")
    second_pki = tmp_path / "server-2" / "pki"
    second_pki.mkdir(parents=True)
    for name in ("ca.crt", "ca.key"):
        (second_pki / name).write_bytes((first.dir / name).read_bytes())

    second = make(tmp_path / "server-2", hostnames=["pi-2"])

    assert second.issued == ("serving", "client")
    assert ca_fingerprint(second) == ca_fingerprint(first)
    second.serving_cert.verify_directly_issued_by(first.ca_cert)


def test_crashed_first_start_leaves_nothing_half_made(tmp_path: Path) -> None:
    # A first start that died before its rename leaves only a temporary directory,
    # and a crashed file write only a temporary file; both are swept away.
    (tmp_path / ".pki-tmp-abc123").mkdir()
    (tmp_path / ".pki-tmp-abc123" / "ca.key").write_bytes(b"half")
    (tmp_path / "pki").mkdir()  # empty, e.g. made by hand

    pki = make(tmp_path)

    assert pki.issued == ("ca", "serving", "client")
    assert not list(tmp_path.glob(".pki-tmp-*"))
    (pki.dir / ".apiserver.key.tmp-0000").write_bytes(b"half")
    assert make(tmp_path).issued == ()
    assert sorted(p.name for p in pki.dir.iterdir()) == sorted(FILES)


def test_first_start_with_an_unset_clock_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="set the time"):
        make(tmp_path, now=datetime(1970, 1, 1, 0, 5, tzinfo=UTC))
    assert not (tmp_path / "pki").exists()


def test_bad_san_input_is_a_pki_error(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="not an IP address"):
        make(tmp_path, ips=["192.168.1.300"])
    with pytest.raises(PkiError, match="not a valid DNS name"):
        make(tmp_path, hostnames=["bad name"])


def test_ip_given_as_hostname_and_ipv6_zone_are_normalized(tmp_path: Path) -> None:
    pki = make(tmp_path, hostnames=["10.0.0.5"], ips=["fe80::1%eth0"])
    dns, addrs = certificate_sans(pki.serving_cert)
    assert "10.0.0.5" not in dns
    assert {ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("fe80::1")} <= addrs
    assert make(tmp_path, hostnames=["10.0.0.5"], ips=["fe80::1%eth0"]).issued == ()


@pytest.mark.parametrize(
    ("common_name", "organizations"),
    [
        ("alice", ["bramble:viewers"]),
        ("admin", ["system:masters"]),
        ("system:node:pi-2", ["system:nodes"]),
        ("bob", []),
        ("carol", ["a", "b"]),
    ],
)
def test_issue_client_certificate(
    tmp_path: Path, common_name: str, organizations: list[str]
) -> None:
    pki = make(tmp_path)

    cert_pem, key_pem = issue_client_certificate(
        pki, common_name=common_name, organizations=organizations, days=30, now=NOW
    )

    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    cert.verify_directly_issued_by(pki.ca_cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == common_name
    groups = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert groups == organizations
    assert cert.not_valid_after_utc - NOW == timedelta(days=30)
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_client_certificate_never_outlives_the_ca(tmp_path: Path) -> None:
    pki = make(tmp_path)
    cert_pem, _ = issue_client_certificate(
        pki, common_name="alice", organizations=[], days=36500, now=NOW
    )
    assert x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc == (
        pki.ca_cert.not_valid_after_utc
    )


@pytest.mark.parametrize(("common_name", "days"), [("", 30), ("alice", 0), ("alice", -1)])
def test_issue_client_certificate_refuses_bad_input(
    tmp_path: Path, common_name: str, days: int
) -> None:
    pki = make(tmp_path)
    with pytest.raises(ValueError, match=r"common name|at least a day"):
        issue_client_certificate(pki, common_name=common_name, organizations=[], days=days)


def test_issue_serving_certificate_for_an_agent(tmp_path: Path) -> None:
    pki = make(tmp_path)
    cert_pem, _ = issue_serving_certificate(
        pki, common_name="system:node:pi-2", hostnames=["pi-2"], ips=["10.0.0.2"], days=365
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(pki.ca_cert)
    assert certificate_sans(cert) == (
        frozenset({"pi-2"}),
        frozenset({ipaddress.ip_address("10.0.0.2")}),
    )


def test_ca_fingerprint_is_sha256_of_the_der(tmp_path: Path) -> None:
    pki = make(tmp_path)
    der = x509.load_pem_x509_certificate((pki.dir / "ca.crt").read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    fingerprint = ca_fingerprint(pki)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", fingerprint)
    assert fingerprint == "sha256:" + hashlib.sha256(der).hexdigest()
    assert fingerprint != ca_fingerprint(make(tmp_path / "other"))


def test_pki_repr_does_not_show_the_key(tmp_path: Path) -> None:
    assert "ca_key" not in repr(make(tmp_path))


def test_default_hostnames_include_the_mdns_name() -> None:
    names = default_hostnames()
    assert names
    assert names[-1].endswith(".local")
    assert all(n == n.lower() for n in names)


@pytest.mark.parametrize(("file_mode", "umask"), [(0o600, 0o000), (0o644, 0o077)])
def test_write_private_sets_the_mode_whatever_the_umask(
    tmp_path: Path, file_mode: int, umask: int
) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    previous = os.umask(umask)
    try:
        write_private(target, b"new", mode=file_mode)
    finally:
        os.umask(previous)
    assert target.read_bytes() == b"new"
    assert mode(target) == file_mode
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
