"""Store URLs: which backend, where, and how to reach it.

    sqlite:///var/lib/bramble/state.db          the embedded default (one file)
    sqlite://relative/path/state.db             relative to the working directory
    etcd://10.0.0.5:2379,10.0.0.6:2379          an etcd cluster over plain HTTP
    etcds://10.0.0.5:2379?ca=/etc/bramble/etcd-ca.pem&cert=/etc/bramble/etcd.pem&key=/etc/bramble/etcd-key.pem
                                                over TLS, with a client certificate
    ...?user=bramble&password-file=/etc/bramble/etcd-password
                                                with etcd authentication
    ...?timeout=5                               per-request deadline in seconds

The password is read from a file (or the BRAMBLE_ETCD_PASSWORD environment variable),
never from the URL itself: URLs end up in process arguments and logs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from controlplane.store.errors import StoreUnusable
from controlplane.store.etcd.config import EtcdConfig

_EXAMPLES = "use sqlite:///path/state.db or etcd://host:2379[,host:2379]"
_ETCD_OPTIONS = {"ca", "cert", "key", "user", "password-file", "timeout", "dial-timeout"}


@dataclass(frozen=True, slots=True)
class SqliteLocation:
    path: Path


def parse(url: str) -> SqliteLocation | EtcdConfig:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise StoreUnusable(f"the store URL {url!r} has no scheme; {_EXAMPLES}")
    if scheme == "sqlite":
        if not rest or rest.endswith("/"):
            raise StoreUnusable(f"the store URL {url!r} names no file; {_EXAMPLES}")
        return SqliteLocation(Path(rest))
    if scheme in ("etcd", "etcds"):
        return _parse_etcd(url, scheme, rest)
    raise StoreUnusable(f"unknown store URL scheme {scheme!r} in {url!r}; {_EXAMPLES}")


def _parse_etcd(url: str, scheme: str, rest: str) -> EtcdConfig:
    hosts, _, query = rest.partition("?")
    hosts = hosts.rstrip("/")
    if "@" in hosts:
        raise StoreUnusable(
            "put etcd credentials in user= and password-file= options, not in the URL "
            "(URLs show up in process lists and logs)"
        )
    endpoints = []
    for host in hosts.split(","):
        name, colon, port = host.strip().rpartition(":")
        if not colon or not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise StoreUnusable(
                f"bad etcd endpoint {host!r} in {url!r}: write host:port, e.g. 10.0.0.5:2379"
            )
        endpoints.append(f"{'https' if scheme == 'etcds' else 'http'}://{name}:{port}")
    options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = set(options) - _ETCD_OPTIONS
    if unknown:
        raise StoreUnusable(
            f"unknown etcd option(s) {', '.join(sorted(unknown))} in the store URL; "
            f"known: {', '.join(sorted(_ETCD_OPTIONS))}"
        )
    if scheme == "etcd" and ({"ca", "cert", "key"} & set(options)):
        raise StoreUnusable("TLS options need the etcds:// scheme (etcd:// is plain HTTP)")
    if ("cert" in options) != ("key" in options):
        raise StoreUnusable("give both cert= and key= for an etcd client certificate")
    if "password-file" in options and "user" not in options:
        raise StoreUnusable(
            "password-file= needs user=: give the etcd user the password belongs to"
        )
    password = None
    if "password-file" in options:
        password = _read_secret(Path(options["password-file"]))
    elif "user" in options:
        password = os.environ.get("BRAMBLE_ETCD_PASSWORD")
        if password is None:
            raise StoreUnusable(
                "etcd user= needs a password: give password-file= or set BRAMBLE_ETCD_PASSWORD"
            )
    return EtcdConfig(
        endpoints=tuple(endpoints),
        timeout=_seconds(options, "timeout", 5.0),
        dial_timeout=_seconds(options, "dial-timeout", 2.0),
        ca_file=_path(options.get("ca")),
        cert_file=_path(options.get("cert")),
        key_file=_path(options.get("key")),
        username=options.get("user"),
        password=password,
    )


def _seconds(options: dict[str, str], name: str, default: float) -> float:
    if name not in options:
        return default
    text = options[name].removesuffix("s")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 300:
        raise StoreUnusable(f"{name}= must be a number of seconds between 0 and 300")
    return value


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as e:
        raise StoreUnusable(f"cannot read the etcd password file {path}: {e.strerror}") from e
