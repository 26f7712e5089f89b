"""The Deployment and ReplicaSet controllers together, driven by the real kubectl against
a real apiserver: `create deployment`, `rollout status`, `set image` (with maxSurge and
maxUnavailable checked on every pod state a watch reports), `rollout history`, `rollout
undo`, `rollout pause/resume/restart` and `scale`. No kubelet runs: the test marks each
new pod Running and Ready, as an agent would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api import errors
from api.client import ApiClient
from controlplane.controllers.deployment import DeploymentController
from controlplane.controllers.deployment import revisions as rv
from controlplane.controllers.replicaset import ReplicaSetController
from tests.controlplane.controllers.harness import DEPLOYMENTS, PODS, REPLICASETS, running
from tests.support.cluster import BrambleServer, Kubectl
from tests.support.real import require_binary
from tests.support.waiting import wait_for

Obj = dict[str, Any]
BOTH = [DeploymentController, ReplicaSetController]


@pytest.fixture
def kubectl(server: BrambleServer, tmp_path: Path) -> Kubectl:
    return Kubectl(require_binary("kubectl", package="kubectl"), server.kubeconfig, tmp_path / "kc")


def ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@contextlib.asynccontextmanager
async def kubelet(client: ApiClient, ns: str) -> AsyncIterator[list[list[Obj]]]:
    """Play the kubelets of the namespace (every new pod becomes Running and Ready) and
    record every state of its pods that the watch reports."""
    states: list[list[Obj]] = []
    listed = await client.list(PODS, ns)
    pods = {p["metadata"]["name"]: p for p in listed["items"]}

    async def make_ready(pod: Obj) -> None:
        if ready(pod) or pod["metadata"].get("deletionTimestamp"):
            return
        status = dict(pod.get("status") or {})
        status["phase"] = "Running"
        status["conditions"] = [
            {"type": t, "status": "True"}
            for t in ("Initialized", "ContainersReady", "Ready", "PodScheduled")
        ]
        name = pod["metadata"]["name"]
        with contextlib.suppress(errors.Conflict, errors.NotFound):  # a newer event follows
            await client.update(PODS, ns, name, {**pod, "status": status}, subresource="status")

    async def run() -> None:
        for pod in list(pods.values()):
            await make_ready(pod)
        query = {"resourceVersion": listed["metadata"]["resourceVersion"]}
        while True:
            async for change in client.watch(PODS, ns, params=query):
                pod = change["object"]
                query["resourceVersion"] = pod["metadata"]["resourceVersion"]
                if change["type"] == "BOOKMARK":
                    continue
                if change["type"] == "DELETED":
                    pods.pop(pod["metadata"]["name"], None)
                else:
                    pods[pod["metadata"]["name"]] = pod
                states.append(list(pods.values()))
                if change["type"] != "DELETED":
                    await make_ready(pod)

    task = asyncio.create_task(run())
    try:
        yield states
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def image(pod: Obj) -> str:
    return str(pod["spec"]["containers"][0]["image"])


async def kc(kubectl: Kubectl, namespace: str, *args: str) -> str:
    return await asyncio.to_thread(kubectl.ok, "-n", namespace, *args, timeout=90)


async def template_image(client: ApiClient, namespace: str, name: str) -> str:
    d = await client.get(DEPLOYMENTS, namespace, name)
    return str(d["spec"]["template"]["spec"]["containers"][0]["image"])


async def test_kubectl_rollout_set_image_history_and_undo(
    client: ApiClient, namespace: str, kubectl: Kubectl
) -> None:
    v1, v2 = "localhost/busybox", "localhost/busybox:v2"
    async with running(client, BOTH), kubelet(client, namespace) as states:
        await kc(kubectl, namespace, "create", "deployment", "web", f"--image={v1}", "--replicas=3")
        out = await kc(kubectl, namespace, "rollout", "status", "deployment/web", "--timeout=60s")
        assert 'deployment "web" successfully rolled out' in out
        first = len(states)
        await kc(kubectl, namespace, "set", "image", "deployment/web", f"busybox={v2}")
        out = await kc(kubectl, namespace, "rollout", "status", "deployment/web", "--timeout=60s")
        assert 'deployment "web" successfully rolled out' in out
        rolled = states[first:]
        assert any(image(p) == v2 for state in rolled for p in state)
        for state in rolled:
            # 3 replicas with the default 25%: maxSurge 1, maxUnavailable 0.
            assert len(state) <= 4, [(p["metadata"]["name"], image(p)) for p in state]
            assert sum(ready(p) for p in state) >= 3, [(image(p), ready(p)) for p in state]
        live = await client.list(PODS, namespace)
        assert sorted(image(p) for p in live["items"]) == [v2] * 3

        history = await kc(kubectl, namespace, "rollout", "history", "deployment/web")
        revisions = [line.split()[0] for line in history.splitlines()[2:] if line.strip()]
        assert revisions == ["1", "2"], history

        out = await kc(kubectl, namespace, "rollout", "undo", "deployment/web")
        assert "rolled back" in out
        await kc(kubectl, namespace, "rollout", "status", "deployment/web", "--timeout=60s")
        assert await template_image(client, namespace, "web") == v1
        done = await wait_for(
            client, DEPLOYMENTS, namespace, "web",
            lambda d: (d["metadata"].get("annotations") or {}).get(rv.REVISION) == "3",
            what="at revision 3",
        )  # fmt: skip
        assert done["status"]["updatedReplicas"] == 3
        history = await kc(kubectl, namespace, "rollout", "history", "deployment/web")
        revisions = [line.split()[0] for line in history.splitlines()[2:] if line.strip()]
        assert revisions == ["2", "3"], history  # revision 1 became 3

        out = await kc(kubectl, namespace, "rollout", "undo", "deployment/web", "--to-revision=2")
        assert "rolled back" in out
        await kc(kubectl, namespace, "rollout", "status", "deployment/web", "--timeout=60s")
        assert await template_image(client, namespace, "web") == v2
        live = await client.list(PODS, namespace)
        assert sorted(image(p) for p in live["items"]) == [v2] * 3


async def test_kubectl_pause_resume_restart_and_scale(
    client: ApiClient, namespace: str, kubectl: Kubectl
) -> None:
    async with running(client, BOTH), kubelet(client, namespace):
        await kc(kubectl, namespace, "create", "deployment", "app", "--image=localhost/busybox")
        await kc(kubectl, namespace, "rollout", "status", "deployment/app", "--timeout=60s")
        await kc(kubectl, namespace, "rollout", "pause", "deployment/app")
        await kc(
            kubectl, namespace, "set", "image", "deployment/app", "busybox=localhost/busybox:v2"
        )
        await kc(kubectl, namespace, "scale", "deployment/app", "--replicas=2")
        await wait_for(
            client, DEPLOYMENTS, namespace, "app",
            lambda d: d["status"].get("availableReplicas") == 2
            and d["status"].get("observedGeneration") == d["metadata"]["generation"],
            what="scaled while paused",
        )  # fmt: skip
        listed = await client.list(REPLICASETS, namespace)
        assert len(listed["items"]) == 1  # paused: no rollout
        await kc(kubectl, namespace, "rollout", "resume", "deployment/app")
        await kc(kubectl, namespace, "rollout", "status", "deployment/app", "--timeout=60s")
        pods = await client.list(PODS, namespace)
        assert sorted(image(p) for p in pods["items"]) == ["localhost/busybox:v2"] * 2
        before = {p["metadata"]["name"] for p in pods["items"]}
        await kc(kubectl, namespace, "rollout", "restart", "deployment/app")
        await kc(kubectl, namespace, "rollout", "status", "deployment/app", "--timeout=60s")
        after = {p["metadata"]["name"] for p in (await client.list(PODS, namespace))["items"]}
        assert len(after) == 2
        assert not before & after  # every pod was replaced
        listed = await client.list(REPLICASETS, namespace)
        assert len(listed["items"]) == 3


async def test_kubectl_rollout_status_fails_past_the_progress_deadline(
    client: ApiClient, namespace: str, kubectl: Kubectl
) -> None:
    body = {
        "metadata": {"name": "stuck"},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 1,
            "selector": {"matchLabels": {"app": "stuck"}},
            "template": {
                "metadata": {"labels": {"app": "stuck"}},
                "spec": {"containers": [{"name": "app", "image": "localhost/busybox"}]},
            },
        },
    }
    await client.create(DEPLOYMENTS, namespace, body)
    async with running(client, BOTH):  # no kubelet: the pod never becomes ready
        result = await asyncio.to_thread(
            kubectl, "-n", namespace, "rollout", "status", "deployment/stuck", "--timeout=30s"
        )
    assert result.returncode == 1, result
    assert 'deployment "stuck" exceeded its progress deadline' in result.stderr
