"""In-process fan-out of committed events to watchers, without polling.

The writer publishes each committed batch here (on the event loop, in commit order). The
broadcaster keeps the most recent events in a bounded ring and wakes every waiting
watcher. A watcher keeps its own cursor (the last revision it delivered) and pulls what
follows from the ring, or from the database when the ring no longer reaches back that far,
so a slow watcher costs memory nowhere and can never skip or repeat an event.

Invariant: the ring holds events with consecutive revisions ending at ``revision``; the
store assigns exactly one revision per write, so "after R" is a slice of the ring.
Everything here runs on the event loop thread.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from controlplane.store.interface import Event


class Broadcaster:
    def __init__(self, revision: int, *, max_events: int = 1024, max_bytes: int = 8 << 20) -> None:
        self.revision = revision
        self.closed = False
        self._ring: deque[Event] = deque()
        self._ring_bytes = 0
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._waiter: asyncio.Future[None] | None = None

    def publish(self, events: Sequence[Event]) -> None:
        """Append a committed batch (consecutive revisions) and wake the watchers."""
        if not events:
            return
        for event in events:
            self._ring.append(event)
            self._ring_bytes += len(event.kv.value)
        self.revision = events[-1].revision
        while len(self._ring) > self._max_events or (
            self._ring_bytes > self._max_bytes and len(self._ring) > 1
        ):
            self._ring_bytes -= len(self._ring.popleft().kv.value)
        self.wake()

    def since(self, revision: int) -> list[Event] | None:
        """Every event after ``revision``, or None when the ring does not reach back so far."""
        if revision >= self.revision:
            return []
        if not self._ring or self._ring[0].revision > revision + 1:
            return None
        return list(self._ring)[revision + 1 - self._ring[0].revision :]

    async def wait_beyond(self, revision: int) -> None:
        """Return once an event after ``revision`` is published, or on wake()/close()."""
        if self.revision > revision or self.closed:
            return
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        # Shielded: one watcher being cancelled must not cancel the others' wake-up.
        await asyncio.shield(self._waiter)

    def wake(self) -> None:
        """Wake every waiter (they re-check their condition)."""
        if self._waiter is not None:
            if not self._waiter.done():
                self._waiter.set_result(None)
            self._waiter = None

    def close(self) -> None:
        self.closed = True
        self.wake()
