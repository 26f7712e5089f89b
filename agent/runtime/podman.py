"""The Runtime protocol on Podman's REST API, through podman-py over the unix socket.

A Kubernetes pod is a Podman pod (the sandbox: an infra container holding the network
namespace, the published hostPorts, the hostname) plus its containers, created with
``pod=<pod id>``. Everything carries the interface's ``io.bramble.*`` labels and a
deterministic name (podman_specs.py), so a restarted agent finds its pods by label.

Every podman-py call blocks; they all run in worker threads through ``PodmanApi``
(podman_api.py), each bounded by a timeout. An unreachable or restarting Podman raises
``RuntimeUnavailable``, and the next call after Podman is back opens new connections.
Relisting (podman_listing.py), events (podman_events.py), logs (podman_logs.py), exec
(podman_exec.py), images (podman_images.py) and the translation of specs and answers
(podman_specs.py) have modules of their own.

podman-py quirks worked around (environment.md section 1 lists the first five):

1. ``containers.list()`` returns sparse objects whose ``status`` raises: the runtime reads
   the list endpoint's JSON itself and inspects only exited containers, once each.
2. ``containers.run()`` returns None with the k8s-file log driver: never used; containers
   are created, started and read separately.
3. ``exec_run()`` without ``demux=True`` returns the multiplexed stream: exec output is
   demultiplexed by its frame headers (podman_exec.py).
4. ``images.pull()`` always sends ``tlsVerify=true`` (overriding registries.conf) and a
   failed pull does not raise: pulls go to the API directly, with ``tlsVerify=false`` for
   the insecure registries (constructor argument, by default registries.conf's), the
   answer's lines are checked for an error, and the image is looked up afterwards.
5. ``events(filters={"event": ...})`` matches nothing: the event stream is read with
   aiohttp, its filter sent as JSON and applied again in Python (podman_events.py); it
   only tells the agent when to relist (one list call; cheap, as exited containers are
   inspected only once).
6. ``prepare_filters`` turns a list value into its Python repr (``{"label": [...]}`` is
   sent as ``"['...']"`` and matches nothing): filters are sent as JSON by the runtime.
7. ``PodmanClient()`` reads configuration files in its constructor: it is created lazily,
   in a worker thread.
8. ``Pod.stop()`` keeps the default HTTP timeout whatever the grace period, and
   ``Container.stop(timeout=0)`` too: stops pass their own timeout of grace + margin.
9. ``Container.logs(since=)`` rounds to whole seconds: ``since`` is sent as RFC 3339
   with nanoseconds.
10. ``containers.create(stop_signal="SIGUSR1")`` is refused (Podman wants a number):
    signal names are translated to numbers.
11. A failed connect to the unix socket leaks the socket (closed only by the garbage
    collector, with a ResourceWarning, on every call while Podman is down): the client's
    adapter is replaced by one whose connections close their socket (podman_api.py).
12. ``Container.attach`` is not implemented and requests cannot hand over a hijacked
    connection: interactive exec speaks the HTTP upgrade itself (podman_exec.py).

And facts of Podman 4.3.1 on these machines: ``State.OOMKilled`` stays false even when
the kernel OOM-kills a container (conmon 2.1.6 on hybrid cgroup v1 writes no oom file),
so such a container shows exit code 137 and reason Error; log timestamps have whole
seconds; a container whose start failed stays "created" (the runtime reports it exited,
128, StartError, for the rest of its own lifetime); and an exec started over the API
keeps a conmon process for containers.conf's ``exit_command_delay`` (300 s by default)
so that its exit code can be read, which also delays removing its pod by ~3.5 s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from agent.runtime.interface import (
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
    RuntimeVersion,
    SandboxError,
    SandboxInfo,
    SandboxSpec,
    StartContainerError,
)
from agent.runtime.podman_api import PodmanApi, PodmanHttpError, check, http_error, is_gone
from agent.runtime.podman_events import PodmanEventStream, open_events
from agent.runtime.podman_exec import PodmanExecSession, exec_interactive, exec_sync
from agent.runtime.podman_images import (
    InsecureRegistries,
    is_insecure,
    parse_pull_stream,
    registry_of,
    repository_of,
)
from agent.runtime.podman_listing import (
    CpuRates,
    ExitedCache,
    list_containers,
    list_pods,
    stats_samples,
)
from agent.runtime.podman_logs import LogPump, log_params
from agent.runtime.podman_specs import (
    container_create_kwargs,
    pod_create_body,
    sandbox_info,
    start_failed,
)

logger = logging.getLogger(__name__)

DEFAULT_URL = "unix:///run/podman/podman.sock"
_MAX_SANDBOX_NAMES = 1000  # k8s_POD_..._<n>: how many sandboxes of one pod may coexist


class PodmanRuntime:
    """The Runtime protocol on one Podman service.

    ``url``: the service's socket, ``unix:///run/podman/podman.sock`` by default.
    ``insecure_registries``: registry locations (``host[:port][/namespace]``) pulled from
    without TLS verification; None (the default) reads the ``insecure = true`` entries
    of /etc/containers/registries.conf and registries.conf.d/*.conf, as they are at
    each pull.
    ``timeout``: seconds any one call may take (connect, and each read), beyond the grace
    period of a stop. ``pull_timeout``: seconds a pull may take. ``max_workers``: threads
    for Podman calls (logs streams have threads of their own).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        insecure_registries: Collection[str] | None = None,
        timeout: float = 30.0,
        pull_timeout: float = 600.0,
        max_workers: int = 8,
    ) -> None:
        self._api = PodmanApi(url, timeout=timeout, max_workers=max_workers)
        self._insecure = None if insecure_registries is None else list(insecure_registries)
        self._registries_conf = InsecureRegistries()  # when not given: read at each pull
        self._pull_timeout = pull_timeout
        self._pod_labels: dict[str, dict[str, str]] = {}  # sandbox id -> its labels
        self._infra_ips: dict[str, str] = {}  # running infra container id -> its IP
        # Exited containers do not change: inspected once (podman_listing.py).
        self._exited: ExitedCache = {}
        # Podman leaves a container whose start failed "created"; Kubernetes shows it
        # exited with StartError. Remembered for this process's lifetime only.
        self._start_errors: dict[str, tuple[str, datetime]] = {}
        self._cpu = CpuRates()

    @property
    def url(self) -> str:
        return self._api.url

    async def version(self) -> RuntimeVersion:
        body = await self._api.call("version", lambda c: check(c.api.get("/version")).json())
        return RuntimeVersion(name="podman", version=str(body.get("Version", "")))

    async def close(self) -> None:
        await self._api.close()

    async def events(self) -> PodmanEventStream:
        """bramble's container lifecycle events (podman_events.py): the runtime is an
        EventSource."""
        return await open_events(self._api)

    # --- images ---------------------------------------------------------------------------

    async def ensure_image(self, image: str, policy: PullPolicy) -> ImageInfo:
        if policy is not PullPolicy.ALWAYS:
            present = await self.image_present(image)
            if present is not None:
                return present
            if policy is PullPolicy.NEVER:
                raise ImageNeverPullError(
                    f"image {image} is not present on this node and its imagePullPolicy is "
                    "Never; pull it on the node or change the policy"
                )
        return await self._pull(image)

    async def _pull(self, image: str) -> ImageInfo:
        insecure = await self._insecure_registries()
        params: dict[str, Any] = {"reference": image, "policy": "always"}
        if is_insecure(image, insecure):
            params["tlsVerify"] = False
        registry = registry_of(image) or "the search registries of registries.conf"

        def pull(c: Any) -> Any:
            response = check(
                c.api.post(
                    "/images/pull",
                    params=params,
                    stream=True,
                    timeout=(self._api.timeout, self._pull_timeout),
                )
            )
            try:
                return parse_pull_stream(response.iter_lines())
            finally:
                response.close()

        try:
            outcome = await self._api.call(f"pull {image}", pull, seconds=self._pull_timeout)
        except PodmanHttpError as e:
            raise ImagePullError(
                f"failed to pull image {image} from {registry}: {e.message}"
            ) from e
        if outcome.error or not outcome.image_id:
            reason = outcome.error or "Podman reported no image"
            raise ImagePullError(f"failed to pull image {image} from {registry}: {reason}")
        # A pull that "succeeded" must have produced the image (quirk 4).
        info = await self.image_present(image)
        if info is None:
            raise ImagePullError(
                f"pulling image {image} from {registry} reported image {outcome.image_id}, "
                "but the image is not in Podman's storage"
            )
        logger.info("pulled image=%s id=%s", image, info.id[:12])
        return info

    async def _insecure_registries(self) -> list[str]:
        if self._insecure is not None:
            return self._insecure
        return await asyncio.to_thread(self._registries_conf.current)

    async def image_present(self, image: str) -> ImageInfo | None:
        def inspect(c: Any) -> Any:
            response = c.api.get(f"/images/{urllib.parse.quote_plus(image)}/json")
            return None if response.status_code == 404 else check(response).json()

        data = await self._api.call(f"inspect image {image}", inspect)
        if data is None:
            return None
        image_id = str(data.get("Id", ""))
        digests = [str(d) for d in data.get("RepoDigests") or ()]
        repository = repository_of(image)
        digest = next((d for d in digests if d.split("@")[0] == repository), "")
        return ImageInfo(
            id=image_id,
            digest=digest or (digests[0] if digests else image_id),
            architecture=str(data.get("Architecture", "")),
            os=str(data.get("Os", "")),
        )

    async def list_images(self) -> list[str]:
        images = await self._api.call(
            "list images", lambda c: check(c.api.get("/images/json")).json()
        )
        names = {
            str(tag)
            for image in images or ()
            for tag in image.get("RepoTags") or ()
            if tag and not str(tag).startswith("<none>")
        }
        return sorted(names)

    # --- sandboxes ------------------------------------------------------------------------

    async def create_sandbox(self, spec: SandboxSpec) -> str:
        def create(c: Any) -> tuple[str, dict[str, str]]:
            for n in range(_MAX_SANDBOX_NAMES):
                body = pod_create_body(spec, n)
                response = c.api.post(
                    "/pods/create",
                    data=json.dumps(body),
                    headers={"content-type": "application/json"},
                )
                if response.status_code == 409:  # the name is taken by an older sandbox
                    continue
                pod_id = str(check(response).json()["Id"])
                started = c.api.post(f"/pods/{pod_id}/start")
                if started.status_code >= 300 and started.status_code != 304:
                    error = http_error(int(started.status_code), started)
                    c.api.delete(f"/pods/{pod_id}", params={"force": True})
                    raise error
                return pod_id, body["labels"]
            raise PodmanHttpError(409, f"{_MAX_SANDBOX_NAMES} sandboxes of this pod exist")

        try:
            pod_id, labels = await self._api.call(f"create sandbox {spec.name}", create)
        except PodmanHttpError as e:
            raise SandboxError(
                f"creating the sandbox of pod {spec.namespace}/{spec.name}: {e.message}"
            ) from e
        self._pod_labels[pod_id] = labels
        logger.info("sandbox created pod=%s/%s id=%s", spec.namespace, spec.name, pod_id[:12])
        return pod_id

    async def stop_sandbox(self, sandbox_id: str, *, grace_seconds: int) -> None:
        grace = max(0, grace_seconds)

        def stop(c: Any) -> None:
            response = c.api.post(
                f"/pods/{sandbox_id}/stop",
                params={"t": grace},
                timeout=grace + self._api.timeout,
            )
            if response.status_code == 304 or is_gone(response):  # stopped, or gone
                return
            errors = check(response).json().get("Errs")
            if errors:
                raise PodmanHttpError(500, "; ".join(str(e) for e in errors))

        try:
            await self._api.call(
                f"stop sandbox {sandbox_id}", stop, seconds=grace + self._api.timeout
            )
        except PodmanHttpError as e:
            raise ContainerRuntimeError(f"stopping sandbox {sandbox_id}: {e.message}") from e

    async def remove_sandbox(self, sandbox_id: str) -> None:
        def remove(c: Any) -> None:
            # Killed first: a forced removal would give each container its stop timeout.
            c.api.post(f"/pods/{sandbox_id}/kill", params={"signal": "KILL"})
            response = c.api.delete(f"/pods/{sandbox_id}", params={"force": True})
            if not is_gone(response):
                check(response)

        try:
            await self._api.call(f"remove sandbox {sandbox_id}", remove)
        except PodmanHttpError as e:
            raise ContainerRuntimeError(f"removing sandbox {sandbox_id}: {e.message}") from e
        self._pod_labels.pop(sandbox_id, None)

    async def list_sandboxes(self) -> list[SandboxInfo]:
        known_ips = dict(self._infra_ips)
        pods, ips = await self._api.call("list sandboxes", lambda c: list_pods(c, known_ips))
        self._infra_ips = ips  # running infra containers with an IP stay cached
        result = []
        for pod in pods:
            self._pod_labels[str(pod["Id"])] = dict(pod.get("Labels") or {})
            result.append(sandbox_info(pod, ips.get(str(pod.get("InfraId", ""))) or None))
        return result

    # --- containers -----------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, spec: ContainerSpec) -> str:
        labels = self._pod_labels.get(sandbox_id)

        def create(c: Any) -> tuple[str, dict[str, str]]:
            pod_labels = labels
            if pod_labels is None:
                response = c.api.get(f"/pods/{sandbox_id}/json")
                if response.status_code == 404:
                    raise PodmanHttpError(404, f"sandbox {sandbox_id} does not exist")
                pod_labels = dict(check(response).json().get("Labels") or {})
            try:
                kwargs = container_create_kwargs(sandbox_id, pod_labels, spec)
            except ValueError as e:  # e.g. an unknown stop signal
                raise PodmanHttpError(400, str(e)) from e
            container = c.containers.create(kwargs.pop("image"), **kwargs)
            return str(container.id), pod_labels

        try:
            container_id, pod_labels = await self._api.call(f"create container {spec.name}", create)
        except PodmanHttpError as e:
            raise CreateContainerError(
                f"creating container {spec.name} from image {spec.image}: {e.message}"
            ) from e
        self._pod_labels[sandbox_id] = pod_labels
        return container_id

    async def start_container(self, container_id: str) -> None:
        def start(c: Any) -> None:
            response = c.api.post(f"/containers/{container_id}/start")
            if response.status_code == 404:
                raise NotFoundError(f"container {container_id} not found")
            check(response, 204, 304)

        try:
            await self._api.call(f"start container {container_id}", start)
        except PodmanHttpError as e:
            self._start_errors[container_id] = (e.message, datetime.now(UTC))
            raise StartContainerError(f"starting container {container_id}: {e.message}") from e
        self._start_errors.pop(container_id, None)

    async def stop_container(self, container_id: str, *, grace_seconds: int) -> None:
        grace = max(0, grace_seconds)

        def stop(c: Any) -> None:
            # Podman sends the container's stop signal (SIGTERM unless the spec set
            # one), waits ``timeout`` seconds, then SIGKILL.
            response = c.api.post(
                f"/containers/{container_id}/stop",
                params={"timeout": grace},
                timeout=grace + self._api.timeout,
            )
            if response.status_code != 304 and not is_gone(response):
                check(response)

        try:
            await self._api.call(
                f"stop container {container_id}", stop, seconds=grace + self._api.timeout
            )
        except PodmanHttpError as e:
            raise ContainerRuntimeError(f"stopping container {container_id}: {e.message}") from e

    async def remove_container(self, container_id: str) -> None:
        def remove(c: Any) -> None:
            response = c.api.delete(
                f"/containers/{container_id}", params={"force": True, "timeout": 0}
            )
            if not is_gone(response):
                check(response)

        try:
            await self._api.call(f"remove container {container_id}", remove)
        except PodmanHttpError as e:
            raise ContainerRuntimeError(f"removing container {container_id}: {e.message}") from e
        self._exited.pop(container_id, None)
        self._start_errors.pop(container_id, None)

    async def list_containers(self) -> list[ContainerInfo]:
        cache = dict(self._exited)
        infos, self._exited = await self._api.call(
            "list containers", lambda c: list_containers(c, cache)
        )
        present = {info.id for info in infos}
        for cid in list(self._start_errors):
            if cid not in present:
                del self._start_errors[cid]
        return [self._with_start_error(info) for info in infos]

    def _with_start_error(self, info: ContainerInfo) -> ContainerInfo:
        failure = self._start_errors.get(info.id)
        if failure is None or info.state is not ContainerState.CREATED:
            return info
        return start_failed(info, *failure)

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
        params = log_params(
            follow=follow, tail_lines=tail_lines, since=since, timestamps=timestamps
        )
        pump = LogPump(self._api, container_id, params, follow=follow)
        try:
            async for line in pump.lines():
                yield line
        finally:
            pump.stop()  # at once, not when the inner generator is collected

    async def exec_sync(
        self, container_id: str, command: Sequence[str], *, limit_seconds: float
    ) -> ExecResult:
        return await exec_sync(self._api, container_id, command, limit_seconds)

    async def exec_interactive(
        self, container_id: str, command: Sequence[str], *, stdin: bool, tty: bool
    ) -> PodmanExecSession:
        return await exec_interactive(self._api, container_id, command, stdin=stdin, tty=tty)

    async def container_stats(self) -> list[ContainerStats]:
        samples = await self._api.call("container stats", stats_samples)
        return self._cpu.stats(samples)
