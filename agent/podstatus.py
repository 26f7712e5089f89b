"""A pod's status, as the kubelet writes it, from what the runtime and the worker know.

Pure: the runtime's view of the pod's containers, the plan's waiting reasons, the
worker's memory of errors (image pulls, create/start failures) and probe results in,
``status`` out (phase, conditions, containerStatuses, initContainerStatuses, podIP,
hostIP, startTime). Phases follow Kubernetes:

* Pending: not every container has started yet (sandbox, images, init containers);
* Running: every app container has been started and at least one runs or restarts;
* Succeeded: every app container exited 0 and none will restart;
* Failed: every app container exited, at least one not 0, and none will restart (or an
  init container failed under restartPolicy Never).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.plan import Plan
from agent.runtime.interface import ContainerInfo, ContainerState, SandboxInfo

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ContainerProblem:
    """Why a container is not running, remembered by the worker (shown as Waiting)."""

    reason: str  # ErrImagePull, ImagePullBackOff, CreateContainerError, ...
    message: str


@dataclass(slots=True)
class Observed:
    """Everything the status is computed from, besides the pod itself."""

    sandbox: SandboxInfo | None
    containers: Sequence[ContainerInfo]
    plan: Plan
    host_ip: str
    problems: Mapping[str, ContainerProblem] = field(default_factory=dict)
    ready: Mapping[str, bool] = field(default_factory=dict)  # readiness probe results
    started: Mapping[str, bool] = field(default_factory=dict)  # startup probe results


def time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _latest(containers: Sequence[ContainerInfo], name: str, init: bool) -> list[ContainerInfo]:
    found = [c for c in containers if c.name == name and c.init == init]
    return sorted(found, key=lambda c: c.attempt, reverse=True)


def _state(info: ContainerInfo) -> Obj:
    if info.state is ContainerState.RUNNING:
        return {"running": {"startedAt": time(info.started_at)}}
    if info.state is ContainerState.EXITED:
        code = info.exit_code if info.exit_code is not None else 0
        terminated: Obj = {
            "exitCode": code,
            "reason": info.reason or ("Completed" if code == 0 else "Error"),
            "startedAt": time(info.started_at),
            "finishedAt": time(info.finished_at),
            "containerID": f"podman://{info.id}",
        }
        if info.message:
            terminated["message"] = info.message
        return {"terminated": terminated}
    return {"waiting": {"reason": "ContainerCreating"}}


def container_status(
    spec_c: Obj, infos: list[ContainerInfo], observed: Observed, *, init: bool
) -> Obj:
    name = str(spec_c.get("name"))
    status: Obj = {
        "name": name,
        "image": spec_c.get("image", ""),
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"waiting": {"reason": "PodInitializing" if not init else "ContainerCreating"}},
        "lastState": {},
    }
    waiting = {w.name: w for w in observed.plan.waiting}
    problem = observed.problems.get(name)
    if infos:
        current, previous = infos[0], (infos[1] if len(infos) > 1 else None)
        status["containerID"] = f"podman://{current.id}"
        status["imageID"] = current.image_id
        status["restartCount"] = current.attempt
        status["state"] = _state(current)
        if previous is not None and previous.state is ContainerState.EXITED:
            status["lastState"] = _state(previous)
        running = current.state is ContainerState.RUNNING
        status["started"] = running and observed.started.get(name, True)
        status["ready"] = running and status["started"] and observed.ready.get(name, True)
        if current.state is ContainerState.EXITED and name in waiting:
            # Back-off after a crash: Kubernetes shows Waiting with the last exit in lastState.
            status["lastState"] = _state(current)
            status["state"] = {
                "waiting": {
                    "reason": waiting[name].reason,
                    "message": f"back-off restarting failed container {name}",
                }
            }
    elif name in waiting:
        status["state"] = {"waiting": {"reason": waiting[name].reason}}
    else:
        status["state"] = {"waiting": {"reason": "ContainerCreating"}}
    if problem is not None and (not infos or infos[0].state is not ContainerState.RUNNING):
        status["state"] = {"waiting": {"reason": problem.reason, "message": problem.message}}
        status["ready"] = False
    return status


def _condition(kind: str, ok: bool, now: str, previous: Mapping[str, Obj], reason: str = "") -> Obj:
    value = "True" if ok else "False"
    old = previous.get(kind)
    since = now
    if old is not None and old.get("status") == value:
        since = old.get("lastTransitionTime", now)
    condition: Obj = {
        "type": kind,
        "status": value,
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if reason and not ok:
        condition["reason"] = reason
    return condition


def compute(pod: Obj, observed: Observed, *, now: datetime) -> Obj:
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    stamp = time(now) or ""
    app = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    inits = [c for c in spec.get("initContainers") or [] if isinstance(c, dict)]
    containers = observed.containers
    statuses = [
        container_status(c, _latest(containers, str(c.get("name")), False), observed, init=False)
        for c in app
    ]
    init_statuses = [
        container_status(c, _latest(containers, str(c.get("name")), True), observed, init=True)
        for c in inits
    ]
    initialized = all(
        "terminated" in s["state"] and s["state"]["terminated"]["exitCode"] == 0
        for s in init_statuses
    )
    phase = _phase(spec, statuses, init_statuses, observed.plan)
    all_ready = bool(statuses) and all(s["ready"] for s in statuses)
    previous = {str(c.get("type")): c for c in old.get("conditions") or [] if isinstance(c, dict)}
    sandbox_ready = observed.sandbox is not None and observed.sandbox.ready
    not_ready = "ContainersNotReady"
    conditions = [
        _condition("PodReadyToStartContainers", sandbox_ready, stamp, previous),
        _condition("Initialized", initialized, stamp, previous, "ContainersNotInitialized"),
        _condition("Ready", all_ready and phase == "Running", stamp, previous, not_ready),
        _condition("ContainersReady", all_ready, stamp, previous, not_ready),
        _condition("PodScheduled", True, stamp, previous),
    ]
    status: Obj = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": observed.host_ip,
        "hostIPs": [{"ip": observed.host_ip}] if observed.host_ip else [],
        "startTime": old.get("startTime") or stamp,
        "containerStatuses": statuses,
        "qosClass": old.get("qosClass", "BestEffort"),
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    ip: str | None
    if spec.get("hostNetwork"):
        ip = observed.host_ip  # a host-network pod has the node's address
    elif observed.sandbox is not None and observed.sandbox.ip:
        ip = observed.sandbox.ip
    else:
        ip = old.get("podIP")
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return status


def _phase(spec: Obj, statuses: list[Obj], init_statuses: list[Obj], plan: Plan) -> str:
    policy = spec.get("restartPolicy") or "Always"
    failed_init = any(
        "terminated" in s["state"] and s["state"]["terminated"]["exitCode"] != 0
        for s in init_statuses
    )
    if failed_init and policy == "Never":
        return "Failed"
    if plan.finished:
        codes = [
            s["state"]["terminated"]["exitCode"] for s in statuses if "terminated" in s["state"]
        ]
        if len(codes) == len(statuses) and codes:
            return "Succeeded" if all(code == 0 for code in codes) else "Failed"
    started = [
        s
        for s in statuses
        if "running" in s["state"] or "terminated" in s["state"] or s["restartCount"] > 0
    ]
    if statuses and len(started) == len(statuses):
        return "Running"
    return "Pending"
