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
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from api import errors
from api.client import ApiClient
from controlplane.controllers.daemonset import DaemonSetController
from controlplane.controllers.daemonset.pods import target_node
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


def daemon_set(name: str, lab: str, *, max_unavailable: int | str = 1, **spec: Any) -> Obj:
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
                "rollingUpdate": {"maxUnavailable": max_unavailable},
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
