"""Objects for the printer tests: a fixed clock, timestamps relative to it, and pods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
Obj = dict[str, Any]


def ago(**delta: float) -> str:
    """An RFC 3339 timestamp this long before NOW."""
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str = "x", **extra: Any) -> Obj:
    """Metadata of an object created five minutes before NOW (AGE "5m")."""
    return {"name": name, "namespace": "default", "creationTimestamp": ago(minutes=5), **extra}


def running(name: str = "app", *, ready: bool = True, restarts: int = 0) -> Obj:
    return {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {}}}


def waiting(reason: str, *, restarts: int = 0, last_exit: str | None = None) -> Obj:
    status: Obj = {"name": "app", "ready": False, "restartCount": restarts}
    status["state"] = {"waiting": {"reason": reason}}
    if last_exit is not None:
        status["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": last_exit}}
    return status


def terminated(reason: str = "", exit_code: int = 0, signal: int = 0) -> Obj:
    state: Obj = {"exitCode": exit_code}
    if reason:
        state["reason"] = reason
    if signal:
        state["signal"] = signal
    return {"name": "app", "ready": False, "restartCount": 0, "state": {"terminated": state}}


def pod(
    phase: str = "Running",
    statuses: list[Obj] | None = None,
    *,
    containers: int = 1,
    init: list[Obj] | None = None,
    init_statuses: list[Obj] | None = None,
    conditions: list[Obj] | None = None,
    reason: str | None = None,
    deleting: bool = False,
) -> Obj:
    """A pod named web-1 with ``containers`` containers and these container statuses."""
    status: Obj = {"phase": phase, "containerStatuses": statuses or []}
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if conditions is not None:
        status["conditions"] = conditions
    if reason is not None:
        status["reason"] = reason
    extra = {"deletionTimestamp": ago(seconds=10)} if deleting else {}
    spec: Obj = {"containers": [{"name": f"c{i}", "image": "img"} for i in range(containers)]}
    if init is not None:
        spec["initContainers"] = init
    return {"metadata": meta("web-1", **extra), "spec": spec, "status": status}
