"""Running the apiserver: the watch cache, the system namespaces, the HTTP(S) listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from api import errors, gctune
from api.resources import RESOURCES, by_kind
from controlplane import store as st
from controlplane.apiserver import app as application
from controlplane.apiserver import httpd
from controlplane.apiserver.audit import AuditLog
from controlplane.apiserver.auth.local import LocalUsers
from controlplane.apiserver.auth.pki import Pki
from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.namespaces import NamespaceFinalizer
from controlplane.apiserver.objects import Clock, Objects, utcnow
from controlplane.apiserver.strategies.pods.admission import (
    DefaultTolerations,
    configure_default_tolerations,
)

logger = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-node-lease", "kube-public")


class ApiServer:
    """The apiserver on a store. ``ssl_context`` None serves plain HTTP, which only
    tests use; ``bramble server`` always passes the cluster PKI's context."""

    def __init__(
        self,
        store: st.Store,
        *,
        host: str = "0.0.0.0",
        port: int = 6443,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock = utcnow,
        audit_path: Path | None = None,
        max_inflight: int = 400,
        watch_cache_size: int = 4096,
        agent_ssl: ssl.SSLContext | None = None,
        pki: Pki | None = None,
        default_tolerations: DefaultTolerations | None = None,
        local_socket: Path | None = None,
        local_users: LocalUsers | None = None,
    ) -> None:
        # Process-wide, as the admission plugin's flags are in Kubernetes (admission.py).
        configure_default_tolerations(default_tolerations or DefaultTolerations())
        self._agent_ssl = agent_ssl
        self._local_socket = local_socket
        self._local_users = local_users
        self._pki = pki
        self.store = store
        self._audit_path = audit_path
        self._audit: AuditLog | None = None
        self._max_inflight = max_inflight
        self.cache = WatchCache(store, RESOURCES, max_events=watch_cache_size)
        self.objects = Objects(store, self.cache, clock=clock)
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._app: application.App | None = None
        self._http: httpd.Server | None = None
        self._listeners: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.port = port

    async def start(self) -> None:
        shrink_tls_buffers()
        await self.cache.start()
        await self._ensure_namespaces()
        gctune.freeze()  # the loaded watch cache is long-lived: never scan it
        finalizer = NamespaceFinalizer(self.objects)
        self._tasks.append(guard(finalizer.run(), name="namespace-finalizer"))
        if self._audit_path is not None:
            self._audit = AuditLog(self._audit_path)
        app = self._app = application.build(
            self.objects,
            server_address=f"{self._host}:{self._port}",
            max_inflight=self._max_inflight,
            audit=self._audit,
            agent_ssl=self._agent_ssl,
            pki=self._pki,
            local=self._local_users,
        )
        self._http = httpd.Server(
            app.handle, max_body=application.MAX_BODY, claims_upgrade=app.claims_upgrade
        )
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(
            self._http, self._host or None, self._port, ssl=self._ssl, backlog=1024
        )
        self._listeners.append(listener)
        self.port = int(listener.sockets[0].getsockname()[1])
        if self._local_socket is not None:
            await self._listen_locally(self._local_socket)
        logger.info(
            "apiserver listening address=%s:%d tls=%s", self._host, self.port, bool(self._ssl)
        )

    async def _listen_locally(self, path: Path) -> None:
        """The local socket (auth/local.py), only for the server's own user."""
        assert self._http is not None
        await asyncio.to_thread(_remove, path)  # left by a server that was killed
        loop = asyncio.get_running_loop()
        self._listeners.append(await loop.create_unix_server(self._http, str(path), backlog=1024))
        await asyncio.to_thread(path.chmod, 0o600)
        logger.info("apiserver listening for local components socket=%s", path)

    async def _ensure_namespaces(self) -> None:
        namespaces = by_kind("", "Namespace")
        assert namespaces is not None
        for name in SYSTEM_NAMESPACES:
            try:
                await self.objects.create(
                    namespaces,
                    None,
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                )
                logger.info("created namespace name=%s", name)
            except errors.AlreadyExists:
                pass

    async def stop(self) -> None:
        for listener in self._listeners:
            listener.close()
        if self._http is not None:
            await self._http.close()
        for listener in self._listeners:
            await listener.wait_closed()
        self._listeners.clear()
        if self._app is not None:
            await self._app.close()
        if self._local_socket is not None:
            await asyncio.to_thread(_remove, self._local_socket)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.cache.stop()
        if self._audit is not None:
            self._audit.flush()
            await asyncio.to_thread(self._audit.close)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# asyncio gives every TLS connection a 256 KiB read buffer, zero-filled and so resident:
# with a thousand watches that is 250 MiB. 64 KiB reads are plenty for API requests.
TLS_READ_BUFFER = 64 * 1024


def shrink_tls_buffers() -> None:
    """Use smaller TLS read buffers (a CPython implementation detail, checked by a test;
    if it is gone nothing happens)."""
    from asyncio import sslproto

    if isinstance(getattr(sslproto.SSLProtocol, "max_size", None), int):
        sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


def guard(coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
    """Start a long-lived task whose unexpected end is logged, never silent."""

    async def supervised() -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("task %s failed", name)
            raise
        logger.error("task %s ended unexpectedly", name)

    return asyncio.create_task(supervised(), name=name)
