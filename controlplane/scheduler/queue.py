"""The scheduling queue (k8s ``PriorityQueue``): pods waiting for a scheduling cycle.

Three places, and a pod is in at most one of them::

    active          a heap by priority (higher first), then by when the pod was queued
    backoff         a heap by when its back-off ends: 1 s after the first failure,
                    doubling per attempt up to 10 s (podInitialBackoffSeconds,
                    podMaxBackoffSeconds)
    unschedulable   pods no node fits now; they leave only when a cluster event could
                    help (a node added or changed, a pod deleted, a taint removed, ...)
                    for one of the plugins that rejected them, or after five minutes in
                    any case (the safety net Kubernetes has too)

plus ``gated``: pods a PreEnqueue plugin holds back (scheduling gates, image platforms
not known yet), re-checked when the pod changes or ``activate`` is called.

An event that arrives while a pod is being scheduled must not be lost: each move bumps
``move_cycle``, each pop records the cycle it started in, and a pod that fails after a
move that happened during its cycle goes to back-off instead of unschedulable.

The clock is injected (``clock()`` returns seconds, monotonic), so tests drive the
back-off without sleeping; ``flush`` moves what is due, ``pop`` waits for work.
Synchronous except ``pop``; one event loop only.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from controlplane.scheduler.framework import ClusterEvent, Status
from controlplane.scheduler.podinfo import PodInfo

DEFAULT_INITIAL_BACKOFF = 1.0
DEFAULT_MAX_BACKOFF = 10.0
MAX_IN_UNSCHEDULABLE = 300.0  # k8s podMaxInUnschedulablePodsDuration
LEFTOVER_INTERVAL = 30.0

ACTIVE, BACKOFF, UNSCHEDULABLE, GATED = "active", "backoff", "unschedulable", "gated"


@dataclass(slots=True, eq=False)
class QueuedPod:
    info: PodInfo
    timestamp: float  # when it was (re)queued
    attempts: int = 0
    initial_attempt: float | None = None
    rejected_by: frozenset[str] = frozenset()  # plugins that found it unschedulable
    where: str = ""
    gated_by: str = ""
    backoff_until: float = 0.0
    cycle: int = 0  # the scheduling cycle it was popped in
    _entry: int = field(default=0, repr=False)  # heap entry id, to skip stale entries


class Nominator:
    """Pods promised a node by preemption (``status.nominatedNodeName``), by node."""

    def __init__(self) -> None:
        self._by_node: dict[str, dict[str, PodInfo]] = {}
        self._node_of: dict[str, str] = {}

    def add(self, pod: PodInfo, node: str) -> None:
        self.remove(pod.key)
        if node:
            self._by_node.setdefault(node, {})[pod.key] = pod
            self._node_of[pod.key] = node

    def remove(self, key: str) -> None:
        node = self._node_of.pop(key, None)
        if node is not None:
            pods = self._by_node.get(node, {})
            pods.pop(key, None)
            if not pods:
                self._by_node.pop(node, None)

    def __len__(self) -> int:
        return len(self._node_of)

    def node_of(self, key: str) -> str:
        return self._node_of.get(key, "")

    def pods_on(self, node: str) -> list[PodInfo]:
        return list(self._by_node.get(node, {}).values())

    def nominated_for(self, node: str, pod: PodInfo) -> list[PodInfo]:
        """The pods nominated to ``node`` that ``pod`` must leave room for."""
        pods = self._by_node.get(node)
        if not pods:
            return []
        return [p for p in pods.values() if p.key != pod.key and p.priority >= pod.priority]


class SchedulingQueue:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        pre_enqueue: Callable[[PodInfo], Status | None] | None = None,
        interested: Callable[[QueuedPod, ClusterEvent], bool] | None = None,
    ) -> None:
        self._clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._pre_enqueue = pre_enqueue
        self._interested = interested
        self._pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[int, float, int, str]] = []  # (-priority, ts, entry, key)
        self._backoff: list[tuple[float, int, str]] = []  # (until, entry, key)
        self._unschedulable: dict[str, QueuedPod] = {}  # the subset of _pods waiting for events
        self._entries = itertools.count(1)
        self._wakeup = asyncio.Event()
        self.nominator = Nominator()
        self.scheduling_cycle = 0
        self._next_leftover_check = 0.0
        self.move_cycle = 0
        self._closed = False

    # --- what is where -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pods)

    def __contains__(self, key: str) -> bool:
        return key in self._pods

    def get(self, key: str) -> QueuedPod | None:
        return self._pods.get(key)

    def where(self, key: str) -> str:
        queued = self._pods.get(key)
        return queued.where if queued is not None else ""

    def counts(self) -> dict[str, int]:
        result = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, GATED: 0}
        for queued in self._pods.values():
            result[queued.where] += 1
        return result

    def pods(self) -> list[QueuedPod]:
        return list(self._pods.values())

    # --- adding and removing -------------------------------------------------------

    def add(self, info: PodInfo) -> None:
        """A new pending pod (or one seen again after a relist)."""
        queued = self._pods.get(info.key)
        if queued is not None:
            self.update(info)
            return
        queued = QueuedPod(info, self._clock())
        self._pods[info.key] = queued
        self._nominate(info)
        self._to_active_or_gated(queued)

    def update(self, info: PodInfo, *, significant: bool = True) -> bool:
        """The pod changed. A ``significant`` change (spec or labels, not only status)
        may make it schedulable, so an unschedulable or gated pod is moved on. False
        when the pod is not queued (being scheduled or bound: the caller decides)."""
        queued = self._pods.get(info.key)
        if queued is None:
            return False
        queued.info = info
        self._nominate(info)
        if significant and queued.where == GATED:
            self._to_active_or_gated(queued)
        elif significant and queued.where == UNSCHEDULABLE:
            self._move(queued)
        return True

    def delete(self, key: str) -> None:
        queued = self._pods.pop(key, None)
        self._unschedulable.pop(key, None)
        self.nominator.remove(key)
        if queued is not None:
            queued._entry = 0  # its heap entries are stale now

    def _nominate(self, info: PodInfo) -> None:
        if info.nominated_node:
            self.nominator.add(info, info.nominated_node)
        elif self.nominator.node_of(info.key):
            self.nominator.remove(info.key)

    def _to_active_or_gated(self, queued: QueuedPod) -> None:
        self._unschedulable.pop(queued.info.key, None)
        status = self._pre_enqueue(queued.info) if self._pre_enqueue is not None else None
        if status is not None:
            queued.where, queued.gated_by = GATED, status.plugin
            queued._entry = 0
            return
        queued.gated_by = ""
        self._push_active(queued)

    def _push_active(self, queued: QueuedPod) -> None:
        self._unschedulable.pop(queued.info.key, None)
        queued.where = ACTIVE
        queued._entry = next(self._entries)
        heapq.heappush(
            self._active, (-queued.info.priority, queued.timestamp, queued._entry, queued.info.key)
        )
        self._wakeup.set()

    def _push_backoff(self, queued: QueuedPod) -> None:
        self._unschedulable.pop(queued.info.key, None)
        queued.where = BACKOFF
        queued._entry = next(self._entries)
        heapq.heappush(self._backoff, (queued.backoff_until, queued._entry, queued.info.key))
        self._wakeup.set()  # the waiter recomputes when to wake up

    # --- popping -------------------------------------------------------------------

    def pop_nowait(self) -> QueuedPod | None:
        """The next pod to schedule, or None when nothing is active (after flushing
        what is due). Starts a scheduling cycle."""
        self.flush()
        while self._active:
            _, _, entry, key = heapq.heappop(self._active)
            queued = self._pods.get(key)
            if queued is None or queued._entry != entry or queued.where != ACTIVE:
                continue
            del self._pods[key]
            queued._entry = 0
            queued.where = ""
            self.scheduling_cycle += 1
            queued.cycle = self.scheduling_cycle
            queued.attempts += 1
            if queued.initial_attempt is None:
                queued.initial_attempt = self._clock()
            return queued
        return None

    async def pop(self) -> QueuedPod:
        """Wait for the next pod; wakes for new pods and for back-offs that end."""
        while True:
            if self._closed:
                raise asyncio.CancelledError("the scheduling queue is closed")
            queued = self.pop_nowait()
            if queued is not None:
                return queued
            self._wakeup.clear()
            timeout = self._next_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def _next_due(self) -> float | None:
        """Seconds until the earliest back-off ends (or the unschedulable safety net)."""
        now = self._clock()
        due: list[float] = [until - now for until, _, _ in self._backoff[:1]]
        oldest = min((q.timestamp for q in self._unschedulable.values()), default=None)
        if oldest is not None:
            due.append(max(oldest + MAX_IN_UNSCHEDULABLE, self._next_leftover_check) - now)
        return max(0.0, min(due)) if due else None

    # --- after a cycle -------------------------------------------------------------

    def backoff_duration(self, attempts: int) -> float:
        duration = self.initial_backoff
        for _ in range(1, attempts):
            duration *= 2
            if duration >= self.max_backoff:
                return self.max_backoff
        return min(duration, self.max_backoff)

    def add_unschedulable(self, queued: QueuedPod, rejected_by: Iterable[str] = ()) -> None:
        """``queued`` (popped earlier) fits nowhere. Back to the queue: unschedulable,
        unless something moved pods while it was being scheduled (then back-off)."""
        if queued.info.key in self._pods:
            return  # re-added meanwhile (a newer version of the pod): that one wins
        now = self._clock()
        queued.rejected_by = frozenset(rejected_by)
        queued.timestamp = now
        queued.backoff_until = now + self.backoff_duration(queued.attempts)
        self._pods[queued.info.key] = queued
        if self.move_cycle >= queued.cycle:
            self._push_backoff(queued)
        else:
            queued.where = UNSCHEDULABLE
            queued._entry = 0
            self._unschedulable[queued.info.key] = queued

    def add_backoff(self, queued: QueuedPod) -> None:
        """``queued`` failed for a passing reason (an API error): try again after its
        back-off, whatever happens in the cluster."""
        if queued.info.key in self._pods:
            return
        now = self._clock()
        queued.timestamp = now
        queued.backoff_until = now + self.backoff_duration(queued.attempts)
        self._pods[queued.info.key] = queued
        self._push_backoff(queued)

    def flush(self) -> None:
        """Move pods whose back-off ended to active, and pods unschedulable for too
        long to back-off or active."""
        now = self._clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, entry, key = heapq.heappop(self._backoff)
            queued = self._pods.get(key)
            if queued is not None and queued._entry == entry and queued.where == BACKOFF:
                self._push_active(queued)
        if now < self._next_leftover_check:
            return
        # As k8s flushUnschedulablePodsLeftover: a sweep every 30 s is enough.
        self._next_leftover_check = now + LEFTOVER_INTERVAL
        stale = [
            q for q in self._unschedulable.values() if now - q.timestamp >= MAX_IN_UNSCHEDULABLE
        ]
        for queued in stale:
            self._move(queued)

    def move_all(self, event: ClusterEvent) -> int:
        """A cluster event: unschedulable pods it could help go to active (or back-off,
        if theirs has not ended). Returns how many moved."""
        self.move_cycle = self.scheduling_cycle
        moved = 0
        for queued in list(self._unschedulable.values()):
            if self._interested is None or self._interested(queued, event):
                self._move(queued)
                moved += 1
        return moved

    def activate(self, keys: Iterable[str]) -> None:
        """Re-check gated pods (a PreEnqueue condition may have changed)."""
        for key in keys:
            queued = self._pods.get(key)
            if queued is not None and queued.where == GATED:
                self._to_active_or_gated(queued)

    def _move(self, queued: QueuedPod) -> None:
        if queued.backoff_until > self._clock():
            self._push_backoff(queued)
        else:
            self._push_active(queued)
