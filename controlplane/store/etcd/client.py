"""A small asyncio client for etcd v3's JSON gateway: endpoints, failover, TLS, auth.

etcd (3.4 as Debian ships it) serves its gRPC API as JSON over HTTP at ``/v3/...``:
bytes are base64, 64-bit integers are strings, zero values are omitted. One
``aiohttp`` session talks to every endpoint.

Failover. Requests go to the endpoint that last answered. When it cannot be reached the
request moves on to the next, which is always safe when the request was never sent
(connection refused, connect timeout). Every request carries the ``hasleader`` gRPC
metadata, so a member that has lost its leader refuses at once with "no leader" instead
of holding the request until its own timeout; that refusal is also safe to retry on
another member. A write that fails *after* it was sent (the member died mid-request,
the deadline passed) has an unknown outcome: it is reported as Unavailable and never
silently retried, because a retried compare-and-swap could report a conflict with itself.
Reads are retried on the next endpoint in every case.

Deadlines. Every call has one overall deadline (``timeout``), across all endpoints
tried, so that nothing hangs: a cluster without quorum gives Unavailable within it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import ssl
from typing import Any

import aiohttp
import orjson

from controlplane.store.errors import (
    InvalidArgument,
    StoreError,
    StoreUnusable,
    Unavailable,
)
from controlplane.store.etcd.config import EtcdConfig

logger = logging.getLogger(__name__)

Json = dict[str, Any]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


class EtcdError(Exception):
    """An error answer from etcd, before it is mapped to a StoreError."""

    def __init__(self, message: str, *, code: int, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


# gRPC codes that etcd uses for "cannot serve now" (UNAVAILABLE, DEADLINE_EXCEEDED,
# RESOURCE_EXHAUSTED, ABORTED).
_TRANSIENT_CODES = {14, 4, 8, 10}
_NO_LEADER = "etcdserver: no leader"


class EtcdClient:
    def __init__(self, config: EtcdConfig) -> None:
        if not config.endpoints:
            raise StoreUnusable("no etcd endpoints given; use etcd://host:2379[,host:2379]")
        self.config = config
        self._preferred = 0
        self._token: str | None = None
        self._auth_lock = asyncio.Lock()
        self._ssl = _ssl_context(config) if config.tls else None
        # One session (connection pool) per endpoint, so that the pooled connections to
        # a member that died can be dropped together instead of failing one by one.
        self._sessions = [self._new_session() for _ in config.endpoints]
        self._closing: set[asyncio.Task[None]] = set()

    def _new_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64, ssl=self._ssl or False)
        )

    def _drop_connections(self, index: int) -> None:
        """Forget every pooled connection to endpoint ``index`` and prefer the next one."""
        old, self._sessions[index] = self._sessions[index], self._new_session()
        task = asyncio.get_running_loop().create_task(old.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        if self._preferred == index:
            self._preferred = (index + 1) % len(self.config.endpoints)

    @property
    def description(self) -> str:
        return "etcd " + ",".join(self.config.endpoints)

    async def close(self) -> None:
        for session in self._sessions:
            await session.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    # --- unary calls ---------------------------------------------------------------

    async def call(self, path: str, body: Json, *, idempotent: bool) -> Json:
        """POST ``body`` to ``/v3/<path>`` with failover; return the decoded answer.

        Raises Unavailable (no endpoint could answer within the deadline, or the outcome
        of a write is unknown), StoreUnusable (TLS or credentials refused) or EtcdError
        (etcd answered with an error the caller maps).
        """
        try:
            async with asyncio.timeout(self.config.timeout):
                return await self._call_with_failover(path, body, idempotent=idempotent)
        except TimeoutError as e:
            raise Unavailable(
                f"etcd did not answer within {self.config.timeout:g}s "
                f"({self.description}); check that a majority of its members is up"
            ) from e

    async def _call_with_failover(self, path: str, body: Json, *, idempotent: bool) -> Json:
        n = len(self.config.endpoints)
        reauthenticated = False
        failures: list[str] = []
        attempt = 0
        start = self._preferred
        while True:
            index = (start + attempt) % n
            endpoint = self.config.endpoints[index]
            try:
                answer = await self._post(index, path, body)
            except _NotSent as e:
                self._drop_connections(index)
                failures.append(f"{endpoint}: {e}")
            except _SentButLost as e:
                self._drop_connections(index)
                if not idempotent:
                    raise Unavailable(
                        f"lost the connection to etcd at {endpoint} during a write ({e}); "
                        "its outcome is unknown, read the key again before retrying"
                    ) from e
                failures.append(f"{endpoint}: {e}")
            except EtcdError as e:
                if e.message == _NO_LEADER:
                    failures.append(f"{endpoint}: no leader")
                elif e.status == 401 and self.config.username and not reauthenticated:
                    # Simple tokens expire after a few idle minutes: log in again once.
                    reauthenticated = True
                    self._token = None
                    continue
                elif e.code in _TRANSIENT_CODES and idempotent:
                    failures.append(f"{endpoint}: {e.message}")
                else:
                    raise
            else:
                self._preferred = index
                return answer
            attempt += 1
            if attempt % n == 0:
                if all(f.endswith("no leader") for f in failures[-n:]):
                    raise Unavailable(
                        f"the etcd cluster has no leader ({self.description}): a majority "
                        "of its members is down or cut off; start them again"
                    )
                if all("Cannot connect" in f or "refused" in f for f in failures[-n:]):
                    raise Unavailable(
                        f"cannot reach any etcd endpoint ({'; '.join(failures[-n:])}); "
                        "check the addresses in --store and that etcd is running"
                    )
                await asyncio.sleep(0.1 * min(attempt // n, 5))  # a leader election is short

    async def _post(self, index: int, path: str, body: Json) -> Json:
        endpoint = self.config.endpoints[index]
        headers = await self._headers(index)
        timeout = aiohttp.ClientTimeout(sock_connect=self.config.dial_timeout)
        try:
            async with self._sessions[index].post(
                f"{endpoint}/v3/{path}", data=_payload(body), headers=headers, timeout=timeout
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except aiohttp.ClientConnectorCertificateError as e:
            raise StoreUnusable(
                f"the TLS certificate of etcd at {endpoint} is not trusted "
                f"({e.certificate_error}); check the ca= file in --store"
            ) from e
        except aiohttp.ClientSSLError as e:
            raise StoreUnusable(f"TLS with etcd at {endpoint} failed: {e}") from e
        except aiohttp.ClientConnectorError as e:
            raise _NotSent(str(e)) from e
        except (aiohttp.ClientError, ConnectionError) as e:
            raise _SentButLost(str(e) or type(e).__name__) from e
        return decode_answer(raw, status)

    async def _headers(self, index: int) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Grpc-Metadata-hasleader": "true"}
        if self.config.username:
            headers["Authorization"] = await self._auth_token(index)
        return headers

    async def _auth_token(self, index: int) -> str:
        async with self._auth_lock:
            if self._token is None:
                self._token = await self._authenticate(index)
            return self._token

    async def _authenticate(self, index: int) -> str:
        endpoint = self.config.endpoints[index]
        body = {"name": self.config.username, "password": self.config.password or ""}
        try:
            async with self._sessions[index].post(
                f"{endpoint}/v3/auth/authenticate",
                data=orjson.dumps(body),
                timeout=aiohttp.ClientTimeout(sock_connect=self.config.dial_timeout),
            ) as resp:
                answer = decode_answer(await resp.read(), resp.status)
        except aiohttp.ClientConnectorError as e:
            raise _NotSent(str(e)) from e
        except (aiohttp.ClientError, ConnectionError) as e:
            raise _SentButLost(str(e) or type(e).__name__) from e
        except EtcdError as e:
            if e.message == _NO_LEADER:
                raise
            raise StoreUnusable(
                f"etcd refused the credentials of user {self.config.username!r} ({e.message}); "
                "check user= and the password file in --store"
            ) from e
        token = answer.get("token")
        if not isinstance(token, str):
            raise StoreUnusable("etcd accepted the login but returned no token")
        return token

    # --- streams -------------------------------------------------------------------

    async def open_stream(self, path: str, body: Json) -> tuple[str, aiohttp.ClientResponse]:
        """Open a streaming POST (watch) on the first endpoint that accepts it."""
        failures = []
        n = len(self.config.endpoints)
        for attempt in range(n):
            index = (self._preferred + attempt) % n
            endpoint = self.config.endpoints[index]
            try:
                headers = await self._headers(index)
                resp = await self._sessions[index].post(
                    f"{endpoint}/v3/{path}",
                    data=orjson.dumps(body),
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=self.config.dial_timeout, sock_read=None
                    ),
                )
            except (aiohttp.ClientError, ConnectionError, _NotSent, _SentButLost) as e:
                failures.append(f"{endpoint}: {e}")
                continue
            if resp.status != 200:
                raw = await resp.read()
                resp.release()
                try:
                    decode_answer(raw, resp.status)
                except EtcdError as e:
                    failures.append(f"{endpoint}: {e.message}")
                    continue
            self._preferred = index
            return endpoint, resp
        raise Unavailable(f"cannot open a watch on any etcd endpoint ({'; '.join(failures)})")


class _NotSent(Exception):
    """The request never reached the endpoint."""


class _SentButLost(Exception):
    """The request may have reached the endpoint; its answer was lost."""


def _payload(body: Json) -> bytes | io.BytesIO:
    data = orjson.dumps(body)
    # aiohttp writes a large bytes body in one go and warns that it could stall the
    # loop; a file-like body is streamed in chunks.
    return io.BytesIO(data) if len(data) > 256 * 1024 else data


def decode_answer(raw: bytes, status: int) -> Json:
    try:
        answer = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as e:
        raise Unavailable(f"etcd answered HTTP {status} with a body that is not JSON") from e
    if not isinstance(answer, dict):
        raise Unavailable(f"etcd answered HTTP {status} with an unexpected body")
    if status != 200 or "error" in answer:
        message = answer.get("message") or answer.get("error") or f"HTTP {status}"
        raise EtcdError(str(message), code=int(answer.get("code", 0)), status=status)
    return answer


def map_error(e: EtcdError) -> StoreError:
    """An etcd error answer as the store's error, for the cases callers do not handle."""
    if "request is too large" in e.message:
        return InvalidArgument(f"etcd refused the value as too large ({e.message})")
    if e.code in _TRANSIENT_CODES or e.message == _NO_LEADER:
        return Unavailable(f"etcd cannot serve the request now ({e.message})")
    if e.code in (7, 16):  # PERMISSION_DENIED, UNAUTHENTICATED
        return StoreUnusable(
            f"etcd refused the request ({e.message}); check the user and its role in --store"
        )
    return Unavailable(f"etcd answered with an error: {e.message}")


def _ssl_context(config: EtcdConfig) -> ssl.SSLContext:
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
