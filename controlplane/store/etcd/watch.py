"""A watch over etcd's streaming JSON gateway that survives the loss of a member.

The stream is one long POST to ``/v3/watch``; etcd answers with one JSON message per
line. The watch remembers the revision of the last event it delivered; when its member
dies or loses its leader (the ``hasleader`` metadata makes etcd cancel the stream then),
it reopens on another endpoint from the next revision, so the consumer sees no gap and
no duplicate. When no member can serve it within the client's deadline the iteration
raises Unavailable; a compacted start raises Expired.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import aiohttp
import orjson

from controlplane.store.errors import Expired, Unavailable
from controlplane.store.etcd.client import EtcdClient, Json, b64, unb64
from controlplane.store.interface import Event, EventType, KeyValue, WatchBase, prefix_end

logger = logging.getLogger(__name__)


class EtcdWatch(WatchBase):
    def __init__(self, client: EtcdClient, prefix: str, from_revision: int) -> None:
        self._client = client
        self._prefix = prefix.encode()
        self._cursor = from_revision  # the last revision delivered (or skipped)
        self._pending: deque[Event] = deque()
        self._resp: aiohttp.ClientResponse | None = None
        self._endpoint = ""
        self._closed = False
        self._failing_since: float | None = None  # first loss since the last good message

    def __aiter__(self) -> EtcdWatch:
        return self

    async def start(self) -> None:
        await self._connect()

    async def __anext__(self) -> Event:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            if self._resp is None:
                await self._reconnect()
            assert self._resp is not None
            try:
                line = await self._resp.content.readline()
            except (aiohttp.ClientError, ConnectionError, asyncio.IncompleteReadError) as e:
                logger.info("etcd watch lost endpoint=%s error=%s", self._endpoint, e)
                self._drop()
                continue
            if not line:
                if not self._closed:
                    logger.info("etcd watch ended by endpoint=%s; reopening", self._endpoint)
                self._drop()
                continue
            self._handle(orjson.loads(line))
        return self._pending.popleft()

    def _handle(self, message: Json) -> None:
        if "error" in message:
            error = message["error"]
            logger.info("etcd watch error endpoint=%s error=%s", self._endpoint, error)
            self._drop()
            return
        result = message.get("result", {})
        compact_revision = int(result.get("compact_revision", 0))
        if compact_revision:
            raise Expired(self._cursor, compacted=compact_revision)
        if result.get("canceled"):
            # e.g. "etcdserver: no leader": reopen elsewhere from the cursor
            logger.info(
                "etcd watch canceled endpoint=%s reason=%s",
                self._endpoint,
                result.get("cancel_reason", ""),
            )
            self._drop()
            return
        self._failing_since = None  # created, progress or events: the stream is healthy
        for raw in result.get("events", []):
            event = _event(raw)
            if event.revision <= self._cursor:
                continue  # replayed after a reconnect
            self._cursor = event.revision
            self._pending.append(event)

    async def _reconnect(self) -> None:
        """Reopen after a loss, pausing briefly; give up once the losses have lasted
        longer than the client's deadline."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failing_since > self._client.config.timeout:
            raise Unavailable(
                f"the etcd watch could not be kept open for {now - self._failing_since:.1f}s "
                f"({self._client.description}); resume from revision {self._cursor} later"
            )
        else:
            await asyncio.sleep(0.2)
        await self._connect()

    async def _connect(self) -> None:
        end = prefix_end(self._prefix)
        request = {
            "create_request": {
                "key": b64(self._prefix or b"\x00"),
                "range_end": b64(end if end is not None else b"\x00"),
                "start_revision": str(self._cursor + 1),
                "prev_kv": True,
            }
        }
        deadline = time.monotonic() + self._client.config.timeout
        while True:
            try:
                self._endpoint, self._resp = await self._client.open_stream("watch", request)
                return
            except Unavailable:
                if time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(0.2)

    def _drop(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    async def close(self) -> None:
        self._closed = True
        self._drop()


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
