"""Liveness, readiness and startup probes (exec, httpGet, tcpSocket), as the kubelet runs them.

One prober task per running container that has probes, started when the relister sees
the container run and stopped when it stops or is replaced. Each probe honours
initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold and
failureThreshold. While a startup probe has not succeeded the other two wait; a startup
or liveness probe that reaches its failure threshold marks the container unhealthy, and
the pod's worker restarts it. Every failed probe is an ``Unhealthy`` event saying which
("Startup probe failed: ...", "Liveness probe failed: ..."). Readiness decides the
container's ``ready`` and so the pod's Ready condition. A change wakes the pod's worker.

A probe that errs is a failed probe, never the end of its prober: an exec that outlives
``timeoutSeconds`` (a hung container: the runtime raises ``TimeoutError``) fails as the
kubelet's does, "command ... timed out", and so gets a hung container restarted.

An httpGet or tcpSocket probe without a ``host`` dials the pod's IP as the relister last
saw it, read at each probe: a sandbox can be listed before its IP is known (its network
still being set up), and a prober started then must not keep the empty address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp

from agent.events import EventRecorder
from agent.runtime import interface as rt
from agent.tasks import guard

logger = logging.getLogger(__name__)

Obj = dict[str, Any]


@dataclass
class _ContainerProbes:
    uid: str
    name: str
    container_id: str
    task: asyncio.Task[None] | None = None
    ready: bool = False
    started: bool = False
    unhealthy: str = ""  # the probe that failed its threshold: "liveness" or "startup"


@dataclass
class ProbeManager:
    runtime: rt.Runtime
    recorder: EventRecorder
    wake: Callable[[str], None]  # wake the worker of a pod uid
    probers: dict[str, _ContainerProbes] = field(default_factory=dict)  # by container id
    ips: dict[str, str] = field(default_factory=dict)  # pod IPs by uid, as last listed

    def readiness(self, uid: str) -> dict[str, bool]:
        return {p.name: p.ready for p in self.probers.values() if p.uid == uid}

    def startup(self, uid: str) -> dict[str, bool]:
        return {p.name: p.started for p in self.probers.values() if p.uid == uid}

    def unhealthy(self, uid: str) -> dict[str, str]:
        """Container name -> the probe that failed ("liveness", "startup")."""
        return {p.name: p.unhealthy for p in self.probers.values() if p.uid == uid and p.unhealthy}

    def sync(
        self, pods: dict[str, Obj], running: dict[str, list[rt.ContainerInfo]], ips: dict[str, str]
    ) -> None:
        """Start probers for running containers with probes; stop the rest. ``ips``: the
        pods' IPs now (running probers read them at their next probe)."""
        self.ips = dict(ips)
        wanted: set[str] = set()
        for uid, containers in running.items():
            pod = pods.get(uid)
            if pod is None:
                continue
            specs = {str(c.get("name")): c for c in (pod.get("spec") or {}).get("containers") or []}
            for info in containers:
                spec_c = specs.get(info.name)
                if spec_c is None or info.init or not _has_probes(spec_c):
                    continue
                wanted.add(info.id)
                if info.id not in self.probers:
                    prober = _ContainerProbes(uid, info.name, info.id)
                    prober.ready = "readinessProbe" not in spec_c
                    prober.started = "startupProbe" not in spec_c
                    name = f"probe-{info.id[:8]}"
                    prober.task = asyncio.create_task(
                        guard(partial(self._run, prober, pod, spec_c), name=name,
                              restart_after=None),
                        name=name,
                    )  # fmt: skip
                    self.probers[info.id] = prober
        for cid in [c for c in self.probers if c not in wanted]:
            prober = self.probers.pop(cid)
            if prober.task is not None:
                prober.task.cancel()

    async def close(self) -> None:
        for prober in self.probers.values():
            if prober.task is not None:
                prober.task.cancel()
        for prober in self.probers.values():
            if prober.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await prober.task

    async def _run(self, prober: _ContainerProbes, pod: Obj, spec_c: Obj) -> None:
        startup, liveness, readiness = (
            spec_c.get("startupProbe"), spec_c.get("livenessProbe"), spec_c.get("readinessProbe"),
        )  # fmt: skip
        if isinstance(startup, dict):
            ok = await self._until(prober, pod, spec_c, startup, "Startup")
            if not ok:
                return
            prober.started = True
            self.wake(prober.uid)
        tasks = [
            self._loop(prober, pod, spec_c, probe, kind)
            for kind, probe in (("Liveness", liveness), ("Readiness", readiness))
            if isinstance(probe, dict)
        ]
        await asyncio.gather(*tasks)

    async def _until(
        self, prober: _ContainerProbes, pod: Obj, spec_c: Obj, probe: Obj, kind: str
    ) -> bool:
        """Probe until it succeeds (True) or reaches its failure threshold (False)."""
        await asyncio.sleep(_int(probe, "initialDelaySeconds", 0))
        failures = 0
        while True:
            ok, why = await self._probe(prober, spec_c, probe)
            if ok:
                return True
            failures += 1
            self._unhealthy_event(prober, pod, kind, why)
            if failures >= _int(probe, "failureThreshold", 3):
                self._fail(prober, pod, kind, why)
                return False
            await asyncio.sleep(_int(probe, "periodSeconds", 10))

    async def _loop(
        self, prober: _ContainerProbes, pod: Obj, spec_c: Obj, probe: Obj, kind: str
    ) -> None:
        await asyncio.sleep(_int(probe, "initialDelaySeconds", 0))
        successes = failures = 0
        while True:
            ok, why = await self._probe(prober, spec_c, probe)
            if ok:
                successes, failures = successes + 1, 0
                if (
                    kind == "Readiness"
                    and not prober.ready
                    and successes >= _int(probe, "successThreshold", 1)
                ):
                    prober.ready = True
                    self.wake(prober.uid)
            else:
                successes, failures = 0, failures + 1
                self._unhealthy_event(prober, pod, kind, why)
                if failures >= _int(probe, "failureThreshold", 3):
                    if kind == "Readiness":
                        if prober.ready:
                            prober.ready = False
                            self.wake(prober.uid)
                    else:
                        self._fail(prober, pod, kind, why)
                        return
            await asyncio.sleep(_int(probe, "periodSeconds", 10))

    def _unhealthy_event(self, prober: _ContainerProbes, pod: Obj, kind: str, why: str) -> None:
        self.recorder.record(
            pod, "Warning", "Unhealthy", f"{kind} probe failed: {why}",
            field_path=f"spec.containers{{{prober.name}}}",
        )  # fmt: skip

    def _fail(self, prober: _ContainerProbes, pod: Obj, kind: str, why: str) -> None:
        prober.unhealthy = kind.lower()
        logger.info("container unhealthy container=%s probe=%s why=%s", prober.name, kind, why)
        self.wake(prober.uid)

    async def _probe(self, prober: _ContainerProbes, spec_c: Obj, probe: Obj) -> tuple[bool, str]:
        cid, ip = prober.container_id, self.ips.get(prober.uid, "")
        timeout = float(_int(probe, "timeoutSeconds", 1))
        try:
            if isinstance(probe.get("exec"), dict):
                command = [str(a) for a in probe["exec"].get("command") or []]
                try:
                    result = await self.runtime.exec_sync(cid, command, limit_seconds=timeout)
                except TimeoutError:
                    return False, f"command {' '.join(command)!r} timed out after {timeout:g}s"
                if result.exit_code == 0:
                    return True, ""
                output = (result.stdout + result.stderr).decode(errors="replace").strip()[:200]
                return False, f"command {command} exited with {result.exit_code}: {output}"
            if isinstance(probe.get("httpGet"), dict):
                return await _http(probe["httpGet"], spec_c, ip, timeout)
            if isinstance(probe.get("tcpSocket"), dict):
                return await _tcp(probe["tcpSocket"], spec_c, ip, timeout)
        except rt.ContainerRuntimeError as e:
            return False, e.message
        except Exception as e:  # a fault of the prober's own: a failed probe, not a dead prober
            logger.exception("probe errored container=%s", prober.name)
            return False, f"the probe could not run: {e or type(e).__name__}"
        return False, "the probe has no exec, httpGet or tcpSocket handler"


def _has_probes(spec_c: Obj) -> bool:
    return any(
        isinstance(spec_c.get(k), dict) for k in ("livenessProbe", "readinessProbe", "startupProbe")
    )


def _int(probe: Obj, key: str, default: int) -> int:
    value = probe.get(key)
    return value if isinstance(value, int) and value >= 0 else default


def _port(value: object, spec_c: Obj) -> int | None:
    if isinstance(value, int):
        return value
    for p in spec_c.get("ports") or []:
        if isinstance(p, dict) and p.get("name") == value:
            port = p.get("containerPort")
            return port if isinstance(port, int) else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


async def _http(action: Obj, spec_c: Obj, ip: str, limit: float) -> tuple[bool, str]:
    port = _port(action.get("port"), spec_c)
    host = str(action.get("host") or ip)
    if port is None or not host:
        return False, f"cannot resolve the probe's port {action.get('port')!r} or address"
    scheme = str(action.get("scheme") or "HTTP").lower()
    path = str(action.get("path") or "/")
    url = f"{scheme}://{host}:{port}{path if path.startswith('/') else '/' + path}"
    headers = {str(h.get("name")): str(h.get("value")) for h in action.get("httpHeaders") or []}
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session,
            session.get(
                url,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=limit),
                allow_redirects=False,
            ) as resp,  # fmt: skip
        ):
            if 200 <= resp.status < 400:
                return True, ""
            return False, f"HTTP probe failed with statuscode: {resp.status}"
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        return False, f'Get "{url}": {e or type(e).__name__}'


async def _tcp(action: Obj, spec_c: Obj, ip: str, limit: float) -> tuple[bool, str]:
    port = _port(action.get("port"), spec_c)
    host = str(action.get("host") or ip)
    if port is None or not host:
        return False, f"cannot resolve the probe's port {action.get('port')!r} or address"
    try:
        async with asyncio.timeout(limit):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as e:
        return False, f"dial tcp {host}:{port}: {e or 'timeout'}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, ""
