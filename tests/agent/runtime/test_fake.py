"""The fake runtime's own knobs: a clock instead of time, programmed exits, logs, stats,
failures, and cheapness at hollow-node scale. (What it shares with Podman is in
test_contract.py.)"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from agent.runtime.fake import Behaviour, FakeNode, FakeRuntime
from agent.runtime.interface import (
    ContainerInfo,
    ContainerRuntimeError,
    ContainerSpec,
    ContainerState,
    ExecResult,
    ImagePullError,
    PullPolicy,
    RuntimeUnavailable,
    SandboxSpec,
    StartContainerError,
)

IMAGE = "registry.lab/app:1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeRuntime:
    return FakeRuntime(FakeNode(name="hollow-1"), clock=clock, images=[IMAGE])


def sandbox(n: int = 0) -> SandboxSpec:
    return SandboxSpec(pod_uid=f"uid-{n}", namespace="ns", name=f"pod-{n}", hostname=f"pod-{n}")


async def start(fake: FakeRuntime, name: str = "app", **fields: object) -> str:
    sandbox_id = await fake.create_sandbox(sandbox())
    container_id = await fake.create_container(
        sandbox_id,
        ContainerSpec(name=name, image=IMAGE, **fields),  # type: ignore[arg-type]
    )
    await fake.start_container(container_id)
    return container_id


async def info(fake: FakeRuntime, container_id: str) -> ContainerInfo:
    [found] = [c for c in await fake.list_containers() if c.id == container_id]
    return found


async def test_ids_and_ips_are_deterministic() -> None:
    async def ids(node: str) -> tuple[str, str, str | None]:
        rt = FakeRuntime(FakeNode(name=node), images=[IMAGE])
        sandbox_id = await rt.create_sandbox(sandbox())
        container_id = await rt.create_container(sandbox_id, ContainerSpec(name="a", image=IMAGE))
        [s] = await rt.list_sandboxes()
        return sandbox_id, container_id, s.ip

    assert await ids("n1") == await ids("n1")
    assert (await ids("n1"))[:2] != (await ids("n2"))[:2]
    sandbox_id, container_id, ip = await ids("n1")
    assert len(sandbox_id) == len(container_id) == 64
    assert ip == "10.88.0.3"


async def test_a_container_exits_when_the_clock_says_so(fake: FakeRuntime, clock: Clock) -> None:
    fake.node.behaviours["app"] = Behaviour(exit_code=2, runs_for=timedelta(seconds=30))
    container_id = await start(fake)
    clock.advance(29)
    assert (await info(fake, container_id)).state is ContainerState.RUNNING
    clock.advance(5)
    exited = await info(fake, container_id)
    assert (exited.state, exited.exit_code, exited.reason) == (ContainerState.EXITED, 2, "Error")
    assert exited.started_at == T0
    assert exited.finished_at == T0 + timedelta(seconds=30)


async def test_behaviour_by_image_and_the_exit_code_on_stop(fake: FakeRuntime) -> None:
    fake.node.behaviours[IMAGE] = Behaviour(stop_exit_code=137)
    container_id = await start(fake)
    await fake.stop_container(container_id, grace_seconds=30)
    stopped = await info(fake, container_id)
    assert (stopped.exit_code, stopped.reason) == (137, "Error")


async def test_a_programmed_start_failure(fake: FakeRuntime) -> None:
    fake.node.behaviours["app"] = Behaviour(start_error="permission denied")
    with pytest.raises(StartContainerError, match="permission denied"):
        await start(fake)


async def test_logs_with_since_timestamps_and_follow(fake: FakeRuntime, clock: Clock) -> None:
    fake.node.behaviours["app"] = Behaviour(logs=[b"boot"])
    container_id = await start(fake)
    clock.advance(10)
    fake.node.write_log(container_id, b"ten seconds later")

    async def read(**options: object) -> list[bytes]:
        return [line async for line in fake.container_logs(container_id, **options)]  # type: ignore[arg-type]

    assert await read() == [b"boot\n", b"ten seconds later\n"]
    assert await read(since=T0 + timedelta(seconds=5)) == [b"ten seconds later\n"]
    assert await read(timestamps=True, tail_lines=1) == [
        b"2026-01-01T00:00:10.000000000Z ten seconds later\n"
    ]

    got: list[bytes] = []

    async def follow() -> None:
        async for line in fake.container_logs(container_id, follow=True, tail_lines=0):
            got.append(line)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0)  # let the follower wait
    fake.node.write_log(container_id, b"live")
    await asyncio.sleep(0)
    assert got == [b"live\n"]
    await fake.stop_container(container_id, grace_seconds=1)
    async with asyncio.timeout(1):
        await task  # a stopped container ends the follow


async def test_images_pulls_and_missing_images(fake: FakeRuntime) -> None:
    fake.node.missing_images.add("registry.lab/gone:1")
    with pytest.raises(ImagePullError, match=re.escape("registry.lab/gone:1 from registry.lab")):
        await fake.ensure_image("registry.lab/gone:1", PullPolicy.ALWAYS)
    await fake.ensure_image("registry.lab/new:1", PullPolicy.IF_NOT_PRESENT)
    await fake.ensure_image("registry.lab/new:1", PullPolicy.IF_NOT_PRESENT)
    await fake.ensure_image(IMAGE, PullPolicy.ALWAYS)
    assert fake.node.pulls == ["registry.lab/new:1", IMAGE]
    assert await fake.list_images() == [IMAGE, "registry.lab/new:1"]


async def test_an_unavailable_node_fails_every_call(fake: FakeRuntime) -> None:
    fake.node.available = False
    with pytest.raises(RuntimeUnavailable):
        await fake.list_containers()
    with pytest.raises(RuntimeUnavailable):
        await fake.create_sandbox(sandbox())
    fake.node.available = True
    assert await fake.list_containers() == []


async def test_exec_handler_and_timeouts(fake: FakeRuntime) -> None:
    def handler(container: ContainerInfo, command: Sequence[str]) -> ExecResult:
        if command[0] == "slow":
            raise TimeoutError("slow did not finish")
        return ExecResult(0, f"{container.name}:{command[0]}".encode(), b"")

    fake.node.exec_handler = handler
    container_id = await start(fake)
    assert (await fake.exec_sync(container_id, ["probe"], limit_seconds=1)).stdout == b"app:probe"
    with pytest.raises(TimeoutError):
        await fake.exec_sync(container_id, ["slow"], limit_seconds=1)
    await fake.stop_container(container_id, grace_seconds=1)
    with pytest.raises(ContainerRuntimeError, match="running"):
        await fake.exec_sync(container_id, ["probe"], limit_seconds=1)


async def test_interactive_exec_records_resizes_and_its_exit_code(fake: FakeRuntime) -> None:
    fake.node.interactive_exit_code = 4
    container_id = await start(fake)
    session = await fake.exec_interactive(container_id, ["sh"], stdin=True, tty=True)
    await session.resize(80, 24)
    await session.write_stdin(b"ls\n")
    await session.close_stdin()
    assert [data async for _, data in session.output()] == [b"ls\n"]
    assert await session.wait() == 4
    assert session.sizes == [(80, 24)]
    quiet = await fake.exec_interactive(container_id, ["date"], stdin=False, tty=False)
    with pytest.raises(ContainerRuntimeError, match="without stdin"):
        await quiet.write_stdin(b"x")
    assert await quiet.wait() == 4


async def test_stats_follow_the_clock(fake: FakeRuntime, clock: Clock) -> None:
    fake.node.behaviours["app"] = Behaviour(cpu_nano_cores=250_000_000, memory_bytes=64 << 20)
    container_id = await start(fake)
    clock.advance(4)
    [stats] = await fake.container_stats()
    assert stats.id == container_id
    assert stats.cpu_usage_nano_cores == 250_000_000
    assert stats.cpu_usage_core_nano_seconds == 1_000_000_000
    assert (stats.memory_working_set_bytes, stats.timestamp) == (64 << 20, clock.now)


async def test_thousands_of_pods_are_cheap() -> None:
    fake = FakeRuntime(images=[IMAGE])
    fake.node.behaviours["sidecar"] = Behaviour(exit_code=0)
    started = time.perf_counter()
    for n in range(2000):
        sandbox_id = await fake.create_sandbox(sandbox(n))
        for name in ("app", "sidecar"):
            container_id = await fake.create_container(
                sandbox_id, ContainerSpec(name=name, image=IMAGE)
            )
            await fake.start_container(container_id)
    containers = await fake.list_containers()
    sandboxes = await fake.list_sandboxes()
    elapsed = time.perf_counter() - started
    assert len(sandboxes) == 2000
    assert sum(c.state is ContainerState.RUNNING for c in containers) == 2000
    assert sum(c.state is ContainerState.EXITED for c in containers) == 2000
    assert elapsed < 10, f"2000 pods took {elapsed:.1f}s"


def test_the_fake_does_not_load_podman_py() -> None:
    """Hollow nodes by the thousand must not pay for podman-py and requests."""
    code = (
        "import sys, agent.runtime.fake; print('podman' in sys.modules, 'requests' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
