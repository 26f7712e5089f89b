"""Pod rows: each STATUS the real printPod produces, READY, RESTARTS and the wide cells."""

from __future__ import annotations

import pytest

from controlplane.apiserver import tables
from tests.controlplane.apiserver.builders import (
    NOW,
    Obj,
    ago,
    pod,
    running,
    terminated,
    waiting,
)

SIDECAR = {"name": "proxy", "image": "envoy", "restartPolicy": "Always"}
INIT = {"name": "setup", "image": "busybox"}
INITIALIZED = {"type": "Initialized", "status": "True"}
READY = {"type": "Ready", "status": "True"}
GATED = {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}


def restarted(status: Obj, count: int, finished: str) -> Obj:
    return status | {"restartCount": count, "lastState": {"terminated": {"finishedAt": finished}}}


@pytest.mark.parametrize(
    ("obj", "ready", "status", "restarts"),
    [
        pytest.param(pod("Running", [running()]), "1/1", "Running", "0", id="running"),
        pytest.param(
            pod("Running", [running(), running("b", ready=False)], containers=2),
            "1/2",
            "Running",
            "0",
            id="running-one-of-two-ready",
        ),
        pytest.param(pod("Pending"), "0/1", "Pending", "0", id="pending-unscheduled"),
        pytest.param(
            pod("Pending", [waiting("ContainerCreating")]),
            "0/1",
            "ContainerCreating",
            "0",
            id="container-creating",
        ),
        pytest.param(
            pod("Pending", conditions=[GATED]), "0/1", "SchedulingGated", "0", id="scheduling-gated"
        ),
        pytest.param(
            pod("Pending", [waiting("PodInitializing")], init=[INIT], init_statuses=[running()]),
            "0/1",
            "Init:0/1",
            "0",
            id="init-running",
        ),
        pytest.param(
            pod(
                "Pending",
                init=[INIT, {"name": "migrate"}],
                init_statuses=[terminated("Completed"), waiting("PodInitializing")],
            ),
            "0/1",
            "Init:1/2",
            "0",
            id="init-second-of-two",
        ),
        pytest.param(
            pod(
                "Pending",
                init=[INIT],
                init_statuses=[waiting("CrashLoopBackOff", restarts=4, last_exit=ago(minutes=2))],
            ),
            "0/1",
            "Init:CrashLoopBackOff",
            "4 (2m ago)",
            id="init-crash-loop",
        ),
        pytest.param(
            pod("Pending", init=[INIT], init_statuses=[terminated("Error", 1)]),
            "0/1",
            "Init:Error",
            "0",
            id="init-error",
        ),
        pytest.param(
            pod("Pending", init=[INIT], init_statuses=[terminated(exit_code=2)]),
            "0/1",
            "Init:ExitCode:2",
            "0",
            id="init-exit-code-without-reason",
        ),
        pytest.param(
            pod("Pending", init=[INIT], init_statuses=[terminated(exit_code=137, signal=9)]),
            "0/1",
            "Init:Signal:9",
            "0",
            id="init-signal",
        ),
        pytest.param(
            pod(
                "Running",
                [restarted(running(), 1, ago(seconds=30))],
                init=[INIT],
                init_statuses=[restarted(terminated("Completed"), 2, ago(minutes=9))],
            ),
            "1/1",
            "Running",
            "1 (30s ago)",
            id="init-restarts-forgotten-once-initialized",
        ),
        pytest.param(
            pod(
                "Running",
                [running()],
                init=[SIDECAR],
                init_statuses=[restarted(running("proxy") | {"started": True}, 1, ago(hours=1))],
                conditions=[INITIALIZED, READY],
            ),
            "2/2",
            "Running",
            "1 (60m ago)",
            id="sidecar-counts-towards-ready-and-restarts",
        ),
        pytest.param(
            pod(
                "Pending",
                init=[SIDECAR, INIT],
                init_statuses=[running("proxy") | {"started": False}],
            ),
            "0/2",
            "Init:0/2",
            "0",
            id="sidecar-not-started-yet",
        ),
        pytest.param(
            pod("Running", [waiting("CrashLoopBackOff", restarts=3, last_exit=ago(minutes=5))]),
            "0/1",
            "CrashLoopBackOff",
            "3 (5m ago)",
            id="crash-loop",
        ),
        pytest.param(
            pod("Pending", [waiting("ErrImagePull")]),
            "0/1",
            "ErrImagePull",
            "0",
            id="err-image-pull",
        ),
        pytest.param(
            pod("Pending", [waiting("ImagePullBackOff")]),
            "0/1",
            "ImagePullBackOff",
            "0",
            id="image-pull-backoff",
        ),
        pytest.param(
            pod("Running", [waiting("", restarts=2)]), "0/1", "Running", "2", id="restarts-no-date"
        ),
        pytest.param(
            pod("Succeeded", [terminated("Completed")]), "0/1", "Completed", "0", id="completed"
        ),
        pytest.param(pod("Failed", [terminated("Error", 1)]), "0/1", "Error", "0", id="error"),
        pytest.param(
            pod("Failed", [terminated("OOMKilled", 137)]), "0/1", "OOMKilled", "0", id="oom-killed"
        ),
        pytest.param(
            pod("Failed", [terminated(exit_code=3)]), "0/1", "ExitCode:3", "0", id="exit-code"
        ),
        pytest.param(
            pod("Failed", [terminated(exit_code=143, signal=15)]),
            "0/1",
            "Signal:15",
            "0",
            id="signal",
        ),
        pytest.param(
            pod(
                "Running", [terminated("Completed"), running("b")], containers=2, conditions=[READY]
            ),
            "1/2",
            "Running",
            "0",
            id="completed-with-another-running-and-ready",
        ),
        pytest.param(
            pod("Running", [terminated("Completed"), running("b")], containers=2),
            "1/2",
            "NotReady",
            "0",
            id="completed-with-another-running-not-ready",
        ),
        pytest.param(
            pod(
                "Running",
                [waiting("CrashLoopBackOff"), running("b"), waiting("ErrImagePull")],
                containers=3,
            ),
            "1/3",
            "CrashLoopBackOff",
            "0",
            id="first-container-wins",
        ),
        pytest.param(
            pod("Running", [running()], deleting=True), "1/1", "Terminating", "0", id="terminating"
        ),
        pytest.param(
            pod("Succeeded", [terminated("Completed")], deleting=True),
            "0/1",
            "Completed",
            "0",
            id="deleting-a-finished-pod-is-not-terminating",
        ),
        pytest.param(
            pod("Running", [running()], reason="NodeLost"), "1/1", "NodeLost", "0", id="node-lost"
        ),
        pytest.param(
            pod("Running", [running()], reason="NodeLost", deleting=True),
            "1/1",
            "Unknown",
            "0",
            id="node-lost-and-deleting",
        ),
        pytest.param(pod("Failed", reason="Evicted"), "0/1", "Evicted", "0", id="evicted"),
        pytest.param(
            pod("Failed", [terminated("ContainerStatusUnknown", 137)], reason="Evicted"),
            "0/1",
            "ContainerStatusUnknown",
            "0",
            id="evicted-with-container-status-wins",
        ),
    ],
)
def test_ready_status_restarts(obj: Obj, ready: str, status: str, restarts: str) -> None:
    assert tables.row("", "Pod", obj, now=NOW)[1:4] == [ready, status, restarts]


def test_a_full_row_includes_the_wide_cells() -> None:
    obj = pod("Running", [running()])
    obj["spec"] |= {
        "nodeName": "pi-1",
        "readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}, {"conditionType": "c"}],
    }
    obj["status"] |= {
        "podIP": "10.42.0.7",
        "podIPs": [{"ip": "10.42.0.7"}, {"ip": "fd00::7"}],
        "nominatedNodeName": "pi-2",
        "conditions": [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}],
    }
    assert tables.row("", "Pod", obj, now=NOW) == [
        *("web-1", "1/1", "Running", "0", "5m"),
        *("10.42.0.7", "pi-1", "pi-2", "1/3"),
    ]


@pytest.mark.parametrize(
    ("status", "ip"),
    [
        pytest.param({}, "<none>", id="none"),
        pytest.param({"podIP": "10.42.0.8"}, "10.42.0.8", id="pod-ip-only"),
        pytest.param(
            {"podIP": "x", "podIPs": [{"ip": "10.42.0.9"}]}, "10.42.0.9", id="pod-ips-win"
        ),
    ],
)
def test_ip_cell(status: Obj, ip: str) -> None:
    obj = pod("Pending")
    obj["status"] |= status
    assert tables.row("", "Pod", obj, now=NOW)[5:] == [ip, "<none>", "<none>", "<none>"]
