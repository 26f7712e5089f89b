"""The agent's own Podman service: started again when it dies, and the one a killed agent
left behind ended by the next. The "podman" here is a stand-in executable that serves the
socket it is given, as ``podman system service --time=0 unix://...`` does; the real
service's behaviour under the runtime is tested in runtime/test_podman.py."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.podman_service import PodmanService
from tests.agent.harness import eventually

STAND_IN = """\
import signal, socket, sys
assert sys.argv[1:4] == ["system", "service", "--time=0"], sys.argv
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[4].removeprefix("unix://"))
server.listen()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    server.accept()[0].close()
"""


@pytest.fixture
def podman(tmp_path: Path) -> str:
    script = tmp_path / "podman"
    script.write_text(f"#!{sys.executable}\n{STAND_IN}")
    script.chmod(0o755)
    return str(script)


@pytest.fixture
async def service(tmp_path: Path, podman: str) -> AsyncIterator[PodmanService]:
    data = tmp_path / "data"
    data.mkdir()
    made = PodmanService(data, podman=podman, restart_delay=0.01)
    try:
        yield made
    finally:
        await made.stop()


async def answers(service: PodmanService) -> bool:
    try:
        _, writer = await asyncio.open_unix_connection(str(service.socket))
    except OSError:
        return False
    writer.close()
    return True


async def test_a_service_that_dies_is_started_again(service: PodmanService) -> None:
    await service.start()
    first = service.process
    assert first is not None
    supervisor = asyncio.create_task(service.supervise())
    try:
        first.kill()  # OOM-killed, or killed by a person
        await first.wait()
        await eventually(
            lambda: service.process is not first and service.process is not None,
            what="a new service process",
        )
        second = service.process
        assert second is not None
        async with asyncio.timeout(5):
            while not await answers(service):
                await asyncio.sleep(0.01)  # polling the socket it is starting on
        assert second.returncode is None
        assert service.pidfile.read_text().strip() == str(second.pid)
    finally:
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor


async def test_the_service_a_killed_agent_left_is_ended_by_the_next(
    tmp_path: Path, podman: str, service: PodmanService
) -> None:
    await service.start()
    left = service.process
    assert left is not None
    # The agent was SIGKILLed: it never stopped its service. The next agent starts.
    successor = PodmanService(service.socket.parent, podman=podman)
    try:
        await successor.start()
        async with asyncio.timeout(5):
            await left.wait()  # ended by the successor, not left serving a lost socket
        assert successor.process is not None
        assert successor.process.returncode is None
        assert await answers(successor)
    finally:
        await successor.stop()
