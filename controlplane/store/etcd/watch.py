"""A watch over etcd's streaming JSON gateway that survives the loss of a member.

The stream is one long POST to ``/v3/watch``; etcd answers with one JSON message per
line. The watch remembers the revision of the last event it delivered; when its member
dies or loses its leader (the ``hasleader`` metadata makes etcd cancel the stream then),
it reopens on another endpoint from the next revision, so the consumer sees no gap and
no duplicate.

A quiet stream proves nothing: a frozen member keeps its sockets open, and a member that
lost its leader keeps old streams open for three election timeouts. So when no message
has come for the client's timeout, the watch asks its member whether it still serves,
and reopens elsewhere if not. When no member can serve the watch within the client's
timeout, iteration raises Unavailable (saying the revision to resume from); a compacted
start raises Expired; a user who may not read the prefix gets StoreUnusable. A line cut
short (the connection ended mid-message) is a lost stream and reopens; a whole line that
is not an etcd watch message raises Unavailable, since reopening would only meet it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import aiohttp
import orjson
from aiohttp.http_exceptions import LineTooLong

from controlplane.store.errors import Expired, StoreUnusable, Unavailable
from controlplane.store.etcd.client import EtcdClient, Stream
from controlplane.store.etcd.wire import Json, b64, error_of, reading, unb64
from controlplane.store.interface import Event, EventType, KeyValue, WatchBase, prefix_end

logger = logging.getLogger(__name__)

# The longest message line read from the stream. etcd is asked to fragment its watch
# answers (a catch-up can hold a thousand revisions), so a line holds about etcd's
# --max-request-bytes (1.5 MiB by default) plus one event, whose value and previous value
# come base64-encoded: a few MiB. This bound only stops a runaway answer.
MAX_LINE_BYTES = 64 << 20

# How etcd 3.4 cancels a watch it does not allow (cancel_reason is a gRPC status text).
_REFUSALS = (
    "etcdserver: invalid auth token",  # expired, or invalidated by a password change
    "etcdserver: permission denied",
    "etcdserver: user name is empty",  # authentication is on and no user was given
)


class EtcdWatch(WatchBase):
    def __init__(self, client: EtcdClient, prefix: str, from_revision: int) -> None:
        self._client = client
        self._prefix = prefix.encode()
        self._cursor = from_revision  # the last revision delivered (or skipped)
        self._pending: deque[Event] = deque()
        # Events of a fragmented answer, held until its last fragment: the events of one
        # revision may straddle fragments, and the cursor must not stop inside one.
        self._fragments: list[Event] = []
        self._stream: Stream | None = None
        # The stream's pending readline. It is never cancelled while the stream lives:
        # a cancelled readline could lose half a line.
        self._reading: asyncio.Task[bytes] | None = None
        self._closed = False
        self._failing_since: float | None = None  # first loss since the last good message
        self._logged_in_again = False  # after a refusal, since the last good message

    def __aiter__(self) -> EtcdWatch:
        return self

    def ready(self) -> list[Event]:
        events = list(self._pending)
        self._pending.clear()
        return events

    @property
    def endpoint(self) -> str | None:
        """The endpoint serving the watch now (None while it is being reopened)."""
        return self._stream.endpoint if self._stream else None

    async def start(self) -> None:
        await self._connect(time.monotonic() + self._client.config.timeout)

    async def __anext__(self) -> Event:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            if self._stream is None:
                await self._reconnect()
                continue  # (it may have been closed meanwhile)
            line = await self._next_line()
            if line is None:
                continue  # the stream was lost: reopen
            if not line.endswith(b"\n"):
                # etcd ends every message with a newline: this is the stream's end,
                # perhaps in the middle of a message. The cursor makes reopening safe.
                if not self._closed:
                    logger.info("etcd watch ended by endpoint=%s; reopening", self.endpoint)
                self._drop()
                continue
            self._handle(line)
        return self._pending.popleft()

    async def _next_line(self) -> bytes | None:
        """The stream's next line (without its newline at the stream's end), or None if
        the stream was lost."""
        stream = self._stream
        assert stream is not None
        if self._reading is None:
            self._reading = asyncio.ensure_future(
                stream.response.content.readline(max_line_length=MAX_LINE_BYTES)
            )
        reading = self._reading
        while True:
            done, _ = await asyncio.wait({reading}, timeout=self._client.config.timeout)
            if done or self._stream is not stream:
                break
            problem = await self._client.probe(stream.endpoint)
            if problem is not None and self._stream is stream:
                logger.info(
                    "etcd watch endpoint=%s stopped serving (%s); reopening",
                    stream.endpoint,
                    problem,
                )
                self._drop()
                return None
        if self._stream is not stream or reading.cancelled():
            return None  # dropped or closed meanwhile
        self._reading = None
        try:
            return reading.result()
        except LineTooLong as e:
            self._drop()
            raise Unavailable(
                f"etcd sent a watch message on {self._prefix.decode()!r} larger than the "
                f"{MAX_LINE_BYTES >> 20} MiB bramble reads; keep etcd's --max-request-bytes "
                "well below that"
            ) from e
        except (aiohttp.ClientError, ConnectionError, asyncio.IncompleteReadError) as e:
            if not self._closed:
                logger.info("etcd watch lost endpoint=%s error=%s", stream.endpoint, e)
            self._drop()
            return None

    def _handle(self, line: bytes) -> None:
        try:
            with reading("a watch"):
                message = orjson.loads(line)
                if not isinstance(message, dict):
                    raise TypeError(f"a message must be an object, not {type(message).__name__}")
                self._take(message)
        except Unavailable:
            self._drop()
            raise

    def _take(self, message: Json) -> None:
        if "error" in message:
            error = error_of(message, 200)
            logger.info("etcd watch error endpoint=%s error=%s", self.endpoint, error.message)
            if error.status == 401:
                self._refused(error.message)
            self._drop()
            return
        result = message.get("result", {})
        compact_revision = int(result.get("compact_revision", 0))
        if compact_revision:
            raise Expired(self._cursor, compacted=compact_revision)
        if result.get("canceled"):
            reason = result.get("cancel_reason", "")
            logger.info("etcd watch canceled endpoint=%s reason=%s", self.endpoint, reason)
            if any(refusal in reason for refusal in _REFUSALS):
                self._refused(reason)
            # e.g. "etcdserver: no leader": reopen elsewhere from the cursor
            self._drop()
            return
        # created, progress or events: the stream is healthy. (Every event is read
        # before any is taken, so a malformed one leaves the cursor where it was.)
        events = [_event(raw) for raw in result.get("events", [])]
        self._failing_since = None
        self._logged_in_again = False
        if result.get("fragment"):
            self._fragments += events
            return
        events, self._fragments = self._fragments + events, []
        for event in events:
            if event.revision <= self._cursor:
                continue  # replayed after a reconnect
            self._cursor = event.revision
            self._pending.append(event)

    def _refused(self, reason: str) -> None:
        """etcd refused the watch's credentials, which it checks only when a watch is
        created: a token that expired while the stream was open is refused when the
        watch reopens. Log in again once; give up only if a fresh login is refused."""
        user = self._client.config.username
        token = self._stream.token if self._stream else None
        if user is None or token is None or self._logged_in_again:
            raise StoreUnusable(
                f"etcd refused to watch {self._prefix.decode()!r} ({reason}); "
                + (
                    f"give user {user!r} a role that may read it"
                    if user
                    else "etcd has authentication on: give user= and password-file= in --store"
                )
            )
        self._logged_in_again = True
        self._client.forget_token(token)

    async def _reconnect(self) -> None:
        """Reopen after a loss, pausing briefly; give up once the losses have lasted
        longer than the client's deadline."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        else:
            await asyncio.sleep(0.2)
        await self._connect(self._failing_since + self._client.config.timeout)

    async def _connect(self, deadline: float) -> None:
        end = prefix_end(self._prefix)
        request = {
            "create_request": {
                "key": b64(self._prefix or b"\x00"),
                "range_end": b64(end if end is not None else b"\x00"),
                "start_revision": str(self._cursor + 1),
                "prev_kv": True,
                "fragment": True,
            }
        }
        while True:
            try:
                stream = await self._client.open_stream("watch", request)
                if self._closed:
                    stream.response.close()
                else:
                    self._stream = stream
                return
            except Unavailable as e:
                if time.monotonic() >= deadline:
                    raise Unavailable(
                        f"the etcd watch on {self._prefix.decode()!r} could not be kept open: "
                        f"{e}; resume from revision {self._cursor} later"
                    ) from e
            await asyncio.sleep(0.2)

    def _drop(self) -> None:
        self._fragments = []  # the stream that reopens sends them again
        if self._reading is not None:
            self._reading.add_done_callback(_consume)
            self._reading.cancel()
            self._reading = None
        if self._stream is not None:
            self._stream.response.close()
            self._stream = None

    async def close(self) -> None:
        self._closed = True
        self._drop()


def _consume(task: asyncio.Task[bytes]) -> None:
    """Retrieve a dropped readline's outcome, so asyncio does not report it as lost."""
    if not task.cancelled():
        task.exception()


def _event(raw: Json) -> Event:
    kv = raw["kv"]
    key = unb64(kv["key"]).decode()
    mod_revision = int(kv.get("mod_revision", 0))
    if raw.get("type") == "DELETE":
        prev = raw.get("prev_kv") or {}
        return Event(
            EventType.DELETE,
            KeyValue(
                key, unb64(prev.get("value")), int(prev.get("create_revision", 0)), mod_revision
            ),
        )
    kind = EventType.CREATE if kv.get("version") == "1" else EventType.UPDATE
    return Event(
        kind, KeyValue(key, unb64(kv.get("value")), int(kv.get("create_revision", 0)), mod_revision)
    )
