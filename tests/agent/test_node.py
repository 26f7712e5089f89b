"""The node's Lease: what a renewal asks of the API, and when renewals happen; and when
the node's status is written.

The API is the in-memory one (fake_api.py), counting requests; time is injected: the
lease loop's sleeps and the API's slow writes move a monotonic clock, and the wall clock
(the Lease's renewTime) with it. Nothing here waits for real time.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from agent.hardware.report import HardwareReport
from agent.node import LEASE_NAMESPACE, NodeAgent, NodeSettings
from agent.pods import PodManager
from agent.runtime.fake import FakeRuntime
from api import errors
from api.client import ApiClient
from api.resources import Resource
from tests.agent.fake_api import Clock, FakeApi
from tests.agent.hardware import fakes

NODE = "node-1"
INTERVAL = 10.0

Obj = dict[str, Any]


class Stop(Exception):
    """Ends the lease loop after the renewals a test wants."""


@dataclass
class Schedule:
    clock: Clock
    renewals: int  # the loop is stopped at the sleep after this many renewals
    now: float = 0.0  # monotonic seconds
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.clock.advance(seconds)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if len(self.sleeps) >= self.renewals:
            raise Stop
        self.advance(seconds)


@dataclass
class SlowApi(FakeApi):
    """Writes of Leases take ``write_seconds`` (an apiserver under load); the monotonic
    time each write started is kept. The first ``unanswered`` writes never get an answer
    (a connection that went half-open)."""

    schedule: Schedule | None = None
    write_seconds: float = 0.0
    writes_at: list[float] = field(default_factory=list)
    unanswered: int = 0

    async def update(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        obj: Obj,
        *,
        subresource: str | None = None,
    ) -> Obj:
        assert self.schedule is not None
        self.writes_at.append(self.schedule.now)
        if self.unanswered > 0:
            self.unanswered -= 1
            await asyncio.Event().wait()  # never answered; only the renewal's deadline ends it
        self.schedule.advance(self.write_seconds)
        return await super().update(resource, namespace, name, obj, subresource=subresource)


def lease(renew_time: str = "2026-11-24T11:59:00.000000Z") -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": NODE, "namespace": LEASE_NAMESPACE},
        "spec": {"holderIdentity": NODE, "leaseDurationSeconds": 40, "renewTime": renew_time},
    }


def node_agent(api: FakeApi, schedule: Schedule | None = None) -> NodeAgent:
    settings = NodeSettings(name=NODE, endpoint_port=10250, address="192.0.2.10",
                            lease_interval=INTERVAL)  # fmt: skip
    timing: dict[str, Any] = (
        {"monotonic": schedule.monotonic, "sleep": schedule.sleep} if schedule else {}
    )
    # Renewing the Lease needs neither the hardware, the runtime nor the pods.
    return NodeAgent(
        cast(ApiClient, api), settings, cast(Any, None), cast(Any, None), cast(Any, None),
        clock=api.clock, **timing,
    )  # fmt: skip


def verbs(api: FakeApi) -> list[str]:
    return [c.verb for c in api.calls if c.plural == "leases"]


def renew_time(api: FakeApi) -> str:
    return str(api.objects[("leases", LEASE_NAMESPACE, NODE)]["spec"]["renewTime"])


async def test_a_renewal_is_one_put_of_the_lease_last_written() -> None:
    api = FakeApi()
    api.put(lease())
    node = node_agent(api)
    await node.renew()  # the first: the Lease is not known yet
    assert verbs(api) == ["get", "update"]

    api.calls.clear()
    for _ in range(3):
        api.clock.advance(INTERVAL)
        await node.renew()
        assert renew_time(api) == api.clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert verbs(api) == ["update"] * 3


async def test_a_conflict_costs_a_get_and_a_put() -> None:
    api = FakeApi()
    api.put(lease())
    node = node_agent(api)
    await node.renew()
    api.put(lease())  # someone else wrote it: the agent's copy is stale
    api.calls.clear()
    api.clock.advance(INTERVAL)
    await node.renew()
    assert verbs(api) == ["update", "get", "update"]
    assert renew_time(api) == api.clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    api.calls.clear()
    await node.renew()
    assert verbs(api) == ["update"]  # and then the steady state again


async def test_a_deleted_lease_is_created_again() -> None:
    api = FakeApi()
    node = node_agent(api)
    await node.renew()
    assert verbs(api) == ["get", "create"]
    del api.objects[("leases", LEASE_NAMESPACE, NODE)]  # garbage-collected with its Node
    api.calls.clear()
    await node.renew()
    assert verbs(api) == ["update", "get", "create"]
    api.calls.clear()
    await node.renew()
    assert verbs(api) == ["update"]


@pytest.mark.parametrize(
    ("write_seconds", "writes_at", "sleeps"),
    [
        pytest.param(0.0, [0, 10, 20, 30], [10, 10, 10, 10], id="instant-writes"),
        # Under load: still every ten seconds, the sleeps shortened by the writes.
        pytest.param(3.0, [0, 10, 20, 30], [7, 7, 7, 7], id="slow-writes"),
        # Longer than the interval: the next renewal at once, after the previous one.
        pytest.param(15.0, [0, 15, 30, 45], [0, 0, 0, 0], id="writes-over-the-interval"),
    ],
)
async def test_renewals_keep_a_fixed_schedule(
    write_seconds: float, writes_at: list[float], sleeps: list[float]
) -> None:
    api = SlowApi(write_seconds=write_seconds)
    api.put(lease())
    schedule = Schedule(api.clock, renewals=4)
    api.schedule = schedule
    with pytest.raises(Stop):
        await node_agent(api, schedule).run_lease()
    assert api.writes_at == writes_at
    assert schedule.sleeps == sleeps
    assert verbs(api) == ["get", "update", "update", "update", "update"]


async def test_a_failed_renewal_is_retried_soon_with_back_off() -> None:
    api = FakeApi()
    api.put(lease())
    schedule = Schedule(api.clock, renewals=3)
    api.fail[("leases", LEASE_NAMESPACE, NODE)] = errors.ServiceUnavailable("overloaded")
    with pytest.raises(Stop):
        await node_agent(api, schedule).run_lease()
    # 200 ms, doubling, each with a jitter of +-50%; not the ten seconds of the schedule.
    for attempt, slept in enumerate(schedule.sleeps):
        assert 0.1 * 2**attempt <= slept <= 0.3 * 2**attempt, schedule.sleeps


async def test_a_renewal_without_an_answer_is_abandoned_after_an_interval_and_retried() -> None:
    api = SlowApi(unanswered=2)
    api.put(lease())
    schedule = Schedule(api.clock, renewals=3)  # two back-offs, then the sleep after success
    api.schedule = schedule
    agent = node_agent(api, schedule)
    agent.settings.lease_interval = 0.05  # the deadline is one interval, of real time here
    with pytest.raises(Stop):
        await agent.run_lease()
    # two abandoned writes (unrecorded: never answered), each retried after a short
    # back-off, reading the Lease again since the outcome is unknown; then one answered
    assert verbs(api) == ["get", "get", "get", "update"]
    assert len(api.writes_at) == 3
    assert api.unanswered == 0
    assert schedule.sleeps[:2] == pytest.approx([0.2, 0.4], rel=0.5)
    assert renew_time(api) != lease()["spec"]["renewTime"]


# --- status writes --------------------------------------------------------------------------


@dataclass
class Machine:
    """A HardwareProbe whose next report the test sets."""

    now: HardwareReport

    def report(self) -> HardwareReport:
        return self.now


@dataclass
class Pods:
    """What the node's status reads of the sync loop: whether the runtime answers."""

    runtime_healthy: bool = True
    runtime_error: str = ""


def available(gib: float) -> HardwareReport:
    memory = fakes.report().memory
    assert memory is not None
    return fakes.report(memory=dataclasses.replace(memory, available_bytes=int(gib * fakes.GiB)))


def status_writes(api: FakeApi) -> int:
    return sum(1 for c in api.calls if (c.verb, c.plural) == ("patch", "nodes"))


async def test_the_status_is_written_on_change_not_when_only_figures_move() -> None:
    """A Pi's free memory and PID count move at every sample; that is no change to write
    every ten seconds, only with the minutely report. A condition that changes is."""
    api = FakeApi()
    machine, pods = Machine(available(3.0)), Pods()
    settings = NodeSettings(name=NODE, endpoint_port=10250, address="192.0.2.10",
                            status_interval=10, report_interval=60)  # fmt: skip
    agent = NodeAgent(
        cast(ApiClient, api), settings, machine, FakeRuntime(), cast(PodManager, pods),
        clock=api.clock,
    )  # fmt: skip
    await agent.register()
    written: list[bool] = []
    for gib in (2.9, 2.7, 3.1):
        api.clock.advance(10)
        machine.now = available(gib)
        written.append(await agent.report_status())
    assert written == [False, False, False]
    node = api.objects[("nodes", "", NODE)]
    memory = next(c for c in node["status"]["conditions"] if c["type"] == "MemoryPressure")
    assert memory["message"].startswith("3.0 GiB of 4.0 GiB")  # still the registered one

    pods.runtime_healthy, pods.runtime_error = False, "podman.sock: connection refused"
    api.clock.advance(10)
    assert await agent.report_status()  # Ready turned False: written at once
    ready = next(c for c in node_conditions(api) if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "KubeletNotReady")

    api.clock.advance(10)
    assert not await agent.report_status()
    api.clock.advance(50)  # a minute since the last write: written whatever changed
    assert await agent.report_status()
    assert status_writes(api) == 2


def node_conditions(api: FakeApi) -> list[Obj]:
    return list(api.objects[("nodes", "", NODE)]["status"]["conditions"])
