"""Probers on the fake runtime, under the real relister: which address an httpGet or
tcpSocket probe dials (the probes themselves dial a real socket on 127.0.0.1), exec
probes that time out, and startup probes that fail."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from agent.runtime.fake import FakeRuntime
from agent.runtime.interface import ContainerInfo, ExecResult, SandboxInfo
from tests.agent.fake_api import Clock
from tests.agent.harness import (
    IMAGE,
    NS,
    Agent,
    app_status,
    eventually,
    make_agent,
    pod,
    running,
)


class LateIpRuntime(FakeRuntime):
    """The fake runtime whose sandboxes have no IP until the test says so (a sandbox
    listed while its network was still being set up), then 127.0.0.1."""

    ip_known = False

    async def list_sandboxes(self) -> list[SandboxInfo]:
        ip = "127.0.0.1" if self.ip_known else None
        return [dataclasses.replace(s, ip=ip) for s in await super().list_sandboxes()]


@pytest.fixture
async def port() -> AsyncIterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections."""

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def test_a_prober_dials_the_pods_ip_once_it_is_known(tmp_path: Path, port: int) -> None:
    runtime = LateIpRuntime(images=[IMAGE])
    agent = make_agent(tmp_path, Clock(), runtime=runtime)  # relists only when asked to
    probes = agent.manager.probes
    probe = {"tcpSocket": {"port": port}, "periodSeconds": 0}
    agent.api.put(pod("web", {"name": "app", "image": IMAGE, "readinessProbe": probe}))
    task = asyncio.create_task(agent.manager.run())
    try:
        # The worker starts the container; its relist starts the prober, with no IP known.
        await eventually(lambda: probes.probers, what="the prober")
        [prober] = probes.probers.values()
        for _ in range(10):
            await asyncio.sleep(0)  # a few probes fail: no address to dial
        assert probes.readiness(prober.uid) == {"app": False}

        runtime.ip_known = True
        await agent.manager.relist()  # the same container: its prober carries on
        assert list(probes.probers.values()) == [prober]
        await eventually(
            lambda: probes.readiness(prober.uid) == {"app": True},
            what="the readiness probe to dial the pod's IP",
            timeout=2.0,
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await agent.manager.stop()


def messages(agent: Agent, reason: str) -> list[str]:
    return [e["message"] for e in agent.api.events("probed") if e["reason"] == reason]


def restarts(agent: Agent) -> int:
    return int(app_status(agent.api.get_pod(NS, "probed")).get("restartCount") or 0)


def hangs(info: ContainerInfo, command: Sequence[str]) -> ExecResult:
    raise TimeoutError  # what the runtime raises once timeoutSeconds has passed


async def test_an_exec_probe_that_times_out_fails_and_restarts_the_container(
    tmp_path: Path,
) -> None:
    runtime = FakeRuntime(images=[IMAGE])
    runtime.node.exec_handler = hangs  # a hung container: its exec never answers
    agent = make_agent(tmp_path, Clock(), runtime=runtime)
    probe = {"exec": {"command": ["check", "--now"]}, "periodSeconds": 0, "failureThreshold": 2}
    agent.api.put(pod("probed", {"name": "app", "image": IMAGE, "livenessProbe": probe}))
    async with running(agent):
        await eventually(lambda: restarts(agent) >= 1, what="the hung container's restart")
        unhealthy = messages(agent, "Unhealthy")
        assert unhealthy[0] == "Liveness probe failed: command 'check --now' timed out after 1s"
        assert any("failed its liveness probe" in m for m in messages(agent, "Killing"))


async def test_a_failed_startup_probe_is_reported_and_restarts_the_container(
    tmp_path: Path,
) -> None:
    runtime = FakeRuntime(images=[IMAGE])
    runtime.node.exec_handler = lambda info, command: ExecResult(1, b"", b"not started yet")
    agent = make_agent(tmp_path, Clock(), runtime=runtime)
    startup = {"exec": {"command": ["ready"]}, "periodSeconds": 0, "failureThreshold": 2}
    liveness = {"exec": {"command": ["alive"]}, "periodSeconds": 0}
    app = {"name": "app", "image": IMAGE, "startupProbe": startup, "livenessProbe": liveness}
    agent.api.put(pod("probed", app))
    async with running(agent):
        await eventually(lambda: restarts(agent) >= 1, what="the restart")
        unhealthy = messages(agent, "Unhealthy")
        assert unhealthy[0] == (
            "Startup probe failed: command ['ready'] exited with 1: not started yet"
        )
        assert not any(m.startswith("Liveness") for m in unhealthy)  # it never started
        killing = messages(agent, "Killing")
        assert any("failed its startup probe" in m for m in killing)
        assert not any("liveness" in m for m in killing)
