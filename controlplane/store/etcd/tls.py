"""TLS towards etcd: the client's context (CA, client certificate) and reading a
server's refusal of the handshake."""

from __future__ import annotations

import ssl

from controlplane.store.errors import StoreUnusable
from controlplane.store.etcd.config import EtcdConfig


def ssl_context(config: EtcdConfig) -> ssl.SSLContext:
    """The context for etcds:// URLs. It reads files: call it off the event loop."""
    try:
        ctx = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        if config.cert_file:
            ctx.load_cert_chain(
                str(config.cert_file), str(config.key_file) if config.key_file else None
            )
    except (OSError, ssl.SSLError) as e:
        raise StoreUnusable(
            f"cannot load the TLS files for etcd ({e}); check ca=, cert= and key= in --store"
        ) from e
    return ctx


def refusal(e: BaseException) -> str | None:
    """The TLS alert with which the server refused the handshake, if ``e`` is one
    (with TLS 1.3 a refused client certificate shows only when the client reads)."""
    cause = e.__cause__
    if isinstance(cause, ssl.SSLError) and cause.reason and "ALERT" in cause.reason:
        return cause.reason.lower().replace("_", " ")  # e.g. "sslv3 alert bad certificate"
    return None
