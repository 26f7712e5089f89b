"""Pod GC: its choices as tables, then against a real apiserver: orphans of a deleted
(or never created) node go after the quarantine and a node created within it keeps its
pods; a pod stuck terminating on a NotReady node is force-deleted while one on a Ready
node is left to its agent; terminated pods above the threshold go oldest first."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api import errors
from api.client import ApiClient
from controlplane.controllers.podgc import PodGC, stuck_terminating, terminated_excess
from controlplane.controllers.settings import ControllerSettings, PodGCSettings
from tests.controlplane.controllers.harness import NODES, PODS, running, set_pod_phase
from tests.support.cluster import unique
from tests.support.waiting import wait_for

Obj = dict[str, Any]
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def pod(
    name: str,
    *,
    phase: str = "Running",
    created: str = "2026-01-01T10:00:00Z",
    node: str = "pi-1",
    deleting: str | None = None,
) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = deleting
    return {"metadata": meta, "spec": {"nodeName": node}, "status": {"phase": phase}}


@pytest.mark.parametrize(
    ("pods", "threshold", "deleted"),
    [
        ([pod("a", phase="Succeeded")], 1, []),
        (
            [
                pod("new", phase="Failed", created="2026-01-01T10:00:09Z"),
                pod("running", created="2026-01-01T09:00:00Z"),
                pod("old", phase="Succeeded", created="2026-01-01T10:00:01Z"),
                pod("b-tie", phase="Failed", created="2026-01-01T10:00:05Z"),
                pod("a-tie", phase="Failed", created="2026-01-01T10:00:05Z"),
            ],
            2,
            ["old", "a-tie"],
        ),
        # One already going is not counted, nor picked again.
        (
            [
                pod("going", phase="Failed", created="2026-01-01T09:00:00Z", deleting="x"),
                pod("old", phase="Failed", created="2026-01-01T10:00:00Z"),
                pod("new", phase="Failed", created="2026-01-01T11:00:00Z"),
            ],
            1,
            ["old"],
        ),
        ([pod("a", phase="Failed"), pod("b", phase="Failed")], 1, ["a"]),
        ([pod("a", phase="Failed")], 0, []),  # 0: the collection is off, as in Kubernetes
    ],
)
def test_terminated_excess(pods: list[Obj], threshold: int, deleted: list[str]) -> None:
    assert [p["metadata"]["name"] for p in terminated_excess(pods, threshold)] == deleted


def test_stuck_terminating() -> None:
    pods = [
        pod("over", node="dead", deleting="2026-01-01T11:59:59Z"),
        pod("soon", node="dead", deleting="2026-01-01T12:00:05Z"),
        pod("later", node="dead", deleting="2026-01-01T12:00:09Z"),
        pod("healthy-node", node="fine", deleting="2026-01-01T11:00:00Z"),
        pod("not-deleted", node="dead"),
    ]
    stuck, upcoming = stuck_terminating(pods, unhealthy={"dead"}, now=T0)
    assert [p["metadata"]["name"] for p in stuck] == ["over"]
    assert upcoming == T0 + timedelta(seconds=5)


# --- against the apiserver -----------------------------------------------------------


FAST = ControllerSettings(
    pod_gc=PodGCSettings(terminated_pod_gc_threshold=3, gc_check_period=0.2, orphan_quarantine=1.5)
)


class Nodes:
    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.names: list[str] = []

    async def add(self, name: str, *, ready: str = "True") -> str:
        created = await self.client.create(NODES, None, {"metadata": {"name": name}})
        self.names.append(name)
        now = T0.strftime("%Y-%m-%dT%H:%M:%SZ")
        created["status"] = {
            "conditions": [
                {"type": "Ready", "status": ready, "reason": "KubeletReady",
                 "lastHeartbeatTime": now, "lastTransitionTime": now},
            ],
        }  # fmt: skip
        await self.client.update(NODES, None, name, created, subresource="status")
        return name

    async def close(self) -> None:
        for name in self.names:
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(NODES, None, name)


@pytest.fixture
async def nodes(client: ApiClient) -> AsyncIterator[Nodes]:
    made = Nodes(client)
    try:
        yield made
    finally:
        await made.close()


async def bound_pod(client: ApiClient, namespace: str, name: str, node: str) -> Obj:
    body = {
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "app", "image": "localhost/busybox"}],
        },
    }
    return await client.create(PODS, namespace, body)


async def wait_gone(client: ApiClient, ns: str, name: str, timeout: float = 15) -> None:
    params = {"fieldSelector": f"metadata.name={name}"}
    listed = await client.list(PODS, ns, params=params)
    if not listed["items"]:
        return

    async def watch() -> None:
        query = {**params, "resourceVersion": listed["metadata"]["resourceVersion"]}
        async for change in client.watch(PODS, ns, params=query):
            if change["type"] == "DELETED":
                return

    try:
        await asyncio.wait_for(watch(), timeout)
    except TimeoutError:
        raise AssertionError(f"{ns}/{name} still there after {timeout:g}s") from None


def failed_by_gc(p: Obj) -> bool:
    status = p.get("status") or {}
    return status.get("phase") == "Failed" and any(
        c.get("type") == "DisruptionTarget" and c.get("reason") == "DeletionByPodGC"
        for c in status.get("conditions") or []
    )


async def test_orphans_go_after_the_quarantine(
    client: ApiClient, namespace: str, nodes: Nodes
) -> None:
    doomed = await nodes.add(unique("doomed"))
    late = unique("late")  # bound to before its Node exists, as a racing agent's pods
    await bound_pod(client, namespace, "on-doomed", doomed)
    await bound_pod(client, namespace, "on-ghost", unique("ghost"))  # a node never made
    await bound_pod(client, namespace, "on-late", late)
    marked = asyncio.create_task(
        wait_for(client, PODS, namespace, "on-doomed", failed_by_gc, what="marked Failed")
    )
    async with running(client, [PodGC], settings=FAST):
        await nodes.add(late)
        await client.delete(NODES, None, doomed)
        await marked
        await wait_gone(client, namespace, "on-doomed")
        await wait_gone(client, namespace, "on-ghost")
        # The node that came within the quarantine keeps its pod.
        assert (await client.get(PODS, namespace, "on-late"))["spec"]["nodeName"] == late


async def test_stuck_terminating_pods_on_not_ready_nodes(
    client: ApiClient, namespace: str, nodes: Nodes
) -> None:
    sick = await nodes.add(unique("sick"), ready="False")
    fine = await nodes.add(unique("fine"))
    await bound_pod(client, namespace, "on-sick", sick)
    await bound_pod(client, namespace, "on-fine", fine)
    async with running(client, [PodGC], settings=FAST):
        for name in ("on-sick", "on-fine"):
            await client.delete(PODS, namespace, name)  # graceful: 1 s
        await wait_gone(client, namespace, "on-sick")
        # Its agent is alive: it confirms (or not); pod GC does not step in.
        left = await client.get(PODS, namespace, "on-fine")
        assert left["metadata"]["deletionTimestamp"]
        assert datetime.fromisoformat(left["metadata"]["deletionTimestamp"]) <= datetime.now(UTC)


async def test_terminated_pods_above_the_threshold_go_oldest_first(
    client: ApiClient, namespace: str, nodes: Nodes
) -> None:
    node = await nodes.add(unique("busy"))
    # Made one after another: creationTimestamps in order, ties (whole seconds) broken
    # by name, which is in the same order.
    made = [await bound_pod(client, namespace, f"done-{i}", node) for i in range(5)]
    for i, p in enumerate(made):
        await set_pod_phase(client, p, "Succeeded" if i % 2 else "Failed", ready=False)
    await bound_pod(client, namespace, "running", node)
    async with running(client, [PodGC], settings=FAST):
        await wait_gone(client, namespace, "done-0")
        await wait_gone(client, namespace, "done-1")
        listed = await client.list(PODS, namespace)
        left = sorted(p["metadata"]["name"] for p in listed["items"])
        assert left == ["done-2", "done-3", "done-4", "running"]
