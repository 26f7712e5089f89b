"""Deleting a batch/v1 Job without a propagationPolicy keeps its pods, as Kubernetes does
(its Job strategy's default, kept for compatibility), and says so in a Warning header;
kubectl, which always asks Background, and any explicit policy behave as for other kinds.
The pods here are made as the Job controller makes them (a controller ownerReference);
the session's server runs the garbage collector, which does the orphaning."""

from __future__ import annotations

from functools import partial
from typing import Any

from tests.support.cluster import HttpsClient, Kubectl
from tests.support.processes import wait_until

JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
PODS = "/api/v1/namespaces/{ns}/pods"


def job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "c", "image": "localhost/busybox", "command": ["true"]}]}}},
    }  # fmt: skip


def job_with_pod(admin: HttpsClient, namespace: str, name: str) -> dict[str, Any]:
    created: dict[str, Any] = admin.ok("POST", JOBS.format(ns=namespace), job(name))
    owner = {
        "apiVersion": "batch/v1", "kind": "Job", "name": name,
        "uid": created["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True,
    }  # fmt: skip
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{name}-pod", "ownerReferences": [owner]},
        "spec": created["spec"]["template"]["spec"],
    }  # fmt: skip
    admin.ok("POST", PODS.format(ns=namespace), pod)
    return created


def gone(admin: HttpsClient, path: str) -> bool:
    return admin.request("GET", path).status == 404


def test_a_job_deleted_without_a_policy_keeps_its_pods_and_warns(
    admin: HttpsClient, namespace: str
) -> None:
    job_with_pod(admin, namespace, "kept")
    reply = admin.request("DELETE", f"{JOBS.format(ns=namespace)}/kept")
    assert reply.status == 200, reply.body
    assert "child pods are preserved by default" in reply.headers.get("Warning", "")
    wait_until(lambda: gone(admin, f"{JOBS.format(ns=namespace)}/kept"), timeout=30,
               what="the Job gone once its pod is orphaned", every=0.2)  # fmt: skip
    pod = admin.ok("GET", f"{PODS.format(ns=namespace)}/kept-pod")
    assert not pod["metadata"].get("deletionTimestamp")
    assert not pod["metadata"].get("ownerReferences"), pod["metadata"]


def test_an_explicit_policy_or_kubectl_removes_the_pods_without_a_warning(
    admin: HttpsClient, namespace: str, kubectl: Kubectl
) -> None:
    job_with_pod(admin, namespace, "background")
    reply = admin.request(
        "DELETE", f"{JOBS.format(ns=namespace)}/background",
        {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
    )  # fmt: skip
    assert reply.status == 200, reply.body
    assert "Warning" not in reply.headers
    wait_until(lambda: gone(admin, f"{PODS.format(ns=namespace)}/background-pod"), timeout=30,
               what="the Background-deleted Job's pod gone", every=0.2)  # fmt: skip

    job_with_pod(admin, namespace, "cli")
    out = kubectl.ok("delete", "job", "cli", "-n", namespace)
    assert 'job.batch "cli" deleted' in out
    wait_until(lambda: gone(admin, f"{PODS.format(ns=namespace)}/cli-pod"), timeout=30,
               what="the kubectl-deleted Job's pod gone", every=0.2)  # fmt: skip


def test_deleting_a_collection_of_jobs_keeps_their_pods_too(
    admin: HttpsClient, namespace: str
) -> None:
    job_with_pod(admin, namespace, "first")
    job_with_pod(admin, namespace, "second")
    reply = admin.request("DELETE", JOBS.format(ns=namespace))
    assert reply.status == 200, reply.body
    assert "child pods are preserved by default" in reply.headers.get("Warning", "")
    for name in ("first", "second"):
        path = f"{JOBS.format(ns=namespace)}/{name}"
        wait_until(partial(gone, admin, path), timeout=30, what=f"Job {name} gone", every=0.2)
        pod = admin.ok("GET", f"{PODS.format(ns=namespace)}/{name}-pod")
        assert not pod["metadata"].get("ownerReferences"), pod["metadata"]
