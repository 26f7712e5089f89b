"""The pure half of syncing a pod: desired spec + what the runtime has → actions.

The kubelet's ``computePodActions`` in Python: given the pod (its spec, its deletion
state), its sandbox and containers as the runtime reports them, and the restart back-off
the worker keeps, decide what to do now. Nothing here touches the runtime or the clock;
``sync_pod`` applies the plan (worker.py). Tests state plans as tables.

Rules, as Kubernetes applies them:

* a pod being deleted, or one that finished (restartPolicy and exits say it will never
  run again), has all its containers stopped; the sandbox goes with a deleted pod;
* no sandbox, or a sandbox that is not ready: (re)create it, after stopping whatever
  containers are left in the old one;
* init containers run one at a time, in order, each to success, before any app
  container; a failed one is restarted (Always/OnFailure, after back-off) or fails the pod
  (Never);
* an app container that is not running is started when the restart policy allows it
  (Always: any exit; OnFailure: a non-zero exit; Never: not again), after back-off;
* a container whose spec changed (its hash) or failed its liveness or startup probe is
  restarted;
* containers the spec does not name are stopped and removed; older exited attempts are
  removed (the newest exited one stays, for ``kubectl logs --previous``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from agent.runtime.interface import ContainerInfo, ContainerState, SandboxInfo

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Start:
    """Create and start container ``name`` (attempt ``attempt``)."""

    name: str
    attempt: int
    init: bool = False


@dataclass(frozen=True, slots=True)
class Stop:
    container_id: str
    name: str
    reason: str  # why, for the Killing event


@dataclass(frozen=True, slots=True)
class Remove:
    container_id: str


@dataclass(frozen=True, slots=True)
class Waiting:
    """A container that should run but must wait: back-off, or an init container first."""

    name: str
    reason: str  # CrashLoopBackOff, PodInitializing
    until: datetime | None = None


@dataclass(slots=True)
class Plan:
    kill_sandbox: bool = False  # stop everything and remove the sandbox
    create_sandbox: bool = False
    stop: list[Stop] = field(default_factory=list)
    remove: list[Remove] = field(default_factory=list)
    start: list[Start] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    finished: bool = False  # the pod will never run a container again

    @property
    def idle(self) -> bool:
        return not (
            self.kill_sandbox or self.create_sandbox or self.stop or self.remove or self.start
        )


def container_hash(container: Mapping[str, Any]) -> str:
    """What a running container was made from; a change means a restart (Kubernetes
    restarts a container whose image changes)."""
    relevant = {k: container.get(k) for k in sorted(container) if k not in ("resources",)}
    return hashlib.sha256(orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _latest(containers: Sequence[ContainerInfo], name: str, *, init: bool) -> ContainerInfo | None:
    found = [c for c in containers if c.name == name and c.init == init]
    return max(found, key=lambda c: c.attempt) if found else None


def _should_restart(policy: str, exit_code: int | None) -> bool:
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def compute(
    pod: Obj,
    sandbox: SandboxInfo | None,
    containers: Sequence[ContainerInfo],
    *,
    now: datetime,
    backoff: Mapping[str, datetime] | None = None,
    unhealthy: Mapping[str, str] | None = None,
) -> Plan:
    """The actions that move the pod towards its spec. ``backoff`` maps a container
    name to the moment it may be restarted; ``unhealthy`` maps the name of a container
    whose liveness or startup probe failed to that probe ("liveness", "startup")."""
    unhealthy = unhealthy or {}
    backoff = backoff or {}
    plan = Plan()
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    policy = str(spec.get("restartPolicy") or "Always")
    app = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    inits = [c for c in spec.get("initContainers") or [] if isinstance(c, dict)]
    running = [c for c in containers if c.state is ContainerState.RUNNING]

    if meta.get("deletionTimestamp"):
        plan.kill_sandbox = sandbox is not None or bool(containers)
        plan.stop = [Stop(c.id, c.name, "the pod is being deleted") for c in running]
        plan.finished = True
        return plan

    # Containers that belong to no container of the spec (renamed away): stop, remove.
    wanted_app = {str(c.get("name")): c for c in app}
    wanted_init = {str(c.get("name")): c for c in inits}
    for c in containers:
        names = wanted_init if c.init else wanted_app
        if c.name not in names:
            if c.state is ContainerState.RUNNING:
                plan.stop.append(Stop(c.id, c.name, "the container is no longer in the spec"))
            plan.remove.append(Remove(c.id))

    if _pod_finished(policy, app, containers):
        # Nothing will run again: free the sandbox (its ports, its infra container).
        plan.finished = True
        plan.stop += [Stop(c.id, c.name, "the pod has finished") for c in running]
        plan.kill_sandbox = sandbox is not None and sandbox.ready
        return plan

    if sandbox is None or not sandbox.ready:
        plan.create_sandbox = True
        if sandbox is not None:
            plan.kill_sandbox = True
        plan.stop += [Stop(c.id, c.name, "the pod sandbox changed") for c in running]
        # Everything starts again in the new sandbox: init containers first.
        first = inits[0] if inits else None
        if first is not None:
            latest = _latest(containers, str(first.get("name")), init=True)
            plan.start.append(Start(str(first.get("name")), _next(latest), init=True))
            plan.waiting += [Waiting(str(c.get("name")), "PodInitializing") for c in app]
        else:
            for spec_c in app:
                latest = _latest(containers, str(spec_c.get("name")), init=False)
                plan.start.append(Start(str(spec_c.get("name")), _next(latest)))
        return plan

    # Init containers: one at a time, each to success.
    for spec_c in inits:
        name = str(spec_c.get("name"))
        latest = _latest(containers, name, init=True)
        if latest is not None and latest.state is ContainerState.EXITED and latest.exit_code == 0:
            continue  # done
        if latest is not None and latest.state in (ContainerState.RUNNING, ContainerState.CREATED):
            if latest.state is ContainerState.CREATED:
                plan.start.append(Start(name, latest.attempt, init=True))
            plan.waiting += [Waiting(str(c.get("name")), "PodInitializing") for c in app]
            return plan
        if latest is not None and latest.state is ContainerState.EXITED:
            if policy == "Never":
                plan.finished = True  # a failed init container fails the pod
                return plan
            wait_until = backoff.get(name)
            if wait_until is not None and wait_until > now:
                plan.waiting.append(Waiting(name, "CrashLoopBackOff", wait_until))
                plan.waiting += [Waiting(str(c.get("name")), "PodInitializing") for c in app]
                return plan
        plan.start.append(Start(name, _next(latest), init=True))
        plan.waiting += [Waiting(str(c.get("name")), "PodInitializing") for c in app]
        return plan

    # App containers.
    for spec_c in app:
        name = str(spec_c.get("name"))
        latest = _latest(containers, name, init=False)
        digest = container_hash(spec_c)
        if latest is None:
            plan.start.append(Start(name, 0))
            continue
        if latest.state is ContainerState.RUNNING:
            if latest.spec_hash and latest.spec_hash != digest:
                plan.stop.append(Stop(latest.id, name, "its definition changed"))
                plan.start.append(Start(name, latest.attempt + 1))
            elif name in unhealthy:
                plan.stop.append(Stop(latest.id, name, f"it failed its {unhealthy[name]} probe"))
            continue
        if latest.state is ContainerState.CREATED:
            plan.start.append(Start(name, latest.attempt))
            continue
        # Exited (or unknown): restart as the policy says, after back-off.
        if not _should_restart(policy, latest.exit_code):
            continue
        wait_until = backoff.get(name)
        if wait_until is not None and wait_until > now:
            plan.waiting.append(Waiting(name, "CrashLoopBackOff", wait_until))
            continue
        plan.start.append(Start(name, latest.attempt + 1))

    # Old attempts: the two newest of each container stay (the current one, and the
    # previous one for `kubectl logs --previous`); older exited ones go.
    for name, init in {(c.name, c.init) for c in containers}:
        attempts = sorted(
            (c for c in containers if c.name == name and c.init == init),
            key=lambda c: c.attempt,
            reverse=True,
        )
        plan.remove += [Remove(c.id) for c in attempts[2:] if c.state is ContainerState.EXITED]
    plan.remove = list(dict.fromkeys(plan.remove))
    return plan


def _next(latest: ContainerInfo | None) -> int:
    return 0 if latest is None else latest.attempt + 1


def _pod_finished(policy: str, app: Sequence[Obj], containers: Sequence[ContainerInfo]) -> bool:
    """Never again: every app container exited and none may restart."""
    if policy == "Always" or not app:
        return False
    for spec_c in app:
        latest = _latest(containers, str(spec_c.get("name")), init=False)
        if latest is None or latest.state is not ContainerState.EXITED:
            return False
        if _should_restart(policy, latest.exit_code):
            return False
    return True
