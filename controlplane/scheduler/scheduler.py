"""The scheduler: informers in, bindings out (k8s ``scheduler.go`` and ``schedule_one.go``).

    informers (nodes, pods, namespaces) --> cache (nodes, bound and assumed pods)
                                       \\-> queue (pending pods of our profiles)
    loop:  pop -> filter -> score -> select -> assume -> bind (in the background)
                 \\-> no node: preemption (PostFilter), FailedScheduling event,
                     PodScheduled=False/Unschedulable, back to the queue

Only pods whose ``spec.schedulerName`` names one of our profiles (``default-scheduler``
by default; an empty one counts as that) and that have no ``spec.nodeName`` are ours.

``schedule_one`` is synchronous from pop to assume: nothing else touches the cache
meanwhile, so there is no snapshot to copy. Binding is a POST of
``pods/<name>/binding`` done by a background task (at most ``bind_concurrency`` at a
time, and the loop waits when more are queued); success records the ``Scheduled``
event; a conflict (someone else bound it, it is being deleted), a vanished pod or node,
or any API error *forgets* the assumption and, if the pod still waits, re-queues it
with back-off. The informer's copy of the bound pod confirms the assumption.

A failure records ``FailedScheduling`` with Kubernetes' aggregated message and writes
the pod's condition ``PodScheduled=False`` (reason ``Unschedulable``) when it changed.
One bad pod (an unreadable term, a plugin error) gets its own message and back-off and
never stops the loop.

Everything runs on one event loop; the informer handlers, the loop and the bind tasks
interleave only at awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from api import errors
from api import events as ev
from api.client import ApiClient, path_for
from api.informer import Informer
from api.resources import resource
from controlplane.scheduler import preemption
from controlplane.scheduler.algorithm import Algorithm, FitError
from controlplane.scheduler.cache import Cache
from controlplane.scheduler.config import SchedulerConfig, effective_percentage
from controlplane.scheduler.framework import ClusterEvent, CycleState, Framework, Handle, Status
from controlplane.scheduler.nodeinfo import NodeInfo
from controlplane.scheduler.platforms import PlatformResolver
from controlplane.scheduler.plugins.scheduling_gates import GATED_MESSAGE, GATED_REASON
from controlplane.scheduler.podinfo import DEFAULT_SCHEDULER, PodInfo, pod_info, pod_key
from controlplane.scheduler.queue import QueuedPod, SchedulingQueue
from controlplane.scheduler.registry import build

logger = logging.getLogger(__name__)
COMPONENT: Final = "default-scheduler"  # source.component of its events, as Kubernetes

PODS = resource("", "Pod")
NODES = resource("", "Node")
NAMESPACES = resource("", "Namespace")
STRATEGIC: Final = "application/strategic-merge-patch+json"
TERMINAL: Final = ("Succeeded", "Failed")
FAILED_SCHEDULING: Final = "FailedScheduling"
SCHEDULED: Final = "Scheduled"
UNSCHEDULABLE: Final = "Unschedulable"

Obj = dict[str, Any]


def assigned(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL


def _significant(old: Obj, new: Obj) -> bool:
    """Did the pod change in a way scheduling could notice (not only its status)?"""
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return (
        old.get("spec") != new.get("spec")
        or om.get("labels") != nm.get("labels")
        or om.get("annotations") != nm.get("annotations")
        or bool(om.get("deletionTimestamp")) != bool(nm.get("deletionTimestamp"))
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """What one scheduling cycle decided, before any I/O: a node, or why none (with
    preemption's nomination and victims, when it found room)."""

    node: str = ""
    failure: FitError | None = None
    nominated_node: str = ""
    victims: tuple[PodInfo, ...] = ()

    @property
    def message(self) -> str:
        if self.failure is None:
            return ""
        error = self.failure.diagnosis.error
        if error is not None:
            return f"running {error.plugin} plugin: {error.message}"
        return self.failure.message


def decide(
    algorithm: Algorithm, fw: Framework, pod: PodInfo, nodes: Sequence[NodeInfo]
) -> Decision:
    """Filter, score and select; when nothing fits, run PostFilter (preemption) as
    Kubernetes does: over every node, with the rejection PreFilter gave all of them."""
    state = CycleState()
    try:
        result = algorithm.schedule(fw, state, pod, nodes)
    except FitError as e:
        diagnosis = e.diagnosis
        if not e.num_all_nodes or diagnosis.error is not None:
            return Decision(failure=e)
        pre = diagnosis.pre_filter
        statuses = diagnosis.statuses if pre is None else {n.name: pre for n in nodes}
        outcome = fw.run_post_filter(state, pod, statuses)
        if outcome is not None and outcome.status is None:
            return Decision(
                failure=e, nominated_node=outcome.nominated_node, victims=outcome.victims
            )
        if outcome is not None and outcome.status is not None:
            diagnosis.post_filter_message = outcome.status.message
        return Decision(failure=e)
    return Decision(node=result.node)


class Scheduler:
    def __init__(
        self,
        client: ApiClient,
        config: SchedulerConfig | None = None,
        *,
        identity: str = "bramble-scheduler",
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        bind_concurrency: int = 64,
    ) -> None:
        self.client = client
        self.config = config or SchedulerConfig()
        self.identity = identity
        self.cache = Cache()
        self.queue = SchedulingQueue(
            clock=clock,
            initial_backoff=self.config.pod_initial_backoff,
            max_backoff=self.config.pod_max_backoff,
            pre_enqueue=self._pre_enqueue,
            interested=self._interested,
        )
        self.frameworks: dict[str, Framework] = {}
        shared: dict[str, Any] = {}
        for profile in self.config.profiles:
            profile = dataclasses.replace(
                profile, percentage_of_nodes_to_score=effective_percentage(self.config, profile)
            )
            handle = Handle(self.cache, self.queue.nominator, dict(shared))
            self.frameworks[profile.scheduler_name] = build(profile, handle)
            if "platform_resolver" in handle.extras:
                shared["platform_resolver"] = handle.extras["platform_resolver"]
        resolver = shared.get("platform_resolver")
        self.resolver = resolver if isinstance(resolver, PlatformResolver) else None
        if self.resolver is not None:
            self.resolver.on_known = self._on_platforms_known
        self.algorithm = Algorithm(rng=rng)
        self.recorder = ev.EventRecorder(
            client, instance=identity, component=COMPONENT, action="Scheduling"
        )
        self.bind_concurrency = bind_concurrency
        self._bind_slots = asyncio.Semaphore(bind_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self.pods = Informer(client, PODS)
        self.nodes = Informer(client, NODES)
        self.namespaces = Informer(client, NAMESPACES)
        self.pods.add_handlers(
            on_add=self._on_pod_add, on_update=self._on_pod_update, on_delete=self._on_pod_delete
        )
        self.nodes.add_handlers(
            on_add=self._on_node, on_update=lambda _, new: self._on_node(new),
            on_delete=self._on_node_delete,
        )  # fmt: skip
        self.namespaces.add_handlers(
            on_add=self._on_namespace, on_update=lambda _, new: self._on_namespace(new),
            on_delete=lambda ns: self._on_namespace(ns, gone=True),
        )  # fmt: skip
        self.scheduled = 0  # pods bound by this scheduler (for the benchmark and tests)
        self.failed = 0  # scheduling attempts that found no node

    # --- running -------------------------------------------------------------------

    async def run(self, *, ready: asyncio.Event | None = None) -> None:
        """Schedule until cancelled (start only where this replica leads)."""
        informers = [
            asyncio.create_task(i.run(), name=f"scheduler-informer-{i.resource.plural}")
            for i in (self.namespaces, self.nodes, self.pods)
        ]
        recorder = asyncio.create_task(self.recorder.run(), name="scheduler-events")
        try:
            for informer in (self.namespaces, self.nodes, self.pods):
                await informer.synced.wait()
            logger.info(
                "scheduler started identity=%s nodes=%d pending=%d",
                self.identity, len(self.cache.node_list()), len(self.queue),
            )  # fmt: skip
            if ready is not None:
                ready.set()
            await self._loop()
        finally:
            self.queue.close()
            pending = [*informers, recorder, *self._tasks]
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self.resolver is not None:
                await self.resolver.close()

    async def _loop(self) -> None:
        while True:
            queued = await self.queue.pop()
            try:
                self.schedule_one(queued)
            except Exception:
                logger.exception("scheduling pod=%s failed", queued.info.key)
                self.queue.add_backoff(queued)
            # Let the informers and the binds run between pods, and hold back while too
            # many bindings are still waiting for the apiserver.
            await asyncio.sleep(0)
            while len(self._tasks) >= 4 * self.bind_concurrency:
                await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)

    # --- one pod -------------------------------------------------------------------

    def schedule_one(self, queued: QueuedPod) -> str | None:
        """Place one popped pod; the chosen node (binding started) or None."""
        info = queued.info
        current = self.pods.get(info.key)
        if current is None or assigned(current) or info.deleting or info.key in self.cache:
            return None  # gone, bound meanwhile, or being deleted: nothing to do
        fw = self.frameworks.get(info.scheduler_name)
        if fw is None:
            return None
        decision = decide(self.algorithm, fw, info, self.cache.node_list())
        if decision.failure is not None:
            self._failed(queued, decision)
            return None
        self.cache.assume(info, decision.node)
        self.queue.nominator.remove(info.key)
        self._spawn(self._bind(queued, decision.node))
        return decision.node

    def _failed(self, queued: QueuedPod, decision: Decision) -> None:
        info = queued.info
        assert decision.failure is not None
        self.failed += 1
        if decision.nominated_node:
            self._preempt(info, decision.nominated_node, decision.victims)
        message = decision.message
        logger.debug("pod=%s unschedulable: %s", info.key, message)
        self.queue.add_unschedulable(queued, decision.failure.diagnosis.rejected_by)
        self.recorder.record(info.pod, ev.WARNING, FAILED_SCHEDULING, message)
        self._set_condition(info, UNSCHEDULABLE, message, nominated=decision.nominated_node)

    # --- binding -------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bind(self, queued: QueuedPod, node: str) -> None:
        info = queued.info
        async with self._bind_slots:
            if not self.cache.is_assumed(info.key):
                return  # the informer saw the pod go (or bound) meanwhile
            if self.cache.node(node) is None:
                self._unassume(queued, f'node "{node}" not found')
                return
            binding = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": info.name, "namespace": info.namespace, "uid": info.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }
            path = path_for(PODS, info.namespace, info.name, "binding")
            try:
                await self.client.request("POST", path, body=binding)
            except errors.NotFound:
                self.cache.forget(info.key)
                return
            except errors.ApiError as e:
                self._unassume(queued, e.message)
                return
        self.scheduled += 1
        self.recorder.record(
            info.pod, ev.NORMAL, SCHEDULED, f"Successfully assigned {info.key} to {node}"
        )

    def _unassume(self, queued: QueuedPod, why: str) -> None:
        """The binding did not happen: forget it, and try the pod again after back-off
        if it still waits (a newer copy from the informer, if there is one)."""
        info = queued.info
        self.cache.forget(info.key)
        logger.info("pod=%s binding rejected: %s", info.key, why)
        current = self.pods.get(info.key)
        if current is None or assigned(current) or terminal(current):
            return
        self.queue.move_all(ClusterEvent.ASSIGNED_POD_DELETE)  # its room is free again
        queued.info = pod_info(current)
        self.queue.add_backoff(queued)
        self.recorder.record(info.pod, ev.WARNING, FAILED_SCHEDULING, f"Binding rejected: {why}")

    # --- preemption ----------------------------------------------------------------

    def _preempt(self, pod: PodInfo, node: str, victims: tuple[PodInfo, ...]) -> None:
        """Carry out a PostFilter decision: nominate, then evict the victims gracefully."""
        self.queue.nominator.add(pod, node)
        for other in self.queue.nominator.pods_on(node):
            if other.key != pod.key and other.priority < pod.priority:
                # It was promised this room too; it must look again.
                self.queue.nominator.remove(other.key)
                self._spawn(self._patch_status(other, {"nominatedNodeName": None}))
        logger.info(
            "pod=%s preempts node=%s victims=%s",
            pod.key, node, ",".join(v.key for v in victims),
        )  # fmt: skip
        for victim in victims:
            self._spawn(self._evict(pod, node, victim))

    async def _evict(self, pod: PodInfo, node: str, victim: PodInfo) -> None:
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": preemption.DISRUPTION_REASON,
            "message": preemption.DISRUPTION_MESSAGE.format(scheduler=pod.scheduler_name),
            "lastTransitionTime": _now(),
        }
        with contextlib.suppress(errors.ApiError):
            await self._patch_status(victim, {"conditions": [condition]}, raise_errors=True)
        try:
            await self.client.delete(PODS, victim.namespace, victim.name)
        except errors.NotFound:
            return
        except errors.ApiError as e:
            logger.warning("pod=%s preemption of %s failed: %s", pod.key, victim.key, e.message)
            return
        self.recorder.record(
            victim.pod, ev.NORMAL, preemption.PREEMPTED_REASON,
            preemption.PREEMPTED_MESSAGE.format(uid=pod.uid, node=node), action="Preempting",
        )  # fmt: skip

    # --- pod status ----------------------------------------------------------------

    def _set_condition(
        self, info: PodInfo, reason: str, message: str, *, nominated: str = ""
    ) -> None:
        status = (self.pods.get(info.key) or info.pod).get("status") or {}
        current = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None
        )
        unchanged = (
            current is not None
            and current.get("status") == "False"
            and current.get("reason") == reason
            and current.get("message") == message
        )
        change: Obj = {}
        if not unchanged:
            change["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": reason,
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": (
                        current.get("lastTransitionTime")
                        if current is not None and current.get("status") == "False"
                        else _now()
                    ),
                }
            ]
        if nominated and status.get("nominatedNodeName") != nominated:
            change["nominatedNodeName"] = nominated
        if change:
            self._spawn(self._patch_status(info, change))

    async def _patch_status(
        self, info: PodInfo, change: Obj, *, raise_errors: bool = False
    ) -> None:
        try:
            await self.client.patch(
                PODS, info.namespace, info.name, {"status": change},
                subresource="status", patch_type=STRATEGIC,
            )  # fmt: skip
        except errors.ApiError as e:
            if raise_errors:
                raise
            logger.debug("pod=%s status not updated: %s", info.key, e.message)

    # --- informer handlers ---------------------------------------------------------

    def _responsible(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        name = spec.get("schedulerName") or DEFAULT_SCHEDULER
        return name in self.frameworks and not spec.get("nodeName") and not terminal(pod)

    def _on_pod_add(self, pod: Obj) -> None:
        if assigned(pod):
            if terminal(pod):
                return
            info = pod_info(pod)
            self.queue.delete(info.key)
            self.cache.add_pod(info)
            self.queue.move_all(ClusterEvent.ASSIGNED_POD_ADD)
        elif self._responsible(pod):
            self.queue.add(pod_info(pod))

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        key = pod_key(new)
        if assigned(new):
            self.queue.delete(key)
            if terminal(new):
                if key in self.cache:
                    self.cache.remove_pod(key)
                    self.queue.move_all(ClusterEvent.ASSIGNED_POD_DELETE)
                return
            self.cache.add_pod(pod_info(new))
            if not assigned(old):
                self.queue.move_all(ClusterEvent.ASSIGNED_POD_ADD)
            elif _significant(old, new):
                self.queue.move_all(ClusterEvent.ASSIGNED_POD_UPDATE)
            return
        if not self._responsible(new):
            self.queue.delete(key)
            return
        if self.cache.is_assumed(key):
            return  # being bound: our decision stands until the binding answers
        info = pod_info(new)
        if not self.queue.update(info, significant=_significant(old, new)):
            self.queue.add(info)

    def _on_pod_delete(self, pod: Obj) -> None:
        key = pod_key(pod)
        self.queue.delete(key)
        if key in self.cache:
            self.cache.remove_pod(key)
            self.queue.move_all(ClusterEvent.ASSIGNED_POD_DELETE)

    def _on_node(self, node: Obj) -> None:
        for event in self.cache.add_node(node):
            self.queue.move_all(event)

    def _on_node_delete(self, node: Obj) -> None:
        self.cache.remove_node(str((node.get("metadata") or {}).get("name") or ""))

    def _on_namespace(self, namespace: Obj, *, gone: bool = False) -> None:
        meta = namespace.get("metadata") or {}
        labels = None if gone else (meta.get("labels") or {})
        if self.cache.set_namespace(str(meta.get("name") or ""), labels):
            self.queue.move_all(ClusterEvent.NAMESPACE_CHANGE)

    # --- queue hooks ---------------------------------------------------------------

    def _pre_enqueue(self, info: PodInfo) -> Status | None:
        fw = self.frameworks.get(info.scheduler_name)
        status = fw.run_pre_enqueue(info) if fw is not None else None
        if status is not None and status.plugin == "SchedulingGates":
            current = ((info.pod.get("status") or {}).get("conditions")) or []
            if not any(c.get("reason") == GATED_REASON for c in current):
                self._set_gated(info)
        return status

    def _set_gated(self, info: PodInfo) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not running (a unit test of the queue): nothing to write
        change = {
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": GATED_REASON,
                 "message": GATED_MESSAGE, "lastProbeTime": None,
                 "lastTransitionTime": _now()}
            ]
        }  # fmt: skip
        self._spawn(self._patch_status(info, change))

    def _interested(self, queued: QueuedPod, event: ClusterEvent) -> bool:
        fw = self.frameworks.get(queued.info.scheduler_name)
        return fw is None or fw.interested(queued.rejected_by, event)

    def _on_platforms_known(self, keys: set[str]) -> None:
        self.queue.activate(keys)
