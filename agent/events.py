"""Kubernetes Events from the agent (Pulling, Pulled, Created, Started, Killing, BackOff,
Failed, Unhealthy, ...), as the kubelet records them.

Recording never blocks or fails the caller: events go through a bounded queue to a sender
task. A repeat of the same event (same object, reason and message) within ten minutes
becomes a PATCH of the first one's ``count`` and ``lastTimestamp``, as Kubernetes' event
correlator does, so a crash-looping container does not flood the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from api import errors
from api.client import ApiClient
from api.resources import resource

logger = logging.getLogger(__name__)

EVENTS = resource("", "Event")
COMPONENT = "bramble-agent"
_DEDUP_WINDOW = timedelta(minutes=10)
_QUEUE_LIMIT = 1000

Obj = dict[str, Any]


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class _Seen:
    name: str
    namespace: str
    count: int
    first: datetime
    last: datetime


class EventRecorder:
    def __init__(
        self,
        client: ApiClient,
        node_name: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._node = node_name
        self._clock = clock
        self._queue: asyncio.Queue[tuple[Obj, str, str, str, str]] = asyncio.Queue(_QUEUE_LIMIT)
        self._seen: dict[tuple[str, str, str, str], _Seen] = {}

    def record(
        self, obj: Obj, kind: str, reason: str, message: str, *, field_path: str = ""
    ) -> None:
        """Queue an event about ``obj`` (a Pod or Node dict); ``kind`` Normal or Warning."""
        with contextlib.suppress(asyncio.QueueFull):  # a flood loses events, not syncs
            self._queue.put_nowait((obj, kind, reason, message, field_path))

    async def run(self) -> None:
        while True:
            obj, kind, reason, message, field_path = await self._queue.get()
            try:
                await self._send(obj, kind, reason, message, field_path)
            except errors.ApiError as e:
                logger.debug("event not recorded reason=%s error=%s", reason, e.message)

    async def _send(self, obj: Obj, kind: str, reason: str, message: str, field_path: str) -> None:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        uid = str(meta.get("uid") or "")
        now = self._clock()
        key = (uid, reason, message, field_path)
        seen = self._seen.get(key)
        if seen is not None and now - seen.last < _DEDUP_WINDOW:
            seen.count += 1
            seen.last = now
            patch = {"count": seen.count, "lastTimestamp": _time(now)}
            await self._client.patch(EVENTS, seen.namespace, seen.name, patch)
            return
        # As Kubernetes names them: the object's name and the time in hex nanoseconds.
        name = f"{meta.get('name', 'object')}.{int(now.timestamp() * 1e9):x}{secrets.token_hex(2)}"
        involved: Obj = {
            "kind": obj.get("kind", "Pod"),
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
            "uid": uid,
            "apiVersion": obj.get("apiVersion", "v1"),
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if field_path:
            involved["fieldPath"] = field_path
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": COMPONENT, "host": self._node},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._node,
            "firstTimestamp": _time(now),
            "lastTimestamp": _time(now),
            "count": 1,
        }
        await self._client.create(EVENTS, namespace, event)
        self._seen[key] = _Seen(name, namespace, 1, now, now)
        if len(self._seen) > 5000:  # forget the oldest half
            for k, _ in sorted(self._seen.items(), key=lambda kv: kv[1].last)[:2500]:
                del self._seen[k]
