"""Deployment, ReplicaSet, DaemonSet and Job rows, wide cells included."""

from __future__ import annotations

import pytest

from controlplane.apiserver import tables
from tests.controlplane.apiserver.builders import NOW, Obj, ago, meta

CONTAINERS = [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]
WIDE = ["web,log", "nginx:1.27,busybox"]
SELECTOR = {
    "matchLabels": {"tier": "fe"},
    "matchExpressions": [
        {"key": "env", "operator": "In", "values": ["prod", "dev"]},
        {"key": "canary", "operator": "DoesNotExist"},
        {"key": "arch", "operator": "NotIn", "values": ["s390x"]},
        {"key": "app", "operator": "Exists"},
    ],
}
BAD_SELECTOR = {"matchExpressions": [{"key": "env", "operator": "Near", "values": ["x"]}]}
APP_WEB = {"matchLabels": {"app": "web"}}


def workload(spec: Obj, status: Obj | None = None, **pod_spec: Obj) -> Obj:
    template = {"spec": {"containers": CONTAINERS, **pod_spec}}
    return {"metadata": meta("web"), "spec": {"template": template, **spec}, "status": status or {}}


@pytest.mark.parametrize(
    ("kind", "obj", "cells"),
    [
        pytest.param(
            "Deployment",
            workload(
                {"replicas": 3, "selector": APP_WEB},
                {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
            ),
            ["web", "2/3", 3, 2, "5m", *WIDE, "app=web"],
            id="deployment",
        ),
        pytest.param(
            "Deployment",
            workload({"selector": SELECTOR}),
            [
                "web",
                "0/1",
                0,
                0,
                "5m",
                *WIDE,
                "app,arch notin (s390x),!canary,env in (dev,prod),tier=fe",
            ],
            id="deployment-expressions-and-default-replicas",
        ),
        pytest.param(
            "Deployment",
            workload({"replicas": 1}),
            ["web", "0/1", 0, 0, "5m", *WIDE, ""],
            id="deployment-without-selector",
        ),
        pytest.param(
            "Deployment",
            workload({"replicas": 1, "selector": BAD_SELECTOR}),
            ["web", "0/1", 0, 0, "5m", *WIDE, "<invalid>"],
            id="deployment-invalid-selector",
        ),
        pytest.param(
            "ReplicaSet",
            workload({"replicas": 3, "selector": APP_WEB}, {"replicas": 3, "readyReplicas": 2}),
            ["web", 3, 3, 2, "5m", *WIDE, "app=web"],
            id="replicaset",
        ),
        pytest.param(
            "ReplicaSet",
            workload({"replicas": 0, "selector": {}}),
            ["web", 0, 0, 0, "5m", *WIDE, "<none>"],
            id="replicaset-scaled-to-zero-empty-selector",
        ),
        pytest.param(
            "ReplicaSet",
            workload({"selector": BAD_SELECTOR}),
            ["web", 1, 0, 0, "5m", *WIDE, "<error>"],
            id="replicaset-invalid-selector",
        ),
        pytest.param(
            "DaemonSet",
            workload(
                {"selector": APP_WEB},
                {
                    "desiredNumberScheduled": 3,
                    "currentNumberScheduled": 3,
                    "numberReady": 2,
                    "updatedNumberScheduled": 3,
                    "numberAvailable": 2,
                },
                nodeSelector={"kubernetes.io/os": "linux", "kubernetes.io/arch": "arm64"},
            ),
            [
                *("web", 3, 3, 2, 3, 2, "kubernetes.io/arch=arm64,kubernetes.io/os=linux", "5m"),
                *(*WIDE, "app=web"),
            ],
            id="daemonset",
        ),
        pytest.param(
            "DaemonSet",
            workload({"selector": APP_WEB}),
            ["web", 0, 0, 0, 0, 0, "<none>", "5m", *WIDE, "app=web"],
            id="daemonset-no-node-selector-no-status",
        ),
    ],
)
def test_apps_cells(kind: str, obj: Obj, cells: list[tables.Cell]) -> None:
    assert tables.row("apps", kind, obj, now=NOW) == cells


def job(spec: Obj | None = None, status: Obj | None = None, *, deleting: bool = False) -> Obj:
    obj = workload(spec or {}, status)
    if deleting:
        obj["metadata"]["deletionTimestamp"] = ago(seconds=1)
    return obj


def condition(kind: str, status: str = "True") -> Obj:
    return {"type": kind, "status": status}


ONE = {"completions": 1}
STARTED = {"startTime": ago(seconds=90)}


@pytest.mark.parametrize(
    ("obj", "cells"),
    [
        pytest.param(
            job(
                ONE,
                {
                    "succeeded": 1,
                    "startTime": ago(minutes=3),
                    "completionTime": ago(minutes=1),
                    "conditions": [condition("SuccessCriteriaMet"), condition("Complete")],
                },
            ),
            ["Complete", "1/1", "2m"],
            id="complete",
        ),
        pytest.param(
            job({"completions": 3}, STARTED | {"succeeded": 1}),
            ["Running", "1/3", "90s"],
            id="running",
        ),
        pytest.param(job(ONE), ["Running", "0/1", ""], id="not-started"),
        pytest.param(
            job(
                ONE, STARTED | {"conditions": [condition("Complete", "False"), condition("Failed")]}
            ),
            ["Failed", "0/1", "90s"],
            id="failed",
        ),
        pytest.param(
            job(ONE, {"conditions": [condition("Suspended")]}),
            ["Suspended", "0/1", ""],
            id="suspended",
        ),
        pytest.param(
            job(ONE, {"conditions": [condition("Suspended")]}, deleting=True),
            ["Terminating", "0/1", ""],
            id="terminating",
        ),
        pytest.param(
            job(ONE, {"conditions": [condition("Complete")]}, deleting=True),
            ["Complete", "0/1", ""],
            id="deleting-a-complete-job",
        ),
        pytest.param(
            job(ONE, {"conditions": [condition("FailureTarget")]}),
            ["FailureTarget", "0/1", ""],
            id="failure-target",
        ),
        pytest.param(
            job({"parallelism": 3}, {"succeeded": 2}), ["Running", "2/1 of 3", ""], id="work-queue"
        ),
        pytest.param(job({"parallelism": 1}), ["Running", "0/1", ""], id="no-completions"),
    ],
)
def test_job_cells(obj: Obj, cells: list[tables.Cell]) -> None:
    assert tables.row("batch", "Job", obj, now=NOW) == ["web", *cells, "5m", *WIDE, "<none>"]
