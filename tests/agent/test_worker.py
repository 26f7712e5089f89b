"""Pod workers on the fake runtime, against an in-memory API: back-off, image pulls, config
errors, deletion, and pods that fail without holding up others.

Most tests call ``PodWorker.sync`` themselves, as the worker's own wake-ups would, with an
injected clock: a back-off of five minutes takes no time. The relister under them is the
real one (``PodManager.relist``). The last test runs the whole ``PodManager`` (informer,
workers as tasks) against the same fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.runtime.fake import Behaviour, FakeRuntime
from agent.runtime.interface import PullPolicy, SandboxError, SandboxSpec
from agent.worker import PODS, PodWorker
from tests.agent.fake_api import Clock
from tests.agent.harness import (
    IMAGE,
    NS,
    Agent,
    WallClock,
    app_status,
    config_map,
    eventually,
    make_agent,
    phase,
    pod,
    recording,
    running,
    state,
)


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    made = make_agent(tmp_path, Clock())
    sender = asyncio.create_task(made.ctx.recorder.run())
    try:
        yield made
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


async def until_restarted(agent: Agent, worker: PodWorker, *, limit: int = 400) -> int:
    """Sync once a second (of the injected clock) until the app container is restarted;
    the seconds waited. Meanwhile it must say CrashLoopBackOff."""
    assert worker.pod is not None
    before = app_status(agent.api.get_pod(NS, worker.pod["metadata"]["name"]))["restartCount"]
    for waited in range(limit):
        status = await agent.sync(worker)
        if status["restartCount"] > before:
            return waited
        assert state(status) == "CrashLoopBackOff", status
        agent.clock.advance(1)
    raise AssertionError(f"not restarted within {limit}s")


# --- back-off -------------------------------------------------------------------------------


async def test_crash_loop_back_off_doubles_from_ten_seconds_to_five_minutes(agent: Agent) -> None:
    agent.runtime.node.behaviours["app"] = Behaviour(exit_code=1)  # dies at once
    agent.api.put(pod("crashy"))
    worker = agent.worker("crashy")
    assert state(await agent.sync(worker)) == "terminated"  # attempt 0 ran and died

    waits = [await until_restarted(agent, worker) for _ in range(8)]

    # As the kubelet: the first crash restarts at once, then 10 s doubling up to 300 s.
    assert waits == [0, 10, 20, 40, 80, 160, 300, 300]
    status = app_status(agent.api.get_pod(NS, "crashy"))
    assert status["restartCount"] == 8
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert agent.api.counts("crashy")["Started"] == 9


async def test_a_container_that_ran_ten_minutes_starts_its_back_off_afresh(agent: Agent) -> None:
    agent.runtime.node.behaviours["app"] = Behaviour(exit_code=1)
    agent.api.put(pod("crashy"))
    worker = agent.worker("crashy")
    await agent.sync(worker)
    assert [await until_restarted(agent, worker) for _ in range(3)] == [0, 10, 20]

    # The next attempt runs for 700 s (over the 600 s reset), then dies again.
    agent.runtime.node.behaviours["app"] = Behaviour(exit_code=1, runs_for=timedelta(seconds=700))
    assert await until_restarted(agent, worker) == 40
    agent.clock.advance(700)
    assert await until_restarted(agent, worker) == 0  # its back-off ran out long ago
    agent.runtime.node.behaviours["app"] = Behaviour(exit_code=1)
    assert await until_restarted(agent, worker) == 10  # not 160: afresh


async def test_a_crash_loop_back_off_is_announced_once_per_back_off(agent: Agent) -> None:
    agent.runtime.node.behaviours["app"] = Behaviour(exit_code=1)
    agent.api.put(pod("crashy"))
    worker = agent.worker("crashy")
    await agent.sync(worker)
    # Synced every second through the 10 s and the 20 s back-offs (and the first, immediate
    # restart, which is no back-off at all).
    assert [await until_restarted(agent, worker) for _ in range(3)] == [0, 10, 20]

    [event] = [e for e in agent.api.events("crashy") if e["reason"] == "BackOff"]
    assert event["type"] == "Warning"
    assert event["message"] == (
        f"Back-off restarting failed container app in pod crashy_default({worker.uid})"
    )
    assert event["involvedObject"]["fieldPath"] == "spec.containers{app}"
    assert event["count"] == 2  # one per back-off period, not one per sync


# --- images -------------------------------------------------------------------------------


# (seconds later, the registry has the image, the container's state)
PULL_STEPS = [
    (0, False, "ErrImagePull"),
    (5, False, "ImagePullBackOff"),  # waiting out 10 s
    (5, False, "ErrImagePull"),  # pulled again, failed again: now 20 s
    (10, False, "ImagePullBackOff"),
    (9, True, "ImagePullBackOff"),  # the image exists now, the back-off still holds
    (1, True, "running"),
]


async def test_a_failed_pull_backs_off_then_succeeds(agent: Agent) -> None:
    image = "registry.example/missing:1"
    agent.runtime.node.missing_images.add(image)
    agent.api.put(pod("puller", {"name": "app", "image": image}))
    worker = agent.worker("puller")
    seen = []
    for later, available, _ in PULL_STEPS:
        agent.clock.advance(later)
        if available:
            agent.runtime.node.missing_images.discard(image)
        status = await agent.sync(worker)
        seen.append((later, available, state(status)))
    assert seen == PULL_STEPS
    assert agent.runtime.node.pulls == [image]
    assert agent.api.counts("puller")["Pulling"] == 3
    failed = [e["message"] for e in agent.api.events("puller") if e["reason"] == "Failed"]
    assert image in failed[0]


@pytest.mark.parametrize(
    ("policy", "present", "events", "pulled"),
    [
        ("IfNotPresent", True, ["Pulled"], 'Container image "{}" already present on machine'),
        ("Never", True, ["Pulled"], 'Container image "{}" already present on machine'),
        ("IfNotPresent", False, ["Pulling", "Pulled"], 'Successfully pulled image "{}" in '),
        # Always pulls even an image the node holds (a moving tag), and says so
        ("Always", True, ["Pulling", "Pulled"], 'Successfully pulled image "{}" in '),
    ],
)
async def test_pull_events_are_the_kubelets(
    agent: Agent, policy: str, present: bool, events: list[str], pulled: str
) -> None:
    image = "registry.example/app:1"
    if present:
        await agent.runtime.ensure_image(image, PullPolicy.IF_NOT_PRESENT)
    agent.api.put(pod("app", {"name": "app", "image": image, "imagePullPolicy": policy}))
    status = await agent.sync(agent.worker("app"))
    assert state(status) == "running"
    recorded = [e for e in agent.api.events("app") if e["reason"] in ("Pulling", "Pulled")]
    assert [e["reason"] for e in recorded] == events
    assert recorded[-1]["message"].startswith(pulled.format(image))
    assert agent.runtime.node.pulls.count(image) == (1 if present else 0) + len(events) - 1


async def test_image_pull_back_off_says_why(agent: Agent) -> None:
    agent.runtime.node.missing_images.add("registry.example/missing:1")
    agent.api.put(pod("puller", {"name": "app", "image": "registry.example/missing:1"}))
    worker = agent.worker("puller")
    first = (await agent.sync(worker))["state"]["waiting"]
    agent.clock.advance(1)
    then = (await agent.sync(worker))["state"]["waiting"]
    assert "registry.example/missing:1" in first["message"]
    assert then == {
        "reason": "ImagePullBackOff",
        "message": 'Back-off pulling image "registry.example/missing:1"',
    }


async def test_an_image_pull_back_off_is_announced_once_per_back_off(agent: Agent) -> None:
    image = "registry.example/missing:1"
    agent.runtime.node.missing_images.add(image)
    agent.api.put(pod("puller", {"name": "app", "image": image}))
    worker = agent.worker("puller")
    for _ in range(9):  # the first pull fails, then nine syncs within its 10 s back-off
        await agent.sync(worker)
        agent.clock.advance(1)

    [event] = [e for e in agent.api.events("puller") if e["reason"] == "BackOff"]
    assert (event["type"], event["message"]) == ("Normal", f'Back-off pulling image "{image}"')
    assert event["count"] == 1
    agent.clock.advance(1)
    await agent.sync(worker)  # pulled again, failed again: a 20 s back-off begins
    agent.clock.advance(1)
    await agent.sync(worker)
    assert agent.api.counts("puller")["BackOff"] == 2


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "why"),
    [
        pytest.param(None, 'configmap "cfg" not found', id="no-configmap"),
        pytest.param({"other": "x"}, "couldn't find key greeting in Configmap default/cfg",
                     id="no-key"),
    ],
)  # fmt: skip
async def test_a_missing_config_map_key_waits_then_recovers(
    agent: Agent, data: dict[str, str] | None, why: str
) -> None:
    if data is not None:
        agent.api.put(config_map("cfg", data))
    env = [{"name": "GREETING",
            "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}}]  # fmt: skip
    agent.api.put(pod("configured", {"name": "app", "image": IMAGE, "env": env}))
    worker = agent.worker("configured")

    status = await agent.sync(worker)
    assert status["state"]["waiting"] == {"reason": "CreateContainerConfigError", "message": why}
    assert not agent.runtime.node.containers  # nothing was created

    agent.api.put(config_map("cfg", {"greeting": "hello"}))
    agent.clock.advance(9)
    assert state(await agent.sync(worker)) == "CreateContainerConfigError"  # backing off
    agent.clock.advance(1)
    assert state(await agent.sync(worker)) == "running"
    [container] = agent.runtime.node.containers.values()
    assert container.spec.env["GREETING"] == "hello"


async def test_the_pods_ip_is_in_its_environment_at_the_first_start(agent: Agent) -> None:
    env = [{"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    agent.api.put(pod("addressed", {"name": "app", "image": IMAGE, "env": env}))
    worker = agent.worker("addressed")
    assert state(await agent.sync(worker)) == "running"

    [container] = agent.runtime.node.containers.values()
    [sandbox] = agent.runtime.node.sandboxes.values()
    assert sandbox.ip
    assert container.spec.env["MY_IP"] == sandbox.ip
    written = agent.api.get_pod(NS, "addressed")
    assert written is not None
    assert written["status"]["podIP"] == sandbox.ip


# --- sandboxes and volumes that could not be made -------------------------------------------


class FlakyRuntime(FakeRuntime):
    """No sandbox can be made while ``down`` (Podman restarting, a hostPort taken)."""

    down = True
    attempts = 0

    async def create_sandbox(self, spec: SandboxSpec) -> str:
        self.attempts += 1
        if self.down:
            raise SandboxError(f"creating the sandbox of pod {spec.namespace}/{spec.name}: "
                               "Podman is restarting")  # fmt: skip
        return await super().create_sandbox(spec)


# (seconds later, the runtime is up, sandbox attempts so far, the container's state)
SANDBOX_STEPS = [
    (0, False, 1, "CreatePodSandboxError"),
    (9, False, 1, "CreatePodSandboxError"),  # backing off: 10 s
    (1, False, 2, "CreatePodSandboxError"),  # tried again, failed again: now 20 s
    (10, True, 2, "CreatePodSandboxError"),  # the runtime is back, the back-off still holds
    (10, True, 3, "running"),
]


async def test_a_failed_sandbox_is_retried_after_a_back_off(tmp_path: Path) -> None:
    clock = Clock()
    runtime = FlakyRuntime(clock=clock, images=[IMAGE])
    agent = make_agent(tmp_path, clock, runtime=runtime)
    agent.api.put(pod("early"))
    worker = agent.worker("early")
    seen = []
    async with recording(agent):
        for later, up, _, _ in SANDBOX_STEPS:
            clock.advance(later)
            runtime.down = not up
            status = await agent.sync(worker)
            seen.append((later, up, runtime.attempts, state(status)))
    assert seen == SANDBOX_STEPS
    assert agent.api.counts("early")["FailedCreatePodSandBox"] == 2


async def test_a_pod_made_while_the_runtime_was_down_starts_once_it_is_back(
    tmp_path: Path,
) -> None:
    """Nothing but the worker's own back-off timer wakes it: the relister sees no change
    (there is no sandbox) and the resync tick is an hour away."""
    runtime = FlakyRuntime(images=[IMAGE])
    agent = make_agent(tmp_path, WallClock(), runtime=runtime)
    agent.ctx.backoff_initial, agent.ctx.backoff_max = 0.02, 0.1
    agent.api.put(pod("early"))
    async with running(agent):
        await eventually(lambda: runtime.attempts >= 2, what="a second sandbox attempt")
        assert state(app_status(agent.api.get_pod(NS, "early"))) == "CreatePodSandboxError"
        runtime.down = False
        await eventually(lambda: phase(agent, "early") == "Running", what="the pod to run")


async def test_a_config_map_volume_created_later_is_mounted(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, WallClock())
    agent.ctx.backoff_initial, agent.ctx.backoff_max = 0.02, 0.1
    app = {"name": "app", "image": IMAGE, "volumeMounts": [{"name": "cfg", "mountPath": "/c"}]}
    agent.api.put(pod("mounted", app, volumes=[{"name": "cfg", "configMap": {"name": "later"}}]))
    async with running(agent):
        await eventually(
            lambda: (
                state(app_status(agent.api.get_pod(NS, "mounted"))) == "CreateContainerConfigError"
            ),
            what="the missing ConfigMap to show",
        )
        assert "FailedMount" in agent.api.counts("mounted")
        agent.api.put(config_map("later", {"greeting": "hello"}))
        await eventually(lambda: phase(agent, "mounted") == "Running", what="the pod to run")
    [container] = agent.runtime.node.containers.values()
    [mount] = container.spec.mounts
    assert (Path(mount.host_path) / "greeting").read_text() == "hello"


# --- deletion -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grace", "deletes"),
    [
        pytest.param(30, [30, 0], id="graceful-then-confirmed-with-grace-0"),
        pytest.param(0, [0], id="force-deleted-cleaned-up-without-a-call"),
    ],
)
async def test_deletion_stops_removes_and_confirms(
    agent: Agent, grace: int, deletes: list[int]
) -> None:
    volumes = [{"name": "scratch", "emptyDir": {}}]
    app = {"name": "app", "image": IMAGE, "volumeMounts": [{"name": "scratch", "mountPath": "/s"}]}
    agent.api.put(pod("doomed", app, volumes=volumes, terminationGracePeriodSeconds=30))
    worker = agent.worker("doomed")
    assert state(await agent.sync(worker)) == "running"
    assert (agent.volumes / worker.uid).is_dir()

    await agent.api.delete(PODS, NS, "doomed", grace_period=grace)
    await agent.sync(worker)

    assert worker.done
    assert agent.api.deletes(NS, "doomed") == deletes
    assert agent.api.get_pod(NS, "doomed") is None
    assert not agent.runtime.node.sandboxes
    assert not agent.runtime.node.containers
    assert not (agent.volumes / worker.uid).exists()
    if grace:
        assert "Killing" in agent.api.counts("doomed")


class StubbornRuntime(FakeRuntime):
    """Containers that ignore SIGTERM: a stop lasts the whole grace period (then SIGKILL).
    Except that stops of ``together`` containers at once all end as soon as the last of
    them began: parallel stops take no time, serial ones a grace period each."""

    def __init__(self, *, together: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.together = together
        self.in_flight = self.most_in_flight = 0
        self._all_began = asyncio.Event()

    async def stop_container(self, container_id: str, *, grace_seconds: int) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.in_flight == self.together:
            self._all_began.set()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_seconds):  # ignoring SIGTERM
                    await self._all_began.wait()
            await super().stop_container(container_id, grace_seconds=0)
        finally:
            self.in_flight -= 1


async def test_a_pods_containers_are_stopped_in_parallel(tmp_path: Path) -> None:
    names = ["a", "b", "c"]
    runtime = StubbornRuntime(together=len(names), images=[IMAGE])
    agent = make_agent(tmp_path, Clock(), runtime=runtime)
    grace = 1
    agent.api.put(pod("stubborn", *({"name": n, "image": IMAGE} for n in names),
                      terminationGracePeriodSeconds=grace))  # fmt: skip
    worker = agent.worker("stubborn")
    await agent.sync(worker)
    assert len(runtime.node.containers) == len(names)

    await agent.api.delete(PODS, NS, "stubborn")
    began = time.monotonic()
    async with recording(agent):
        await agent.sync(worker)
    took = time.monotonic() - began

    assert runtime.most_in_flight == len(names)
    assert took < grace  # one grace period at most, never one per container
    assert worker.done
    assert agent.api.counts("stubborn")["Killing"] == len(names)


# --- isolation ------------------------------------------------------------------------------


async def test_one_failing_pod_never_blocks_another(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, Clock())
    agent.ctx.fetch_timeout = 3600  # the stuck pod stays stuck for the whole test
    api = agent.api
    api.put(config_map("slow", {"k": "v"}))
    api.hang.add(("configmaps", NS, "slow"))
    env = [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "slow", "key": "k"}}}]
    api.put(pod("stuck", {"name": "app", "image": IMAGE, "env": env}))  # the API never answers
    api.put(pod("broken"))
    api.fail[("pods", NS, "broken")] = RuntimeError("its status writes blow up")
    agent.runtime.node.missing_images.add("registry.example/missing:1")
    api.put(pod("unpullable", {"name": "app", "image": "registry.example/missing:1"}))
    agent.runtime.node.failing_commands.add("/no/such/binary")
    api.put(pod("uncommanded", {"name": "app", "image": IMAGE, "command": ["/no/such/binary"]}))

    running = asyncio.create_task(agent.manager.run())
    try:
        api.put(pod("fine"))  # the last to come, through the watch
        await eventually(lambda: phase(agent, "fine") == "Running", what="the good pod to run")
        await eventually(lambda: phase(agent, "unpullable") == "Pending", what="a pull error")
        await eventually(lambda: phase(agent, "uncommanded") is not None, what="a start error")
        assert phase(agent, "stuck") is None  # still waiting for its ConfigMap
        assert phase(agent, "broken") is None  # every write failed
        stuck = api.get_pod(NS, "stuck")
        assert stuck is not None
        assert not agent.manager.workers[stuck["metadata"]["uid"]].done
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await agent.manager.stop()


# --- status ---------------------------------------------------------------------------------


def status_writes(agent: Agent, name: str) -> int:
    return sum(1 for c in agent.api.calls if (c.verb, c.plural, c.name) == ("patch", "pods", name))


async def test_status_overwritten_by_someone_else_is_written_again(agent: Agent) -> None:
    """The node lifecycle controller marks the pods of an unreachable node not ready; when
    the node is back its agent must put its own view back, even though that view did not
    change since its last write (the kubelet's status manager compares with the API)."""
    agent.api.put(pod("steady"))
    worker = agent.worker("steady")
    assert state(await agent.sync(worker)) == "running"
    writes = status_writes(agent, "steady")
    # A sync with nothing new writes nothing.
    await agent.sync(worker)
    assert status_writes(agent, "steady") == writes

    current = agent.api.get_pod(NS, "steady")
    assert current is not None
    conditions = [
        {**c, "status": "False", "reason": "NodeUnreachable"} if c["type"] == "Ready" else c
        for c in current["status"]["conditions"]
    ]
    await agent.api.patch(PODS, NS, "steady", {"status": {"conditions": conditions}})

    await agent.sync(worker)
    assert status_writes(agent, "steady") == writes + 2  # theirs, then ours
    after = agent.api.get_pod(NS, "steady")
    assert after is not None
    ready = next(c for c in after["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
