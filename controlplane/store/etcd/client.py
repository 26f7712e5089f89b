"""A small asyncio client for etcd v3's JSON gateway: endpoints, failover, TLS, auth.

etcd (3.4 as Debian ships it) serves its gRPC API as JSON over HTTP at ``/v3/...``
(wire.py); one ``aiohttp`` session per endpoint talks to the members.

Failover. Requests go to the endpoint that last answered. When it cannot be reached the
request moves on to the next, which is always safe when the request was never sent
(connection refused, connect timeout). Every request carries the ``hasleader`` gRPC
metadata, so a member that has lost its leader refuses at once with "no leader" instead
of holding the request until its own timeout; that refusal is also safe to retry on
another member, and it is retried (an election takes about one election timeout) until
the deadline. A write that fails *after* it was sent (the member died mid-request, the
deadline passed) has an unknown outcome: it is reported as Unavailable and never
silently retried, because a retried compare-and-swap could report a conflict with itself.
Reads are retried on the next endpoint in every case, and with several endpoints each
read attempt gets a share of the deadline, so that a member that accepts connections but
never answers (a frozen process) cannot use up the whole deadline.

Deadlines. Every call has one overall deadline (``timeout``), across all endpoints
tried, so that nothing hangs: a cluster without quorum gives Unavailable within it, with
what each endpoint said. A member that held a request until the deadline is not tried
first next time.

TLS and credentials. A certificate or login that etcd refuses is StoreUnusable (a person
must act), never Unavailable. Tokens are re-obtained once when etcd stops accepting
them (simple tokens expire when idle, and a password change invalidates them).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import orjson

from controlplane.store.errors import StoreUnusable, Unavailable
from controlplane.store.etcd import tls
from controlplane.store.etcd.config import EtcdConfig
from controlplane.store.etcd.wire import (
    NO_LEADER,
    TRANSIENT_CODES,
    EtcdError,
    Json,
    b64,
    decode_answer,
)

logger = logging.getLogger(__name__)

# A serializable count of an empty range: answered by the member itself, without the
# leader, but refused with "no leader" (hasleader) by a member that has none.
_PROBE = {"key": b64(b"\x00"), "count_only": True, "serializable": True}


class _Attempts:
    """What each endpoint said during one call, for the error message."""

    def __init__(self) -> None:
        self.said: dict[str, str] = {}
        self.in_flight: int | None = None  # the endpoint waited on right now
        self.no_leader = False  # some member said it has no leader

    def note(self, endpoint: str, what: str) -> None:
        self.said[endpoint] = what

    def summary(self) -> str:
        return "; ".join(f"{endpoint}: {what}" for endpoint, what in self.said.items())


class EtcdClient:
    """Create it on the event loop; ``ssl_context`` (from ``tls.ssl_context``, which
    reads files) is made from the config when not given."""

    def __init__(self, config: EtcdConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        if not config.endpoints:
            raise StoreUnusable("no etcd endpoints given; use etcd://host:2379[,host:2379]")
        self.config = config
        self._preferred = 0
        self._token: str | None = None
        self._auth_lock = asyncio.Lock()
        if config.tls and ssl_context is None:
            ssl_context = tls.ssl_context(config)
        self._ssl = ssl_context if config.tls else None
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
        self._avoid(index)

    def _avoid(self, index: int) -> None:
        """Try endpoint ``index`` last from now on (if it is the one tried first)."""
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
        attempts = _Attempts()
        try:
            async with asyncio.timeout(self.config.timeout):
                return await self._call_with_failover(path, body, idempotent, attempts)
        except TimeoutError as e:
            held = attempts.in_flight
            outcome = ""
            if held is not None:
                # The member held the request to the deadline: it is frozen, cut off, or
                # waiting for a leader that is gone. Try another one first next time
                # (the cancelled request's connection is closed, not pooled).
                self._avoid(held)
                attempts.note(self.config.endpoints[held], "no answer")
                if not idempotent:
                    outcome = " The outcome of this write is unknown: read the key again."
            if attempts.no_leader:
                # Members answer but cannot elect a leader: quorum is lost.
                raise Unavailable(
                    f"the etcd cluster has no leader: a majority of its members is down or "
                    f"cut off (within {self.config.timeout:g}s: {attempts.summary()}); "
                    f"start the members that are down, or mend the network between them."
                    f"{outcome}"
                ) from e
            raise Unavailable(
                f"etcd did not answer within {self.config.timeout:g}s "
                f"({attempts.summary()}); check that a majority of its members is up "
                f"and has a leader.{outcome}"
            ) from e

    async def _call_with_failover(
        self, path: str, body: Json, idempotent: bool, attempts: _Attempts
    ) -> Json:
        n = len(self.config.endpoints)
        # With several endpoints a read gives each attempt a share of the deadline, so
        # that one member that never answers does not use it all up.
        budget = self.config.timeout / n if idempotent and n > 1 else None
        reauthenticated = False
        unreachable = 0  # endpoints in this round that could not be connected to
        attempt = 0
        start = self._preferred
        while True:
            index = (start + attempt) % n
            endpoint = self.config.endpoints[index]
            attempts.in_flight = index
            try:
                answer = await self._post(index, path, body, budget=budget)
            except _NotSent as e:
                self._drop_connections(index)
                attempts.note(endpoint, str(e))
                unreachable += 1
            except _NoAnswer as e:
                self._avoid(index)
                attempts.note(endpoint, str(e))
            except _SentButLost as e:
                self._drop_connections(index)
                if not idempotent:
                    raise Unavailable(
                        f"lost the connection to etcd at {endpoint} during a write ({e}); "
                        "its outcome is unknown, read the key again before retrying"
                    ) from e
                attempts.note(endpoint, str(e))
            except _TokenRefused as e:
                attempts.in_flight = None
                if reauthenticated:
                    raise StoreUnusable(
                        f"etcd at {endpoint} refused a fresh token of user "
                        f"{self.config.username!r} ({e})"
                    ) from e
                # Simple tokens expire when idle, and a password change invalidates
                # them: log in again, once.
                reauthenticated = True
                continue
            except EtcdError as e:
                if e.message == NO_LEADER:
                    attempts.note(endpoint, "no leader")
                    attempts.no_leader = True
                elif e.code in TRANSIENT_CODES and idempotent:
                    attempts.note(endpoint, e.message)
                else:
                    raise
            else:
                self._preferred = index
                return answer
            attempts.in_flight = None
            attempt += 1
            if attempt % n == 0:
                if unreachable == n:
                    raise Unavailable(
                        f"cannot reach any etcd endpoint ({attempts.summary()}); "
                        "check the addresses in --store and that etcd is running"
                    )
                unreachable = 0
                await asyncio.sleep(0.1 * min(attempt // n, 5))  # a leader election is short

    async def _post(self, index: int, path: str, body: Json, *, budget: float | None) -> Json:
        endpoint = self.config.endpoints[index]
        timeout = aiohttp.ClientTimeout(sock_connect=self.config.dial_timeout)
        try:
            async with asyncio.timeout(budget):
                headers, token = await self._headers(index)
                with self._translate(endpoint):
                    async with self._sessions[index].post(
                        f"{endpoint}/v3/{path}",
                        data=_payload(body),
                        headers=headers,
                        timeout=timeout,
                    ) as resp:
                        raw = await resp.read()
                        status = resp.status
        except TimeoutError as e:
            # Only this attempt's share of the deadline: the overall deadline arrives
            # as a cancellation, which passes through.
            if budget is None:
                raise
            raise _NoAnswer(f"no answer within {budget:g}s") from e
        try:
            return decode_answer(raw, status)
        except EtcdError as e:
            if e.status == 401 and token is not None:
                self.forget_token(token)
                raise _TokenRefused(e.message) from e
            raise

    @contextlib.contextmanager
    def _translate(self, endpoint: str) -> Iterator[None]:
        """Sorts aiohttp's errors into not sent, sent but lost, and refused TLS."""
        try:
            yield
        except aiohttp.ClientConnectorCertificateError as e:
            raise StoreUnusable(
                f"the TLS certificate of etcd at {endpoint} is not trusted "
                f"({e.certificate_error}); check the ca= file in --store"
            ) from e
        except aiohttp.ClientSSLError as e:
            raise StoreUnusable(f"TLS with etcd at {endpoint} failed: {e}") from e
        except aiohttp.ClientConnectorError as e:
            if isinstance(e.os_error, ConnectionRefusedError):
                raise _NotSent("connection refused") from e
            raise _NotSent(f"cannot connect ({e.os_error.strerror or e})") from e
        except aiohttp.ConnectionTimeoutError as e:
            # Connecting timed out: nothing was sent (unlike a read timeout).
            raise _NotSent(f"no connection within {self.config.dial_timeout:g}s") from e
        except (aiohttp.ClientError, ConnectionError) as e:
            refusal = tls.refusal(e)
            if refusal is None:
                raise _SentButLost(str(e) or type(e).__name__) from e
            if self.config.cert_file is None:
                raise StoreUnusable(
                    f"etcd at {endpoint} refused the TLS connection ({refusal}): it requires "
                    "a client certificate; give cert= and key= in --store"
                ) from e
            raise StoreUnusable(
                f"etcd at {endpoint} refused the client certificate {self.config.cert_file} "
                f"({refusal}); it must be signed by a CA in etcd's --trusted-ca-file"
            ) from e

    async def _headers(self, index: int) -> tuple[dict[str, str], str | None]:
        headers = {"Content-Type": "application/json", "Grpc-Metadata-hasleader": "true"}
        token = None
        if self.config.username:
            token = await self._auth_token(index)
            headers["Authorization"] = token
        return headers, token

    async def _auth_token(self, index: int) -> str:
        async with self._auth_lock:
            if self._token is None:
                self._token = await self._authenticate(index)
            return self._token

    def forget_token(self, token: str) -> None:
        """etcd refused ``token``: the next request logs in again (unless another
        request already did)."""
        if self._token == token:
            self._token = None

    async def _authenticate(self, index: int) -> str:
        endpoint = self.config.endpoints[index]
        body = {"name": self.config.username, "password": self.config.password or ""}
        with self._translate(endpoint):
            async with self._sessions[index].post(
                f"{endpoint}/v3/auth/authenticate",
                data=orjson.dumps(body),
                headers={"Grpc-Metadata-hasleader": "true"},
                timeout=aiohttp.ClientTimeout(sock_connect=self.config.dial_timeout),
            ) as resp:
                raw, status = await resp.read(), resp.status
        try:
            answer = decode_answer(raw, status)
        except EtcdError as e:
            if e.message == NO_LEADER or e.code in TRANSIENT_CODES:
                raise
            raise StoreUnusable(
                f"etcd refused the credentials of user {self.config.username!r} ({e.message}); "
                "check user= and the password file in --store"
            ) from e
        token = answer.get("token")
        if not isinstance(token, str):
            raise StoreUnusable("etcd accepted the login but returned no token")
        return token

    # --- members -------------------------------------------------------------------

    async def probe(self, endpoint: str) -> str | None:
        """Whether the member at ``endpoint`` serves: None if it answers and has a
        leader, else what is wrong (for a watch that has been quiet for a while)."""
        index = self.config.endpoints.index(endpoint)
        try:
            await self._post(index, "kv/range", _PROBE, budget=self.config.timeout)
        except (_NotSent, _SentButLost) as e:
            self._avoid(index)
            return str(e)
        except EtcdError as e:
            if e.message == NO_LEADER or e.code in TRANSIENT_CODES:
                self._avoid(index)
                return e.message
        except _TokenRefused:
            pass  # it answered; the next request logs in again
        return None

    # --- streams -------------------------------------------------------------------

    async def open_stream(self, path: str, body: Json) -> Stream:
        """Open a streaming POST (watch) on the first endpoint that accepts it.

        Raises Unavailable (saying what each endpoint answered) or StoreUnusable.
        """
        attempts = _Attempts()
        n = len(self.config.endpoints)
        budget = self.config.timeout / n  # as for a read: a frozen member is passed over
        for attempt in range(n):
            index = (self._preferred + attempt) % n
            endpoint = self.config.endpoints[index]
            try:
                async with asyncio.timeout(budget):
                    headers, token = await self._headers(index)
                    with self._translate(endpoint):
                        resp = await self._sessions[index].post(
                            f"{endpoint}/v3/{path}",
                            data=orjson.dumps(body),
                            headers=headers,
                            timeout=aiohttp.ClientTimeout(
                                total=None, sock_connect=self.config.dial_timeout, sock_read=None
                            ),
                        )
            except TimeoutError:
                self._avoid(index)
                attempts.note(endpoint, f"no answer within {budget:g}s")
                continue
            except (_NotSent, _SentButLost) as e:
                self._drop_connections(index)
                attempts.note(endpoint, str(e))
                continue
            except EtcdError as e:  # from a login on a member without a leader
                attempts.note(endpoint, e.message)
                continue
            if resp.status != 200:
                raw = await resp.read()
                resp.release()
                try:
                    decode_answer(raw, resp.status)
                except EtcdError as e:
                    if e.status == 401 and token is not None:
                        self.forget_token(token)  # the caller's next try logs in again
                    attempts.note(endpoint, e.message)
                    continue
            self._preferred = index
            return Stream(endpoint, resp, token)
        raise Unavailable(f"cannot open a watch on any etcd endpoint ({attempts.summary()})")


@dataclass(frozen=True, slots=True)
class Stream:
    """An open streaming answer, the endpoint serving it and the token it was opened
    with (None without authentication)."""

    endpoint: str
    response: aiohttp.ClientResponse
    token: str | None


class _NotSent(Exception):
    """The request never reached the endpoint."""


class _SentButLost(Exception):
    """The request may have reached the endpoint; its answer was lost."""


class _NoAnswer(_SentButLost):
    """The endpoint did not answer within the attempt's share of the deadline."""


class _TokenRefused(Exception):
    """etcd refused the auth token (expired, or invalidated by a password change)."""


def _payload(body: Json) -> bytes | io.BytesIO:
    data = orjson.dumps(body)
    # aiohttp writes a large bytes body in one go and warns that it could stall the
    # loop; a file-like body is streamed in chunks.
    return io.BytesIO(data) if len(data) > 256 * 1024 else data
