"""The cluster's PKI: its CA, the apiserver's certificates, and TLS contexts from them.

``ensure_cluster_pki`` keeps these files under ``<data_dir>/pki/`` (directory 0700,
keys 0600, certificates 0644)::

    ca.crt  ca.key                   cluster CA: ECDSA P-256, 10 years, CN "bramble-ca"
    apiserver.crt  apiserver.key     serving certificate, 1 year, SANs below
    apiserver-agent-client.crt/.key  client certificate the apiserver shows to agents,
                                     CN "bramble:apiserver", 1 year

The serving certificate names the machine (the ``hostnames`` and ``ips`` given, say
``default_hostnames()`` and the LAN addresses), "localhost", 127.0.0.1, ::1 and the
in-cluster names "kubernetes", "kubernetes.default", "kubernetes.default.svc". Both
leaf certificates are re-issued on start when they are within 30 days of expiry, not
yet valid (the clock went back), or, for the serving one, when its SAN set differs.

The first start builds the whole directory in a temporary sibling and renames it into
place, so a crash leaves no PKI or a complete one; later writes replace one file at a
time atomically (``atomic.write_private``). Whatever cannot be repaired without the
operator (a missing, corrupt or mismatched file) raises ``PkiError``, whose message
names the file and says what to do. A second control-plane server on the same store gets
the same CA through the store (bootstrap.py), or by copying ``ca.crt`` and ``ca.key``
into its own ``pki/`` before its first start.

Everything here blocks (file I/O, key generation): call it off the event loop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import ssl
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from controlplane.apiserver.auth import certs
from controlplane.apiserver.auth.atomic import ensure_private_dir, fsync_dir, write_private
from controlplane.apiserver.auth.certs import PkiError, PrivateKey, Sans, Usage
from controlplane.apiserver.auth.identity import USER_APISERVER

__all__ = [
    "Pki",
    "PkiError",
    "ca_fingerprint",
    "client_ssl_context",
    "default_hostnames",
    "ensure_cluster_pki",
    "issue_client_certificate",
    "issue_serving_certificate",
    "server_ssl_context",
]

logger = logging.getLogger(__name__)

CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = timedelta(days=30)
# A Pi that booted without network may believe it is 1970; a CA made then is useless.
EARLIEST_SANE_CLOCK = datetime(2025, 1, 1, tzinfo=UTC)
FIXED_DNS_SANS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
FIXED_IP_SANS = ("127.0.0.1", "::1")
CA_COMMON_NAME = "bramble-ca"
SERVING_COMMON_NAME = "bramble-apiserver"

_FILES: dict[str, tuple[str, str]] = {
    "ca": ("ca.crt", "ca.key"),
    "serving": ("apiserver.crt", "apiserver.key"),
    "client": ("apiserver-agent-client.crt", "apiserver-agent-client.key"),
}
_CA_FIX = (
    "restore it from a backup; or, to start a new cluster CA, delete the pki directory "
    "(every node must then join again and every kubeconfig be issued again)"
)


@dataclass(frozen=True, slots=True)
class Pki:
    """The loaded, validated PKI. ``issued`` names what this start created or renewed
    ("ca", "serving", "client"), for the caller's log."""

    dir: Path
    ca_cert: x509.Certificate
    ca_key: PrivateKey = field(repr=False)
    serving_cert: x509.Certificate
    client_cert: x509.Certificate
    issued: tuple[str, ...] = ()

    @property
    def ca_pem(self) -> bytes:
        return self.ca_cert.public_bytes(serialization.Encoding.PEM)

    @property
    def ca_cert_path(self) -> Path:
        return self.dir / _FILES["ca"][0]

    @property
    def ca_key_path(self) -> Path:
        return self.dir / _FILES["ca"][1]

    @property
    def serving_cert_path(self) -> Path:
        return self.dir / _FILES["serving"][0]

    @property
    def serving_key_path(self) -> Path:
        return self.dir / _FILES["serving"][1]

    @property
    def client_cert_path(self) -> Path:
        return self.dir / _FILES["client"][0]

    @property
    def client_key_path(self) -> Path:
        return self.dir / _FILES["client"][1]


def default_hostnames() -> list[str]:
    """The machine's own names: its hostname and, for mDNS, ``<hostname>.local``."""
    host = socket.gethostname().strip().rstrip(".").lower()
    short = host.split(".", 1)[0]
    return [h for h in dict.fromkeys([host, f"{short}.local"]) if h and h != ".local"]


def ensure_cluster_pki(
    data_dir: Path, *, hostnames: list[str], ips: list[str], now: datetime | None = None
) -> Pki:
    """Create the PKI on first start; on later starts load it, validate it and renew
    the leaf certificates that need it. ``now`` is for tests."""
    now = certs.utc(now)
    sans = certs.sans_of([*FIXED_DNS_SANS, *hostnames], [*FIXED_IP_SANS, *ips])
    pki_dir = data_dir / "pki"
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in data_dir.glob(".pki-tmp-*"):  # a first start that crashed half-way
        shutil.rmtree(stale, ignore_errors=True)
    if pki_dir.is_dir() and not any(pki_dir.iterdir()):
        pki_dir.rmdir()
    issued: list[str] = []
    if not pki_dir.exists():
        _create(data_dir, pki_dir, sans, now)
        issued = ["ca", "serving", "client"]
        logger.info("pki: created cluster CA and apiserver certificates dir=%s", pki_dir)
    elif not pki_dir.is_dir():
        raise PkiError(f"{pki_dir} is not a directory: move it away and start again")
    ensure_private_dir(pki_dir)
    for stale in pki_dir.glob(".*.tmp-*"):  # a write_private that crashed before its rename
        stale.unlink(missing_ok=True)
    ca_cert, ca_key = _load_ca(pki_dir, now)
    serving, renewed = _ensure_leaf(pki_dir, "serving", ca_cert, ca_key, now, sans)
    if renewed:
        issued.append("serving")
    client, renewed = _ensure_leaf(pki_dir, "client", ca_cert, ca_key, now, None)
    if renewed:
        issued.append("client")
    return Pki(pki_dir, ca_cert, ca_key, serving, client, tuple(dict.fromkeys(issued)))


def issue_client_certificate(
    pki: Pki,
    *,
    common_name: str,
    organizations: list[str],
    days: int,
    now: datetime | None = None,
) -> tuple[bytes, bytes]:
    """A client certificate and its key as PEM: CN is the user name, each O a group
    (nodes: CN "system:node:<name>", O "system:nodes"). The key is not written anywhere."""
    if not common_name:
        raise ValueError("a client certificate needs a common name (the user name)")
    name = certs.subject(common_name, organizations)
    cert, key = certs.issue(
        pki.ca_cert, pki.ca_key, name, usage="client", days=days, now=certs.utc(now)
    )
    return certs.cert_pem(cert), certs.key_pem(key)


def issue_serving_certificate(
    pki: Pki,
    *,
    common_name: str,
    hostnames: list[str],
    ips: list[str],
    days: int,
    now: datetime | None = None,
) -> tuple[bytes, bytes]:
    """A serving certificate for another endpoint of the cluster (an agent's :10250),
    with exactly the SANs given, so the apiserver can verify it with ``client_ssl_context``."""
    sans = certs.sans_of(hostnames, ips)
    cert, key = certs.issue(
        pki.ca_cert,
        pki.ca_key,
        certs.subject(common_name),
        usage="serving",
        days=days,
        now=certs.utc(now),
        sans=sans,
    )
    return certs.cert_pem(cert), certs.key_pem(key)


def ca_fingerprint(pki: Pki) -> str:
    """``sha256:<hex>`` of the CA certificate's DER, as join tokens and mDNS carry it."""
    der = pki.ca_cert.public_bytes(serialization.Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def server_ssl_context(pki: Pki) -> ssl.SSLContext:
    """TLS 1.2+ serving the apiserver certificate. Client certificates are requested,
    not required (``CERT_OPTIONAL``: token users and anonymous health checks have none);
    one that is sent must chain to the cluster CA or the handshake fails."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=pki.ca_pem.decode())
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.serving_cert_path, pki.serving_key_path)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def client_ssl_context(
    pki: Pki, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """TLS 1.2+ trusting only the cluster CA (with hostname checks) and presenting
    ``cert``/``key``: by default the apiserver's own client certificate, for agents."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=pki.ca_pem.decode())
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert or pki.client_cert_path, key or pki.client_key_path)
    return ctx


# --- creating -------------------------------------------------------------------------


def _create(data_dir: Path, pki_dir: Path, sans: Sans, now: datetime) -> None:
    if now < EARLIEST_SANE_CLOCK:
        raise PkiError(
            f"the system clock reads {now:%Y-%m-%d}: set the time (enable NTP) before the "
            "first start, or the cluster CA would be dated wrongly"
        )
    tmp = Path(tempfile.mkdtemp(prefix=".pki-tmp-", dir=data_dir))  # mode 0700
    ca, key = certs.new_ca(CA_COMMON_NAME, days=CA_DAYS, now=now)
    _write_pair(tmp, "ca", ca, key)
    for leaf in ("serving", "client"):
        cert, leaf_key = _issue_leaf(leaf, ca, key, now, sans)
        _write_pair(tmp, leaf, cert, leaf_key)
    fsync_dir(tmp)
    os.rename(tmp, pki_dir)  # atomic: a later start sees no pki/ or a whole one
    fsync_dir(data_dir)


def _issue_leaf(
    leaf: Usage, ca: x509.Certificate, ca_key: PrivateKey, now: datetime, sans: Sans | None
) -> tuple[x509.Certificate, PrivateKey]:
    if leaf == "serving":
        name = certs.subject(SERVING_COMMON_NAME)
        return certs.issue(ca, ca_key, name, usage=leaf, days=LEAF_DAYS, now=now, sans=sans)
    name = certs.subject(USER_APISERVER)
    return certs.issue(ca, ca_key, name, usage=leaf, days=LEAF_DAYS, now=now)


def _write_pair(directory: Path, which: str, cert: x509.Certificate, key: PrivateKey) -> None:
    cert_name, key_name = _FILES[which]
    # Each file is replaced atomically, the pair is not: a crash between the two
    # renames leaves a new key beside the old certificate, which the next start reports
    # as a mismatch (delete both to re-issue). It never leaves half a file.
    write_private(directory / key_name, certs.key_pem(key), mode=0o600)
    write_private(directory / cert_name, certs.cert_pem(cert), mode=0o644)


# --- loading and validating -----------------------------------------------------------


def _load_ca(pki_dir: Path, now: datetime) -> tuple[x509.Certificate, PrivateKey]:
    cert_path, key_path = (pki_dir / n for n in _FILES["ca"])
    for path in (cert_path, key_path):
        if not path.exists():
            raise PkiError(f"{path} is missing: {_CA_FIX}")
    cert, key = _read_cert(cert_path, _CA_FIX), _read_key(key_path, _CA_FIX)
    _check_pair(cert, key, cert_path, key_path, _CA_FIX)
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise PkiError(f"{cert_path} is not a CA certificate: {_CA_FIX}")
    expires = cert.not_valid_after_utc
    if expires <= now:
        raise PkiError(f"{cert_path}: the cluster CA expired on {expires:%Y-%m-%d}: {_CA_FIX}")
    if expires - now < RENEW_BEFORE:
        logger.warning("pki: cluster CA expires soon file=%s expires=%s", cert_path, expires)
    return cert, key


def _ensure_leaf(
    pki_dir: Path,
    leaf: Usage,
    ca: x509.Certificate,
    ca_key: PrivateKey,
    now: datetime,
    sans: Sans | None,
) -> tuple[x509.Certificate, bool]:
    cert_path, key_path = (pki_dir / n for n in _FILES[leaf])
    if cert_path.exists() and key_path.exists():
        fix = f"delete {cert_path} and {key_path}; both are issued again on the next start"
        cert, key = _read_cert(cert_path, fix), _read_key(key_path, fix)
        _check_pair(cert, key, cert_path, key_path, fix)
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise PkiError(f"{cert_path} was not issued by the cluster CA: {fix}") from e
        why = _renewal_reason(cert, now, sans)
        if why is None:
            return cert, False
        logger.info("pki: re-issuing certificate file=%s reason=%s", cert_path, why)
    else:
        logger.info("pki: issuing certificate file=%s", cert_path)
    cert, new_key = _issue_leaf(leaf, ca, ca_key, now, sans)
    _write_pair(pki_dir, leaf, cert, new_key)
    return cert, True


def _renewal_reason(cert: x509.Certificate, now: datetime, sans: Sans | None) -> str | None:
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return f"expires {cert.not_valid_after_utc:%Y-%m-%d}, within {RENEW_BEFORE.days} days"
    if cert.not_valid_before_utc > now:
        return f"not valid before {cert.not_valid_before_utc:%Y-%m-%d} (did the clock go back?)"
    if sans is not None:
        current = certs.certificate_sans(cert)
        if current != sans:
            return f"SANs changed from {certs.show_sans(current)} to {certs.show_sans(sans)}"
    return None


def _read_cert(path: Path, fix: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as e:
        raise PkiError(f"cannot read {path}: {e.strerror}: {fix}") from e
    except ValueError as e:
        raise PkiError(f"{path} is not a PEM certificate (corrupt?): {fix}") from e


def _read_key(path: Path, fix: str) -> PrivateKey:
    if path.stat().st_mode & 0o077:
        logger.warning("pki: key file was readable by others; now 0600 file=%s", path)
        path.chmod(0o600)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as e:
        raise PkiError(f"cannot read {path}: {e.strerror}: {fix}") from e
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise PkiError(f"{path} is not an unencrypted PEM private key (corrupt?): {fix}") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError(f"{path} holds a {type(key).__name__}; use an EC or RSA key: {fix}")
    return key


def _check_pair(
    cert: x509.Certificate, key: PrivateKey, cert_path: Path, key_path: Path, fix: str
) -> None:
    if not certs.same_key(cert, key):
        raise PkiError(f"{key_path} is not the key of {cert_path}: {fix}")
