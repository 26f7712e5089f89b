"""Node rows: STATUS from the Ready condition and cordoning, ROLES from labels."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver import tables
from tests.controlplane.apiserver.builders import NOW, Obj, ago


def node(conditions: list[Obj] | None = None, labels: Obj | None = None, **spec: Any) -> Obj:
    return {
        "metadata": {"name": "pi-1", "creationTimestamp": ago(days=3), "labels": labels or {}},
        "spec": spec,
        "status": {"conditions": conditions or []},
    }


def ready(status: str) -> Obj:
    return {"type": "Ready", "status": status}


@pytest.mark.parametrize(
    ("obj", "status"),
    [
        pytest.param(node([ready("True")]), "Ready", id="ready"),
        pytest.param(node([ready("False")]), "NotReady", id="not-ready"),
        pytest.param(node([ready("Unknown")]), "NotReady", id="stale-kubelet-is-not-ready"),
        pytest.param(
            node([{"type": "MemoryPressure", "status": "True"}]), "Unknown", id="no-ready-condition"
        ),
        pytest.param(node([ready("False"), ready("True")]), "Ready", id="last-ready-wins"),
        pytest.param(
            node([ready("True")], unschedulable=True), "Ready,SchedulingDisabled", id="cordoned"
        ),
        pytest.param(node(unschedulable=True), "Unknown,SchedulingDisabled", id="cordoned-new"),
    ],
)
def test_status(obj: Obj, status: str) -> None:
    assert tables.row("", "Node", obj, now=NOW)[1] == status


@pytest.mark.parametrize(
    ("labels", "roles"),
    [
        pytest.param({}, "<none>", id="none"),
        pytest.param(
            {"node-role.kubernetes.io/master": "", "node-role.kubernetes.io/control-plane": "true"},
            "control-plane,master",
            id="sorted",
        ),
        pytest.param({"kubernetes.io/role": "worker"}, "worker", id="legacy-label"),
        pytest.param({"kubernetes.io/role": ""}, "<none>", id="legacy-label-empty"),
        pytest.param({"node-role.kubernetes.io/": ""}, "<none>", id="empty-suffix"),
        pytest.param(
            {"kubernetes.io/role": "worker", "node-role.kubernetes.io/worker": ""},
            "worker",
            id="deduplicated",
        ),
    ],
)
def test_roles(labels: Obj, roles: str) -> None:
    assert tables.row("", "Node", node(labels=labels), now=NOW)[2] == roles


def test_a_full_row_includes_the_wide_cells() -> None:
    obj = node([ready("True")])
    obj["status"] |= {
        "addresses": [
            {"type": "Hostname", "address": "pi-1"},
            {"type": "InternalIP", "address": "192.168.1.21"},
            {"type": "InternalIP", "address": "192.168.1.99"},
        ],
        "nodeInfo": {
            "kubeletVersion": "v1.32.4-bramble",
            "osImage": "Debian GNU/Linux 12 (bookworm)",
            "containerRuntimeVersion": "podman://5.4.2",
        },
    }
    assert tables.row("", "Node", obj, now=NOW) == [
        *("pi-1", "Ready", "<none>", "3d", "v1.32.4-bramble"),
        *("192.168.1.21", "<none>", "Debian GNU/Linux 12 (bookworm)", "<unknown>"),
        "podman://5.4.2",
    ]
