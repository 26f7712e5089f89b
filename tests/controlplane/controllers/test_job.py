"""The Job and TTL-after-finished controllers against a real apiserver. No scheduler or
kubelet runs: Job pods stay unbound and the test finishes them by writing their status
(pods/status), as a kubelet would."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api import errors
from api.client import ApiClient
from controlplane.controllers.base import Controller
from controlplane.controllers.job import JobController
from controlplane.controllers.manager import controller_classes
from controlplane.controllers.ttlafterfinished import TTLAfterFinishedController
from tests.controlplane.controllers.harness import (
    EVENTS,
    JOBS,
    PODS,
    pod_template,
    running,
    set_pod_phase,
)
from tests.controlplane.controllers.podwatch import wait_event, wait_pods
from tests.support.cluster import BrambleServer, Kubectl
from tests.support.real import require_binary
from tests.support.waiting import wait_for

Obj = dict[str, Any]
TIMEOUT = 20.0


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(JobController, "BACKOFF_BASE", 0.05)


@pytest.fixture
def kubectl(server: BrambleServer, tmp_path: Path) -> Kubectl:
    return Kubectl(require_binary("kubectl", package="kubectl"), server.kubeconfig, tmp_path / "kc")


def job(name: str, *, restart: str = "Never", **spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": pod_template({"app": name}, restartPolicy=restart), **spec},
    }


def running_pods(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]


def condition(reason: str | None, kind: str) -> Any:
    def check(obj: Obj) -> bool:
        for c in obj.get("status", {}).get("conditions") or []:
            if c["type"] == kind and c["status"] == "True":
                return reason is None or c.get("reason") == reason
        return False

    return check


async def event_reasons(client: ApiClient, namespace: str, name: str) -> list[str]:
    params = {"fieldSelector": f"involvedObject.name={name},involvedObject.kind=Job"}
    listed = await client.list(EVENTS, namespace, params=params)
    return [e["reason"] for e in listed["items"] for _ in range(e.get("count") or 1)]


async def test_completions_with_parallelism_and_kubectl_wait(
    client: ApiClient, namespace: str, kubectl: Kubectl
) -> None:
    async with running(client, [JobController]):
        created = await client.create(JOBS, namespace, job("work", completions=3, parallelism=2))
        uid = created["metadata"]["uid"]
        waiting = asyncio.create_task(
            asyncio.to_thread(
                kubectl, "wait", "-n", namespace, "--for=condition=complete", "job/work",
                "--timeout=30s",
            )
        )  # fmt: skip
        seen: set[str] = set()
        most = 0

        def running_exactly(n: int) -> Callable[[list[Obj]], bool]:
            def check(pods: list[Obj]) -> bool:  # and note the most ever running
                nonlocal most
                seen.update(p["metadata"]["name"] for p in pods)
                most = max(most, len(running_pods(pods)))
                return len(running_pods(pods)) == n

            return check

        pods = await wait_pods(
            client, namespace, running_exactly(2), what="2 running", labels={"app": "work"}
        )
        pod = running_pods(pods)[0]
        assert pod["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] == uid
        assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "work"
        assert pod["metadata"]["labels"]["controller-uid"] == uid
        assert pod["metadata"]["labels"]["job-name"] == "work"
        ref = pod["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == (
            "Job", uid, True, True
        )  # fmt: skip
        assert pod["spec"]["restartPolicy"] == "Never"

        # One succeeds; once it is counted, deleting it loses nothing.
        await set_pod_phase(client, pod, "Succeeded", ready=False)
        await wait_for(
            client, JOBS, namespace, "work",
            lambda j: j.get("status", {}).get("succeeded") == 1
            and not j["status"].get("uncountedTerminatedPods"),
            what="counting one success", timeout=TIMEOUT,
        )  # fmt: skip
        await client.delete(PODS, namespace, pod["metadata"]["name"])
        # A replacement starts (two running again); after the next success only one
        # more completion is needed, so only one pod runs.
        for left in (2, 1):
            pods = await wait_pods(
                client, namespace, running_exactly(left),
                what=f"{left} running", labels={"app": "work"},
            )  # fmt: skip
            assert len(running_pods(pods)) == left
            await set_pod_phase(client, running_pods(pods)[0], "Succeeded", ready=False)
        final = await wait_for(
            client, JOBS, namespace, "work", condition("CompletionsReached", "Complete"),
            what="complete", timeout=TIMEOUT,
        )  # fmt: skip
        await wait_event(client, namespace, "work", "Completed")
    assert final["status"]["succeeded"] == 3
    assert final["status"]["completionTime"]
    assert final["status"]["startTime"]
    assert most == 2
    assert len(seen) == 3, "the deleted success was recounted or a pod was wasted"
    result = await waiting
    assert result.returncode == 0, result.stderr
    assert "condition met" in result.stdout
    reasons = await event_reasons(client, namespace, "work")
    assert reasons.count("SuccessfulCreate") == 3
    assert "Completed" in reasons


async def test_work_queue_completes_when_one_succeeded_and_none_runs(
    client: ApiClient, namespace: str
) -> None:
    async with running(client, [JobController]):
        await client.create(JOBS, namespace, job("queue", parallelism=3, restart="OnFailure"))
        spec = (await client.get(JOBS, namespace, "queue"))["spec"]
        assert "completions" not in spec or spec["completions"] is None
        three = await wait_pods(client, namespace, lambda ps: len(running_pods(ps)) == 3,
                                what="3 running", labels={"app": "queue"})  # fmt: skip
        await set_pod_phase(client, three[0], "Succeeded", ready=False)
        await wait_for(client, JOBS, namespace, "queue",
                       lambda j: j.get("status", {}).get("succeeded") == 1,
                       what="one success", timeout=TIMEOUT)  # fmt: skip
        # No new pod is started, and the Job is not complete while two still run.
        pods = await wait_pods(client, namespace, lambda ps: len(ps) == 3, what="three",
                               labels={"app": "queue"})  # fmt: skip
        assert not condition(None, "Complete")(await client.get(JOBS, namespace, "queue"))
        for pod in running_pods(pods):
            await set_pod_phase(client, pod, "Succeeded", ready=False)
        done = await wait_for(client, JOBS, namespace, "queue", condition(None, "Complete"),
                              what="complete", timeout=TIMEOUT)  # fmt: skip
    assert done["status"]["succeeded"] == 3


async def test_backoff_limit_fails_the_job(client: ApiClient, namespace: str) -> None:
    async with running(client, [JobController]):
        await client.create(JOBS, namespace, job("flaky", backoffLimit=1))
        failed: set[str] = set()
        for attempt in range(2):
            pods = await wait_pods(
                client, namespace, lambda ps: len(running_pods(ps)) == 1,
                what=f"attempt {attempt + 1} running", labels={"app": "flaky"},
            )  # fmt: skip
            pod = running_pods(pods)[0]
            assert pod["metadata"]["name"] not in failed
            failed.add(pod["metadata"]["name"])
            await set_pod_phase(client, pod, "Failed", ready=False)
        final = await wait_for(
            client, JOBS, namespace, "flaky", condition("BackoffLimitExceeded", "Failed"),
            what="failed", timeout=TIMEOUT,
        )  # fmt: skip
        await wait_event(client, namespace, "flaky", "BackoffLimitExceeded")
    assert final["status"]["failed"] == 2
    assert not final["status"].get("completionTime")
    listed = await client.list(PODS, namespace, params={"labelSelector": "app=flaky"})
    assert len(listed["items"]) == 2, "no third attempt"
    assert "BackoffLimitExceeded" in await event_reasons(client, namespace, "flaky")


async def test_active_deadline_deletes_running_pods(client: ApiClient, namespace: str) -> None:
    async with running(client, [JobController]):
        await client.create(JOBS, namespace, job("slow", parallelism=2, completions=4,
                                                 activeDeadlineSeconds=2))  # fmt: skip
        pods = await wait_pods(client, namespace, lambda ps: len(ps) == 2, what="running",
                               labels={"app": "slow"})  # fmt: skip
        await set_pod_phase(client, pods[0], "Running", ready=True)
        final = await wait_for(
            client, JOBS, namespace, "slow", condition("DeadlineExceeded", "Failed"),
            what="past its deadline", timeout=10,
        )  # fmt: skip
        await wait_pods(client, namespace, lambda ps: not ps, what="deleted",
                        labels={"app": "slow"})  # fmt: skip
        await wait_event(client, namespace, "slow", "DeadlineExceeded")
        await wait_event(client, namespace, "slow", "SuccessfulDelete", count=2)
    assert final["status"]["failed"] == 2
    assert final["status"]["active"] == 0
    reasons = await event_reasons(client, namespace, "slow")
    assert "DeadlineExceeded" in reasons
    assert reasons.count("SuccessfulDelete") == 2


def _with_gc() -> list[type[Controller]]:
    """The garbage collector, when it is there (written alongside this controller)."""
    with contextlib.suppress(Exception):
        return controller_classes(["garbagecollector"])
    return []


async def test_ttl_after_finished_deletes_the_job_and_its_pods(
    client: ApiClient, namespace: str
) -> None:
    gc = _with_gc()
    async with running(client, [JobController, TTLAfterFinishedController, *gc]):
        created = await client.create(JOBS, namespace, job("brief", ttlSecondsAfterFinished=1))
        pods = await wait_pods(client, namespace, lambda ps: len(ps) == 1, what="started",
                               labels={"app": "brief"})  # fmt: skip
        await set_pod_phase(client, pods[0], "Succeeded", ready=False)
        await wait_for(client, JOBS, namespace, "brief", condition(None, "Complete"),
                       what="complete", timeout=TIMEOUT)  # fmt: skip
        await wait_gone(client, JOBS, namespace, "brief", created["metadata"]["uid"])
        if gc:
            await wait_pods(client, namespace, lambda ps: not ps, what="collected",
                            labels={"app": "brief"})  # fmt: skip


async def wait_gone(client: ApiClient, res: Any, namespace: str, name: str, uid: str) -> None:
    params = {"fieldSelector": f"metadata.name={name}"}
    listed = await client.list(res, namespace, params=params)
    if not listed["items"]:
        return
    query = {**params, "resourceVersion": listed["metadata"]["resourceVersion"]}

    async def watch() -> None:
        while True:
            async for change in client.watch(res, namespace, params=query):
                obj = change["object"]
                query["resourceVersion"] = obj["metadata"]["resourceVersion"]
                if change["type"] == "DELETED" and obj["metadata"].get("uid") == uid:
                    return

    try:
        await asyncio.wait_for(watch(), TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(errors.NotFound):
            left = await client.get(res, namespace, name)
            raise AssertionError(f"{name} not deleted within {TIMEOUT}s: {left}") from None


async def test_a_manual_selector_job_adopts_matching_orphans_and_releases_relabelled_pods(
    client: ApiClient, namespace: str
) -> None:
    """With ``manualSelector``, a pod left by an orphaning delete (or made by hand) that
    the selector matches is adopted, runs as one of the Job's and counts; a pod
    relabelled out of the selector is released and replaced."""
    orphan = {"metadata": {"name": "leftover", "labels": {"app": "manual"}},
              "spec": {**pod_template({})["spec"], "restartPolicy": "Never"}}  # fmt: skip
    await client.create(PODS, namespace, orphan)
    manifest = job("manual", completions=2, parallelism=1, manualSelector=True,
                   selector={"matchLabels": {"app": "manual"}})  # fmt: skip
    async with running(client, [JobController]):
        created = await client.create(JOBS, namespace, manifest)
        uid = created["metadata"]["uid"]

        def owned_by_job(pod: Obj) -> bool:
            return any(r.get("uid") == uid for r in pod["metadata"].get("ownerReferences") or [])

        def only_the_orphan(pods: list[Obj]) -> bool:
            assert len(pods) == 1, "a pod was started beside the adoptable orphan"
            return owned_by_job(pods[0])

        pods = await wait_pods(
            client, namespace, only_the_orphan, what="adopted", labels={"app": "manual"}
        )
        assert pods[0]["metadata"]["name"] == "leftover"
        await wait_for(
            client, JOBS, namespace, "manual", lambda j: j.get("status", {}).get("active") == 1,
            what="counting the adopted pod", timeout=TIMEOUT,
        )  # fmt: skip
        await set_pod_phase(client, pods[0], "Succeeded", ready=False)

        def one_running(pods: list[Obj]) -> bool:
            return len(running_pods(pods)) == 1

        pods = await wait_pods(
            client, namespace, one_running, what="the second pod", labels={"app": "manual"}
        )
        second = running_pods(pods)[0]
        assert owned_by_job(second)
        # Relabelled out of the selector: released (and left alone), then replaced.
        patch = {"metadata": {"labels": {"app": "elsewhere"}}}
        await client.patch(PODS, namespace, second["metadata"]["name"], patch)
        await wait_for(
            client, PODS, namespace, second["metadata"]["name"],
            lambda p: not owned_by_job(p), what="released", timeout=TIMEOUT,
        )  # fmt: skip
        pods = await wait_pods(
            client, namespace, lambda ps: one_running(ps) and second["metadata"]["name"] not in
            {p["metadata"]["name"] for p in ps}, what="replaced", labels={"app": "manual"},
        )  # fmt: skip
        await set_pod_phase(client, running_pods(pods)[0], "Succeeded", ready=False)
        final = await wait_for(
            client, JOBS, namespace, "manual", condition("CompletionsReached", "Complete"),
            what="complete", timeout=TIMEOUT,
        )  # fmt: skip
        assert final["status"]["succeeded"] == 2
        released = await client.get(PODS, namespace, second["metadata"]["name"])
        assert released["status"].get("phase") not in ("Succeeded", "Failed")
        await client.delete(PODS, namespace, second["metadata"]["name"], grace_period=0)
