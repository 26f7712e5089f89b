"""Probers on the fake runtime, under the real relister: which address an httpGet or
tcpSocket probe dials. The probes themselves dial a real socket on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.runtime.fake import FakeRuntime
from agent.runtime.interface import SandboxInfo
from tests.agent.fake_api import Clock
from tests.agent.harness import IMAGE, eventually, make_agent, pod


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
