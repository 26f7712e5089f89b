"""The DaemonSet controller against a real apiserver with hollow nodes (Node objects made
through the API as an agent would, no agent): a pod per eligible node, nodes joining and
leaving, a rolling update within maxUnavailable, and ``kubectl rollout status``.

No scheduler runs: daemon pods stay unbound, targeting their node through the
``metadata.name`` node affinity, which is what the controller counts. The test plays the
kubelet by writing pod status. Nodes are cluster-wide, so each test labels its own and
selects them with ``nodeSelector``, and deletes them at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api import errors
from api.client import ApiClient
from controlplane.controllers.daemonset import DaemonSetController
from controlplane.controllers.daemonset.pods import target_node
from controlplane.controllers.garbagecollector import GarbageCollector
from tests.controlplane.controllers import podwatch
from tests.controlplane.controllers.harness import (
    DAEMONSETS,
    EVENTS,
    NODES,
    PODS,
    pod_template,
    running,
    set_pod_phase,
)
from tests.controlplane.controllers.watching import wait_list
from tests.controlplane.scheduler import builders
from tests.support.cluster import BrambleServer, Kubectl, unique
from tests.support.real import require_binary
from tests.support.waiting import wait_for

Obj = dict[str, Any]
TIMEOUT = 20.0


@contextlib.asynccontextmanager
async def hollow_nodes(client: ApiClient) -> AsyncIterator[Callable[..., Any]]:
    """``add(name, **builders.node args)``; every node added is deleted afterwards."""
    made: list[str] = []

    async def add(name: str, **spec: Any) -> Obj:
        wanted = builders.node(name, **spec)
        created = await client.create(NODES, None, {**wanted, "status": {}})
        made.append(name)
        created["status"] = wanted["status"]
        return await client.update(NODES, None, name, created, subresource="status")

    try:
        yield add
    finally:
        for name in made:
            with contextlib.suppress(errors.NotFound):
                await client.delete(NODES, None, name)


def daemon_set(
    name: str, lab: str, *, max_unavailable: int | str = 1, max_surge: int | str = 0, **spec: Any
) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": pod_template(labels, nodeSelector={"lab": lab}, **spec),
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": max_unavailable, "maxSurge": max_surge},
            },
        },
    }


async def set_image(client: ApiClient, namespace: str, name: str, image: str) -> None:
    """Change the template as a user would: the controller writes the status meanwhile,
    so a Conflict means read again and retry."""
    for _ in range(10):
        ds = await client.get(DAEMONSETS, namespace, name)
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = image
        try:
            await client.update(DAEMONSETS, namespace, name, ds)
            return
        except errors.Conflict:
            continue
    raise AssertionError(f"{name}: ten conflicts in a row")


async def daemon_pods(client: ApiClient, namespace: str, name: str) -> list[Obj]:
    listed = await client.list(PODS, namespace, params={"labelSelector": f"app={name}"})
    return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]


async def wait_pods(
    client: ApiClient, namespace: str, name: str, predicate: Callable[[list[Obj]], bool],
    *, what: str,
) -> list[Obj]:  # fmt: skip
    return await podwatch.wait_pods(
        client, namespace, predicate, what=what, labels={"app": name}, timeout=TIMEOUT
    )


def on_nodes(expected: set[str]) -> Callable[[list[Obj]], bool]:
    return lambda pods: len(pods) == len(expected) and {target_node(p) for p in pods} == expected


async def test_a_pod_on_every_eligible_node_as_nodes_come_and_go(
    client: ApiClient, namespace: str
) -> None:
    lab = unique("lab")
    gpu = builders.taint("gpu")
    dedicated = builders.taint("dedicated", value="daemons")
    tolerate = [{"key": "dedicated", "operator": "Equal", "value": "daemons"}]
    async with hollow_nodes(client) as add, running(client, [DaemonSetController]):
        await add(f"{lab}-plain", labels={"lab": lab})
        await add(f"{lab}-other", labels={"lab": "elsewhere"})
        await add(f"{lab}-gpu", labels={"lab": lab}, taints=[gpu])
        await add(f"{lab}-dedicated", labels={"lab": lab}, taints=[dedicated])
        await add(f"{lab}-down", labels={"lab": lab}, conditions={"Ready": "False"},
                  taints=[builders.taint("node.kubernetes.io/not-ready", "NoExecute")],
                  unschedulable=True)  # fmt: skip
        created = await client.create(
            DAEMONSETS, namespace, daemon_set("agent", lab, tolerations=tolerate)
        )
        eligible = {f"{lab}-plain", f"{lab}-dedicated", f"{lab}-down"}
        pods = await wait_pods(client, namespace, "agent", on_nodes(eligible), what="placed")
        for pod in pods:
            ref = pod["metadata"]["ownerReferences"][0]
            assert ref["uid"] == created["metadata"]["uid"]
            assert ref["blockOwnerDeletion"]
            assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
            assert "controller-revision-hash" in pod["metadata"]["labels"]
            keys = {t["key"] for t in pod["spec"]["tolerations"]}
            assert {"dedicated", "node.kubernetes.io/unreachable"} <= keys
        await wait_for(
            client, DAEMONSETS, namespace, "agent",
            lambda d: d.get("status", {}).get("desiredNumberScheduled") == 3
            and d["status"].get("currentNumberScheduled") == 3
            and d["status"].get("numberUnavailable") == 3
            and d["status"].get("observedGeneration") == 1,
            what="counted", timeout=TIMEOUT,
        )  # fmt: skip

        await add(f"{lab}-late", labels={"lab": lab})
        eligible.add(f"{lab}-late")
        await wait_pods(client, namespace, "agent", on_nodes(eligible), what="on the new node")

        await client.delete(NODES, None, f"{lab}-plain")
        eligible.discard(f"{lab}-plain")
        await wait_pods(client, namespace, "agent", on_nodes(eligible), what="off the gone node")

        # A label change makes a node ineligible: its pod goes.
        node = await client.get(NODES, None, f"{lab}-late")
        node["metadata"]["labels"]["lab"] = "elsewhere"
        await client.update(NODES, None, f"{lab}-late", node)
        eligible.discard(f"{lab}-late")
        await wait_pods(client, namespace, "agent", on_nodes(eligible), what="off the relabelled")

        # A failed daemon pod is deleted and replaced.
        pods = await daemon_pods(client, namespace, "agent")
        failed = pods[0]
        await set_pod_phase(client, failed, "Failed", ready=False)
        await wait_pods(
            client, namespace, "agent",
            lambda ps: on_nodes(eligible)(ps)
            and failed["metadata"]["uid"] not in {p["metadata"]["uid"] for p in ps},
            what="replaced after failing",
        )  # fmt: skip
        await podwatch.wait_event(client, namespace, "agent", "FailedDaemonPod")
    reasons = await event_reasons(client, namespace, "agent")
    assert {"SuccessfulCreate", "SuccessfulDelete", "FailedDaemonPod"} <= reasons


async def event_reasons(client: ApiClient, namespace: str, name: str) -> set[str]:
    params = {"fieldSelector": f"involvedObject.name={name},involvedObject.kind=DaemonSet"}
    # The manager flushed its event recorder when the controllers stopped.
    listed = await client.list(EVENTS, namespace, params=params)
    return {e["reason"] for e in listed["items"]}


@pytest.fixture
def kubectl(server: BrambleServer, tmp_path: Path) -> Kubectl:
    return Kubectl(require_binary("kubectl", package="kubectl"), server.kubeconfig, tmp_path / "kc")


async def test_rolling_update_respects_max_unavailable_and_rollout_status_finishes(
    client: ApiClient, namespace: str, kubectl: Kubectl
) -> None:
    lab = unique("lab")
    names = {f"{lab}-{i}" for i in range(4)}
    async with hollow_nodes(client) as add, running(client, [DaemonSetController]):
        for name in sorted(names):
            await add(name, labels={"lab": lab})
        await client.create(DAEMONSETS, namespace, daemon_set("web", lab, max_unavailable=2))
        for pod in await wait_pods(client, namespace, "web", on_nodes(names), what="placed"):
            await set_pod_phase(client, pod, "Running", ready=True)
        await wait_for(
            client, DAEMONSETS, namespace, "web",
            lambda d: d.get("status", {}).get("numberAvailable") == 4,
            what="available", timeout=TIMEOUT,
        )  # fmt: skip

        await set_image(client, namespace, "web", "localhost/busybox:new")
        rollout = asyncio.create_task(
            asyncio.to_thread(
                kubectl, "rollout", "status", "-n", namespace, "ds/web", "--timeout=30s"
            )
        )
        worst = 0

        def image(pod: Obj) -> str:
            return str(pod["spec"]["containers"][0]["image"])

        def ready(pod: Obj) -> bool:
            conditions = pod.get("status", {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        # Play the kubelets: make each new pod ready as it appears, and check at every
        # step that no more than maxUnavailable nodes are without a ready daemon.
        while True:

            def changed(pods: list[Obj]) -> bool:
                nonlocal worst
                worst = max(worst, len(names) - sum(1 for p in pods if ready(p)))
                return any(image(p).endswith(":new") and not ready(p) for p in pods) or (
                    len(pods) == 4 and all(image(p).endswith(":new") and ready(p) for p in pods)
                )

            pods = await wait_pods(client, namespace, "web", changed, what="rolling")
            fresh = [p for p in pods if image(p).endswith(":new") and not ready(p)]
            if not fresh:
                break
            for pod in fresh:
                await set_pod_phase(client, pod, "Running", ready=True)
        assert worst == 2, "the update should use, and never exceed, maxUnavailable"
        result = await rollout
        assert result.returncode == 0, result.stderr
        assert 'daemon set "web" successfully rolled out' in result.stdout
        final = await client.get(DAEMONSETS, namespace, "web")
        assert final["status"]["updatedNumberScheduled"] == 4


async def ready_since_now(client: ApiClient, pod: Obj) -> None:
    """Play the kubelet: Running and Ready from now on (the transition time in whole
    seconds, as the API writes times), so that minReadySeconds counts from here."""
    current = await client.get(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    current["status"] = {
        **(current.get("status") or {}),
        "phase": "Running",
        "conditions": [{"type": t, "status": "True", "lastTransitionTime": since}
                       for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
    }  # fmt: skip
    meta = current["metadata"]
    await client.update(PODS, meta["namespace"], meta["name"], current, subresource="status")


@pytest.mark.parametrize("min_ready", [0, 2])
async def test_a_surge_update_creates_first_and_deletes_the_old_pod_once_the_new_is_ready(
    client: ApiClient, namespace: str, min_ready: int
) -> None:
    """maxUnavailable 0, maxSurge 1: every node keeps a ready daemon all the way, at most
    one node at a time waits for its new pod beside the old one, and an old pod goes
    only once its node's new pod is ready, and available (minReadySeconds). (A node whose
    new pod is available may still show its old one while the next node surges: the
    delete and the create go out together, as in Kubernetes, where such a node no longer
    counts against maxSurge.)"""
    lab = unique("lab")
    names = {f"{lab}-{i}" for i in range(3)}
    manifest = daemon_set("surge", lab, max_unavailable=0, max_surge=1)
    manifest["spec"]["minReadySeconds"] = min_ready
    async with hollow_nodes(client) as add, running(client, [DaemonSetController]):
        for name in sorted(names):
            await add(name, labels={"lab": lab})
        await client.create(DAEMONSETS, namespace, manifest)
        for pod in await wait_pods(client, namespace, "surge", on_nodes(names), what="placed"):
            await set_pod_phase(client, pod, "Running", ready=True)
        await set_image(client, namespace, "surge", "localhost/busybox:new")
        most_waiting = 0
        fewest_ready_nodes = len(names)
        ready_when_deleted: list[bool] = []
        made_ready: dict[str | None, float] = {}  # node -> when its new pod became ready
        waited: list[float] = []  # from then until its old pod went
        seen: dict[str, Obj] = {}

        def new(pod: Obj) -> bool:
            return str(pod["spec"]["containers"][0]["image"]).endswith(":new")

        def step(pods: list[Obj]) -> bool:
            nonlocal most_waiting, fewest_ready_nodes
            waiting = {target_node(p) for p in pods if new(p) and not is_ready(p)}
            most_waiting = max(most_waiting, len(waiting))
            ready_nodes = {target_node(p) for p in pods if is_ready(p)}
            fewest_ready_nodes = min(fewest_ready_nodes, len(ready_nodes))
            current = {p["metadata"]["uid"]: p for p in pods}
            for uid in set(seen) - set(current):  # an old pod just went: was its node ready?
                node = target_node(seen.pop(uid))
                ready_when_deleted.append(any(new(p) and is_ready(p) and target_node(p) == node
                                              for p in pods))  # fmt: skip
                waited.append(time.monotonic() - made_ready.get(node, 0.0))
            seen.update(current)
            return any(new(p) and not is_ready(p) for p in pods) or (
                len(pods) == len(names) and all(new(p) and is_ready(p) for p in pods)
            )

        while True:  # play the kubelets: make each new pod ready as it appears
            pods = await wait_pods(client, namespace, "surge", step, what="surging")
            starting = [p for p in pods if new(p) and not is_ready(p)]
            if not starting:
                break
            for pod in starting:
                made_ready[target_node(pod)] = time.monotonic()
                await ready_since_now(client, pod)
        assert fewest_ready_nodes == len(names), "a node was left without a ready daemon"
        assert most_waiting == 1, "the update should surge on one node at a time, no more"
        assert ready_when_deleted == [True] * len(names)
        # The transition time has whole seconds: available up to a second early.
        assert min(waited) >= min_ready - 1, waited
        await wait_for(
            client, DAEMONSETS, namespace, "surge",
            lambda d: d.get("status", {}).get("updatedNumberScheduled") == len(names)
            and d["status"].get("numberAvailable") == len(names),
            what="rolled out", timeout=TIMEOUT,
        )  # fmt: skip


def is_ready(pod: Obj) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def test_on_delete_replaces_only_pods_someone_deleted(
    client: ApiClient, namespace: str
) -> None:
    lab = unique("lab")
    names = {f"{lab}-{i}" for i in range(2)}
    manifest = daemon_set("lazy", lab)
    manifest["spec"]["updateStrategy"] = {"type": "OnDelete"}
    async with hollow_nodes(client) as add, running(client, [DaemonSetController]):
        for name in sorted(names):
            await add(name, labels={"lab": lab})
        await client.create(DAEMONSETS, namespace, manifest)
        before = await wait_pods(client, namespace, "lazy", on_nodes(names), what="placed")
        await set_image(client, namespace, "lazy", "localhost/busybox:new")
        # The new spec was seen (the status is written after any pod change) and no pod
        # was replaced.
        await wait_for(
            client, DAEMONSETS, namespace, "lazy",
            lambda d: d.get("status", {}).get("observedGeneration") == 2
            and d["status"].get("updatedNumberScheduled") == 0,
            what="observed", timeout=TIMEOUT,
        )  # fmt: skip
        uids = {p["metadata"]["uid"] for p in await daemon_pods(client, namespace, "lazy")}
        assert uids == {p["metadata"]["uid"] for p in before}
        victim = before[0]
        await client.delete(PODS, namespace, victim["metadata"]["name"])
        after = await wait_pods(
            client, namespace, "lazy",
            lambda ps: on_nodes(names)(ps) and victim["metadata"]["uid"] not in
            {p["metadata"]["uid"] for p in ps},
            what="replaced",
        )  # fmt: skip
        images = {target_node(p): p["spec"]["containers"][0]["image"] for p in after}
        assert images[target_node(victim)] == "localhost/busybox:new"
        assert sorted(images.values()) == ["localhost/busybox", "localhost/busybox:new"]
        await wait_for(
            client, DAEMONSETS, namespace, "lazy",
            lambda d: d.get("status", {}).get("updatedNumberScheduled") == 1,
            what="one updated", timeout=TIMEOUT,
        )  # fmt: skip


async def test_a_daemonset_recreated_after_an_orphaning_delete_adopts_its_old_pods(
    client: ApiClient, namespace: str
) -> None:
    """``kubectl delete ds --cascade=orphan`` then apply again: the new DaemonSet takes the
    running pods back (one daemon per node, same uids), and a pod relabelled out of its
    selector is released and replaced on its node."""
    lab = unique("lab")
    names = {f"{lab}-{i}" for i in range(2)}
    async with (
        hollow_nodes(client) as add,
        running(client, [DaemonSetController, GarbageCollector]),
    ):
        for name in sorted(names):
            await add(name, labels={"lab": lab})
        first = await client.create(DAEMONSETS, namespace, daemon_set("keep", lab))
        before = await wait_pods(client, namespace, "keep", on_nodes(names), what="placed")
        await client.delete(DAEMONSETS, namespace, "keep", propagation_policy="Orphan")
        await wait_pods(
            client, namespace, "keep",
            lambda ps: len(ps) == len(names)
            and not any(p["metadata"].get("ownerReferences") for p in ps),
            what="orphaned",
        )  # fmt: skip
        await wait_list(
            client, DAEMONSETS, namespace, lambda items: not items, what="deleted",
            params={"fieldSelector": "metadata.name=keep"},
        )  # fmt: skip

        second = await client.create(DAEMONSETS, namespace, daemon_set("keep", lab))
        uid = second["metadata"]["uid"]
        assert uid != first["metadata"]["uid"]

        def adopted(pods: list[Obj]) -> bool:
            assert len(pods) <= len(names), "a second daemon was created beside an orphan"
            owners = [(p["metadata"].get("ownerReferences") or [{}])[0].get("uid") for p in pods]
            return on_nodes(names)(pods) and owners == [uid] * len(names)

        after = await wait_pods(client, namespace, "keep", adopted, what="adopted")
        assert {p["metadata"]["uid"] for p in after} == {p["metadata"]["uid"] for p in before}
        await wait_for(
            client, DAEMONSETS, namespace, "keep",
            lambda d: d.get("status", {}).get("currentNumberScheduled") == len(names),
            what="counted", timeout=TIMEOUT,
        )  # fmt: skip

        # Relabelled out of the selector: released (kept running), and replaced.
        stray = after[0]
        patch = {"metadata": {"labels": {"app": "elsewhere"}}}
        await client.patch(PODS, namespace, stray["metadata"]["name"], patch)
        await wait_for(
            client, PODS, namespace, stray["metadata"]["name"],
            lambda p: not p["metadata"].get("ownerReferences"), what="released",
            timeout=TIMEOUT,
        )  # fmt: skip
        await wait_pods(
            client, namespace, "keep",
            lambda ps: on_nodes(names)(ps)
            and stray["metadata"]["uid"] not in {p["metadata"]["uid"] for p in ps},
            what="replaced on the released pod's node",
        )  # fmt: skip


@pytest.mark.parametrize(
    ("unavailable", "surge", "field", "message"),
    [
        (0, 0, "maxUnavailable", "cannot be 0 when maxSurge is 0"),
        ("0%", "0%", "maxUnavailable", "cannot be 0 when maxSurge is 0"),
        (1, 1, "maxSurge", "may not be set when maxUnavailable is non-zero"),
    ],
)
async def test_the_api_refuses_a_rolling_update_that_cannot_move_or_is_ambiguous(
    client: ApiClient, namespace: str, unavailable: int | str, surge: int | str, field: str,
    message: str,
) -> None:  # fmt: skip
    """What the controller relies on, as Kubernetes validates it: exactly one of
    maxUnavailable and maxSurge is non-zero."""
    manifest = daemon_set("bad", "nowhere", max_unavailable=unavailable, max_surge=surge)
    with pytest.raises(errors.Invalid) as refused:
        await client.create(DAEMONSETS, namespace, manifest)
    causes = [(c.field, c.message) for c in refused.value.causes]
    assert len(causes) == 1, causes
    assert causes[0][0] == f"spec.updateStrategy.rollingUpdate.{field}"
    assert message in causes[0][1]
