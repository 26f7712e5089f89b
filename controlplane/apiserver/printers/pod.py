"""Pods: NAME READY STATUS RESTARTS AGE | IP NODE NOMINATED NODE READINESS GATES.

A line-by-line port of ``printPod``. The STATUS cell is the one people read, and its
rules are subtle; in order of precedence, last wins:

1. ``status.reason`` if set (``Evicted``, ``NodeLost``, ...), else ``status.phase``;
   ``SchedulingGated`` when the PodScheduled condition says so.
2. The first init container that has not finished: ``Init:<waiting reason>``,
   ``Init:<terminated reason>``, ``Init:Signal:N``/``Init:ExitCode:N``, or ``Init:i/n``.
   Sidecars (init containers with ``restartPolicy: Always``) that have started count as
   finished, and towards READY.
3. Once initialized, the containers from last to first: a waiting reason
   (``CrashLoopBackOff``, ``ErrImagePull``, ``ContainerCreating``), a terminated reason
   (``Completed``, ``Error``, ``OOMKilled``) or ``Signal:N``/``ExitCode:N``. So the
   first container's state wins. ``Completed`` with another container still running
   becomes ``Running`` (or ``NotReady`` without the Ready condition).
4. With a deletionTimestamp: ``Unknown`` if the node was lost, else ``Terminating``
   unless the pod already succeeded or failed.

RESTARTS is the sum of restart counts, with the age of the latest restart ("3 (5m ago)").
While initializing it counts init containers; afterwards only sidecars and containers.
"""

from __future__ import annotations

from datetime import datetime

from controlplane.apiserver.printers.base import (
    AGE,
    NAME,
    Cell,
    Column,
    Obj,
    Printer,
    RowCondition,
)
from controlplane.apiserver.printers.format import (
    age,
    field_int,
    field_list,
    field_map,
    field_str,
    name,
    optional_map,
    parse_time,
    since,
)

COLUMNS = (
    NAME,
    Column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", "string", "The aggregate status of the containers in this pod."),
    Column(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the "
        "last container in this pod has restarted.",
    ),
    AGE,
    Column(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if "
        "not yet allocated.",
        priority=1,
    ),
    Column(
        "Node",
        "string",
        "NodeName indicates in which node this pod is scheduled. If empty, this pod is a "
        "candidate for scheduling by the scheduler defined in schedulerName.",
        priority=1,
    ),
    Column(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it "
        "cannot be scheduled right away as preemption victims receive their graceful "
        "termination periods.",
        priority=1,
    ),
    Column(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
        priority=1,
    ),
)

_NODE_LOST = "NodeLost"  # node.NodeUnreachablePodReason, set by the node lifecycle controller


def _restartable(container: Obj | None) -> bool:
    """An init container with ``restartPolicy: Always``: a sidecar."""
    return container is not None and container.get("restartPolicy") == "Always"


def _condition_true(status: Obj, kind: str) -> bool:
    """The first condition of this type is True (isPodInitializedConditionTrue)."""
    for condition in field_list(status, "conditions"):
        if condition.get("type") == kind:
            return condition.get("status") == "True"
    return False


def _has_ready_condition(status: Obj) -> bool:
    """Any Ready condition is True (hasPodReadyCondition)."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in field_list(status, "conditions")
    )


def _later(current: datetime | None, container_status: Obj) -> datetime | None:
    """The later of ``current`` and this container's last termination."""
    terminated = field_map(field_map(container_status, "lastState"), "terminated")
    finished = parse_time(terminated.get("finishedAt"))
    if finished is None or (current is not None and finished <= current):
        return current
    return finished


def _terminated_reason(terminated: Obj, prefix: str) -> str:
    if reason := field_str(terminated, "reason"):
        return prefix + reason
    if signal := field_int(terminated, "signal"):
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{field_int(terminated, 'exitCode')}"


def _cells(pod: Obj, now: datetime) -> list[Cell]:
    spec, status = field_map(pod, "spec"), field_map(pod, "status")
    init_specs = field_list(spec, "initContainers")
    by_name = {field_str(c, "name"): c for c in init_specs}

    restarts = sidecar_restarts = ready = 0
    total = len(field_list(spec, "containers")) + sum(1 for c in init_specs if _restartable(c))
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    phase = field_str(status, "phase")
    reason = field_str(status, "reason") or phase
    if any(
        c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated"
        for c in field_list(status, "conditions")
    ):
        reason = "SchedulingGated"

    initializing = False
    for i, container in enumerate(field_list(status, "initContainerStatuses")):
        count = field_int(container, "restartCount")
        restarts += count
        last_restart = _later(last_restart, container)
        sidecar = _restartable(by_name.get(field_str(container, "name")))
        if sidecar:
            sidecar_restarts += count
            last_sidecar_restart = _later(last_sidecar_restart, container)
        state = field_map(container, "state")
        terminated, waiting = optional_map(state, "terminated"), optional_map(state, "waiting")
        if terminated is not None and field_int(terminated, "exitCode") == 0:
            continue
        if sidecar and container.get("started") is True:
            if container.get("ready") is True:
                ready += 1
            continue
        if terminated is not None:
            reason = _terminated_reason(terminated, "Init:")
        elif waiting is not None and field_str(waiting, "reason") not in ("", "PodInitializing"):
            reason = "Init:" + field_str(waiting, "reason")
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for container in reversed(field_list(status, "containerStatuses")):
            restarts += field_int(container, "restartCount")
            last_restart = _later(last_restart, container)
            state = field_map(container, "state")
            terminated, waiting = optional_map(state, "terminated"), optional_map(state, "waiting")
            if waiting is not None and field_str(waiting, "reason"):
                reason = field_str(waiting, "reason")
            elif terminated is not None:
                reason = _terminated_reason(terminated, "")
            elif container.get("ready") is True and optional_map(state, "running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_ready_condition(status) else "NotReady"

    if field_map(pod, "metadata").get("deletionTimestamp") is not None:
        if field_str(status, "reason") == _NODE_LOST:
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    restart_cell = str(restarts)
    if restarts != 0 and last_restart is not None:
        restart_cell = f"{restarts} ({since(last_restart, now)} ago)"

    return [
        name(pod),
        f"{ready}/{total}",
        reason,
        restart_cell,
        age(pod, now),
        _pod_ip(status) or "<none>",
        field_str(spec, "nodeName") or "<none>",
        field_str(status, "nominatedNodeName") or "<none>",
        _readiness_gates(spec, status),
    ]


def _pod_ip(status: Obj) -> str:
    # The real printer reads only podIPs[0]; Kubernetes keeps it equal to podIP. Falling
    # back to podIP keeps the cell right for an agent that reports only podIP.
    ips = field_list(status, "podIPs")
    return field_str(ips[0], "ip") if ips else field_str(status, "podIP")


def _readiness_gates(spec: Obj, status: Obj) -> str:
    gates = field_list(spec, "readinessGates")
    if not gates:
        return "<none>"
    conditions = field_list(status, "conditions")
    true = 0
    for gate in gates:
        wanted = gate.get("conditionType")
        for condition in conditions:
            if condition.get("type") == wanted:
                if condition.get("status") == "True":
                    true += 1
                break
    return f"{true}/{len(gates)}"


def _conditions(pod: Obj) -> list[RowCondition]:
    """A finished pod's row says so, as the real printer's does (kubectl may use it)."""
    match field_str(field_map(pod, "status"), "phase"):
        case "Succeeded":
            return [_completed("Succeeded", "The pod has completed successfully.")]
        case "Failed":
            return [_completed("Failed", "The pod failed.")]
        case _:
            return []


def _completed(reason: str, message: str) -> RowCondition:
    return {"type": "Completed", "status": "True", "reason": reason, "message": message}


PRINTER = Printer(COLUMNS, _cells, _conditions)
