"""One pod's worker: keeps only the latest desired spec and syncs it when woken.

``sync_pod`` = plan (plan.py, pure) + apply (here) + status (podstatus.py, pure) + write.
A worker is woken by the informer (a new spec), by the lifecycle-event generator (a
container changed in the runtime), by its probes, and by its own timer when it waits out
a back-off. Failures of one pod (a missing image, a bad command, a missing ConfigMap)
become that pod's status and events; they never stop other workers. A pod whose sandbox
or volumes could not be made (Podman restarting, a ConfigMap not created yet, a hostPort
taken) is retried with the same back-off as a container, and so starts once the cause
is gone, as the kubelet re-syncs a pod whose sync failed.

Back-offs are announced with a ``BackOff`` event once per back-off period, as the kubelet
words them: "Back-off restarting failed container NAME in pod ..." (Warning) and
"Back-off pulling image ..." (Normal).

Deletion: a pod with ``deletionTimestamp`` has its containers stopped within its grace
period (all at once: a pod of N containers that ignore SIGTERM takes one grace period,
not N), its sandbox and volumes removed, and then the worker confirms by deleting the API
object with grace period 0. A pod that vanished from the API is cleaned up the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
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
    unhealthy: Callable[[str], Mapping[str, str]] = lambda uid: {}  # name -> failed probe
    fetch_timeout: float = 10.0
    backoff_initial: float = BACKOFF_INITIAL
    backoff_max: float = BACKOFF_MAX


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
    sandbox_backoff: _Backoff | None = None  # after a sandbox or its volumes failed
    _sandbox_problem: podstatus.ContainerProblem | None = None
    _announced: dict[str, datetime] = field(default_factory=dict)  # BackOff events: until
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
        """Wake in ``seconds``, unless a wake-up is already due sooner: every sync works
        out again what it waits for, so the earliest timer is the one to keep (a later
        one replacing it would let a shorter back-off oversleep)."""
        loop = asyncio.get_running_loop()
        at = loop.time() + max(0.0, seconds)
        if self._timer is not None:
            if self._timer.when() <= at:
                return
            self._timer.cancel()
        self._timer = loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._wake.set()

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
            unhealthy=ctx.unhealthy(self.uid),
        )  # fmt: skip
        if not the_plan.idle:
            await self._apply(pod, the_plan, sandbox, containers)
            await ctx.relist()
            sandbox, containers = ctx.view(self.uid)
            the_plan = plan.compute(pod, sandbox, containers, now=ctx.clock(), backoff=backoff)
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            await self._finish_deletion(pod, sandbox, containers)
            return
        for waiting in the_plan.waiting:
            if waiting.reason == "CrashLoopBackOff" and waiting.until is not None:
                self._announce_back_off(
                    pod, waiting.name, waiting.until, "Warning",
                    f"Back-off restarting failed container {waiting.name} in pod {_format(pod)}",
                )  # fmt: skip
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
        stops = [(s.container_id, s.name, s.reason) for s in the_plan.stop]
        if the_plan.kill_sandbox and sandbox is not None:
            planned = {s.container_id for s in the_plan.stop}
            stops += [
                (c.id, c.name, "the pod sandbox stops")
                for c in containers
                if c.state is rt.ContainerState.RUNNING and c.id not in planned
            ]
        await self._stop_all(pod, stops)
        if the_plan.kill_sandbox and sandbox is not None:
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
            sandbox = await self._new_sandbox(pod, sandbox_id)
        elif sandbox is not None:
            sandbox_id = sandbox.id
        else:
            return
        if (pod.get("spec") or {}).get("hostNetwork"):
            pod_ip = ctx.host_ip()  # a host-network pod has the node's address (podstatus)
        else:
            pod_ip = (sandbox.ip if sandbox is not None else None) or ""
        for start in the_plan.start:
            if not await self._start(pod, sandbox_id, start, pod_ip=pod_ip) and start.init:
                break  # the app containers wait for every init container

    async def _new_sandbox(self, pod: Obj, sandbox_id: str) -> rt.SandboxInfo | None:
        """The sandbox just made, as the runtime lists it, when a container's environment
        needs its IP (``fieldRef: status.podIP``): the containers are created after it,
        so even a first start sees the address. Otherwise no extra listing is paid for."""
        if not any(_wants_pod_ip(c) for c in _all_containers(pod)):
            return None
        await self.ctx.relist()
        sandbox, _ = self.ctx.view(self.uid)
        return sandbox if sandbox is not None and sandbox.id == sandbox_id else None

    async def _stop_all(self, pod: Obj, stops: list[tuple[str, str, str]]) -> None:
        """Stop containers concurrently: each has the whole grace period (the kubelet
        kills a pod's containers in parallel), so a pod whose N containers ignore
        SIGTERM is gone after one grace period, not N. Every stop runs to its end even
        if another fails; then the first failure is raised (the sync is retried)."""
        grace = _grace(pod)
        results = await asyncio.gather(
            *(self._stop(pod, cid, name, reason, grace) for cid, name, reason in stops),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _stop(self, pod: Obj, cid: str, name: str, reason: str, grace: int) -> None:
        self.ctx.recorder.record(
            pod, "Normal", "Killing", f"Stopping container {name}: {reason}",
            field_path=f"spec.containers{{{name}}}",
        )  # fmt: skip
        with contextlib.suppress(rt.NotFoundError):
            await self.ctx.runtime.stop_container(cid, grace_seconds=grace)

    async def _create_sandbox(self, pod: Obj) -> str | None:
        """Make the pod's volumes and sandbox; None if that failed (the problem is shown
        on every container, and a retry is due after a back-off) or is backing off."""
        ctx = self.ctx
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        now = ctx.clock()
        last = self.sandbox_backoff
        if last is not None and last.until is not None and last.until > now:
            return None  # the last failure's problem stays on the containers meanwhile
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
        except rt.ContainerRuntimeError as e:
            self._problem_all(pod, e.reason, e.message)
            ctx.recorder.record(pod, "Warning", "FailedCreatePodSandBox", e.message)
        else:
            if last is not None:
                last.until = None
            if self._sandbox_problem is not None:
                self.problems = {
                    n: p for n, p in self.problems.items() if p != self._sandbox_problem
                }
                self._sandbox_problem = None
            return sandbox_id
        self.sandbox_backoff = last if last is not None else self._new_backoff()
        self._advance(self.sandbox_backoff, now)
        return None

    def _problem_all(self, pod: Obj, reason: str, message: str) -> None:
        problem = self._sandbox_problem = podstatus.ContainerProblem(reason, message)
        for c in _all_containers(pod):
            self.problems[str(c.get("name"))] = problem

    async def _start(self, pod: Obj, sandbox_id: str, start: plan.Start, *, pod_ip: str) -> bool:
        """Pull, create and start one container; on failure remember why (status) and
        back off. Returns whether it started."""
        ctx = self.ctx
        spec_c = next(c for c in _all_containers(pod) if c.get("name") == start.name)
        where = f"spec.{'initContainers' if start.init else 'containers'}{{{start.name}}}"
        image = str(spec_c.get("image"))
        policy = rt.PullPolicy(str(spec_c.get("imagePullPolicy") or "IfNotPresent"))
        now = ctx.clock()
        state = self.backoff.setdefault(start.name, self._new_backoff())
        if state.until is not None and state.until > now:
            # A container that never started (image, config) waits out its back-off here;
            # one that exited waits in the plan (CrashLoopBackOff).
            problem = self.problems.get(start.name)
            if problem is not None and problem.reason in ("ErrImagePull", "ImagePullBackOff"):
                message = f'Back-off pulling image "{image}"'
                self.problems[start.name] = podstatus.ContainerProblem("ImagePullBackOff", message)
                self._announce_back_off(pod, start.name, state.until, "Normal", message, where)
            return False
        try:
            # The kubelet's events: Pulling/Pulled around a pull (Always pulls every
            # time), "already present on machine" when none is needed.
            if policy is rt.PullPolicy.ALWAYS or (
                policy is not rt.PullPolicy.NEVER and await ctx.runtime.image_present(image) is None
            ):
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
                await ctx.runtime.ensure_image(image, policy)  # Never and absent: raises
                ctx.recorder.record(
                    pod, "Normal", "Pulled",
                    f'Container image "{image}" already present on machine', field_path=where,
                )  # fmt: skip
            env = await config.environment(
                spec_c, pod, self._fetch, host_ip=ctx.host_ip(), pod_ip=pod_ip
            )
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

    def _new_backoff(self) -> _Backoff:
        return _Backoff(delay=self.ctx.backoff_initial)

    def _back_off(self, name: str, now: datetime) -> None:
        self._advance(self.backoff.setdefault(name, self._new_backoff()), now)

    def _advance(self, state: _Backoff, now: datetime) -> None:
        """Wait ``state.delay`` from ``now`` (then twice as long next time, up to the
        maximum), and wake up when it is over."""
        if state.until is not None and (now - state.until).total_seconds() > BACKOFF_RESET:
            state.delay = self.ctx.backoff_initial
        wait = state.delay
        state.until = now + timedelta(seconds=wait)
        state.delay = min(wait * 2, self.ctx.backoff_max)
        self._wake_later(wait + 0.05)

    def _announce_back_off(
        self, pod: Obj, name: str, until: datetime, kind: str, message: str, where: str = ""
    ) -> None:
        """One ``BackOff`` event per back-off period of a container (a sync every second
        while it waits must not send one each time); repeats of the same message are
        counted on one Event by the recorder."""
        if self._announced.get(name) == until:
            return
        self._announced[name] = until
        if not where:
            init = any(
                c.get("name") == name for c in (pod.get("spec") or {}).get("initContainers") or []
            )
            where = f"spec.{'initContainers' if init else 'containers'}{{{name}}}"
        self.ctx.recorder.record(pod, kind, "BackOff", message, field_path=where)

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


def _format(pod: Obj) -> str:
    """A pod as the kubelet names it in messages: ``name_namespace(uid)``."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"


def _wants_pod_ip(container: Obj) -> bool:
    return any(
        ((var.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") == "status.podIP"
        for var in container.get("env") or []
        if isinstance(var, dict)
    )


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
