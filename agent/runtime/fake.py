"""An in-memory Runtime with Podman's semantics, for hollow nodes and agent tests.

A ``FakeNode`` is the machine: its images, sandboxes and containers, plus the knobs tests
turn. A ``FakeRuntime`` is the agent's view of one node; a second ``FakeRuntime`` on the
same node is an agent that restarted and finds everything by its labels again.

Cheap enough for thousands of pods in one process: no threads, no sleeps, no timers.
Time comes from an injected clock; a container told to exit after a while
(``Behaviour.runs_for``) is seen exited by the first call made after that time. Ids are
deterministic (hashes of the node's name and a counter), as are sandbox IPs.

Knobs (``FakeNode`` attributes):

* ``clock``: the node's time (``FakeRuntime(clock=...)`` sets it), for every timestamp.
* ``images``: present images; ``missing_images``: images no registry has (a pull fails).
* ``failing_commands``: executables that "do not exist": starting a container whose
  command (or args, without a command) starts with one fails as Podman's does.
* ``behaviours``: a ``Behaviour`` by container name or by image (the name wins): exit
  with a code at start or after a while, the exit code when stopped, log lines written
  at start, CPU and memory for stats, a start failure.
* ``exec_handler``: answers ``exec_sync`` (default: exit 0, no output); it may raise
  ``TimeoutError``. Interactive exec echoes stdin back (``cat``), then exits with
  ``interactive_exit_code``.
* ``write_log(container_id, line)`` appends a line and wakes followers.
* ``available = False``: every call raises ``RuntimeUnavailable``.
* ``pulls``: every image pulled, in order (what a test asserts on).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from agent.runtime.interface import (
    LABEL_POD_UID,
    ContainerInfo,
    ContainerRuntimeError,
    ContainerSpec,
    ContainerState,
    ContainerStats,
    CreateContainerError,
    ExecResult,
    ImageInfo,
    ImageNeverPullError,
    ImagePullError,
    NotFoundError,
    PullPolicy,
    RuntimeUnavailable,
    RuntimeVersion,
    SandboxInfo,
    SandboxSpec,
    StartContainerError,
)
from agent.runtime.podman_specs import (
    START_ERROR_EXIT_CODE,
    START_ERROR_REASON,
    container_labels,
    exit_reason,
    sandbox_labels,
)

Clock = Callable[[], datetime]
ExecHandler = Callable[[ContainerInfo, Sequence[str]], ExecResult]

FAKE_VERSION = "1.0.0"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How a fake container behaves once started."""

    exit_code: int | None = None  # exits with this code after ``runs_for`` (None: runs on)
    runs_for: timedelta = timedelta(0)
    stop_exit_code: int = 0  # its exit code when stopped (137: "ignored SIGTERM")
    logs: Sequence[bytes] = ()  # lines it writes at start
    cpu_nano_cores: int = 0
    memory_bytes: int = 0
    start_error: str | None = None  # starting it fails with this message


@dataclass(eq=False, slots=True)
class _Sandbox:
    id: str
    spec: SandboxSpec
    labels: dict[str, str]
    ip: str | None
    created_at: datetime
    ready: bool = True
    container_ids: list[str] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Container:
    id: str
    sandbox_id: str
    spec: ContainerSpec
    labels: dict[str, str]
    image_id: str
    created_at: datetime
    state: ContainerState = ContainerState.CREATED
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    logs: list[tuple[datetime, bytes]] = field(default_factory=list)
    changed: asyncio.Event | None = None  # created when someone follows the logs


@dataclass(eq=False)
class FakeNode:
    """One fake machine: what it holds, and the knobs (see the module docstring)."""

    name: str = "fake"
    clock: Clock = utc_now
    images: dict[str, ImageInfo] = field(default_factory=dict)
    missing_images: set[str] = field(default_factory=set)
    failing_commands: set[str] = field(default_factory=set)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    exec_handler: ExecHandler | None = None
    interactive_exit_code: int = 0
    available: bool = True
    pulls: list[str] = field(default_factory=list)
    sandboxes: dict[str, _Sandbox] = field(default_factory=dict)
    containers: dict[str, _Container] = field(default_factory=dict)
    _counter: int = 0
    _ips: int = 0

    def add_image(self, image: str) -> ImageInfo:
        digest = hashlib.sha256(image.encode()).hexdigest()
        info = ImageInfo(id=digest, digest=f"{image.split(':')[0]}@sha256:{digest}")
        self.images[image] = info
        return info

    def new_id(self, kind: str) -> str:
        self._counter += 1
        return hashlib.sha256(f"{self.name}/{kind}/{self._counter}".encode()).hexdigest()

    def sandbox_ip(self) -> str:
        self._ips += 1
        return f"10.88.{(self._ips // 250) % 256}.{self._ips % 250 + 2}"

    def behaviour(self, spec: ContainerSpec) -> Behaviour:
        return self.behaviours.get(spec.name) or self.behaviours.get(spec.image) or Behaviour()

    def write_log(self, container_id: str, line: bytes, *, at: datetime | None = None) -> None:
        """Append one line to a container's log (a newline is added when missing)."""
        c = self.containers[container_id]
        c.logs.append((at or self.clock(), _line(line)))
        _wake(c)


def _wake(c: _Container) -> None:
    if c.changed is not None:
        c.changed.set()
        c.changed = None


def _line(line: bytes) -> bytes:
    return line if line.endswith(b"\n") else line + b"\n"


def _timestamp(at: datetime) -> bytes:
    at = at.astimezone(UTC)
    return f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond:06d}000Z".encode()


class FakeRuntime:
    """The Runtime protocol on a FakeNode."""

    def __init__(
        self,
        node: FakeNode | None = None,
        *,
        clock: Clock | None = None,
        images: Iterable[str] = (),
    ) -> None:
        """``node``: the machine (a new one by default; pass another runtime's node to
        play an agent restart). ``clock``: the node's clock. ``images``: present."""
        self.node = node if node is not None else FakeNode()
        if clock is not None:
            self.node.clock = clock
        for image in images:
            self.node.add_image(image)

    def _clock(self) -> datetime:
        return self.node.clock()

    def _check(self) -> None:
        if not self.node.available:
            raise RuntimeUnavailable(f"fake node {self.node.name} is unavailable")

    async def version(self) -> RuntimeVersion:
        self._check()
        return RuntimeVersion(name="fake", version=FAKE_VERSION)

    async def close(self) -> None:
        pass

    # --- images ---------------------------------------------------------------------------

    async def ensure_image(self, image: str, policy: PullPolicy) -> ImageInfo:
        self._check()
        present = self.node.images.get(image)
        if present is not None and policy is not PullPolicy.ALWAYS:
            return present
        if policy is PullPolicy.NEVER:
            raise ImageNeverPullError(
                f"image {image} is not present on this node and its imagePullPolicy is "
                "Never; pull it on the node or change the policy"
            )
        if image in self.node.missing_images:
            registry = image.split("/")[0] if "/" in image else "the search registries"
            raise ImagePullError(
                f"failed to pull image {image} from {registry}: manifest unknown (fake)"
            )
        self.node.pulls.append(image)
        return self.node.add_image(image)

    async def image_present(self, image: str) -> ImageInfo | None:
        self._check()
        return self.node.images.get(image)

    async def list_images(self) -> list[str]:
        self._check()
        return sorted(self.node.images)

    # --- sandboxes ------------------------------------------------------------------------

    async def create_sandbox(self, spec: SandboxSpec) -> str:
        self._check()
        sandbox_id = self.node.new_id("sandbox")
        self.node.sandboxes[sandbox_id] = _Sandbox(
            id=sandbox_id,
            spec=spec,
            labels=sandbox_labels(spec),
            ip=None if spec.host_network else self.node.sandbox_ip(),
            created_at=self._clock(),
        )
        return sandbox_id

    async def stop_sandbox(self, sandbox_id: str, *, grace_seconds: int) -> None:
        self._check()
        sandbox = self.node.sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        for c in self._containers_in(sandbox_id):
            self._stop(c)
        sandbox.ready = False

    async def remove_sandbox(self, sandbox_id: str) -> None:
        self._check()
        for c in self._containers_in(sandbox_id):
            self._remove(c)
        self.node.sandboxes.pop(sandbox_id, None)

    async def list_sandboxes(self) -> list[SandboxInfo]:
        self._check()
        return [
            SandboxInfo(
                id=s.id,
                pod_uid=s.spec.pod_uid,
                namespace=s.spec.namespace,
                name=s.spec.name,
                ready=s.ready,
                ip=s.ip if s.ready else None,
                created_at=s.created_at,
                labels=dict(s.labels),
            )
            for s in self.node.sandboxes.values()
        ]

    def _containers_in(self, sandbox_id: str) -> list[_Container]:
        sandbox = self.node.sandboxes.get(sandbox_id)
        if sandbox is None:
            return []
        return [self.node.containers[i] for i in sandbox.container_ids if i in self.node.containers]

    # --- containers -----------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, spec: ContainerSpec) -> str:
        self._check()
        sandbox = self.node.sandboxes.get(sandbox_id)
        if sandbox is None:
            raise CreateContainerError(
                f"creating container {spec.name} from image {spec.image}: "
                f"sandbox {sandbox_id} does not exist"
            )
        image = self.node.images.get(spec.image)
        if image is None:
            raise CreateContainerError(
                f"creating container {spec.name} from image {spec.image}: "
                f"{spec.image}: image not known"
            )
        for other in self._containers_in(sandbox_id):
            if (other.spec.name, other.spec.attempt) == (spec.name, spec.attempt):
                raise CreateContainerError(
                    f"creating container {spec.name} from image {spec.image}: attempt "
                    f"{spec.attempt} already exists in sandbox {sandbox_id}"
                )
        container_id = self.node.new_id("container")
        sandbox.container_ids.append(container_id)
        self.node.containers[container_id] = _Container(
            id=container_id,
            sandbox_id=sandbox_id,
            spec=spec,
            labels=container_labels(sandbox.labels, spec),
            image_id=image.id,
            created_at=self._clock(),
        )
        return container_id

    def _get(self, container_id: str) -> _Container:
        c = self.node.containers.get(container_id)
        if c is None:
            raise NotFoundError(f"container {container_id} not found")
        self._settle(c)
        return c

    async def start_container(self, container_id: str) -> None:
        self._check()
        c = self._get(container_id)
        if c.state is ContainerState.RUNNING:
            return
        behaviour = self.node.behaviour(c.spec)
        now = self._clock()
        argv = list(c.spec.command or ()) + list(c.spec.args or ())
        message = behaviour.start_error
        if message is None and argv and argv[0] in self.node.failing_commands:
            message = f'exec: "{argv[0]}": executable file not found in $PATH'
        if message is not None:
            c.state, c.exit_code = ContainerState.EXITED, START_ERROR_EXIT_CODE
            c.reason, c.message, c.finished_at = START_ERROR_REASON, message, now
            raise StartContainerError(f"starting container {container_id}: {message}")
        sandbox = self.node.sandboxes.get(c.sandbox_id)
        if sandbox is not None:
            sandbox.ready = True  # as in Podman: starting a container starts its pod
        c.state, c.started_at, c.finished_at = ContainerState.RUNNING, now, None
        c.exit_code, c.reason, c.message = None, "", ""
        c.logs.extend((now, _line(line)) for line in behaviour.logs)
        self._settle(c)
        _wake(c)

    def _settle(self, c: _Container) -> None:
        """Apply a scheduled exit whose time has come."""
        if c.state is not ContainerState.RUNNING or c.started_at is None:
            return
        behaviour = self.node.behaviour(c.spec)
        if behaviour.exit_code is None:
            return
        exit_at = c.started_at + behaviour.runs_for
        if self._clock() >= exit_at:
            self._exit(c, behaviour.exit_code, exit_at)

    def _exit(self, c: _Container, code: int, at: datetime) -> None:
        c.state, c.exit_code, c.finished_at = ContainerState.EXITED, code, at
        c.reason = exit_reason(code, oom_killed=False)
        _wake(c)

    def _stop(self, c: _Container) -> None:
        self._settle(c)
        if c.state is ContainerState.RUNNING:
            self._exit(c, self.node.behaviour(c.spec).stop_exit_code, self._clock())

    async def stop_container(self, container_id: str, *, grace_seconds: int) -> None:
        self._check()
        c = self.node.containers.get(container_id)
        if c is not None:
            self._stop(c)

    def _remove(self, c: _Container) -> None:
        self.node.containers.pop(c.id, None)
        sandbox = self.node.sandboxes.get(c.sandbox_id)
        if sandbox is not None and c.id in sandbox.container_ids:
            sandbox.container_ids.remove(c.id)
        _wake(c)

    async def remove_container(self, container_id: str) -> None:
        self._check()
        c = self.node.containers.get(container_id)
        if c is not None:
            self._remove(c)

    def _info(self, c: _Container) -> ContainerInfo:
        self._settle(c)
        return ContainerInfo(
            id=c.id,
            pod_uid=c.labels.get(LABEL_POD_UID, ""),
            name=c.spec.name,
            attempt=c.spec.attempt,
            state=c.state,
            image=c.spec.image,
            image_id=c.image_id,
            created_at=c.created_at,
            started_at=c.started_at,
            finished_at=c.finished_at,
            exit_code=c.exit_code,
            reason=c.reason,
            message=c.message,
            spec_hash=c.spec.spec_hash,
            init=c.spec.init,
            labels=dict(c.labels),
        )

    async def list_containers(self) -> list[ContainerInfo]:
        self._check()
        return [self._info(c) for c in self.node.containers.values()]

    # --- logs, exec, stats ----------------------------------------------------------------

    async def container_logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail_lines: int | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[bytes]:
        self._check()
        c = self._get(container_id)
        lines = [(at, line) for at, line in c.logs if since is None or at >= since]
        if tail_lines is not None:
            lines = lines[len(lines) - tail_lines :] if tail_lines > 0 else []
        sent = len(c.logs)
        for at, line in lines:
            yield _timestamp(at) + b" " + line if timestamps else line
        while follow:
            self._settle(c)
            if c.state is not ContainerState.RUNNING or c.id not in self.node.containers:
                return
            if c.changed is None:
                c.changed = asyncio.Event()
            await c.changed.wait()
            for at, line in c.logs[sent:]:
                yield _timestamp(at) + b" " + line if timestamps else line
            sent = len(c.logs)

    def _running(self, container_id: str) -> _Container:
        c = self._get(container_id)
        if c.state is not ContainerState.RUNNING:
            raise ContainerRuntimeError(
                f"exec in container {container_id}: can only create exec sessions on "
                "running containers"
            )
        return c

    async def exec_sync(
        self, container_id: str, command: Sequence[str], *, limit_seconds: float
    ) -> ExecResult:
        self._check()
        c = self._running(container_id)
        if self.node.exec_handler is None:
            return ExecResult(exit_code=0, stdout=b"", stderr=b"")
        return self.node.exec_handler(self._info(c), command)

    async def exec_interactive(
        self, container_id: str, command: Sequence[str], *, stdin: bool, tty: bool
    ) -> FakeExecSession:
        self._check()
        self._running(container_id)
        return FakeExecSession(stdin=stdin, exit_code=self.node.interactive_exit_code)

    async def container_stats(self) -> list[ContainerStats]:
        self._check()
        now = self._clock()
        result = []
        for c in self.node.containers.values():
            self._settle(c)
            if c.state is not ContainerState.RUNNING or c.started_at is None:
                continue
            behaviour = self.node.behaviour(c.spec)
            elapsed = max(0.0, (now - c.started_at).total_seconds())
            result.append(
                ContainerStats(
                    id=c.id,
                    cpu_usage_nano_cores=behaviour.cpu_nano_cores,
                    cpu_usage_core_nano_seconds=int(behaviour.cpu_nano_cores * elapsed),
                    memory_working_set_bytes=behaviour.memory_bytes,
                    timestamp=now,
                )
            )
        return result


class FakeExecSession:
    """An interactive exec that behaves like ``cat``: stdin comes back as stdout."""

    def __init__(self, *, stdin: bool, exit_code: int) -> None:
        self._stdin = stdin
        self._exit_code = exit_code
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._done = asyncio.Event()
        self.sizes: list[tuple[int, int]] = []  # every resize, for tests
        if not stdin:
            self._queue.put_nowait(None)

    async def write_stdin(self, data: bytes) -> None:
        if not self._stdin:
            raise ContainerRuntimeError("this exec session was started without stdin")
        if data:
            self._queue.put_nowait(data)

    async def close_stdin(self) -> None:
        if self._stdin:
            self._queue.put_nowait(None)

    async def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        try:
            while (data := await self._queue.get()) is not None:
                yield 1, data
        finally:
            self._done.set()

    async def wait(self) -> int:
        if not self._done.is_set():
            async for _ in self.output():
                pass
        return self._exit_code

    async def close(self) -> None:
        self._queue.put_nowait(None)
