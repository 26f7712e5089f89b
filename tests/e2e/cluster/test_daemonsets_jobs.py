"""DaemonSets and Jobs on the real multi-node cluster, driven by the real kubectl:

* a DaemonSet runs a pod on every node, and on a node that joins later
  (``cluster.add_node()``);
* Jobs: one that always fails stops at its backoffLimit (Failed, BackoffLimitExceeded,
  exactly backoffLimit + 1 pods); one that fails once then succeeds (a hostPath marks
  the first try) completes; one over its activeDeadlineSeconds fails with
  DeadlineExceeded and its pods are removed.

This module's cluster is its own (tests/e2e/cluster/conftest.py); it grows a node.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cluster.workloads import IMAGE, Obj, is_active, is_ready, job, pods
from tests.support.cluster import manifest, unique
from tests.support.multinode import Cluster
from tests.support.processes import wait_until

pytestmark = pytest.mark.real("multinode")


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = unique("dj")
    cluster.kubectl.ok("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


# --- DaemonSets ---------------------------------------------------------------------------


def daemonset(name: str) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "agent",
                            "image": IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "command": [
                                "sh",
                                "-c",
                                "trap 'exit 0' TERM; while true; do sleep 1 & wait; done",
                            ],
                        }
                    ],
                },
            },
        },
    }


def test_a_daemonset_lands_on_a_node_that_joins_later(cluster: Cluster, namespace: str) -> None:
    kubectl = cluster.kubectl
    kubectl.ok("apply", "-n", namespace, "-f", "-", input=manifest(daemonset("ds")))

    def running_on() -> set[str] | None:
        current = [p for p in pods(cluster, namespace, "app=ds") if is_active(p)]
        nodes = {p["spec"].get("nodeName", "") for p in current if is_ready(p)}
        return nodes if len(current) == len(cluster.nodes) == len(nodes) else None

    first = wait_until(running_on, timeout=60, what="a ds pod Ready on every node", every=0.5)
    assert first == {n.name for n in cluster.nodes}
    new = cluster.add_node()
    joined = wait_until(running_on, timeout=60, what=f"a ds pod on {new.name}", every=0.5)
    assert new.name in joined
    mine = {"io.bramble.pod.namespace": namespace}
    assert new.containers(**mine), f"no ds container in {new.name}'s Podman"
    status = kubectl.json("get", "daemonset", "ds", "-n", namespace)["status"]
    assert status["desiredNumberScheduled"] == len(cluster.nodes), status


# --- Jobs ---------------------------------------------------------------------------------


def job_condition(job: Obj, kind: str) -> Obj | None:
    for c in job.get("status", {}).get("conditions") or []:
        if c["type"] == kind and c["status"] == "True":
            return dict(c)
    return None


def test_jobs_backoff_limit_retry_and_active_deadline(cluster: Cluster, namespace: str) -> None:
    kubectl = cluster.kubectl
    # Every node shares the machine's file system: a hostPath is the same directory on
    # whichever node the retry lands.
    shared = cluster.dir / f"job-{namespace}"
    shared.mkdir()
    flaky = job(
        "flaky", "[ -e /shared/failed-once ] && exit 0; touch /shared/failed-once; exit 1",
        backoffLimit=3,
    )  # fmt: skip
    spec = flaky["spec"]["template"]["spec"]
    spec["volumes"] = [{"name": "shared", "hostPath": {"path": str(shared)}}]
    spec["containers"][0]["volumeMounts"] = [{"name": "shared", "mountPath": "/shared"}]
    jobs = [
        job("doomed", "echo trying; exit 3", backoffLimit=1),
        flaky,
        job("slow", "trap 'exit 0' TERM; sleep 600 & wait", activeDeadlineSeconds=5),
    ]
    kubectl.ok("apply", "-n", namespace, "-f", "-", input=manifest(*jobs))

    def finished(name: str, kind: str) -> Obj:
        def done() -> Obj | None:
            obj: Obj = kubectl.json("get", "job", name, "-n", namespace)
            return obj if job_condition(obj, kind) else None

        result: Obj = wait_until(done, timeout=90, what=f"job {name} {kind}", every=0.5)
        return result

    doomed = finished("doomed", "Failed")
    condition = job_condition(doomed, "Failed")
    assert condition is not None, doomed
    assert condition["reason"] == "BackoffLimitExceeded", doomed
    assert doomed["status"]["failed"] == 2, doomed["status"]  # backoffLimit 1: two tries
    assert len(pods(cluster, namespace, "job-name=doomed")) == 2
    slow = finished("slow", "Failed")
    condition = job_condition(slow, "Failed")
    assert condition is not None, slow
    assert condition["reason"] == "DeadlineExceeded", slow
    wait_until(
        lambda: not pods(cluster, namespace, "job-name=slow"),
        timeout=30, what="the deadline-exceeded job's pods removed", every=0.5,
    )  # fmt: skip
    done = finished("flaky", "Complete")
    assert (done["status"].get("failed"), done["status"].get("succeeded")) == (1, 1), done
    logs = kubectl.ok("logs", "-n", namespace, "job/doomed")
    assert "trying" in logs
