"""The Deployment controller alone against a real apiserver. The test plays the
ReplicaSet controller by writing ReplicaSet status (replicas, ready, available), so each
step of a rollout is driven and checked one at a time: maxSurge and maxUnavailable,
Recreate waiting for old pods to be gone, revisions and rollback, history cleanup, pause,
proportional scaling, adoption, hash collisions and the progress deadline."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

from api import errors
from api.client import ApiClient
from controlplane.controllers.deployment import DeploymentController
from controlplane.controllers.deployment import revisions as rv
from tests.controlplane.controllers.harness import (
    DEPLOYMENTS,
    EVENTS,
    PODS,
    REPLICASETS,
    container,
    running,
)
from tests.controlplane.controllers.watching import events_with, matching, wait_list
from tests.support.waiting import wait_for

Obj = dict[str, Any]


def deployment(
    name: str,
    *,
    replicas: int = 3,
    image: str = "localhost/busybox",
    strategy: Obj | None = None,
    **spec: Any,
) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container(image=image)]},
            },
            "strategy": strategy or {"type": "RollingUpdate"},
            **spec,
        },
    }


def rolling(surge: int | str, unavailable: int | str) -> Obj:
    return {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
    }


def image_of(rs: Obj) -> str:
    return str(rs["spec"]["template"]["spec"]["containers"][0]["image"])


def sizes(items: list[Obj]) -> dict[str, int]:
    """image -> spec.replicas of the Deployment's ReplicaSets."""
    return {image_of(rs): rs["spec"]["replicas"] for rs in items}


async def replica_sets(
    client: ApiClient, ns: str, predicate: Callable[[dict[str, int]], bool], *, what: str
) -> list[Obj]:
    return await wait_list(
        client, REPLICASETS, ns, lambda items: predicate(sizes(items)), what=what
    )


async def settle(client: ApiClient, ns: str, image: str, *, available: int | None = None) -> None:
    """Play the ReplicaSet controller for the ReplicaSet of ``image``: as many pods as it
    wants, ``available`` of them available (all by default)."""
    while True:
        listed = await client.list(REPLICASETS, ns)
        rs = next(r for r in listed["items"] if image_of(r) == image)
        count = rs["spec"]["replicas"]
        ok = count if available is None else available
        rs["status"] = {
            "replicas": count,
            "fullyLabeledReplicas": count,
            "readyReplicas": ok,
            "availableReplicas": ok,
            "observedGeneration": rs["metadata"]["generation"],
        }
        try:
            await client.update(REPLICASETS, ns, rs["metadata"]["name"], rs, subresource="status")
            return
        except errors.Conflict:
            continue


async def set_image(client: ApiClient, ns: str, name: str, image: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [container(image=image)]}}}}
    await client.patch(DEPLOYMENTS, ns, name, patch)


def condition(obj: Obj, kind: str) -> Obj:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def at_revision(replicas: int, revision: str) -> Callable[[Obj], bool]:
    def check(d: Obj) -> bool:
        revised = (d["metadata"].get("annotations") or {}).get(rv.REVISION) == revision
        return revised and rolled_out(replicas)(d)

    return check


@contextlib.asynccontextmanager
async def fake_replicasets(client: ApiClient, ns: str) -> AsyncIterator[None]:
    """Play the ReplicaSet controller for every ReplicaSet of the namespace: its pods
    exist and are available as soon as it asks for them."""

    async def settle_one(rs: Obj) -> None:
        count = rs["spec"]["replicas"]
        status = {
            "replicas": count,
            "fullyLabeledReplicas": count,
            "readyReplicas": count,
            "availableReplicas": count,
            "observedGeneration": rs["metadata"]["generation"],
        }
        if all((rs.get("status") or {}).get(k, 0) == v for k, v in status.items()):
            return
        name = rs["metadata"]["name"]
        with contextlib.suppress(errors.Conflict, errors.NotFound):  # a newer event follows
            await client.update(
                REPLICASETS, ns, name, {**rs, "status": status}, subresource="status"
            )

    async def settle_all() -> None:
        listed = await client.list(REPLICASETS, ns)
        for rs in listed["items"]:
            await settle_one(rs)
        query = {"resourceVersion": listed["metadata"]["resourceVersion"]}
        while True:  # one watch for the whole block (reopened only if the server ends it)
            async for change in client.watch(REPLICASETS, ns, params=query):
                obj = change["object"]
                query["resourceVersion"] = obj["metadata"]["resourceVersion"]
                if change["type"] in ("ADDED", "MODIFIED"):
                    await settle_one(obj)

    task = asyncio.create_task(settle_all())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def rolled_out(replicas: int) -> Callable[[Obj], bool]:
    """What `kubectl rollout status` waits for."""

    def check(d: Obj) -> bool:
        status = d.get("status") or {}
        return (
            status.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and status.get("updatedReplicas") == replicas
            and status.get("replicas") == replicas
            and status.get("availableReplicas") == replicas
        )

    return check


async def test_create_makes_an_owned_hashed_replica_set_and_reports_status(
    client: ApiClient, namespace: str
) -> None:
    created = await client.create(DEPLOYMENTS, namespace, deployment("web", minReadySeconds=5))
    async with running(client, [DeploymentController]):
        (rs,) = await replica_sets(client, namespace, lambda s: bool(s), what="a ReplicaSet")
        pod_hash = rs["metadata"]["labels"][rv.HASH_LABEL]
        assert rs["metadata"]["name"] == f"web-{pod_hash}"
        assert rs["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "web",
                "uid": created["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", rv.HASH_LABEL: pod_hash}
        assert rs["spec"]["template"]["metadata"]["labels"][rv.HASH_LABEL] == pod_hash
        assert rs["spec"]["replicas"] == 3
        assert rs["spec"]["minReadySeconds"] == 5
        annotations = rs["metadata"]["annotations"]
        assert annotations[rv.REVISION] == "1"
        assert annotations[rv.DESIRED_REPLICAS] == "3"
        assert annotations[rv.MAX_REPLICAS] == "4"  # 25% of 3 surges one pod
        progressing = await wait_for(
            client, DEPLOYMENTS, namespace, "web",
            lambda d: condition(d, "Progressing").get("reason") == "NewReplicaSetCreated"
            and bool(condition(d, "Available")),
            what="Progressing=NewReplicaSetCreated",
        )  # fmt: skip
        assert condition(progressing, "Available")["reason"] == "MinimumReplicasUnavailable"
        await settle(client, namespace, "localhost/busybox")
        done = await wait_for(
            client, DEPLOYMENTS, namespace, "web",
            lambda d: rolled_out(3)(d)
            and condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable",
            what="rolled out",
        )  # fmt: skip
        assert done["metadata"]["annotations"][rv.REVISION] == "1"
        assert done["status"]["readyReplicas"] == 3
        assert done["status"].get("unavailableReplicas", 0) == 0
        assert condition(done, "Available")["status"] == "True"
        assert condition(done, "Progressing")["message"] == (
            f'ReplicaSet "web-{pod_hash}" has successfully progressed.'
        )
        events = await wait_list(
            client, EVENTS, namespace, events_with("ScalingReplicaSet"), what="scaling events"
        )
        (event,) = matching(events, "ScalingReplicaSet")
        assert event["message"] == f"Scaled up replica set web-{pod_hash} from 0 to 3"
        assert event["involvedObject"]["kind"] == "Deployment"


@contextlib.asynccontextmanager
async def recording(client: ApiClient, ns: str) -> AsyncIterator[list[list[Obj]]]:
    """Every state of the namespace's ReplicaSets, one list per change, as a watch
    reports them from now on."""
    states: list[list[Obj]] = []
    listed = await client.list(REPLICASETS, ns)
    current = {rs["metadata"]["name"]: rs for rs in listed["items"]}
    states.append(list(current.values()))

    async def watch() -> None:
        query = {"resourceVersion": listed["metadata"]["resourceVersion"]}
        while True:
            async for change in client.watch(REPLICASETS, ns, params=query):
                obj = change["object"]
                query["resourceVersion"] = obj["metadata"]["resourceVersion"]
                if change["type"] == "BOOKMARK":
                    continue
                if change["type"] == "DELETED":
                    current.pop(obj["metadata"]["name"], None)
                else:
                    current[obj["metadata"]["name"]] = obj
                states.append(list(current.values()))

    task = asyncio.create_task(watch())
    try:
        yield states
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_rolling_update_respects_surge_and_unavailable_at_every_step(
    client: ApiClient, namespace: str
) -> None:
    await client.create(DEPLOYMENTS, namespace, deployment("roll", strategy=rolling(1, 0)))
    v1, v2 = "localhost/busybox", "localhost/busybox:v2"
    async with running(client, [DeploymentController]), fake_replicasets(client, namespace):
        await wait_for(client, DEPLOYMENTS, namespace, "roll", at_revision(3, "1"), what="v1")
        async with recording(client, namespace) as states:
            await set_image(client, namespace, "roll", v2)
            done = await wait_for(
                client, DEPLOYMENTS, namespace, "roll", at_revision(3, "2"), what="v2"
            )
    assert done["status"]["availableReplicas"] == 3
    names = {image_of(rs): rs["metadata"]["name"] for rs in states[-1]}
    expected = {
        f"Scaled up replica set {names[v2]} from 0 to 1",
        f"Scaled down replica set {names[v1]} from 3 to 2",
        f"Scaled up replica set {names[v2]} from 1 to 2",
        f"Scaled down replica set {names[v1]} from 1 to 0",
    }

    def scaled(events: list[Obj]) -> bool:
        return expected <= {e["message"] for e in matching(events, "ScalingReplicaSet")}

    await wait_list(client, EVENTS, namespace, scaled, what="scaling events")
    for state in states:
        # maxSurge 1: never more than 4 pods wanted; maxUnavailable 0: the pods that stay
        # once every ReplicaSet has its size are at least 3 available ones.
        assert sum(rs["spec"]["replicas"] for rs in state) <= 4, sizes(state)
        kept = sum(
            min(rs["spec"]["replicas"], (rs.get("status") or {}).get("availableReplicas", 0))
            for rs in state
        )
        assert kept >= 3, [(sizes(state), rs.get("status")) for rs in state]
    # One pod at a time: a new one first, then an old one goes once it is available.
    seen: list[dict[str, int]] = []
    for state in states:
        if sizes(state) not in seen[-1:]:
            seen.append(sizes(state))
    assert seen == [
        {v1: 3},
        {v1: 3, v2: 1},
        {v1: 2, v2: 1},
        {v1: 2, v2: 2},
        {v1: 1, v2: 2},
        {v1: 1, v2: 3},
        {v1: 0, v2: 3},
    ]


async def test_rollback_reuses_the_old_replica_set_with_the_next_revision(
    client: ApiClient, namespace: str
) -> None:
    await client.create(DEPLOYMENTS, namespace, deployment("back", replicas=2))
    v1, v2 = "localhost/busybox", "localhost/busybox:v2"
    async with running(client, [DeploymentController]), fake_replicasets(client, namespace):
        await wait_for(client, DEPLOYMENTS, namespace, "back", at_revision(2, "1"), what="v1")
        await set_image(client, namespace, "back", v2)
        await wait_for(client, DEPLOYMENTS, namespace, "back", at_revision(2, "2"), what="v2")
        await set_image(client, namespace, "back", v1)  # the template `rollout undo` writes
        await wait_for(client, DEPLOYMENTS, namespace, "back", at_revision(2, "3"), what="v1")
        listed = await client.list(REPLICASETS, namespace)
        assert sizes(listed["items"]) == {v1: 2, v2: 0}  # the old one came back, no new one
        old = next(rs for rs in listed["items"] if image_of(rs) == v1)
        assert old["metadata"]["annotations"][rv.REVISION] == "3"
        assert old["metadata"]["annotations"][rv.REVISION_HISTORY] == "1"


async def test_history_limit_deletes_the_oldest_unused_replica_sets(
    client: ApiClient, namespace: str
) -> None:
    body = deployment("hist", replicas=1, revisionHistoryLimit=1)
    await client.create(DEPLOYMENTS, namespace, body)
    images = ["localhost/busybox", "localhost/busybox:v2", "localhost/busybox:v3"]
    async with running(client, [DeploymentController]), fake_replicasets(client, namespace):
        for i, image in enumerate(images):
            if i:
                await set_image(client, namespace, "hist", image)
            done = at_revision(1, str(i + 1))
            await wait_for(client, DEPLOYMENTS, namespace, "hist", done, what=image)
        # v3 is new; v2 is the one old ReplicaSet kept; v1 was deleted.
        await replica_sets(
            client, namespace, lambda s: s == {images[1]: 0, images[2]: 1}, what="v1 deleted"
        )


async def test_recreate_waits_for_old_pods_to_be_gone(client: ApiClient, namespace: str) -> None:
    body = deployment("rec", replicas=2, strategy={"type": "Recreate"})
    await client.create(DEPLOYMENTS, namespace, body)
    v1, v2 = "localhost/busybox", "localhost/busybox:v2"
    async with running(client, [DeploymentController]):
        (old,) = await replica_sets(client, namespace, lambda s: s == {v1: 2}, what="v1")
        await settle(client, namespace, v1)
        await wait_for(client, DEPLOYMENTS, namespace, "rec", rolled_out(2), what="at v1")
        # A pod of the old ReplicaSet (unbound, so deleting it removes it at once).
        pod = {
            "metadata": {
                "name": "rec-old-pod",
                "labels": dict(old["spec"]["template"]["metadata"]["labels"]),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": old["metadata"]["name"],
                        "uid": old["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": {"containers": [container()]},
        }
        await client.create(PODS, namespace, pod)
        await set_image(client, namespace, "rec", v2)
        await replica_sets(client, namespace, lambda s: s == {v1: 0}, what="v1 scaled to 0")
        await settle(client, namespace, v1)  # the ReplicaSet reports no pods...
        waiting = await wait_for(
            client, DEPLOYMENTS, namespace, "rec",
            lambda d: d["status"].get("replicas") == 0
            and d["status"].get("observedGeneration") == d["metadata"]["generation"],
            what="seen at zero",
        )  # fmt: skip
        # ... but its pod still exists: no new ReplicaSet yet.
        assert {image_of(rs) for rs in (await client.list(REPLICASETS, namespace))["items"]} == {v1}
        assert waiting["status"]["updatedReplicas"] == 0
        await client.delete(PODS, namespace, "rec-old-pod")
        await replica_sets(client, namespace, lambda s: s == {v1: 0, v2: 2}, what="v2 at 2")
        await settle(client, namespace, v2)
        await wait_for(client, DEPLOYMENTS, namespace, "rec", rolled_out(2), what="at v2")


async def test_pause_stops_rollouts_but_not_scaling(client: ApiClient, namespace: str) -> None:
    await client.create(DEPLOYMENTS, namespace, deployment("pz", replicas=2))
    v1, v2 = "localhost/busybox", "localhost/busybox:v2"
    async with running(client, [DeploymentController]):
        await replica_sets(client, namespace, lambda s: s == {v1: 2}, what="v1")
        await settle(client, namespace, v1)
        await client.patch(DEPLOYMENTS, namespace, "pz", {"spec": {"paused": True}})
        await set_image(client, namespace, "pz", v2)
        await client.patch(DEPLOYMENTS, namespace, "pz", {"spec": {"replicas": 4}})
        await replica_sets(client, namespace, lambda s: s == {v1: 4}, what="v1 scaled to 4")
        paused = await wait_for(
            client, DEPLOYMENTS, namespace, "pz",
            lambda d: condition(d, "Progressing").get("reason") == "DeploymentPaused"
            and d["status"].get("observedGeneration") == d["metadata"]["generation"],
            what="paused",
        )  # fmt: skip
        assert condition(paused, "Progressing")["status"] == "Unknown"
        assert len((await client.list(REPLICASETS, namespace))["items"]) == 1  # no rollout
        await client.patch(DEPLOYMENTS, namespace, "pz", {"spec": {"paused": False}})
        await replica_sets(client, namespace, lambda s: s.get(v2) == 1, what="rollout resumed")


async def test_scaling_mid_rollout_is_proportional(client: ApiClient, namespace: str) -> None:
    body = deployment("prop", replicas=10, strategy=rolling(3, 2))
    await client.create(DEPLOYMENTS, namespace, body)
    v1, v2 = "localhost/busybox", "localhost/busybox:v2"
    async with running(client, [DeploymentController]):
        await replica_sets(client, namespace, lambda s: s == {v1: 10}, what="v1")
        await settle(client, namespace, v1)
        await set_image(client, namespace, "prop", v2)
        # 13 at most, and 8 must stay available while no new pod is: the new ReplicaSet
        # takes the 3 surge pods, 2 old ones go, and the 2 freed places go to the new one.
        await replica_sets(client, namespace, lambda s: s == {v1: 8, v2: 5}, what="mid-rollout")
        await client.patch(DEPLOYMENTS, namespace, "prop", {"spec": {"replicas": 20}})
        # 23 allowed now: the 10 more are shared in proportion to 8:5 of the 13 before
        # (round(8*23/13) = 14, round(5*23/13) = 9).
        await replica_sets(client, namespace, lambda s: s == {v1: 14, v2: 9}, what="scaled")


async def test_adopts_an_orphan_and_releases_what_it_no_longer_selects(
    client: ApiClient, namespace: str
) -> None:
    body = deployment("adopt", replicas=1)
    created = await client.create(DEPLOYMENTS, namespace, body)
    template = copy.deepcopy(created["spec"]["template"])
    template["metadata"]["labels"][rv.HASH_LABEL] = "manual"
    orphan = {
        "metadata": {"name": "adopt-manual", "labels": dict(template["metadata"]["labels"])},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(template["metadata"]["labels"])},
            "template": template,
        },
    }
    await client.create(REPLICASETS, namespace, orphan)
    uid = created["metadata"]["uid"]
    async with running(client, [DeploymentController]):
        adopted = await wait_for(
            client, REPLICASETS, namespace, "adopt-manual",
            lambda rs: any(r["uid"] == uid for r in rs["metadata"].get("ownerReferences") or [])
            and rv.REVISION in (rs["metadata"].get("annotations") or {}),
            what="adopted",
        )  # fmt: skip
        # Its template is the Deployment's: it is the new ReplicaSet, no other is made.
        assert adopted["metadata"]["annotations"][rv.REVISION] == "1"
        assert len((await client.list(REPLICASETS, namespace))["items"]) == 1
        adopted["metadata"]["labels"] = {"app": "elsewhere", rv.HASH_LABEL: "manual"}
        await client.update(REPLICASETS, namespace, "adopt-manual", adopted)
        await wait_for(
            client, REPLICASETS, namespace, "adopt-manual",
            lambda rs: not rs["metadata"].get("ownerReferences"),
            what="released",
        )  # fmt: skip
        # Released, the Deployment makes a ReplicaSet of its own.
        await wait_list(
            client, REPLICASETS, namespace,
            lambda items: any(
                r["uid"] == uid for rs in items for r in rs["metadata"].get("ownerReferences") or []
            ),
            what="a new owned ReplicaSet",
        )  # fmt: skip


async def test_hash_collision_bumps_the_collision_count(client: ApiClient, namespace: str) -> None:
    body = deployment("coll", replicas=1)
    created = await client.create(DEPLOYMENTS, namespace, body)
    pod_hash = rv.compute_hash(created["spec"]["template"], None)
    squatter = {  # the name the Deployment wants, another template, not selected
        "metadata": {"name": f"coll-{pod_hash}", "labels": {"app": "other"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "other"}},
            "template": {
                "metadata": {"labels": {"app": "other"}},
                "spec": {"containers": [container()]},
            },
        },
    }
    await client.create(REPLICASETS, namespace, squatter)
    async with running(client, [DeploymentController]):
        done = await wait_for(
            client, DEPLOYMENTS, namespace, "coll",
            lambda d: d["status"].get("collisionCount") == 1,
            what="collisionCount 1",
        )  # fmt: skip
        other = rv.compute_hash(created["spec"]["template"], 1)
        rs = await wait_for(
            client, REPLICASETS, namespace, f"coll-{other}", lambda rs: True, what="created"
        )
        assert rs["metadata"]["ownerReferences"][0]["uid"] == done["metadata"]["uid"]


async def test_progress_deadline_exceeded(client: ApiClient, namespace: str) -> None:
    await client.create(DEPLOYMENTS, namespace, deployment("slow", progressDeadlineSeconds=1))
    async with running(client, [DeploymentController]):
        stuck = await wait_for(
            client, DEPLOYMENTS, namespace, "slow",
            lambda d: condition(d, "Progressing").get("reason") == "ProgressDeadlineExceeded",
            what="timed out", timeout=15,
        )  # fmt: skip
        cond = condition(stuck, "Progressing")
        assert cond["status"] == "False"
        assert cond["message"].endswith("has timed out progressing.")
        # A new rollout starts the clock again.
        await set_image(client, namespace, "slow", "localhost/busybox:v2")
        await wait_for(
            client, DEPLOYMENTS, namespace, "slow",
            lambda d: condition(d, "Progressing").get("reason") == "NewReplicaSetCreated",
            what="progressing again",
        )  # fmt: skip
