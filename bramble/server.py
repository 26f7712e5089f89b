"""``bramble server``: the control-plane process.

Opens the store, creates (first start) or loads the cluster PKI, starts the apiserver on
HTTPS, writes ``DATA_DIR/admin.kubeconfig`` (0600) that kubectl can use as is, keeps the
store compacted, and on SIGINT or SIGTERM stops accepting requests, closes the store
cleanly (in-flight writes finish, the WAL is checkpointed) and exits. The scheduler,
controllers and the embedded agent join here as they are built.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from controlplane.store import default_url, open_store
from controlplane.store.compactor import Compactor

logger = logging.getLogger(__name__)

DEFAULT_PORT = 6443


@dataclass(frozen=True, slots=True)
class ServerOptions:
    data_dir: Path
    store_url: str | None = None
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    compact_interval: float = 300.0
    max_inflight: int = 400


class ServerError(Exception):
    """A start-up failure a person must fix (the message says how)."""


def parse_listen(value: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``:PORT`` or ``[v6]:PORT``."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ServerError(f"--listen {value!r}: write ADDR:PORT, e.g. 0.0.0.0:6443")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def server_url(host: str, port: int) -> str:
    """How local clients reach the server: loopback when it listens everywhere."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


async def run(options: ServerOptions, *, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM. Raises StoreError or ServerError when it cannot start."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Install the handlers before anything slow, so an early signal is never lost.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _serve(options, stop, ready)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    logger.info("server stopped")


async def _serve(options: ServerOptions, stop: asyncio.Event, ready: asyncio.Event | None) -> None:
    from controlplane.apiserver.auth import pki as pkis
    from controlplane.apiserver.netaddr import local_addresses
    from controlplane.apiserver.server import ApiServer

    data_dir = options.data_dir
    try:
        pki = await asyncio.to_thread(
            pkis.ensure_cluster_pki,
            data_dir,
            hostnames=pkis.default_hostnames(),
            ips=await asyncio.to_thread(local_addresses),
        )
    except pkis.PkiError as e:
        raise ServerError(e.message) from e
    except OSError as e:
        raise ServerError(f"cannot prepare {data_dir}: {e.strerror}") from e
    if pki.issued:
        logger.info("pki issued=%s dir=%s", ",".join(pki.issued), pki.dir)
    store = await open_store(options.store_url or default_url(data_dir))
    apiserver = ApiServer(
        store,
        host=options.host,
        port=options.port,
        ssl_context=pkis.server_ssl_context(pki),
        audit_path=data_dir / "audit.log",
        max_inflight=options.max_inflight,
        agent_ssl=await asyncio.to_thread(pkis.client_ssl_context, pki),
    )
    compactor = asyncio.create_task(
        Compactor(store, interval=options.compact_interval).run(), name="store-compactor"
    )
    try:
        try:
            await apiserver.start()
        except OSError as e:
            raise ServerError(
                f"cannot listen on {options.host}:{options.port}: {e.strerror}; "
                "is another server running there? choose another with --listen"
            ) from e
        kubeconfig = data_dir / "admin.kubeconfig"
        await asyncio.to_thread(
            _write_admin_kubeconfig, pki, kubeconfig, server_url(options.host, apiserver.port)
        )
        logger.info(
            "server ready store=%r url=%s kubeconfig=%s",
            store.description,
            server_url(options.host, apiserver.port),
            kubeconfig,
        )
        if ready is not None:
            ready.set()
        await stop.wait()
        logger.info("server stopping")
    finally:
        compactor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await compactor
        await apiserver.stop()
        await store.close()


def _write_admin_kubeconfig(pki: object, path: Path, url: str) -> None:
    """A fresh admin credential each start (so it always names the right port)."""
    from controlplane.apiserver.auth import kubeconfig
    from controlplane.apiserver.auth import pki as pkis

    assert isinstance(pki, pkis.Pki)
    cert, key = pkis.issue_client_certificate(
        pki, common_name="admin", organizations=["system:masters"], days=365
    )
    content = kubeconfig.admin_kubeconfig(
        url, pki.ca_pem, user="admin", client_cert_pem=cert, client_key_pem=key
    )
    kubeconfig.write_kubeconfig(path, content)
