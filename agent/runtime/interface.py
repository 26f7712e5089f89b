"""The container runtime seam: what the agent needs from Podman (or the fake).

Shaped like the kubelet's CRI: a pod is a *sandbox* (a Podman pod: one network namespace,
its ports published on it) holding containers. Everything the runtime creates carries
labels (``io.bramble.*``) naming the Kubernetes pod (uid, namespace, name) and container
(name, attempt), so that after a restart the agent finds its containers again from the
runtime alone, without any state of its own.

All methods are coroutines; implementations keep blocking calls off the event loop.
A runtime may also be an ``EventSource``: a stream of its containers' lifecycle events,
which lets the agent relist when something happened instead of every few seconds (the
kubelet's evented PLEG). It is optional: the fake runtime has none, and the agent then
relists on a timer.
Stopping or removing something that no longer exists does nothing (idempotent).
Errors are ``ContainerRuntimeError`` subclasses carrying a Kubernetes-style reason
(``ErrImagePull``, ``CreateContainerError``, ...) and a human message.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

# Labels on everything bramble creates in the runtime.
LABEL_MANAGED = "io.bramble.managed"  # "true"
LABEL_POD_UID = "io.bramble.pod.uid"
LABEL_POD_NAMESPACE = "io.bramble.pod.namespace"
LABEL_POD_NAME = "io.bramble.pod.name"
LABEL_CONTAINER_NAME = "io.bramble.container.name"
LABEL_CONTAINER_ATTEMPT = "io.bramble.container.attempt"  # restart count of this container
LABEL_CONTAINER_HASH = "io.bramble.container.hash"  # hash of the spec it was created from
LABEL_INIT = "io.bramble.container.init"  # "true" for init containers
# On sandboxes: the node (agent) that owns them. Agents sharing one Podman (tests, two
# clusters on one machine) each see only their own pods.
LABEL_NODE = "io.bramble.node"


# --- errors -------------------------------------------------------------------------------


class ContainerRuntimeError(Exception):
    """A runtime failure, with the reason Kubernetes would show in a container state."""

    reason = "RuntimeError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ImagePullError(ContainerRuntimeError):
    reason = "ErrImagePull"


class ImageNeverPullError(ContainerRuntimeError):
    """imagePullPolicy Never and the image is not on the node."""

    reason = "ErrImageNeverPull"


class CreateContainerError(ContainerRuntimeError):
    reason = "CreateContainerError"


class StartContainerError(ContainerRuntimeError):
    """E.g. the command does not exist (Kubernetes shows StartError / RunContainerError)."""

    reason = "RunContainerError"


class SandboxError(ContainerRuntimeError):
    reason = "CreatePodSandboxError"


class NotFoundError(ContainerRuntimeError):
    reason = "NotFound"


class RuntimeUnavailable(ContainerRuntimeError):
    """The runtime itself cannot be reached (Podman's socket gone, service restarting)."""

    reason = "RuntimeUnavailable"


# --- what the agent asks for ----------------------------------------------------------------


class PullPolicy(enum.Enum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


@dataclass(frozen=True, slots=True)
class PortMapping:
    container_port: int
    protocol: str = "TCP"  # TCP, UDP, SCTP
    host_port: int | None = None  # published on the node when set
    host_ip: str | None = None


@dataclass(frozen=True, slots=True)
class Mount:
    host_path: str  # prepared by the agent (emptyDir/configMap/secret dirs, hostPath)
    container_path: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    pod_uid: str
    namespace: str
    name: str
    hostname: str
    ports: Sequence[PortMapping] = ()  # every container's ports: a pod publishes them
    host_network: bool = False
    dns_servers: Sequence[str] = ()
    labels: Mapping[str, str] = field(default_factory=dict)  # extra; bramble's are added


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    name: str
    image: str
    command: Sequence[str] | None = None  # None: the image's entrypoint
    args: Sequence[str] | None = None  # None: the image's cmd
    env: Mapping[str, str] = field(default_factory=dict)  # already resolved by the agent
    working_dir: str | None = None
    mounts: Sequence[Mount] = ()
    cpu_limit_millis: int | None = None  # → CPU quota
    memory_limit_bytes: int | None = None  # → memory limit (OOM kill above it)
    cpu_shares: int | None = None  # from the CPU request
    tty: bool = False
    stdin: bool = False
    init: bool = False  # an init container
    attempt: int = 0  # restart count; part of the runtime name and labels
    spec_hash: str = ""  # the agent's hash of the container spec (to spot changes)
    stop_signal: str | None = None


# --- what the runtime reports -----------------------------------------------------------------


class ContainerState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    id: str
    pod_uid: str
    name: str  # the Kubernetes container name
    attempt: int
    state: ContainerState
    image: str  # as asked for
    image_id: str  # the image the runtime resolved (digest or id)
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str = ""  # e.g. OOMKilled, Error, Completed
    message: str = ""
    spec_hash: str = ""
    init: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    id: str
    pod_uid: str
    namespace: str
    name: str
    ready: bool  # its infra container runs
    ip: str | None
    created_at: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    id: str
    digest: str  # "repo@sha256:..." when known, else the id
    architecture: str = ""
    os: str = ""


@dataclass(frozen=True, slots=True)
class RuntimeVersion:
    name: str  # "podman", "fake"
    version: str  # "4.3.1"

    def __str__(self) -> str:  # as in Node.status.nodeInfo.containerRuntimeVersion
        return f"{self.name}://{self.version}"


@dataclass(frozen=True, slots=True)
class ContainerStats:
    id: str
    cpu_usage_nano_cores: int
    cpu_usage_core_nano_seconds: int
    memory_working_set_bytes: int
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class ExecSession(Protocol):
    """An interactive exec (``kubectl exec -it``): bytes in, bytes out, an exit code."""

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """(stream, data): stream 1 stdout, 2 stderr; ends when the process exits."""
        ...

    async def wait(self) -> int:
        """The exit code."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RuntimeEvent:
    """A container of bramble's changed state in the runtime (created, started, died,
    removed, ...). A hint to relist, not a state: the listing stays the truth."""

    action: str  # as the runtime names it: create, start, died, remove, ...
    container_id: str
    pod_uid: str  # from the container's labels; "" when it carries none


class EventStream(Protocol):
    """An open stream of runtime events."""

    def __aiter__(self) -> AsyncIterator[RuntimeEvent]:
        """The events, as they happen; ends when the runtime closes the stream (it is
        going away) and raises ``RuntimeUnavailable`` when the stream breaks."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class EventSource(Protocol):
    """A runtime that can tell when its containers change (optional; see the module)."""

    async def events(self) -> EventStream:
        """Open the stream; returns once it is open, so that whatever happens from then
        on is in it. Raises ``RuntimeUnavailable`` when the runtime cannot be reached."""
        ...


class Runtime(Protocol):
    async def version(self) -> RuntimeVersion: ...

    # images
    async def ensure_image(self, image: str, policy: PullPolicy) -> ImageInfo:
        """Pull as the policy says (Always, IfNotPresent, Never). Raises ImagePullError,
        ImageNeverPullError."""
        ...

    async def image_present(self, image: str) -> ImageInfo | None: ...

    async def list_images(self) -> list[str]:
        """Names (repo:tag) of the images on the node, for the Node's status.images."""
        ...

    # sandboxes
    async def create_sandbox(self, spec: SandboxSpec) -> str:
        """Create and start the pod sandbox; return its id. Raises SandboxError."""
        ...

    async def stop_sandbox(self, sandbox_id: str, *, grace_seconds: int) -> None: ...

    async def remove_sandbox(self, sandbox_id: str) -> None:
        """Remove the sandbox and everything in it (idempotent)."""
        ...

    async def list_sandboxes(self) -> list[SandboxInfo]:
        """bramble's sandboxes (labelled), with their state and IP."""
        ...

    # containers
    async def create_container(self, sandbox_id: str, spec: ContainerSpec) -> str:
        """Create (not start) a container in the sandbox. Raises CreateContainerError."""
        ...

    async def start_container(self, container_id: str) -> None:
        """Raises StartContainerError (e.g. the command does not exist)."""
        ...

    async def stop_container(self, container_id: str, *, grace_seconds: int) -> None:
        """SIGTERM (or the image's stop signal), then SIGKILL after the grace period."""
        ...

    async def remove_container(self, container_id: str) -> None: ...

    async def list_containers(self) -> list[ContainerInfo]:
        """bramble's containers (labelled), in every state."""
        ...

    def container_logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail_lines: int | None = None,
        since: datetime | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[bytes]:
        """The container's output (stdout and stderr interleaved), line by line; an
        async generator in the implementations. Raises NotFoundError."""
        ...

    async def exec_sync(
        self, container_id: str, command: Sequence[str], *, limit_seconds: float
    ) -> ExecResult:
        """Run a command in the container and wait (exec probes). Raises TimeoutError
        after ``limit_seconds`` (the command itself may go on: Podman 4.3 cannot kill an
        exec session)."""
        ...

    async def exec_interactive(
        self, container_id: str, command: Sequence[str], *, stdin: bool, tty: bool
    ) -> ExecSession: ...

    async def container_stats(self) -> list[ContainerStats]: ...

    async def close(self) -> None: ...
