"""api/leaderelection.py against a real server: one elector holds the Lease, the other
takes over once the first stops renewing (injected clocks), compare-and-swap decides
races, a release hands over at once, and the run loop moves leadership between two
electors (short real durations, waited on events). The server's own scheduler holds
kube-system/bramble-scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.client import ApiClient
from api.leaderelection import ElectionConfig, LeaderElector
from tests.controlplane.scheduler.lab import LEASES
from tests.support.cluster import BrambleServer, unique
from tests.support.waiting import wait_for

NS = "kube-system"


class Clocks:
    """An elector's two clocks (wall time for the Lease, monotonic for expiry)."""

    def __init__(self) -> None:
        self.wall = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
        self.mono = 100.0

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrambleServer]:
    srv = BrambleServer.start(tmp_path_factory.mktemp("election") / "data", "--no-controllers")
    try:
        yield srv
    finally:
        assert srv.stop() == 0


@pytest.fixture
async def client(server: BrambleServer) -> AsyncIterator[ApiClient]:
    c = await ApiClient.from_kubeconfig(server.kubeconfig)
    try:
        yield c
    finally:
        await c.close()


def elector(
    client: ApiClient, lease: str, who: str, clocks: Clocks, **durations: float
) -> LeaderElector:
    config = ElectionConfig(NS, lease, who, **durations)
    return LeaderElector(client, config, now=lambda: clocks.wall, monotonic=lambda: clocks.mono)


async def spec(client: ApiClient, lease: str) -> dict[str, Any]:
    return dict((await client.get(LEASES, NS, lease))["spec"])


async def test_takeover_after_the_holder_stops_renewing(client: ApiClient) -> None:
    lease = unique("lease")
    ca, cb = Clocks(), Clocks()
    a, b = elector(client, lease, "a", ca), elector(client, lease, "b", cb)
    assert await a.try_acquire_or_renew()
    first = await spec(client, lease)
    assert (first["holderIdentity"], first["leaseDurationSeconds"], first["leaseTransitions"]) == (
        "a",
        15,
        0,
    )
    assert first["acquireTime"] == first["renewTime"] == "2026-11-24T12:00:00.000000Z"
    assert not await b.try_acquire_or_renew()
    cb.advance(14)
    assert not await b.try_acquire_or_renew()
    ca.advance(10)
    assert await a.try_acquire_or_renew()  # a renews: b sees the record move on
    renewed = await spec(client, lease)
    assert (renewed["acquireTime"], renewed["renewTime"]) == (
        first["acquireTime"],
        "2026-11-24T12:00:10.000000Z",
    )
    assert not await b.try_acquire_or_renew()  # b sees the record move on: 15 s from now
    cb.advance(14)
    assert not await b.try_acquire_or_renew()
    cb.advance(1)  # no renewal seen for 15 s (b's clock): a stopped renewing
    assert await b.try_acquire_or_renew()
    taken = await spec(client, lease)
    assert (taken["holderIdentity"], taken["leaseTransitions"]) == ("b", 1)
    assert taken["acquireTime"] == taken["renewTime"] == "2026-11-24T12:00:29.000000Z"  # b's wall
    assert not await a.try_acquire_or_renew()
    assert not a.leading
    assert b.leading
    assert a.holder == "b"


async def test_compare_and_swap_lets_one_of_two_win(client: ApiClient) -> None:
    lease = unique("lease")
    old = elector(client, lease, "old", Clocks())
    assert await old.try_acquire_or_renew()
    ca, cb = Clocks(), Clocks()
    a, b = elector(client, lease, "a", ca), elector(client, lease, "b", cb)
    assert not await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    ca.advance(15)
    cb.advance(15)
    results = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
    assert sorted(results) == [False, True]
    assert (await spec(client, lease))["holderIdentity"] == ("a" if results[0] else "b")


async def test_release_hands_over_at_once(client: ApiClient) -> None:
    lease = unique("lease")
    a, b = elector(client, lease, "a", Clocks()), elector(client, lease, "b", Clocks())
    assert await a.try_acquire_or_renew()
    assert await a.release()
    released = await spec(client, lease)
    assert (released["holderIdentity"], released["leaseDurationSeconds"]) == ("", 1)
    assert await b.try_acquire_or_renew()  # no waiting for expiry
    assert not await a.release()  # not ours any more


async def test_run_moves_leadership(client: ApiClient) -> None:
    lease = unique("lease")
    durations = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1}
    leading = {who: asyncio.Event() for who in "abc"}

    def run(who: str, *, release: bool = True) -> asyncio.Task[None]:
        async def lead() -> None:
            leading[who].set()
            await asyncio.Event().wait()  # lead until cancelled

        elector = LeaderElector(client, ElectionConfig(NS, lease, who, **durations))
        return asyncio.create_task(elector.run(lead, release=release))

    tasks = [run("a")]
    await asyncio.wait_for(leading["a"].wait(), 10)
    tasks.append(run("b", release=False))
    try:
        tasks[0].cancel()  # a steps down and releases: b leads without waiting for expiry
        await asyncio.gather(tasks[0], return_exceptions=True)
        await asyncio.wait_for(leading["b"].wait(), 10)
        assert (await spec(client, lease))["holderIdentity"] == "b"
        tasks.append(run("c"))
        tasks[1].cancel()  # b dies without releasing: c waits for the lease to expire
        await asyncio.gather(tasks[1], return_exceptions=True)
        assert (await spec(client, lease))["holderIdentity"] == "b"
        await asyncio.wait_for(leading["c"].wait(), 10)
        final = await spec(client, lease)
        assert (final["holderIdentity"], final["leaseTransitions"]) == ("c", 2)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_servers_scheduler_holds_its_lease(client: ApiClient) -> None:
    held = await wait_for(
        client, LEASES, NS, "bramble-scheduler",
        lambda lease: bool((lease.get("spec") or {}).get("holderIdentity")), what="held",
    )  # fmt: skip
    holder = held["spec"]["holderIdentity"]
    assert held["spec"]["leaseDurationSeconds"] == 15
    rival = LeaderElector(client, ElectionConfig(NS, "bramble-scheduler", "rival"))
    assert not await rival.try_acquire_or_renew()
    assert (await spec(client, "bramble-scheduler"))["holderIdentity"] == holder


def test_durations_must_nest() -> None:
    with pytest.raises(ValueError, match="retry_period < renew_deadline < lease_duration"):
        ElectionConfig(NS, "x", "me", lease_duration=5, renew_deadline=10)
    with pytest.raises(ValueError, match="non-empty identity"):
        ElectionConfig(NS, "x", "")
