"""Nodes: NAME STATUS ROLES AGE VERSION | INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION
CONTAINER-RUNTIME, as ``printNode`` prints them.

STATUS comes from the Ready condition alone: ``Ready`` when True, ``NotReady`` when False
*or Unknown* (a node whose kubelet stopped reporting is NotReady, not Unknown), and
``Unknown`` only when there is no Ready condition at all; ``,SchedulingDisabled`` is
appended for a cordoned node. ROLES are the sorted ``node-role.kubernetes.io/<role>``
label suffixes plus the value of a ``kubernetes.io/role`` label, or ``<none>``.
"""

from __future__ import annotations

from datetime import datetime

from controlplane.apiserver.printers.base import AGE, NAME, Cell, Column, Obj, Printer
from controlplane.apiserver.printers.format import age, field_list, field_map, field_str, name

_ADDRESSES = "List of addresses reachable to the node. Queried from cloud provider, if available."
COLUMNS = (
    NAME,
    Column("Status", "string", "The status of the node"),
    Column("Roles", "string", "The roles of the node"),
    AGE,
    Column("Version", "string", "Kubelet Version reported by the node."),
    Column("Internal-IP", "string", _ADDRESSES, priority=1),
    Column("External-IP", "string", _ADDRESSES, priority=1),
    Column(
        "OS-Image",
        "string",
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        priority=1,
    ),
    Column(
        "Kernel-Version",
        "string",
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        priority=1,
    ),
    Column(
        "Container-Runtime",
        "string",
        "ContainerRuntime Version reported by the node through runtime remote API "
        "(e.g. containerd://1.4.2).",
        priority=1,
    ),
)

_ROLE_PREFIX = "node-role.kubernetes.io/"
_ROLE_LABEL = "kubernetes.io/role"


def status(node: Obj) -> str:
    ready: str | None = None
    for condition in field_list(field_map(node, "status"), "conditions"):
        if condition.get("type") == "Ready":  # the last one wins, as in the Go map
            ready = "Ready" if condition.get("status") == "True" else "NotReady"
    parts = [ready or "Unknown"]
    if field_map(node, "spec").get("unschedulable") is True:
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def roles(node: Obj) -> str:
    found: set[str] = set()
    for key, value in field_map(field_map(node, "metadata"), "labels").items():
        if key.startswith(_ROLE_PREFIX) and key != _ROLE_PREFIX:
            found.add(key.removeprefix(_ROLE_PREFIX))
        elif key == _ROLE_LABEL and value:
            found.add(str(value))
    return ",".join(sorted(found)) or "<none>"


def _address(node_status: Obj, kind: str) -> str:
    for address in field_list(node_status, "addresses"):
        if address.get("type") == kind:
            return field_str(address, "address")
    return "<none>"


def _cells(node: Obj, now: datetime) -> list[Cell]:
    node_status = field_map(node, "status")
    info = field_map(node_status, "nodeInfo")
    return [
        name(node),
        status(node),
        roles(node),
        age(node, now),
        field_str(info, "kubeletVersion"),
        _address(node_status, "InternalIP"),
        _address(node_status, "ExternalIP"),
        field_str(info, "osImage") or "<unknown>",
        field_str(info, "kernelVersion") or "<unknown>",
        field_str(info, "containerRuntimeVersion") or "<unknown>",
    ]


PRINTER = Printer(COLUMNS, _cells)
