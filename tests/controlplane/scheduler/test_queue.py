"""The scheduling queue, driven by an injected clock (no sleeps): priority order,
back-off doubling to its cap, unschedulable pods moving back only on events their
rejecting plugins care about, events during a cycle, the five-minute safety net,
scheduling gates, and the nominator."""

from __future__ import annotations

import asyncio

import pytest

from controlplane.scheduler.framework import ClusterEvent, Status, unresolvable
from controlplane.scheduler.podinfo import PodInfo
from controlplane.scheduler.queue import (
    ACTIVE,
    BACKOFF,
    GATED,
    MAX_IN_UNSCHEDULABLE,
    UNSCHEDULABLE,
    QueuedPod,
    SchedulingQueue,
)
from tests.controlplane.scheduler.builders import info, pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def interested_in(events: dict[str, set[ClusterEvent]]):
    """A queue hook: a pod rejected by plugin P moves on P's events."""

    def hook(queued: QueuedPod, event: ClusterEvent) -> bool:
        return not queued.rejected_by or any(
            event in events.get(p, set()) for p in queued.rejected_by
        )

    return hook


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(clock: Clock) -> SchedulingQueue:
    return SchedulingQueue(
        clock=clock,
        interested=interested_in(
            {"Fit": {ClusterEvent.NODE_ADD, ClusterEvent.ASSIGNED_POD_DELETE}}
        ),
    )


def popped(q: SchedulingQueue) -> str:
    queued = q.pop_nowait()
    assert queued is not None
    return queued.info.name


def test_higher_priority_first_then_first_come(queue: SchedulingQueue, clock: Clock) -> None:
    for name, priority in [("low-1", 0), ("high", 2000000000), ("low-2", 0), ("mid", 10)]:
        queue.add(info(pod(name, priority=priority)))
        clock.advance(0.001)
    assert [popped(queue) for _ in range(4)] == ["high", "mid", "low-1", "low-2"]
    assert queue.pop_nowait() is None
    assert queue.scheduling_cycle == 4


def test_back_off_doubles_from_one_second_to_ten(queue: SchedulingQueue, clock: Clock) -> None:
    assert [queue.backoff_duration(a) for a in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    queue.add(info(pod("p")))
    q = queue.pop_nowait()
    waited = []
    for _ in range(5):
        assert q is not None
        queue.move_all(ClusterEvent.NODE_ADD)  # during the cycle: back-off, not unschedulable
        queue.add_unschedulable(q, ["Fit"])
        assert queue.where("default/p") == BACKOFF
        start = clock.now
        while (q := queue.pop_nowait()) is None:
            clock.advance(0.5)
        waited.append(clock.now - start)
    assert waited == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_unschedulable_waits_for_an_event_its_plugins_care_about(
    queue: SchedulingQueue, clock: Clock
) -> None:
    queue.add(info(pod("p")))
    q = queue.pop_nowait()
    assert q is not None
    queue.add_unschedulable(q, ["Fit"])
    assert queue.where("default/p") == UNSCHEDULABLE
    clock.advance(60)  # long past its back-off: time alone does not bring it back
    assert queue.pop_nowait() is None
    assert queue.move_all(ClusterEvent.NODE_LABEL) == 0  # Fit does not care about labels
    assert queue.where("default/p") == UNSCHEDULABLE
    assert queue.move_all(ClusterEvent.NODE_ADD) == 1
    assert queue.where("default/p") == ACTIVE
    assert popped(queue) == "p"


def test_a_moved_pod_still_serves_its_back_off(queue: SchedulingQueue, clock: Clock) -> None:
    queue.add(info(pod("p")))
    q = queue.pop_nowait()
    assert q is not None
    queue.add_unschedulable(q, ["Fit"])
    clock.advance(0.2)
    queue.move_all(ClusterEvent.ASSIGNED_POD_DELETE)
    assert queue.where("default/p") == BACKOFF
    assert queue.pop_nowait() is None
    clock.advance(0.8)
    assert popped(queue) == "p"


def test_a_pod_rejected_by_no_known_plugin_moves_on_any_event(
    queue: SchedulingQueue,
) -> None:
    queue.add(info(pod("p")))
    q = queue.pop_nowait()
    assert q is not None
    queue.add_unschedulable(q, [])
    assert queue.move_all(ClusterEvent.NAMESPACE_CHANGE) == 1


def test_unschedulable_for_five_minutes_is_retried_anyway(
    queue: SchedulingQueue, clock: Clock
) -> None:
    queue.add(info(pod("p")))
    q = queue.pop_nowait()
    assert q is not None
    queue.add_unschedulable(q, ["Fit"])
    clock.advance(MAX_IN_UNSCHEDULABLE - 1)
    assert queue.pop_nowait() is None
    clock.advance(31)  # the sweep runs every 30 s
    assert popped(queue) == "p"


def test_scheduling_gates(clock: Clock) -> None:
    def gate(p: PodInfo) -> Status | None:
        return unresolvable("SchedulingGates", "gated") if p.scheduling_gates else None

    queue = SchedulingQueue(clock=clock, pre_enqueue=gate)
    queue.add(info(pod("p", gates=["wait"])))
    assert queue.where("default/p") == GATED
    assert queue.pop_nowait() is None
    # a change that is only in the status does not re-check
    assert queue.update(info(pod("p", gates=["wait"])), significant=False)
    assert queue.where("default/p") == GATED
    queue.update(info(pod("p")))
    assert queue.where("default/p") == ACTIVE
    assert popped(queue) == "p"


def test_activate_rechecks_gated_pods(clock: Clock) -> None:
    open_ = {"yes": False}
    queue = SchedulingQueue(
        clock=clock, pre_enqueue=lambda p: None if open_["yes"] else unresolvable("X", "wait")
    )
    queue.add(info(pod("p")))
    queue.activate(["default/p"])
    assert queue.where("default/p") == GATED
    open_["yes"] = True
    queue.activate(["default/p"])
    assert popped(queue) == "p"


def test_delete_from_anywhere(queue: SchedulingQueue) -> None:
    queue.add(info(pod("active")))
    queue.add(info(pod("unschedulable")))
    queue.delete("default/active")
    q = queue.pop_nowait()
    assert q is not None
    assert q.info.name == "unschedulable"
    queue.add_unschedulable(q, ["Fit"])
    queue.delete("default/unschedulable")
    assert len(queue) == 0
    assert queue.move_all(ClusterEvent.NODE_ADD) == 0
    assert queue.pop_nowait() is None


def test_update_of_a_pod_not_queued_is_left_to_the_caller(queue: SchedulingQueue) -> None:
    assert queue.update(info(pod("nobody"))) is False
    assert len(queue) == 0


def test_a_newer_copy_wins_over_a_failed_one(queue: SchedulingQueue) -> None:
    queue.add(info(pod("p")))
    q = queue.pop_nowait()
    assert q is not None
    queue.add(info(pod("p", labels={"v": "2"})))  # seen again while it was being scheduled
    queue.add_unschedulable(q, ["Fit"])
    again = queue.pop_nowait()
    assert again is not None
    assert again.info.labels == {"v": "2"}


def test_nominator(queue: SchedulingQueue) -> None:
    nominated = pod("big", priority=100)
    nominated["status"] = {"nominatedNodeName": "pi-1"}
    queue.add(info(nominated))
    assert queue.nominator.node_of("default/big") == "pi-1"
    low, high = info(pod("low", priority=0)), info(pod("high", priority=1000))
    assert [p.name for p in queue.nominator.nominated_for("pi-1", low)] == ["big"]
    assert queue.nominator.nominated_for("pi-1", high) == []
    assert queue.nominator.nominated_for("pi-2", low) == []
    queue.delete("default/big")
    assert queue.nominator.nominated_for("pi-1", low) == []


async def test_pop_waits_for_work(queue: SchedulingQueue) -> None:
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.add(info(pod("p")))
    q = await asyncio.wait_for(waiter, 5)
    assert q.info.name == "p"
    queue.close()
    with pytest.raises(asyncio.CancelledError):
        await queue.pop()
