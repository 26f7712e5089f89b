"""One pod's worker: keeps only the latest desired spec and syncs it when woken.

``sync_pod`` = plan (plan.py, pure) + apply (here) + status (podstatus.py, pure) + write.
A worker is woken by the informer (a new spec), by the lifecycle-event generator (a
container changed in the runtime), by its probes, and by its own timer when it waits out
a back-off. Failures of one pod (a missing image, a bad command, a missing ConfigMap)
become that pod's status and events; they never stop other workers.

Deletion: a pod with ``deletionTimestamp`` has its containers stopped within its grace
period, its sandbox and volumes removed, and then the worker confirms by deleting the API
object with grace period 0. A pod that vanished from the API is cleaned up the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from agent import config, plan, podstatus
from agent.events import EventRecorder
from agent.runtime import interface as rt
from api import errors
from api.client import ApiClient
from api.quantity import QuantityError, parse_quantity
from api.resources import resource

logger = logging.getLogger(__name__)

PODS = resource("", "Pod")
BACKOFF_INITIAL = 10.0  # seconds, as the kubelet
BACKOFF_MAX = 300.0
BACKOFF_RESET = 600.0  # a container that ran this long starts its back-off afresh

Obj = dict[str, Any]
View = Callable[[str], tuple[rt.SandboxInfo | None, list[rt.ContainerInfo]]]


@dataclass
class WorkerContext:
    """What every worker shares (one per agent)."""

    node_name: str
    runtime: rt.Runtime
    client: ApiClient
    volumes: config.Volumes
    recorder: EventRecorder
    view: View  # the lifecycle-event generator's latest view of a pod's sandbox/containers
    relist: Callable[[], Awaitable[None]]  # refresh that view now
    host_ip: Callable[[], str]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    readiness: Callable[[str], dict[str, bool]] = lambda uid: {}
    startup: Callable[[str], dict[str, bool]] = lambda uid: {}
    liveness_failed: Callable[[str], frozenset[str]] = lambda uid: frozenset()
    fetch_timeout: float = 10.0


@dataclass
class _Backoff:
    delay: float = BACKOFF_INITIAL
    until: datetime | None = None


@dataclass
class PodWorker:
    uid: str
    ctx: WorkerContext
    pod: Obj | None = None  # latest desired state; None once gone from the API
    gone: bool = False  # the API object no longer exists
    done: bool = False
    problems: dict[str, podstatus.ContainerProblem] = field(default_factory=dict)
    backoff: dict[str, _Backoff] = field(default_factory=dict)
    last_status: Obj | None = None
    last_status_version: int = 0  # the pod's resourceVersion our last status write made
    volume_paths: dict[str, str] | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _timer: asyncio.TimerHandle | None = None

    def update(self, pod: Obj | None) -> None:
        if pod is None:
            self.gone = True
        else:
            self.pod = pod
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while not self.done:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.sync()
            except Exception:
                logger.exception("sync failed pod=%s", self._label())
                self._wake_later(5.0)

    def _label(self) -> str:
        meta = (self.pod or {}).get("metadata") or {}
        return f"{meta.get('namespace')}/{meta.get('name')}"

    def _wake_later(self, seconds: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(max(0.0, seconds), self._wake.set)

    # --- sync -----------------------------------------------------------------------------

    async def sync(self) -> None:
        ctx = self.ctx
        if self.pod is None:
            self.done = True
            return
        pod = self.pod
        if self.gone and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            pod = {**pod, "metadata": {**pod["metadata"], "deletionTimestamp": "gone"}}
        now = ctx.clock()
        sandbox, containers = ctx.view(self.uid)
        backoff = {n: b.until for n, b in self.backoff.items() if b.until is not None}
        the_plan = plan.compute(
            pod, sandbox, containers, now=now, backoff=backoff,
            unhealthy=ctx.liveness_failed(self.uid),
        )  # fmt: skip
        if not the_plan.idle:
            await self._apply(pod, the_plan, sandbox, containers)
            await ctx.relist()
            sandbox, containers = ctx.view(self.uid)
            the_plan = plan.compute(pod, sandbox, containers, now=ctx.clock(), backoff=backoff)
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self._finish_deletion(pod, sandbox, containers)
            return
        await self._write_status(pod, the_plan, sandbox, containers)
        waits = [w.until for w in the_plan.waiting if w.until is not None]
        if waits:
            self._wake_later((min(waits) - ctx.clock()).total_seconds() + 0.05)

    async def _apply(
        self,
        pod: Obj,
        the_plan: plan.Plan,
        sandbox: rt.SandboxInfo | None,
        containers: list[rt.ContainerInfo],
    ) -> None:
        ctx = self.ctx
        grace = _grace(pod)
        stopped: set[str] = set()
        for stop in the_plan.stop:
            await self._stop(pod, stop.container_id, stop.name, stop.reason, grace)
            stopped.add(stop.container_id)
        if the_plan.kill_sandbox and sandbox is not None:
            for c in containers:
                if c.state is rt.ContainerState.RUNNING and c.id not in stopped:
                    await self._stop(pod, c.id, c.name, "the pod sandbox stops", grace)
            with contextlib.suppress(rt.NotFoundError):
                await ctx.runtime.stop_sandbox(sandbox.id, grace_seconds=0)
            if the_plan.create_sandbox or _deleting(pod):
                with contextlib.suppress(rt.NotFoundError):
                    await ctx.runtime.remove_sandbox(sandbox.id)
                sandbox = None
        for remove in the_plan.remove:
            with contextlib.suppress(rt.NotFoundError):
                await ctx.runtime.remove_container(remove.container_id)
        if the_plan.create_sandbox:
            sandbox_id = await self._create_sandbox(pod)
            if sandbox_id is None:
                return
        elif sandbox is not None:
            sandbox_id = sandbox.id
        else:
            return
        for start in the_plan.start:
            if not await self._start(pod, sandbox_id, start) and start.init:
                break  # the app containers wait for every init container

    async def _stop(self, pod: Obj, cid: str, name: str, reason: str, grace: int) -> None:
        self.ctx.recorder.record(
            pod, "Normal", "Killing", f"Stopping container {name}: {reason}",
            field_path=f"spec.containers{{{name}}}",
        )  # fmt: skip
        with contextlib.suppress(rt.NotFoundError):
            await self.ctx.runtime.stop_container(cid, grace_seconds=grace)

    async def _create_sandbox(self, pod: Obj) -> str | None:
        ctx = self.ctx
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        try:
            self.volume_paths = await ctx.volumes.prepare(pod, self._fetch)
            sandbox_id = await ctx.runtime.create_sandbox(
                rt.SandboxSpec(
                    pod_uid=self.uid,
                    namespace=str(meta.get("namespace")),
                    name=str(meta.get("name")),
                    hostname=str(spec.get("hostname") or meta.get("name")),
                    ports=_ports(spec),
                    host_network=bool(spec.get("hostNetwork")),
                    labels={rt.LABEL_NODE: ctx.node_name},
                )
            )
        except config.ConfigError as e:
            self._problem_all(pod, e.reason, e.message)
            ctx.recorder.record(pod, "Warning", "FailedMount", e.message)
            return None
        except rt.ContainerRuntimeError as e:
            self._problem_all(pod, e.reason, e.message)
            ctx.recorder.record(pod, "Warning", "FailedCreatePodSandBox", e.message)
            return None
        return sandbox_id

    def _problem_all(self, pod: Obj, reason: str, message: str) -> None:
        for c in _all_containers(pod):
            self.problems[str(c.get("name"))] = podstatus.ContainerProblem(reason, message)

    async def _start(self, pod: Obj, sandbox_id: str, start: plan.Start) -> bool:
        """Pull, create and start one container; on failure remember why (status) and
        back off. Returns whether it started."""
        ctx = self.ctx
        spec_c = next(c for c in _all_containers(pod) if c.get("name") == start.name)
        where = f"spec.{'initContainers' if start.init else 'containers'}{{{start.name}}}"
        image = str(spec_c.get("image"))
        policy = rt.PullPolicy(str(spec_c.get("imagePullPolicy") or "IfNotPresent"))
        now = ctx.clock()
        state = self.backoff.setdefault(start.name, _Backoff())
        if state.until is not None and state.until > now:
            # A container that never started (image, config) waits out its back-off here;
            # one that exited waits in the plan (CrashLoopBackOff).
            problem = self.problems.get(start.name)
            if problem is not None and problem.reason == "ErrImagePull":
                self.problems[start.name] = podstatus.ContainerProblem(
                    "ImagePullBackOff", f'Back-off pulling image "{image}"'
                )
            return False
        try:
            if policy is not rt.PullPolicy.NEVER and await ctx.runtime.image_present(image) is None:
                ctx.recorder.record(
                    pod, "Normal", "Pulling", f'Pulling image "{image}"', field_path=where
                )
                started = ctx.clock()
                await ctx.runtime.ensure_image(image, policy)
                took = (ctx.clock() - started).total_seconds()
                ctx.recorder.record(
                    pod, "Normal", "Pulled",
                    f'Successfully pulled image "{image}" in {took:.3f}s', field_path=where,
                )  # fmt: skip
            else:
                await ctx.runtime.ensure_image(image, policy)
            env = await config.environment(spec_c, pod, self._fetch, host_ip=ctx.host_ip())
            paths = self.volume_paths
            if paths is None:
                paths = self.volume_paths = await ctx.volumes.prepare(pod, self._fetch)
            cid = await ctx.runtime.create_container(
                sandbox_id, _container_spec(spec_c, env, config.mounts(spec_c, paths), start)
            )
            ctx.recorder.record(
                pod, "Normal", "Created", f"Created container {start.name}", field_path=where
            )
            await ctx.runtime.start_container(cid)
        except (rt.ContainerRuntimeError, config.ConfigError) as e:
            self.problems[start.name] = podstatus.ContainerProblem(e.reason, e.message)
            ctx.recorder.record(pod, "Warning", "Failed", f"Error: {e.message}", field_path=where)
            self._back_off(start.name, now)
            return False
        self.problems.pop(start.name, None)
        ctx.recorder.record(
            pod, "Normal", "Started", f"Started container {start.name}", field_path=where
        )
        if start.attempt > 0:
            self._back_off(start.name, now)
        else:
            state.until = None
        return True

    def _back_off(self, name: str, now: datetime) -> None:
        state = self.backoff.setdefault(name, _Backoff())
        if state.until is not None and (now - state.until).total_seconds() > BACKOFF_RESET:
            state.delay = BACKOFF_INITIAL
        state.until = now + timedelta(seconds=state.delay)
        state.delay = min(state.delay * 2, BACKOFF_MAX)
        self._wake_later(state.delay / 2 + 0.05)

    async def _fetch(self, kind: str, namespace: str, name: str) -> Obj | None:
        target = resource("", "ConfigMap" if kind == "configmap" else "Secret")
        try:
            async with asyncio.timeout(self.ctx.fetch_timeout):
                return await self.ctx.client.get(target, namespace, name)
        except errors.NotFound:
            return None
        except (errors.ApiError, TimeoutError) as e:
            raise config.ConfigError(f"cannot read {kind} {namespace}/{name}: {e}") from e

    # --- status ---------------------------------------------------------------------------

    async def _write_status(
        self,
        pod: Obj,
        the_plan: plan.Plan,
        sandbox: rt.SandboxInfo | None,
        containers: list[rt.ContainerInfo],
    ) -> None:
        ctx = self.ctx
        observed = podstatus.Observed(
            sandbox=sandbox,
            containers=containers,
            plan=the_plan,
            host_ip=ctx.host_ip(),
            problems=self.problems,
            ready=ctx.readiness(self.uid),
            started=ctx.startup(self.uid),
        )
        status = podstatus.compute(pod, observed, now=ctx.clock())
        if _same_status(status, pod.get("status") or {}):
            return
        # The informer may not have brought our own last write yet: skip a repeat of it.
        # But once the cached pod is newer than that write and differs (someone else
        # wrote its status: the node lifecycle controller marks the pods of an
        # unreachable node not ready), write again, as the kubelet's status manager does.
        if _same_status(status, self.last_status or {}) and (
            _version(pod) <= self.last_status_version
        ):
            return
        meta = pod["metadata"]
        try:
            updated = await ctx.client.patch(
                PODS, meta["namespace"], meta["name"], {"status": status}, subresource="status"
            )
        except errors.NotFound:
            return  # deleted meanwhile; the informer will tell
        except errors.ApiError as e:
            logger.info("pod status not written pod=%s error=%s", self._label(), e.message)
            self._wake_later(5.0)
            return
        self.last_status = status
        self.last_status_version = _version(updated)

    async def _finish_deletion(
        self, pod: Obj, sandbox: rt.SandboxInfo | None, containers: list[rt.ContainerInfo]
    ) -> None:
        ctx = self.ctx
        if any(c.state is rt.ContainerState.RUNNING for c in containers):
            self._wake_later(1.0)  # still stopping
            return
        for c in containers:
            with contextlib.suppress(rt.NotFoundError):
                await ctx.runtime.remove_container(c.id)
        if sandbox is not None:
            with contextlib.suppress(rt.NotFoundError):
                await ctx.runtime.remove_sandbox(sandbox.id)
        await ctx.volumes.remove(self.uid)
        if not self.gone:
            meta = pod["metadata"]
            try:
                await ctx.client.delete(PODS, meta["namespace"], meta["name"], grace_period=0)
            except errors.NotFound:
                pass
            except errors.ApiError as e:
                logger.info("pod deletion not confirmed pod=%s error=%s", self._label(), e.message)
                self._wake_later(5.0)
                return
        self.done = True
        logger.info("pod cleaned up pod=%s", self._label())


def _deleting(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _grace(pod: Obj) -> int:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    value = meta.get("deletionGracePeriodSeconds")
    if not isinstance(value, int):
        value = spec.get("terminationGracePeriodSeconds", 30)
    return value if isinstance(value, int) and value >= 0 else 30


def _all_containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return [c for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
            if isinstance(c, dict)]  # fmt: skip


def _ports(spec: Obj) -> list[rt.PortMapping]:
    result = []
    for c in spec.get("containers") or []:
        for p in c.get("ports") or []:
            if isinstance(p, dict) and isinstance(p.get("containerPort"), int):
                result.append(
                    rt.PortMapping(
                        container_port=p["containerPort"],
                        protocol=str(p.get("protocol") or "TCP"),
                        host_port=p.get("hostPort") or None,
                        host_ip=p.get("hostIP") or None,
                    )
                )
    return result


def _container_spec(
    spec_c: Obj, env: dict[str, str], mounts: list[rt.Mount], start: plan.Start
) -> rt.ContainerSpec:
    resources = spec_c.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    return rt.ContainerSpec(
        name=start.name,
        image=str(spec_c.get("image")),
        command=spec_c.get("command") or None,
        args=spec_c.get("args") or None,
        env=env,
        working_dir=spec_c.get("workingDir") or None,
        mounts=mounts,
        cpu_limit_millis=_milli(limits.get("cpu")),
        memory_limit_bytes=_bytes(limits.get("memory")),
        cpu_shares=_shares(requests.get("cpu")),
        tty=bool(spec_c.get("tty")),
        stdin=bool(spec_c.get("stdin")),
        init=start.init,
        attempt=start.attempt,
        spec_hash=plan.container_hash(spec_c),
    )


def _milli(value: object) -> int | None:
    try:
        return parse_quantity(str(value)).milli_value() if value is not None else None
    except QuantityError:
        return None


def _bytes(value: object) -> int | None:
    try:
        return parse_quantity(str(value)).value() if value is not None else None
    except QuantityError:
        return None


def _shares(value: object) -> int | None:
    milli = _milli(value)
    return None if milli is None else max(2, milli * 1024 // 1000)  # the kubelet's formula


def _version(obj: Obj) -> int:
    """An object's resourceVersion as a number (bramble's are store revisions); 0 if
    absent or not a number."""
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _same_status(new: Obj, old: Obj) -> bool:
    """Equal but for timestamps that only say when we looked."""

    def strip(status: Obj) -> bytes:
        copy = orjson.loads(orjson.dumps(status))
        for c in copy.get("conditions") or []:
            c.pop("lastProbeTime", None)
        return bytes(orjson.dumps(copy, option=orjson.OPT_SORT_KEYS))

    return strip(new) == strip(old)
