"""The keyed, rate-limited work queue every controller reconciles from (client-go's
``workqueue``, in asyncio).

Invariants, as client-go's:

* a key is queued at most once however many events name it (``dirty``);
* a key being reconciled is never handed to a second worker at the same time: an ``add``
  while it is processed marks it dirty, and ``done`` queues it again, so the event is
  never lost and one object is never reconciled concurrently with itself;
* ``add_rate_limited`` retries a failing key after a per-key exponential back-off
  (5 ms doubling to ``max_delay``), ``forget`` resets it after a success;
* ``add_after`` delays a key (a Job's deadline, a minReadySeconds) without holding a
  worker.

Everything runs on one event loop; no locks are needed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final

_BASE_DELAY: Final = 0.005  # client-go's ItemExponentialFailureRateLimiter base
# client-go caps at 1000 s; a home lab's controllers wait for a machine to come back
# from a reboot, so a failing key is retried at least once a minute.
_MAX_DELAY: Final = 60.0


class ShutDown(Exception):
    """The queue was shut down; workers stop."""


class WorkQueue:
    def __init__(self, name: str, *, max_delay: float = _MAX_DELAY) -> None:
        self.name = name
        self._max_delay = max_delay
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._waiting: dict[str, asyncio.TimerHandle] = {}
        self._ready = asyncio.Event()
        self._shut_down = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: str) -> None:
        if self._shut_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # done() queues it again
        self._queue.append(key)
        self._ready.set()

    def add_after(self, key: str, delay: float) -> None:
        """Queue ``key`` in ``delay`` seconds; an earlier pending time for it wins."""
        if self._shut_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        pending = self._waiting.get(key)
        if pending is not None:
            if pending.when() <= when:
                return
            pending.cancel()
        self._waiting[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: str) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: str) -> None:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        self.add_after(key, min(_BASE_DELAY * 2**failures, self._max_delay))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def requeues(self, key: str) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> str:
        """The next key to reconcile; the caller must call ``done(key)`` afterwards."""
        while not self._queue:
            if self._shut_down:
                raise ShutDown(self.name)
            self._ready.clear()
            await self._ready.wait()
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._ready.set()

    def shut_down(self) -> None:
        self._shut_down = True
        for handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        self._ready.set()
