"""X.509 for the cluster PKI, in memory: making the CA, issuing leaf certificates,
reading SANs, PEM encodings. No files and no policy here; ``pki`` decides what to issue
and when.

Every key is ECDSA P-256 (fast on a Pi, accepted everywhere TLS 1.2 is). A leaf is
back-dated by ``BACKDATE`` and never outlives the CA that signs it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Pis have no real-time clock: until NTP answers, one may run a little behind the one
# that issued a certificate. Back-dating by an hour keeps fresh certificates valid.
BACKDATE = timedelta(hours=1)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Sans = tuple[frozenset[str], frozenset[IPAddress]]
"""(DNS names in lower case, IP addresses) a serving certificate is valid for."""
Usage = Literal["serving", "client"]


class PkiError(Exception):
    """The PKI cannot be used as it is; ``message`` says which file and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def new_ca(
    common_name: str, *, days: int, now: datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(name, name, key, now, now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(
    ca: x509.Certificate,
    ca_key: PrivateKey,
    subject: x509.Name,
    *,
    usage: Usage,
    days: int,
    now: datetime,
    sans: Sans | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new key and a certificate for it signed by ``ca``, for TLS ``usage``."""
    if days < 1:
        raise ValueError(f"a certificate must be valid for at least a day, not {days}")
    not_after = min(now + timedelta(days=days), ca.not_valid_after_utc)
    if not_after <= now:
        raise PkiError(f"the cluster CA expired on {ca.not_valid_after_utc:%Y-%m-%d}")
    key = ec.generate_private_key(ec.SECP256R1())
    eku = ExtendedKeyUsageOID.SERVER_AUTH if usage == "serving" else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(subject, ca.subject, key, now, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans is not None:
        dns, addrs = sans
        general: list[x509.GeneralName] = [x509.DNSName(d) for d in sorted(dns)]
        general += [x509.IPAddress(a) for a in sorted(addrs, key=lambda a: (a.version, str(a)))]
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def subject(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    """CN and O attributes, as Kubernetes reads them: user name and groups."""
    names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    return x509.Name([*names, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def certificate_sans(cert: x509.Certificate) -> Sans:
    """The DNS names (lower case) and IP addresses a certificate is valid for."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset(), frozenset()
    dns = frozenset(d.lower() for d in ext.get_values_for_type(x509.DNSName))
    values = ext.get_values_for_type(x509.IPAddress)
    return dns, frozenset(a for a in values if isinstance(a, IPAddress))


def sans_of(hostnames: Iterable[str], ips: Iterable[str]) -> Sans:
    """Normalized SANs: names lower case without a trailing dot; an address given as a
    host name counts as an address; an IPv6 zone is dropped. Bad input: ``PkiError``."""
    dns: set[str] = set()
    addrs: set[IPAddress] = set()
    for raw in hostnames:
        name = raw.strip().rstrip(".").lower()
        if not name:
            continue
        address = _ip(name)
        if address is not None:
            addrs.add(address)
        elif name.isascii() and name.isprintable() and " " not in name:
            dns.add(name)
        else:
            raise PkiError(f"{raw!r} is not a valid DNS name for a certificate")
    for raw in ips:
        address = _ip(raw.strip())
        if address is None:
            raise PkiError(f"{raw!r} is not an IP address")
        addrs.add(address)
    return frozenset(dns), frozenset(addrs)


def show_sans(sans: Sans) -> str:
    return ",".join([*sorted(sans[0]), *sorted(str(a) for a in sans[1])])


def same_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    """Whether ``key`` is the private half of ``cert``'s public key."""
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    """PKCS#8, unencrypted: the file's mode protects it, as kubeadm and k3s do."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def utc(now: datetime | None) -> datetime:
    """``now`` (which must be timezone-aware) in UTC, or the current time."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _builder(
    name: x509.Name, issuer: x509.Name, key: PrivateKey, now: datetime, not_after: datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _ip(text: str) -> IPAddress | None:
    try:
        # A zone ("fe80::1%eth0") means nothing in a certificate and would make the
        # SAN comparison unequal forever.
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
