"""apps/v1 workloads: Deployments, ReplicaSets and DaemonSets, as their real printers
print them. Counts come from ``status`` (0 while the controller has not reported);
``spec.replicas`` reads as 1 when absent, its v1 default.
"""

from __future__ import annotations

from datetime import datetime

from controlplane.apiserver.printers.base import (
    AGE,
    CONTAINERS,
    IMAGES,
    NAME,
    Cell,
    Column,
    Obj,
    Printer,
)
from controlplane.apiserver.printers.format import (
    age,
    container_cells,
    field_int,
    field_map,
    format_label_selector,
    format_labels,
    name,
    optional_map,
    selector_string,
    template_spec,
)

# --- Deployment: NAME READY UP-TO-DATE AVAILABLE AGE | CONTAINERS IMAGES SELECTOR ---------

DEPLOYMENT_COLUMNS = (
    NAME,
    Column("Ready", "string", "Number of the pod with ready state"),
    Column(
        "Up-to-date",
        "string",
        "Total number of non-terminated pods targeted by this deployment that have the "
        "desired template spec.",
    ),
    Column(
        "Available",
        "string",
        "Total number of available pods (ready for at least minReadySeconds) targeted by "
        "this deployment.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Column(
        "Selector",
        "string",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will "
        "be the ones affected by this deployment.",
        priority=1,
    ),
)


def _deployment(deployment: Obj, now: datetime) -> list[Cell]:
    spec, status = field_map(deployment, "spec"), field_map(deployment, "status")
    names, images = container_cells(template_spec(deployment))
    # printDeployment prints the selector itself: "" when empty, "<invalid>" when bad
    # (the other workloads use FormatLabelSelector: "<none>" and "<error>").
    selector = selector_string(optional_map(spec, "selector"))
    return [
        name(deployment),
        f"{field_int(status, 'readyReplicas')}/{field_int(spec, 'replicas', 1)}",
        field_int(status, "updatedReplicas"),
        field_int(status, "availableReplicas"),
        age(deployment, now),
        names,
        images,
        "<invalid>" if selector is None else selector,
    ]


# --- ReplicaSet: NAME DESIRED CURRENT READY AGE | CONTAINERS IMAGES SELECTOR --------------

REPLICASET_COLUMNS = (
    NAME,
    Column(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between "
        "explicit zero and unspecified. Defaults to 1.",
    ),
    Column("Current", "integer", "Replicas is the most recently observed number of replicas."),
    Column("Ready", "integer", "The number of ready replicas for this replica set."),
    AGE,
    CONTAINERS,
    IMAGES,
    Column(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count.",
        priority=1,
    ),
)


def _replicaset(replicaset: Obj, now: datetime) -> list[Cell]:
    spec, status = field_map(replicaset, "spec"), field_map(replicaset, "status")
    names, images = container_cells(template_spec(replicaset))
    return [
        name(replicaset),
        field_int(spec, "replicas", 1),
        field_int(status, "replicas"),
        field_int(status, "readyReplicas"),
        age(replicaset, now),
        names,
        images,
        format_label_selector(optional_map(spec, "selector")),
    ]


# --- DaemonSet: NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE
#     | CONTAINERS IMAGES SELECTOR --------------------------------------------------------

DAEMONSET_COLUMNS = (
    NAME,
    Column(
        "Desired",
        "integer",
        "The total number of nodes that should be running the daemon pod (including nodes "
        "correctly running the daemon pod).",
    ),
    Column(
        "Current",
        "integer",
        "The number of nodes that are running at least 1 daemon pod and are supposed to run "
        "the daemon pod.",
    ),
    Column(
        "Ready",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of "
        "the daemon pod running and ready.",
    ),
    Column(
        "Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"
    ),
    Column(
        "Available",
        "integer",
        "The number of nodes that should be running the daemon pod and have one or more of "
        "the daemon pod running and available (ready for at least spec.minReadySeconds)",
    ),
    Column(
        "Node Selector",
        "string",
        "NodeSelector is a selector which must be true for the pod to fit on a node.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    Column(
        "Selector",
        "string",
        "A label query over pods that are managed by the daemon set. Must match in order to "
        "be controlled.",
        priority=1,
    ),
)


def _daemonset(daemonset: Obj, now: datetime) -> list[Cell]:
    status = field_map(daemonset, "status")
    pod_spec = template_spec(daemonset)
    names, images = container_cells(pod_spec)
    return [
        name(daemonset),
        field_int(status, "desiredNumberScheduled"),
        field_int(status, "currentNumberScheduled"),
        field_int(status, "numberReady"),
        field_int(status, "updatedNumberScheduled"),
        field_int(status, "numberAvailable"),
        format_labels(field_map(pod_spec, "nodeSelector")),
        age(daemonset, now),
        names,
        images,
        format_label_selector(optional_map(field_map(daemonset, "spec"), "selector")),
    ]


DEPLOYMENT = Printer(DEPLOYMENT_COLUMNS, _deployment)
REPLICASET = Printer(REPLICASET_COLUMNS, _replicaset)
DAEMONSET = Printer(DAEMONSET_COLUMNS, _daemonset)
