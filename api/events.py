"""Kubernetes Events from the control plane's components (the scheduler's ``Scheduled``
and ``FailedScheduling``, the controllers' ``SuccessfulCreate``, ``ScalingReplicaSet``...),
as ``kubectl describe`` shows them, with ``source.component`` naming the component.

Recording never blocks or fails scheduling: events wait in a bounded queue for a few
sender tasks; when the queue is full (a burst of thousands of pods) new events are
dropped, as client-go's broadcaster drops them, because events are best-effort and the
bindings matter more. A repeat of the same event (same object, reason and message)
within ten minutes becomes a PATCH of the first one's ``count`` and ``lastTimestamp``
(client-go's event correlator), so a pod that stays unschedulable shows
"(x12 over 3m)" instead of a dozen lines.

Like client-go's spam filter, each component may record 25 events about one object
(same type) at once, then one per five minutes: a ReplicaSet scaled to 3000 replicas
keeps 25 "Created pod" events, not 3000 (which were 40 % of the apiserver's requests in
bench/controllers.py). ``filtered`` counts what it held back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from api import errors
from api.client import ApiClient
from api.resources import resource

logger = logging.getLogger(__name__)

EVENTS = resource("", "Event")
NORMAL: Final = "Normal"
WARNING: Final = "Warning"
_DEDUP_WINDOW: Final = timedelta(minutes=10)
_SPAM_BURST: Final = 25.0  # client-go's defaultSpamBurst
_SPAM_REFILL: Final = 300.0  # seconds per token: client-go's defaultSpamQPS, 1/300
_SPAM_KEYS: Final = 4096  # objects whose buckets are kept (client-go: maxLruCacheEntries)
_QUEUE_LIMIT: Final = 10000
_SENDERS: Final = 4
MAX_MESSAGE: Final = 1024

Obj = dict[str, Any]


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # when ``tokens`` was computed (seconds)


@dataclass(slots=True)
class _Seen:
    name: str
    namespace: str
    count: int
    last: datetime


class EventRecorder:
    def __init__(
        self,
        client: ApiClient,
        *,
        instance: str,
        component: str,
        action: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        senders: int = _SENDERS,
    ) -> None:
        self._client = client
        self._instance = instance
        self._component = component
        self._action = action
        self._clock = clock
        self._senders = senders
        self._queue: asyncio.Queue[tuple[Obj, str, str, str, str, str]] = asyncio.Queue(
            _QUEUE_LIMIT
        )
        self._seen: dict[tuple[str, str, str], _Seen] = {}
        self._lock = asyncio.Lock()  # one correlation decision at a time
        self.dropped = 0
        self.filtered = 0
        # An LRU of buckets, as client-go's spam filter keeps (a scan for refilled ones
        # on every new object made 10,000 pods scheduled in a row quadratic).
        self._buckets: OrderedDict[tuple[str, ...], _Bucket] = OrderedDict()

    def record(
        self,
        obj: Obj,
        kind: str,
        reason: str,
        message: str,
        *,
        action: str | None = None,
        component: str | None = None,
    ) -> None:
        """Queue an event about ``obj`` (an API object with kind, apiVersion and
        metadata); ``kind`` Normal or Warning; ``action`` and ``component`` (the event's
        source, "From" in ``kubectl describe``) default to the recorder's."""
        component = component or self._component
        if not self._allowed(obj, kind, component):
            self.filtered += 1
            return
        if len(message) > MAX_MESSAGE:  # the apiserver's limit for new-style events
            message = message[: MAX_MESSAGE - 3] + "..."
        try:
            self._queue.put_nowait((obj, kind, reason, message, action or self._action, component))
        except asyncio.QueueFull:
            self.dropped += 1

    def _allowed(self, obj: Obj, kind: str, component: str) -> bool:
        """A token from the bucket of (component, object, type); client-go's spam key."""
        meta = obj.get("metadata") or {}
        key = (
            component, str(obj.get("kind")), str(meta.get("namespace")), str(meta.get("name")),
            str(meta.get("uid")), kind,
        )  # fmt: skip
        now = self._clock().timestamp()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _SPAM_KEYS:
                self._buckets.popitem(last=False)  # the least recently used, as client-go
            bucket = self._buckets[key] = _Bucket(_SPAM_BURST, now)
        else:
            self._buckets.move_to_end(key)
        bucket.tokens = min(_SPAM_BURST, bucket.tokens + (now - bucket.at) / _SPAM_REFILL)
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    async def run(self) -> None:
        workers = [asyncio.create_task(self._sender()) for _ in range(self._senders)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            for worker in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker

    async def flush(self) -> None:
        """Wait until every queued event was sent (tests, shutdown)."""
        await self._queue.join()

    async def _sender(self) -> None:
        while True:
            obj, kind, reason, message, action, component = await self._queue.get()
            try:
                await self._send(obj, kind, reason, message, action, component)
            except errors.ApiError as e:
                logger.debug("event not recorded reason=%s error=%s", reason, e.message)
            except Exception:
                logger.exception("event not recorded reason=%s", reason)
            finally:
                self._queue.task_done()

    async def _send(
        self, obj: Obj, kind: str, reason: str, message: str, action: str, component: str
    ) -> None:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        uid = str(meta.get("uid") or "")
        now = self._clock()
        key = (uid, reason, message)
        seen = self._seen.get(key)
        if seen is not None and now - seen.last < _DEDUP_WINDOW:
            seen.count += 1
            seen.last = now
            patch = {"count": seen.count, "lastTimestamp": _time(now)}
            with contextlib.suppress(errors.NotFound):
                await self._client.patch(EVENTS, seen.namespace, seen.name, patch)
                return
            self._seen.pop(key, None)  # someone deleted it: start a new one
        # As Kubernetes names them: the object's name and the time in hex nanoseconds.
        name = f"{meta.get('name', 'object')}.{int(now.timestamp() * 1e9):x}{secrets.token_hex(2)}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "kind": obj.get("kind", "Pod"),
                "namespace": meta.get("namespace", ""),
                "name": meta.get("name", ""),
                "uid": uid,
                "apiVersion": obj.get("apiVersion", "v1"),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": self._instance[:128],
            "action": action,
            "firstTimestamp": _time(now),
            "lastTimestamp": _time(now),
            "eventTime": _micro(now),
            "count": 1,
        }
        self._seen[key] = _Seen(name, namespace, 1, now)
        try:
            await self._client.create(EVENTS, namespace, event)
        except errors.ApiError:
            self._seen.pop(key, None)
            raise
        if len(self._seen) > 5000:  # forget the oldest half
            for k, _ in sorted(self._seen.items(), key=lambda kv: kv[1].last)[:2500]:
                del self._seen[k]
