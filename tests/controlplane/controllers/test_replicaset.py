"""The ReplicaSet controller: the deletion order and slow start as tables, then against a
real apiserver (no scheduler, no kubelet: the test writes pod status): scaling, self
healing, adoption and release, FailedCreate on a template the apiserver refuses, the
status counters with minReadySeconds, events, and ``kubectl scale``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api import errors
from api.client import ApiClient
from api.events import EventRecorder
from controlplane.controllers.base import Context, SharedInformers
from controlplane.controllers.replicaset import ReplicaSetController
from controlplane.controllers.replicaset.podcontrol import PodControl
from controlplane.controllers.replicaset.ranking import deletion_order
from tests.controlplane.controllers.harness import (
    EVENTS,
    PODS,
    REPLICASETS,
    pod_template,
    running,
    set_pod_phase,
)
from tests.controlplane.controllers.watching import events_with, matching, wait_list
from tests.support.cluster import BrambleServer, Kubectl
from tests.support.real import require_binary
from tests.support.waiting import wait_for

Obj = dict[str, Any]


# --- the deletion order (pure) ----------------------------------------------------------


def pod(
    name: str,
    *,
    node: str = "",
    phase: str = "Running",
    ready: bool = True,
    ready_at: str = "2026-01-01T00:00:00Z",
    restarts: int = 0,
    created: str = "2026-01-01T00:00:00Z",
    cost: str | None = None,
) -> Obj:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if ready:
        conditions[0]["lastTransitionTime"] = ready_at
    annotations = {} if cost is None else {"controller.kubernetes.io/pod-deletion-cost": cost}
    return {
        "metadata": {"name": name, "creationTimestamp": created, "annotations": annotations},
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": phase,
            "conditions": conditions,
            "containerStatuses": [{"name": "app", "restartCount": restarts}],
        },
    }


def node(name: str, *, ready: str = "True", taint: str | None = None) -> Obj:
    spec = {"taints": [{"key": taint, "effect": "NoExecute"}]} if taint else {}
    return {
        "metadata": {"name": name},
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


NODES = {
    "good": node("good"),
    "good2": node("good2"),
    "notready": node("notready", ready="False"),
    "unknown": node("unknown", ready="Unknown"),
    "tainted": node("tainted", taint="node.kubernetes.io/unreachable"),
}


@pytest.mark.parametrize(
    ("pods", "first"),
    [
        pytest.param([pod("a", node="good"), pod("b")], "b", id="unassigned-first"),
        pytest.param(
            [pod("a", node="good"), pod("b", node="good2", phase="Pending", ready=False)],
            "b", id="pending-before-running",
        ),
        pytest.param(
            [pod("a", node="good", phase="Running"), pod("b", node="good2", phase="Unknown")],
            "b", id="unknown-before-running",
        ),
        pytest.param(
            [pod("a", node="good", phase="Unknown"), pod("b", node="good2", phase="Pending")],
            "b", id="pending-before-unknown",
        ),
        pytest.param(
            [pod("a", node="good"), pod("b", node="good2", ready=False)], "b", id="not-ready-first"
        ),
        pytest.param(
            [pod("a", node="good"), pod("b", node="notready")], "b", id="notready-node-first"
        ),
        pytest.param(
            [pod("a", node="good"), pod("b", node="unknown")], "b", id="unknown-node-first"
        ),
        pytest.param(
            [pod("a", node="good"), pod("b", node="tainted")], "b", id="unreachable-taint-first"
        ),
        pytest.param(
            [pod("a", node="good"), pod("b", node="gone")], "b", id="missing-node-first"
        ),
        pytest.param(
            [
                pod("a", node="good", created="2026-01-03T00:00:00Z"),  # newest, but alone
                pod("b", node="good2"),
                pod("c", node="good2", created="2025-12-31T00:00:00Z"),
            ],
            "b", id="doubled-up-first",
        ),
        pytest.param(
            [pod("a", node="good"), pod("b", node="good2", ready_at="2026-01-02T00:00:00Z")],
            "b", id="ready-for-less-time-first",
        ),
        pytest.param(
            [pod("a", node="good"), pod("b", node="good2", restarts=3)],
            "b", id="more-restarts-first",
        ),
        pytest.param(
            [pod("a", node="good"), pod("b", node="good2", created="2026-01-02T00:00:00Z")],
            "b", id="newer-first",
        ),
        pytest.param(
            [pod("a", node="notready"), pod("b", node="good", ready=False)],
            "b", id="not-ready-outranks-node-health",
        ),
        pytest.param(
            [pod("a", node="good", restarts=9), pod("b", node="notready")],
            "b", id="node-health-outranks-restarts",
        ),
        pytest.param(
            [pod("a", node="good", cost="10"), pod("b", node="good2", cost="-5")],
            "b", id="lower-deletion-cost-first",
        ),
        pytest.param(
            [pod("a", node="good", cost="1"), pod("b", node="good2")],
            "b", id="no-cost-is-zero",
        ),
        pytest.param(
            [pod("a", node="good", cost="100", restarts=9, created="2026-06-01T00:00:00Z"),
             pod("b", node="good2")],
            "b", id="cost-outranks-restarts-and-age",
        ),
        pytest.param(
            [pod("a", node="good", ready=False, cost="100"), pod("b", node="good2", cost="-100")],
            "a", id="not-ready-outranks-cost",
        ),
        pytest.param(
            [pod("a", node="good", cost="junk"), pod("b", node="good2", cost="-1")],
            "b", id="unreadable-cost-is-zero",
        ),
    ],
)  # fmt: skip
def test_deletion_order(pods: list[Obj], first: str) -> None:
    for candidates in (pods, list(reversed(pods))):
        order = deletion_order(candidates, nodes=NODES)
        assert order[0]["metadata"]["name"] == first


class FakePods:
    """A client whose pod creations fail from the ``fail_from``-th call on."""

    def __init__(self, fail_from: int) -> None:
        self.calls = 0
        self.fail_from = fail_from

    async def create(self, _res: object, _ns: object, body: Obj) -> Obj:
        self.calls += 1
        if self.calls >= self.fail_from:
            raise errors.Forbidden('pods "web-" is forbidden: no')
        return {"metadata": {"name": f"web-{self.calls}"}}


@pytest.mark.parametrize(
    ("count", "fail_from", "created", "calls"),
    [
        (100, 1, 0, 1),  # refused at once: one request, not a hundred
        (100, 4, 3, 7),  # batches 1, 2 pass; the batch of 4 fails on its first
        (7, 10**6, 7, 7),  # 1 + 2 + 4
        (5, 10**6, 5, 5),  # 1 + 2 + 2 (the last batch is what is left)
    ],
)
async def test_slow_start(count: int, fail_from: int, created: int, calls: int) -> None:
    fake = FakePods(fail_from)
    recorded: list[str] = []
    control = PodControl(fake, lambda _o, _k, reason, _m: recorded.append(reason))  # type: ignore[arg-type]
    owner = {"metadata": {"name": "web", "namespace": "ns"}}
    made, error = await control.create_batches(owner, {"metadata": {}}, count)
    assert (made, fake.calls) == (created, calls)
    assert (error is None) == (created == count)
    assert recorded.count("SuccessfulCreate") == created
    assert recorded.count("FailedCreate") == calls - created


# --- against the apiserver ---------------------------------------------------------------


def replicaset(name: str, replicas: int, **spec: Any) -> Obj:
    labels = {"app": name, "tier": "web"}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template(labels),
            **spec,
        },
    }


def owned_by(rs: Obj) -> Callable[[list[Obj]], list[Obj]]:
    uid = rs["metadata"]["uid"]

    def owned(pods: list[Obj]) -> list[Obj]:
        return [
            p
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        ]

    return owned


async def pods_of(client: ApiClient, ns: str, rs: Obj, count: int) -> list[Obj]:
    owned = owned_by(rs)
    items = await wait_list(
        client, PODS, ns, lambda pods: len(owned(pods)) == count,
        what=f"{count} pods of {rs['metadata']['name']}",
        params={"labelSelector": f"app={rs['metadata']['name']}"},
    )  # fmt: skip
    return owned(items)


async def status_is(client: ApiClient, ns: str, name: str, **want: int) -> Obj:
    return await wait_for(
        client, REPLICASETS, ns, name,
        lambda rs: all((rs.get("status") or {}).get(k) == v for k, v in want.items()),
        what=f"status {want}", timeout=20,
    )  # fmt: skip


async def test_scale_up_down_prefers_not_ready_and_records_events(
    client: ApiClient, namespace: str
) -> None:
    async with running(client, [ReplicaSetController]):
        rs = await client.create(REPLICASETS, namespace, replicaset("web", 3))
        pods = await pods_of(client, namespace, rs, 3)
        for p in pods:
            ref = p["metadata"]["ownerReferences"][0]
            assert (ref["kind"], ref["name"]) == ("ReplicaSet", "web")
            assert (ref["controller"], ref["blockOwnerDeletion"]) == (True, True)
            assert p["metadata"]["generateName"] == "web-"
            assert p["metadata"]["labels"] == {"app": "web", "tier": "web"}
        keeper = pods[1]["metadata"]["name"]
        await set_pod_phase(client, pods[1], "Running", ready=True)
        await status_is(client, namespace, "web", replicas=3, readyReplicas=1)

        await client.patch(REPLICASETS, namespace, "web", {"spec": {"replicas": 1}})
        left = await pods_of(client, namespace, rs, 1)
        assert left[0]["metadata"]["name"] == keeper  # the ready one stays
        await status_is(client, namespace, "web", replicas=1, observedGeneration=2)

        events = await wait_list(
            client, EVENTS, namespace,
            lambda ev: len(matching(ev, "SuccessfulDelete", about="web")) == 2
            and len(matching(ev, "SuccessfulCreate", about="web")) == 3,
            what="3 SuccessfulCreate and 2 SuccessfulDelete events",
        )  # fmt: skip
        created = {e["message"] for e in matching(events, "SuccessfulCreate")}
        assert created == {f"Created pod: {p['metadata']['name']}" for p in pods}
        deleted = {e["message"] for e in matching(events, "SuccessfulDelete")}
        assert f"Deleted pod: {keeper}" not in deleted
        # Exactly as many creations as replicas: the cache lag never doubled one.
        assert all(e.get("count", 1) == 1 for e in matching(events, "SuccessfulCreate"))
        # "From" in kubectl describe, as Kubernetes names the controller.
        assert {e["source"]["component"] for e in events} == {"replicaset-controller"}


async def test_replaces_deleted_terminating_and_finished_pods(
    client: ApiClient, namespace: str
) -> None:
    async with running(client, [ReplicaSetController]):
        rs = await client.create(REPLICASETS, namespace, replicaset("heal", 3))
        first = await pods_of(client, namespace, rs, 3)
        names = [p["metadata"]["name"] for p in first]
        await client.delete(PODS, namespace, names[0], grace_period=0)  # gone at once
        await set_pod_phase(client, first[1], "Failed", ready=False)  # finished
        # On a node: deleted gracefully, it lingers (Terminating) until its kubelet
        # confirms, which no one does here; it must not count meanwhile.
        binding = {"metadata": {"name": names[2]}, "target": {"kind": "Node", "name": "n1"}}
        await client.request(
            "POST", f"/api/v1/namespaces/{namespace}/pods/{names[2]}/binding", body=binding
        )
        await client.delete(PODS, namespace, names[2])

        def replaced(pods: list[Obj]) -> bool:
            active = [
                p for p in owned_by(rs)(pods)
                if (p.get("status") or {}).get("phase") not in ("Failed", "Succeeded")
            ]  # fmt: skip
            fresh = {p["metadata"]["name"] for p in active}
            lingering = any(p["metadata"]["name"] == names[2] for p in pods)
            return len(active) == 3 and not fresh & set(names) and lingering

        await wait_list(client, PODS, namespace, replaced, what="all three pods replaced")
        await status_is(client, namespace, "heal", replicas=3)
        await client.delete(PODS, namespace, names[2], grace_period=0)


async def test_adopts_matching_orphans_and_releases_relabelled_pods(
    client: ApiClient, namespace: str
) -> None:
    orphan = {
        "metadata": {"name": "stray", "labels": {"app": "adopt"}},
        "spec": pod_template({})["spec"],
    }
    await client.create(PODS, namespace, orphan)
    other = {"metadata": {"name": "elsewhere", "labels": {"app": "other"}}, **orphan}
    other["metadata"] = {"name": "elsewhere", "labels": {"app": "other"}}
    await client.create(PODS, namespace, other)
    async with running(client, [ReplicaSetController]):
        rs = await client.create(REPLICASETS, namespace, replicaset("adopt", 2))
        pods = await pods_of(client, namespace, rs, 2)
        assert "stray" in {p["metadata"]["name"] for p in pods}  # adopted, one created
        # The adopted pod lacks the template's tier label: not fully labeled.
        await status_is(client, namespace, "adopt", replicas=2, fullyLabeledReplicas=1)
        untouched = await client.get(PODS, namespace, "elsewhere")
        assert not untouched["metadata"].get("ownerReferences")

        # Relabelled out of the selector: released, and replaced.
        await client.patch(PODS, namespace, "stray", {"metadata": {"labels": {"app": "gone"}}})
        await wait_for(
            client, PODS, namespace, "stray",
            lambda p: not p["metadata"].get("ownerReferences"), what="released",
        )  # fmt: skip
        after = await pods_of(client, namespace, rs, 2)
        assert "stray" not in {p["metadata"]["name"] for p in after}


async def test_failed_create_is_one_event_and_a_condition(
    client: ApiClient, namespace: str
) -> None:
    # The apiserver accepts the set but refuses its pods (unknown priority class).
    bad = replicaset("bad", 5)
    bad["spec"]["template"]["spec"]["priorityClassName"] = "no-such-class"
    async with running(client, [ReplicaSetController]):
        await client.create(REPLICASETS, namespace, bad)
        rs = await wait_for(
            client, REPLICASETS, namespace, "bad",
            lambda r: any(
                c["type"] == "ReplicaFailure"
                for c in (r.get("status") or {}).get("conditions") or []
            ),
            what="ReplicaFailure",
        )  # fmt: skip
        (cond,) = rs["status"]["conditions"]
        assert (cond["status"], cond["reason"]) == ("True", "FailedCreate")
        assert "no-such-class" in cond["message"]
        assert rs["status"]["replicas"] == 0
        events = await wait_list(
            client, EVENTS, namespace, events_with("FailedCreate", about="bad"),
            what="FailedCreate",
        )  # fmt: skip
        (event,) = matching(events, "FailedCreate")  # repeats are counted, not new events
        assert event["type"] == "Warning"
        assert event["message"].startswith("Error creating: ")
        assert not matching(events, "SuccessfulCreate", about="bad")

        # Fixed: pods come and the condition goes.
        fix = {"spec": {"template": {"spec": {"priorityClassName": None}}}}
        await client.patch(REPLICASETS, namespace, "bad", fix)
        fixed = await status_is(client, namespace, "bad", replicas=5)
        assert not fixed["status"].get("conditions")


def ready_pod_status(p: Obj, since: datetime) -> Obj:
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    status = dict(p.get("status") or {})
    status["phase"] = "Running"
    status["conditions"] = [
        {"type": t, "status": "True", "lastTransitionTime": stamp}
        for t in ("Initialized", "ContainersReady", "Ready", "PodScheduled")
    ]
    return {**p, "status": status}


async def test_available_replicas_wait_for_min_ready_seconds(
    client: ApiClient, namespace: str
) -> None:
    async with running(client, [ReplicaSetController]):
        rs = await client.create(REPLICASETS, namespace, replicaset("slow", 2, minReadySeconds=2))
        for p in await pods_of(client, namespace, rs, 2):
            fresh = await client.get(PODS, namespace, p["metadata"]["name"])
            body = ready_pod_status(fresh, datetime.now(UTC))
            await client.update(PODS, namespace, p["metadata"]["name"], body, subresource="status")
        ready = await status_is(client, namespace, "slow", readyReplicas=2)
        assert ready["status"]["availableReplicas"] == 0  # not for 2 more seconds
        # No event arrives after this: only the controller's requeue_after moves it.
        await status_is(client, namespace, "slow", readyReplicas=2, availableReplicas=2)


@pytest.fixture
def kubectl(server: BrambleServer, tmp_path: Path) -> Kubectl:
    return Kubectl(require_binary("kubectl", package="kubectl"), server.kubeconfig, tmp_path / "kc")


async def test_kubectl_scale(client: ApiClient, namespace: str, kubectl: Kubectl) -> None:
    async with running(client, [ReplicaSetController]):
        rs = await client.create(REPLICASETS, namespace, replicaset("scaled", 1))
        await pods_of(client, namespace, rs, 1)
        out = await asyncio.to_thread(
            kubectl.ok, "-n", namespace, "scale", "rs", "scaled", "--replicas=4"
        )
        assert "scaled" in out
        await pods_of(client, namespace, rs, 4)
        await status_is(client, namespace, "scaled", replicas=4)
        table = await asyncio.to_thread(kubectl.ok, "-n", namespace, "get", "rs", "scaled")
        assert table.split("\n")[1].split()[:2] == ["scaled", "4"]
    with contextlib.suppress(errors.NotFound):
        await client.delete(REPLICASETS, namespace, "scaled")


async def test_a_lagging_cache_never_double_creates(client: ApiClient, namespace: str) -> None:
    """Reconcile twice while the pod cache has not seen the first reconcile's pods (its
    informer is never started): the second must wait for them instead of creating more."""
    informers = SharedInformers(client)
    recorder = EventRecorder(client, instance="test", component="test", action="Reconcile")
    controller = ReplicaSetController(
        Context(client=client, informers=informers, recorder=recorder)
    )
    rs = await client.create(REPLICASETS, namespace, replicaset("lag", 3))
    rs = {**rs, "kind": "ReplicaSet", "apiVersion": "apps/v1"}
    # The status this reconcile would write, so that it writes none (a stale cache
    # would make that write a Conflict, which is not what is tested here).
    rs["status"] = {
        "replicas": 0, "fullyLabeledReplicas": 0, "readyReplicas": 0,
        "availableReplicas": 0, "observedGeneration": rs["metadata"]["generation"],
    }  # fmt: skip
    key = f"{namespace}/lag"
    controller.sets.cache[key] = rs
    await controller.reconcile(key)
    await controller.reconcile(key)
    listed = await client.list(PODS, namespace, params={"labelSelector": "app=lag"})
    assert len(listed["items"]) == 3
    assert not controller.expectations.satisfied(key)
