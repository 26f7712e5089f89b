"""The event recorder's spam filter and correlation (api/events.py), with an injected
clock and an in-memory stand-in for the API's events endpoint."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from api import events
from api.client import ApiClient
from api.events import EventRecorder


class Events:
    """Records what the recorder creates and patches, as the apiserver would store it."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.patched: list[tuple[str, dict[str, Any]]] = []

    async def create(self, _resource: object, _ns: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.created.append(obj)
        return obj

    async def patch(self, _resource: object, _ns: str, name: str, patch: Any) -> dict[str, Any]:
        self.patched.append((name, patch))
        return {}


def owner(name: str, uid: str) -> dict[str, Any]:
    return {
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "metadata": {"name": name, "namespace": "default", "uid": uid},
    }


def recording() -> tuple[list[datetime], Events, EventRecorder]:
    """A recorder on a clock the test moves (``now[0]``), sending to an ``Events``."""
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    api = Events()
    recorder = EventRecorder(
        cast(ApiClient, api), instance="t", component="c", action="a", clock=lambda: now[0]
    )
    return now, api, recorder


async def sent(recorder: EventRecorder) -> None:
    task = asyncio.create_task(recorder.run())
    try:
        await asyncio.wait_for(recorder.flush(), 5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_25_events_per_object_then_one_per_five_minutes() -> None:
    now, api, recorder = recording()
    rs = owner("web", "u1")
    for i in range(30):
        recorder.record(rs, "Normal", "SuccessfulCreate", f"Created pod: web-{i}")
    # Another object, and another type about the same object, have buckets of their own.
    recorder.record(owner("db", "u2"), "Normal", "SuccessfulCreate", "Created pod: db-0")
    recorder.record(rs, "Warning", "FailedCreate", "Error creating: quota")
    await sent(recorder)
    assert len(api.created) == 27
    assert recorder.filtered == 5

    now[0] += timedelta(minutes=4)
    recorder.record(rs, "Normal", "SuccessfulCreate", "Created pod: web-30")
    now[0] += timedelta(minutes=1)  # five minutes since the bucket ran dry: one token
    recorder.record(rs, "Normal", "SuccessfulCreate", "Created pod: web-31")
    recorder.record(rs, "Normal", "SuccessfulCreate", "Created pod: web-32")
    await sent(recorder)
    assert [e["message"] for e in api.created[27:]] == ["Created pod: web-31"]
    assert recorder.filtered == 7


async def test_the_filter_remembers_the_most_recently_used_objects() -> None:
    # As client-go's LRU: a busy object stays limited however many others come and go
    # (the scheduler records one event for each of 10,000 pods), and what is forgotten
    # is what has not been heard of for longest.
    _, _, recorder = recording()
    busy = owner("busy", "u0")
    for i in range(25):
        recorder.record(busy, "Normal", "SuccessfulCreate", f"Created pod: busy-{i}")
    for i in range(2 * events._SPAM_KEYS):
        recorder.record(owner(f"p{i}", f"u-p{i}"), "Normal", "Scheduled", "Successfully assigned")
        if i % 1000 == 0:  # the busy object keeps being heard of
            recorder.record(busy, "Normal", "SuccessfulCreate", "Created pod: busy-again")
    busy_again = len(range(0, 2 * events._SPAM_KEYS, 1000))
    assert recorder.filtered == busy_again  # every one of them: its bucket stayed empty
    recorder.record(owner("p0", "u-p0"), "Normal", "Scheduled", "again")  # long forgotten
    assert recorder.filtered == busy_again  # a fresh bucket: allowed
    await sent(recorder)


async def test_a_repeat_becomes_a_count_patch() -> None:
    now, api, recorder = recording()
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u"}}
    for _ in range(3):
        recorder.record(pod, "Warning", "FailedScheduling", "0/3 nodes are available")
        await sent(recorder)
        now[0] += timedelta(seconds=10)
    assert len(api.created) == 1
    assert [p["count"] for _, p in api.patched] == [2, 3]
    assert api.created[0]["source"] == {"component": "c"}
