"""The sync loop: the pods bound to this node, one worker each, and the runtime relister.

Three inputs wake workers, as in the kubelet's ``syncLoopIteration``:

* the pod informer (``spec.nodeName=<me>``): a new desired spec, or a pod gone;
* the lifecycle-event generator (``relist``): the runtime's containers and sandboxes,
  listed and compared with the previous listing; a pod whose containers changed
  (started, died, vanished) gets its worker woken. A runtime that is an ``EventSource``
  (Podman) says when to relist: one of this node's containers changed, or its event
  stream broke; a timer relists every ``evented_relist_interval`` as a safety net
  (a change no event reported, a hung runtime). Without events (the fake runtime, or
  while the stream is down) the timer relists every ``relist_interval``, as the
  kubelet's generic PLEG does. Events arrive in bursts; relists coalesce them (one
  asked for while one runs is one more, not one per event);
* housekeeping every ``housekeeping_interval``: runtime objects and volume directories
  of pods this node no longer has are removed — only once the informer has synced, so
  an unreachable control plane never makes the agent kill its workloads;
* a resync tick every ``resync_interval`` wakes every worker (the kubelet's
  syncFrequency), a safety net under the workers' own back-off timers.

Each of these loops starts through ``agent.tasks.guard``: one that raises is logged and
started again, so a fault in one (a checkpoint on a full SD card) never ends the others.

The desired pods are also written to ``DATA_DIR/pods.json`` (a checkpoint). An agent
that starts while the control plane is away takes its pods from there, so restart
policies keep working and nothing running is touched. Only the API says a pod is gone:
the checkpoint's pods wait (up to ``checkpoint_grace``) for the informer's first list.
If it comes, they are synced as the API has them, and one the API no longer has
(evicted and deleted while this node was away) is only stopped and removed, never
started again; if it does not, they are synced as remembered (and a later list that
lacks one has it cleaned up, as any pod deleted from the API). Meanwhile their
containers keep running, untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from agent.probes import ProbeManager
from agent.runtime import interface as rt
from agent.tasks import guard
from agent.worker import PodWorker, WorkerContext
from api.informer import Informer

logger = logging.getLogger(__name__)

Obj = dict[str, Any]


class PodManager:
    def __init__(
        self,
        ctx: WorkerContext,
        informer: Informer,
        *,
        checkpoint: Path,
        relist_interval: float = 2.0,
        evented_relist_interval: float = 30.0,
        housekeeping_interval: float = 30.0,
        checkpoint_grace: float = 10.0,
        checkpoint_retry: float = 10.0,
        resync_interval: float = 60.0,
    ) -> None:
        self.ctx = ctx
        self.informer = informer
        self._checkpoint = checkpoint
        self._relist_interval = relist_interval
        self._evented_relist_interval = evented_relist_interval
        self._relist_due = asyncio.Event()
        self.events_live = False  # the runtime's event stream is open
        self._housekeeping_interval = housekeeping_interval
        self._checkpoint_grace = checkpoint_grace
        self._checkpoint_retry = checkpoint_retry
        self._resync_interval = resync_interval
        self.workers: dict[str, PodWorker] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._sandboxes: dict[str, rt.SandboxInfo] = {}
        self._containers: dict[str, list[rt.ContainerInfo]] = defaultdict(list)
        self._fingerprints: dict[str, tuple[Any, ...]] = {}
        self._relist_lock = asyncio.Lock()
        self.runtime_healthy = False
        self.runtime_error = ""
        self._checkpoint_dirty = asyncio.Event()
        self.probes = ProbeManager(ctx.runtime, ctx.recorder, self._wake)
        ctx.view = self.view
        ctx.relist = self.relist
        ctx.readiness = self.probes.readiness
        ctx.startup = self.probes.startup
        ctx.unhealthy = self.probes.unhealthy
        informer.add_handlers(
            on_add=self._desired, on_update=lambda old, new: self._desired(new),
            on_delete=self._gone,
        )  # fmt: skip

    # --- desired state ----------------------------------------------------------------------

    def _uid(self, pod: Obj) -> str:
        return str((pod.get("metadata") or {}).get("uid") or "")

    def _desired(self, pod: Obj) -> None:
        uid = self._uid(pod)
        if not uid:
            return
        worker = self.workers.get(uid)
        if worker is None or worker.done:
            worker = PodWorker(uid, self.ctx)
            self.workers[uid] = worker
            self._tasks[uid] = asyncio.create_task(self._run_worker(worker), name=f"pod-{uid[:8]}")
        worker.update(pod)
        self._checkpoint_dirty.set()

    def _gone(self, pod: Obj) -> None:
        worker = self.workers.get(self._uid(pod))
        if worker is not None:
            worker.update(None)
        self._checkpoint_dirty.set()

    async def _run_worker(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        finally:
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]
                self._tasks.pop(worker.uid, None)

    # --- the runtime's view -----------------------------------------------------------------

    def view(self, uid: str) -> tuple[rt.SandboxInfo | None, list[rt.ContainerInfo]]:
        return self._sandboxes.get(uid), list(self._containers.get(uid, []))

    async def relist(self) -> None:
        """List the runtime now; wake the workers of pods whose containers changed."""
        async with self._relist_lock:
            try:
                sandboxes = await self.ctx.runtime.list_sandboxes()
                containers = await self.ctx.runtime.list_containers()
            except rt.ContainerRuntimeError as e:
                if self.runtime_healthy or not self.runtime_error:
                    logger.warning("container runtime unavailable error=%s", e.message)
                self.runtime_healthy = False
                self.runtime_error = e.message
                return
            self.runtime_healthy = True
            self.runtime_error = ""
            # Only this node's sandboxes, and the containers in them.
            sandboxes = [s for s in sandboxes if s.labels.get(rt.LABEL_NODE) == self.ctx.node_name]
            ours = {s.pod_uid for s in sandboxes}
            containers = [c for c in containers if c.pod_uid in ours]
            by_pod: dict[str, list[rt.ContainerInfo]] = defaultdict(list)
            for c in containers:
                by_pod[c.pod_uid].append(c)
            self._sandboxes = {s.pod_uid: s for s in sandboxes}
            self._containers = by_pod
            uids = set(by_pod) | set(self._sandboxes) | set(self._fingerprints)
            for uid in uids:
                fingerprint = _fingerprint(self._sandboxes.get(uid), by_pod.get(uid, []))
                if self._fingerprints.get(uid) != fingerprint:
                    self._fingerprints[uid] = fingerprint
                    worker = self.workers.get(uid)
                    if worker is not None:
                        worker.wake()
            for gone in [u for u in self._fingerprints if u not in uids]:
                del self._fingerprints[gone]
            running = {
                uid: [c for c in cs if c.state is rt.ContainerState.RUNNING]
                for uid, cs in by_pod.items()
            }
            desired = {uid: w.pod for uid, w in self.workers.items() if w.pod is not None}
            ips = {uid: s.ip for uid, s in self._sandboxes.items() if s.ip}
            self.probes.sync(desired, running, ips)

    def _wake(self, uid: str) -> None:
        worker = self.workers.get(uid)
        if worker is not None:
            worker.wake()

    async def run(self) -> None:
        remembered = await self._load_checkpoint()
        loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "pod-informer": self.informer.run,
            "relist": self._relist_loop,
            "resync": self._resync_loop,
            "housekeeping": self._housekeeping_loop,
            "checkpoint-writer": self._checkpoint_loop,
        }
        runtime = self.ctx.runtime
        if isinstance(runtime, rt.EventSource):
            loops["runtime-events"] = lambda: self._events_loop(runtime)
        async with asyncio.TaskGroup() as group:
            for name, loop in loops.items():
                group.create_task(guard(loop, name=name), name=name)
            if remembered:
                group.create_task(
                    guard(lambda: self._start_remembered(remembered), name="checkpoint",
                          restart_after=None),
                    name="checkpoint",
                )  # fmt: skip

    async def stop(self) -> None:
        await self.probes.close()
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _relist_loop(self) -> None:
        while True:
            self._relist_due.clear()  # before listing: what happens during it asks again
            await self.relist()
            interval = self._evented_relist_interval if self.events_live else self._relist_interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._relist_due.wait()

    async def _events_loop(self, source: rt.EventSource) -> None:
        """Keep the runtime's event stream open; each event of this node's pods asks for
        a relist. Reopened after a pause when it ends or breaks (a restarting runtime)."""
        retry = self._relist_interval
        while True:
            try:
                stream = await source.events()
            except rt.ContainerRuntimeError as e:
                logger.debug("runtime event stream not open error=%s", e.message)
                await asyncio.sleep(retry)
                retry = min(retry * 2, self._evented_relist_interval)
                continue
            retry = self._relist_interval
            self.events_live = True
            self._relist_due.set()  # whatever happened before the stream was open
            try:
                async for event in stream:
                    if not event.pod_uid or self._ours(event.pod_uid):
                        self._relist_due.set()
                logger.info("the runtime's event stream ended; relisting on a timer meanwhile")
            except rt.ContainerRuntimeError as e:
                logger.info("the runtime's event stream broke error=%s", e.message)
            finally:
                self.events_live = False
                self._relist_due.set()  # the runtime may be going away: find out now
                await stream.close()
            await asyncio.sleep(retry)

    def _ours(self, uid: str) -> bool:
        return uid in self.workers or uid in self._sandboxes or uid in self._containers

    async def _resync_loop(self) -> None:
        """Wake every worker now and then (the kubelet's syncFrequency): whatever a worker
        is waiting for that no input reports (a ConfigMap created, a port freed) is
        noticed within ``resync_interval`` even if its own timer was lost."""
        while True:
            await asyncio.sleep(self._resync_interval)
            for worker in list(self.workers.values()):
                worker.wake()

    # --- housekeeping -----------------------------------------------------------------------

    async def _housekeeping_loop(self) -> None:
        while True:
            await asyncio.sleep(self._housekeeping_interval)
            if self.informer.synced.is_set() and self.runtime_healthy:
                await self.housekeeping()

    async def housekeeping(self) -> None:
        """Remove what belongs to no pod of this node (the informer is the truth)."""
        known = {self._uid(p) for p in self.informer.list()} | set(self.workers)
        removed = False
        for uid, sandbox in list(self._sandboxes.items()):
            if uid not in known:
                logger.info(
                    "removing orphaned pod sandbox pod=%s/%s", sandbox.namespace, sandbox.name
                )
                removed = True
                for c in self._containers.get(uid, []):
                    with contextlib.suppress(rt.ContainerRuntimeError):
                        await self.ctx.runtime.stop_container(c.id, grace_seconds=10)
                        await self.ctx.runtime.remove_container(c.id)
                with contextlib.suppress(rt.ContainerRuntimeError):
                    await self.ctx.runtime.remove_sandbox(sandbox.id)
        for uid, containers in list(self._containers.items()):
            if uid not in known and uid not in self._sandboxes:
                removed = True
                for c in containers:
                    with contextlib.suppress(rt.ContainerRuntimeError):
                        await self.ctx.runtime.remove_container(c.id)
        for uid in await self.ctx.volumes.known_pods():
            if uid not in known:
                await self.ctx.volumes.remove(uid)
        if removed:  # otherwise the view is as fresh as the relister keeps it
            await self.relist()

    # --- checkpoint -------------------------------------------------------------------------

    async def _checkpoint_loop(self) -> None:
        failing = ""  # the last write's error, logged once rather than at every retry
        while True:
            await self._checkpoint_dirty.wait()
            self._checkpoint_dirty.clear()
            if not self.informer.synced.is_set():
                continue
            pods = self.informer.list()
            try:
                await asyncio.to_thread(_write_atomic, self._checkpoint, orjson.dumps(pods))
            except OSError as e:
                # A full or read-only SD card: the pods run on, only a restart while the
                # control plane is away would miss the latest changes. Try again later.
                if str(e) != failing:
                    logger.warning(
                        "checkpoint not written path=%s error=%s; retrying every %.0fs",
                        self._checkpoint, e, self._checkpoint_retry,
                    )  # fmt: skip
                failing = str(e)
                self._checkpoint_dirty.set()
                await asyncio.sleep(self._checkpoint_retry)
                continue
            if failing:
                logger.info("checkpoint written again path=%s", self._checkpoint)
                failing = ""
            await asyncio.sleep(1.0)  # at most one write a second

    async def _load_checkpoint(self) -> list[Obj]:
        """The pods of the checkpoint, served by the informer's cache until its first
        list replaces them."""
        try:
            raw = await asyncio.to_thread(self._checkpoint.read_bytes)
            pods = orjson.loads(raw)
        except (OSError, orjson.JSONDecodeError):
            return []
        if not isinstance(pods, list):
            return []
        remembered = [p for p in pods if isinstance(p, dict) and self._uid(p)]
        if self.informer.synced.is_set():
            return []
        for pod in remembered:
            self.informer.cache[_key(pod)] = pod
        logger.info("loaded %d pods from the checkpoint", len(remembered))
        return remembered

    async def _start_remembered(self, pods: list[Obj]) -> None:
        """Start the workers of the checkpoint's pods once the API has said which it still
        has, or after ``checkpoint_grace`` without an answer (the module docstring)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._checkpoint_grace):
                await self.informer.synced.wait()
        await self.relist()  # the workers' first sync sees what runs now
        # No await from here on: the informer cannot sync halfway through.
        if not self.informer.synced.is_set():
            logger.info(
                "the control plane did not answer in %.0fs; syncing %d pods from the checkpoint",
                self._checkpoint_grace, len(pods),
            )  # fmt: skip
            for pod in pods:
                if self._uid(pod) not in self.workers:
                    self._desired(pod)
            return
        # The informer's list started workers for the pods that changed; these start the
        # rest of those the API has.
        current = {self._uid(p): p for p in self.informer.list()}
        for pod in pods:
            uid = self._uid(pod)
            if uid in self.workers:
                continue
            if uid in current:
                self._desired(current[uid])
            else:
                logger.info("pod deleted while this node was away; cleaning up pod=%s", _key(pod))
                self._desired(pod)
                self._gone(pod)  # before its worker's first sync: it only stops and removes


def _key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _fingerprint(
    sandbox: rt.SandboxInfo | None, containers: list[rt.ContainerInfo]
) -> tuple[Any, ...]:
    return (
        (sandbox.id, sandbox.ready, sandbox.ip) if sandbox else None,
        tuple(sorted((c.id, c.state.value, c.exit_code, c.attempt) for c in containers)),
    )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
