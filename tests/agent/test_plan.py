"""sync_pod's plan step as tables: (pod, runtime state) → actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.plan import Plan, Stop, compute, container_hash
from agent.runtime.interface import ContainerInfo, ContainerState, SandboxInfo

NOW = datetime(2026, 11, 24, tzinfo=UTC)
UID = "uid-1"
RUN, EXIT, NEW = ContainerState.RUNNING, ContainerState.EXITED, ContainerState.CREATED


def pod(
    containers: tuple[str, ...] = ("app",),
    *,
    inits: tuple[str, ...] = (),
    policy: str = "Always",
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": "default", "uid": UID}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-24T00:00:30Z"
    return {
        "metadata": meta,
        "spec": {
            "restartPolicy": policy,
            "containers": [{"name": c, "image": "busybox"} for c in containers],
            "initContainers": [{"name": c, "image": "busybox"} for c in inits],
        },
    }


def sandbox(ready: bool = True) -> SandboxInfo:
    return SandboxInfo("sb", UID, "default", "p", ready, "10.88.0.5")


def ctr(
    name: str, state: ContainerState, *, attempt: int = 0, code: int | None = None,
    init: bool = False, spec_hash: str | None = None,
) -> ContainerInfo:  # fmt: skip
    digest = container_hash({"name": name, "image": "busybox"}) if spec_hash is None else spec_hash
    return ContainerInfo(
        id=f"{name}-{attempt}", pod_uid=UID, name=name, attempt=attempt, state=state,
        image="busybox", image_id="sha", exit_code=code, init=init, spec_hash=digest,
    )  # fmt: skip


def summary(plan: Plan) -> dict[str, Any]:
    return {
        k: v
        for k, v in {
            "kill_sandbox": plan.kill_sandbox,
            "create_sandbox": plan.create_sandbox,
            "stop": [s.container_id for s in plan.stop],
            "remove": [r.container_id for r in plan.remove],
            "start": [(s.name, s.attempt, s.init) for s in plan.start],
            "waiting": [(w.name, w.reason) for w in plan.waiting],
            "finished": plan.finished,
        }.items()
        if v
    }


CASES = [
    pytest.param(pod(), None, [], {}, {"create_sandbox": True, "start": [("app", 0, False)]},
                 id="new-pod"),
    pytest.param(pod(), sandbox(), [ctr("app", RUN)], {}, {}, id="running-nothing-to-do"),
    pytest.param(pod(), sandbox(), [ctr("app", EXIT, code=1)], {},
                 {"start": [("app", 1, False)]}, id="always-restarts-a-crash"),
    pytest.param(pod(policy="OnFailure"), sandbox(), [ctr("app", EXIT, code=0)], {},
                 {"finished": True, "kill_sandbox": True}, id="onfailure-done-after-success"),
    pytest.param(pod(policy="OnFailure"), sandbox(), [ctr("app", EXIT, code=2)], {},
                 {"start": [("app", 1, False)]}, id="onfailure-restarts-failure"),
    pytest.param(pod(policy="Never"), sandbox(), [ctr("app", EXIT, code=2)], {},
                 {"finished": True, "kill_sandbox": True}, id="never-does-not-restart"),
    pytest.param(pod(), sandbox(), [ctr("app", EXIT, code=1, attempt=3)],
                 {"app": NOW + timedelta(seconds=40)},
                 {"waiting": [("app", "CrashLoopBackOff")]}, id="back-off"),
    pytest.param(pod(), sandbox(), [ctr("app", EXIT, code=1, attempt=3)],
                 {"app": NOW - timedelta(seconds=1)},
                 {"start": [("app", 4, False)]}, id="back-off-over"),
    pytest.param(pod(), sandbox(ready=False), [ctr("app", RUN)], {},
                 {"kill_sandbox": True, "create_sandbox": True, "stop": ["app-0"],
                  "start": [("app", 1, False)]}, id="sandbox-died"),
    pytest.param(pod(deleting=True), sandbox(), [ctr("app", RUN)], {},
                 {"kill_sandbox": True, "stop": ["app-0"], "finished": True}, id="deleting"),
    pytest.param(pod(), sandbox(), [ctr("app", RUN, spec_hash="old")], {},
                 {"stop": ["app-0"], "start": [("app", 1, False)]}, id="spec-changed"),
    pytest.param(pod(), sandbox(), [ctr("app", RUN), ctr("gone", RUN)], {},
                 {"stop": ["gone-0"], "remove": ["gone-0"]}, id="container-left-the-spec"),
    pytest.param(pod(), sandbox(),
                 [ctr("app", RUN, attempt=3), ctr("app", EXIT, attempt=2, code=1),
                  ctr("app", EXIT, attempt=1, code=1), ctr("app", EXIT, attempt=0, code=1)], {},
                 {"remove": ["app-1", "app-0"]}, id="old-attempts-removed"),
    pytest.param(pod(inits=("setup",)), None, [], {},
                 {"create_sandbox": True, "start": [("setup", 0, True)],
                  "waiting": [("app", "PodInitializing")]}, id="init-first"),
    pytest.param(pod(inits=("setup",)), sandbox(), [ctr("setup", RUN, init=True)], {},
                 {"waiting": [("app", "PodInitializing")]}, id="init-running"),
    pytest.param(pod(inits=("setup",)), sandbox(), [ctr("setup", EXIT, code=0, init=True)], {},
                 {"start": [("app", 0, False)]}, id="init-done-then-app"),
    pytest.param(pod(inits=("a", "b")), sandbox(), [ctr("a", EXIT, code=0, init=True)], {},
                 {"start": [("b", 0, True)], "waiting": [("app", "PodInitializing")]},
                 id="inits-in-order"),
    pytest.param(pod(inits=("setup",), policy="Never"), sandbox(),
                 [ctr("setup", EXIT, code=1, init=True)], {}, {"finished": True},
                 id="failed-init-fails-never-pod"),
    pytest.param(pod(inits=("setup",)), sandbox(), [ctr("setup", EXIT, code=1, init=True)], {},
                 {"start": [("setup", 1, True)], "waiting": [("app", "PodInitializing")]},
                 id="failed-init-restarts"),
]  # fmt: skip


@pytest.mark.parametrize(("the_pod", "the_sandbox", "containers", "backoff", "expected"), CASES)
def test_plan(
    the_pod: dict[str, Any],
    the_sandbox: SandboxInfo | None,
    containers: list[ContainerInfo],
    backoff: dict[str, datetime],
    expected: dict[str, Any],
) -> None:
    plan = compute(the_pod, the_sandbox, containers, now=NOW, backoff=backoff)
    assert summary(plan) == expected


@pytest.mark.parametrize("probe", ["liveness", "startup"])
def test_a_failed_liveness_or_startup_probe_restarts(probe: str) -> None:
    plan = compute(pod(), sandbox(), [ctr("app", RUN)], now=NOW, unhealthy={"app": probe})
    assert plan.stop == [Stop("app-0", "app", f"it failed its {probe} probe")]


def test_idle() -> None:
    assert compute(pod(), sandbox(), [ctr("app", RUN)], now=NOW).idle
    assert not compute(pod(), None, [], now=NOW).idle
