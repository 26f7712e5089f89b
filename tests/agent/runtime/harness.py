"""One way to drive either runtime in the contract tests.

A harness turns a scenario ("a container that exits with 3", "one that logs these
lines") into a ContainerSpec: a busybox command for Podman, a ``Behaviour`` knob plus an
inert spec for the fake. ``eventually`` polls with a deadline (Podman's state changes
asynchronously; the fake's at once).
"""

from __future__ import annotations

import asyncio
import secrets
import shlex
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from agent.runtime.fake import Behaviour, FakeRuntime
from agent.runtime.interface import (
    ContainerInfo,
    ContainerSpec,
    ExecResult,
    Runtime,
    SandboxSpec,
)
from tests.support.podman import BUSYBOX

T = TypeVar("T")

# Runs until SIGTERM, then exits 0 (busybox sh as PID 1 ignores SIGTERM unless trapped).
FOREVER = "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"
EXEC_COMMAND = ("sh", "-c", "echo out; echo err >&2; exit 3")
MISSING_COMMAND = "no-such-command"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


class Harness:
    kind = ""

    def __init__(self, runtime: Runtime, labels: Mapping[str, str]) -> None:
        self.runtime = runtime
        self.labels = dict(labels)
        self.image = BUSYBOX

    def sandbox(self, name: str = "pod", **fields: object) -> SandboxSpec:
        name = unique(name)
        return SandboxSpec(
            pod_uid=str(uuid.uuid4()),
            namespace="bramble-test",
            name=name,
            hostname=name,
            labels=self.labels,
            **fields,  # type: ignore[arg-type]
        )

    def running(self, name: str, **fields: object) -> ContainerSpec:
        return self._spec(name, ["sh", "-c", FOREVER], **fields)

    def exiting(self, name: str, code: int) -> ContainerSpec:
        raise NotImplementedError

    def logging(self, name: str, lines: Sequence[str]) -> ContainerSpec:
        raise NotImplementedError

    def missing_command(self, name: str) -> ContainerSpec:
        return self._spec(name, [MISSING_COMMAND])

    def _spec(self, name: str, command: Sequence[str], **fields: object) -> ContainerSpec:
        return ContainerSpec(name=name, image=self.image, command=command, **fields)  # type: ignore[arg-type]

    async def eventually(
        self,
        fetch: Callable[[], Awaitable[T]],
        predicate: Callable[[T], bool],
        *,
        what: str,
        timeout: float = 15.0,
    ) -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = await fetch()
            if predicate(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}: {value}")
            await asyncio.sleep(0.05)  # polling a condition with a deadline

    async def container(self, container_id: str) -> ContainerInfo | None:
        return next((c for c in await self.runtime.list_containers() if c.id == container_id), None)

    async def started(self, sandbox: SandboxSpec, spec: ContainerSpec) -> tuple[str, str]:
        """A sandbox with one started container: (sandbox id, container id)."""
        sandbox_id = await self.runtime.create_sandbox(sandbox)
        container_id = await self.runtime.create_container(sandbox_id, spec)
        await self.runtime.start_container(container_id)
        return sandbox_id, container_id


class PodmanHarness(Harness):
    kind = "podman"

    def exiting(self, name: str, code: int) -> ContainerSpec:
        return self._spec(name, ["sh", "-c", f"exit {code}"])

    def logging(self, name: str, lines: Sequence[str]) -> ContainerSpec:
        echo = "; ".join(f"echo {shlex.quote(line)}" for line in lines)
        return self._spec(name, ["sh", "-c", f"{echo}; {FOREVER}"])


class FakeHarness(Harness):
    kind = "fake"

    def __init__(self, runtime: FakeRuntime, labels: Mapping[str, str]) -> None:
        super().__init__(runtime, labels)
        self.fake = runtime
        runtime.node.add_image(BUSYBOX)
        runtime.node.failing_commands.add(MISSING_COMMAND)
        runtime.node.exec_handler = self._exec

    @staticmethod
    def _exec(info: ContainerInfo, command: Sequence[str]) -> ExecResult:
        if tuple(command) == EXEC_COMMAND:
            return ExecResult(exit_code=3, stdout=b"out\n", stderr=b"err\n")
        return ExecResult(exit_code=127, stdout=b"", stderr=b"unknown command\n")

    def exiting(self, name: str, code: int) -> ContainerSpec:
        self.fake.node.behaviours[name] = Behaviour(exit_code=code)
        return self._spec(name, ["sh", "-c", f"exit {code}"])

    def logging(self, name: str, lines: Sequence[str]) -> ContainerSpec:
        self.fake.node.behaviours[name] = Behaviour(logs=[line.encode() for line in lines])
        return self._spec(name, ["sh", "-c", "..."])
