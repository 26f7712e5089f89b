"""Pod garbage collection (Kubernetes' pod GC controller): removes the pods nobody else
will.

* Orphans: pods bound to a node that no longer exists. The node's absence is believed
  only after it has lasted ``orphan_quarantine`` seconds in the cache *and* a live GET
  answers NotFound, so that a pod bound to a node whose Node object is still being
  created (or that the cache has not seen yet) is never raced.
* Stuck terminating: a pod whose deletion grace period is over, on a node that is gone
  or not Ready, is never confirmed by an agent: it is force-deleted.
* Terminated pods (Succeeded/Failed) beyond ``terminated_pod_gc_threshold``, oldest
  first (Kubernetes keeps 12500; a Raspberry Pi's apiserver is happier with 1000; 0
  keeps them all, as in Kubernetes).

Settings: ``PodGCSettings`` (``Context.settings``, ``--terminated-pod-gc-threshold``).

Pods removed as orphans or stuck are first marked Failed with the DisruptionTarget
condition (reason DeletionByPodGC), as Kubernetes does, so that a Job counts them as
failed rather than losing them; then deleted with grace 0 and a uid precondition (never
another pod that took the name meanwhile).

The whole collection is one key, looked at every ``gc_check_period`` and when a node is
deleted; one worker, so passes never overlap.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final

from api import errors
from api.resources import resource
from controlplane.controllers.base import Context, Controller, Result
from controlplane.controllers.settings import PodGCSettings

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

PODS = resource("", "Pod")
NODES = resource("", "Node")
KEY: Final = "podgc"
_PARALLEL: Final = 10  # deletions in flight at once (Kubernetes: 20 workers)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _node_of(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def terminated_excess(pods: Iterable[Obj], threshold: int) -> list[Obj]:
    """The terminated pods to delete so that at most ``threshold`` remain: the oldest
    (by creationTimestamp, then namespace and name, so a tie is decided the same way
    every time). Pods already being deleted are not counted, nor chosen again. A
    threshold of 0 (or less) switches this off, as in Kubernetes."""
    if threshold <= 0:
        return []
    terminated = [
        p for p in pods if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    ]
    candidates = [p for p in terminated if not p["metadata"].get("deletionTimestamp")]
    # The ones already going will be gone: only the rest of the excess is chosen.
    excess = len(candidates) - threshold
    if excess <= 0:
        return []

    def age(pod: Obj) -> tuple[str, str, str]:
        meta = pod["metadata"]
        return (
            str(meta.get("creationTimestamp") or ""),
            str(meta.get("namespace")),
            str(meta.get("name")),
        )

    return sorted(candidates, key=age)[:excess]


def stuck_terminating(
    pods: Iterable[Obj], *, unhealthy: set[str], now: datetime
) -> tuple[list[Obj], datetime | None]:
    """The pods whose deletion grace period is over on a node in ``unhealthy`` (gone or
    not Ready), and the next time another such pod's grace period ends."""
    stuck: list[Obj] = []
    upcoming: datetime | None = None
    for pod in pods:
        deadline = _time(pod["metadata"].get("deletionTimestamp"))
        if deadline is None or _node_of(pod) not in unhealthy:
            continue
        if deadline <= now:
            stuck.append(pod)
        elif upcoming is None or deadline < upcoming:
            upcoming = deadline
    return stuck, upcoming


def _ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


class PodGC(Controller):
    name: ClassVar[str] = "podgc"
    component: ClassVar[str] = "pod-garbage-collector"
    workers: ClassVar[int] = 1

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.settings: PodGCSettings = ctx.settings.pod_gc
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.nodes.add_handlers(on_delete=lambda _node: self.queue.add(KEY))
        self._absent_since: dict[str, datetime] = {}
        self.queue.add(KEY)

    async def reconcile(self, key: str) -> Result | None:
        now = self.ctx.now()
        pods = self.pods.list()
        gone = await self._gone_nodes(pods, now)
        next_check = now + timedelta(seconds=self.settings.gc_check_period)
        for since in self._absent_since.values():
            next_check = min(next_check, since + timedelta(seconds=self.settings.orphan_quarantine))
        orphans = [
            p for p in pods if _node_of(p) in gone and not p["metadata"].get("deletionTimestamp")
        ]
        await self._delete(orphans, "PodGC: node no longer exists", now)
        not_ready = {name for name, n in self.nodes.cache.items() if not _ready(n)}
        stuck, upcoming = stuck_terminating(pods, unhealthy=gone | not_ready, now=now)
        await self._delete(stuck, "PodGC: node is gone or not ready", now)
        if upcoming is not None:
            next_check = min(next_check, upcoming)
        excess = terminated_excess(pods, self.settings.terminated_pod_gc_threshold)
        if excess:
            logger.info(
                "deleting terminated pods count=%d threshold=%d",
                len(excess), self.settings.terminated_pod_gc_threshold,
            )  # fmt: skip
            await self._delete(excess, "", now)
        return Result(requeue_after=max((next_check - now).total_seconds(), 0.05))

    async def _gone_nodes(self, pods: list[Obj], now: datetime) -> set[str]:
        """The nodes pods are bound to that have been missing from the cache for the
        quarantine and that a live GET confirms are gone."""
        missing = {_node_of(p) for p in pods} - set(self.nodes.cache) - {""}
        self._absent_since = {n: self._absent_since.get(n, now) for n in missing}
        gone: set[str] = set()
        quarantine = timedelta(seconds=self.settings.orphan_quarantine)
        for name, since in list(self._absent_since.items()):
            if now - since < quarantine:
                continue
            try:
                await self.ctx.client.get(NODES, None, name)
            except errors.NotFound:
                gone.add(name)
                continue
            del self._absent_since[name]  # the cache was behind: it exists
        return gone

    async def _delete(self, pods: list[Obj], failure: str, now: datetime) -> None:
        limit = asyncio.Semaphore(_PARALLEL)

        async def one(pod: Obj) -> None:
            async with limit:
                await self._delete_one(pod, failure, now)

        await asyncio.gather(*(one(p) for p in pods))

    async def _delete_one(self, pod: Obj, failure: str, now: datetime) -> None:
        meta = pod["metadata"]
        namespace, name, uid = meta.get("namespace"), meta.get("name"), meta.get("uid")
        if failure and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            try:
                await self._mark_failed(pod, failure, now)
            except errors.ApiError as e:
                # Best effort: a Job may count the pod as lost instead; the delete matters.
                logger.info("pod=%s/%s not marked failed: %s", namespace, name, e.message)
        try:
            logger.info(
                "deleting pod=%s/%s node=%s reason=%r",
                namespace,
                name,
                _node_of(pod),
                failure or "terminated",
            )
            await self.ctx.client.delete(PODS, namespace, str(name), grace_period=0, uid=uid)
        except (errors.NotFound, errors.Conflict):
            pass  # gone already, or the name now belongs to another pod
        except errors.ApiError as e:
            logger.warning("pod=%s/%s not deleted: %s", namespace, name, e.message)

    async def _mark_failed(self, pod: Obj, message: str, now: datetime) -> None:
        fresh = copy.deepcopy(pod)
        status = fresh.setdefault("status", {})
        status["phase"] = "Failed"
        conditions = [
            c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"
        ]
        conditions.append({
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": message, "lastTransitionTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        })  # fmt: skip
        status["conditions"] = conditions
        meta = fresh["metadata"]
        await self.ctx.client.update(
            PODS, meta["namespace"], meta["name"], fresh, subresource="status"
        )
