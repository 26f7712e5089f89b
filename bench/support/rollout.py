"""What a Deployment's rollout looks like from outside: one namespace's pods and
Deployments as a watch sees them, with the moment each pod was first seen created,
bound, ready and terminating, and the peak number of pods (the surge a rolling update
allows). Benchmarks wait on conditions over this view (``until``), as ``kubectl rollout
status`` waits on the Deployment's status.

Times are ``time.perf_counter()`` at the moment the event was read: the watch's
delivery is in the figures, as it is for a person watching.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api import errors
from api.client import ApiClient
from api.resources import Resource, resource

PODS = resource("", "Pod")
LEASES = resource("coordination.k8s.io", "Lease")
DEPLOYMENTS = resource("apps", "Deployment")

Obj = dict[str, Any]


@dataclass
class PodSeen:
    name: str
    labels: dict[str, str]
    node: str = ""
    created: float = 0.0
    bound: float = 0.0
    ready: float = 0.0  # when first Ready=True
    is_ready: bool = False  # now
    terminating: float = 0.0
    gone: float = 0.0

    @property
    def active(self) -> bool:
        """Counted by a ReplicaSet: not terminating, not gone."""
        return not self.terminating and not self.gone


def _ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def rollout_done(deployment: Obj | None) -> bool:
    """``kubectl rollout status`` would say "successfully rolled out"."""
    if deployment is None:
        return False
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and updated == wanted
        and status.get("replicas", 0) == updated
        and status.get("availableReplicas", 0) == updated
    )


class NamespaceView:
    """Pods and Deployments of one namespace, kept by two watches."""

    def __init__(self, client: ApiClient, namespace: str) -> None:
        self._client = client
        self.namespace = namespace
        self.pods: dict[str, PodSeen] = {}  # by uid
        self.deployments: dict[str, Obj] = {}  # by name
        self.live = 0  # pods that exist (terminating included)
        self.active = 0
        self.ready = 0  # active and Ready
        self.peak_live = 0
        self.peak_active = 0
        self.min_ready: int | None = None  # since ``reset_extremes``
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for kind, handle in ((PODS, self._pod), (DEPLOYMENTS, self._deployment)):
            listed = await self._client.list(kind, self.namespace)
            for item in listed.get("items") or []:
                handle("ADDED", item)
            revision = listed["metadata"]["resourceVersion"]
            self._tasks.append(asyncio.create_task(self._watch(kind, revision, handle)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _watch(
        self, kind: Resource, revision: str, handle: Callable[[str, Obj], None]
    ) -> None:
        params = {"resourceVersion": revision, "allowWatchBookmarks": "true"}
        while True:  # the server ends watches now and then: go on from the last revision
            try:
                async for event in self._client.watch(kind, self.namespace, params=params):
                    obj = event["object"]
                    params["resourceVersion"] = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        handle(event["type"], obj)
                        self._changed.set()
            except errors.ServiceUnavailable:
                await asyncio.sleep(0.5)  # the server is busy or restarting: try again

    def _deployment(self, kind: str, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            self.deployments.pop(name, None)
        else:
            self.deployments[name] = obj

    def _pod(self, kind: str, obj: Obj) -> None:
        now = time.perf_counter()
        meta = obj["metadata"]
        seen = self.pods.get(meta["uid"])
        if seen is None:
            seen = self.pods[meta["uid"]] = PodSeen(meta["name"], meta.get("labels") or {})
            seen.created = now
            self.live += 1
            self.active += 1
        if seen.gone:
            return
        was_active, was_ready = seen.active, seen.active and seen.is_ready
        node = (obj.get("spec") or {}).get("nodeName") or ""
        if node and not seen.bound:
            seen.node, seen.bound = node, now
        seen.is_ready = _ready(obj)
        if seen.is_ready and not seen.ready:
            seen.ready = now
        if meta.get("deletionTimestamp") and not seen.terminating:
            seen.terminating = now
        if kind == "DELETED":
            seen.gone = now
            self.live -= 1
        self.active += int(seen.active) - int(was_active)
        self.ready += int(seen.active and seen.is_ready) - int(was_ready)
        self.peak_live = max(self.peak_live, self.live)
        self.peak_active = max(self.peak_active, self.active)
        if self.min_ready is not None:
            self.min_ready = min(self.min_ready, self.ready)

    def reset_extremes(self) -> None:
        """Peaks and the minimum of ready pods count from now."""
        self.peak_live, self.peak_active, self.min_ready = self.live, self.active, self.ready

    async def until(self, condition: Callable[[], bool], *, within: float) -> float | None:
        """The moment ``condition`` first held over this view, or None after ``within``
        seconds."""
        deadline = time.perf_counter() + within
        while not condition():
            self._changed.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return time.perf_counter()


class Heartbeats:
    """The node Leases as a watch sees them renewed: the longest gap between two
    renewals of one node since ``reset`` (the node lifecycle controller calls a node
    unreachable after 20 s without one)."""

    def __init__(self, client: ApiClient) -> None:
        self._client = client
        self._last: dict[str, float] = {}
        self.longest = 0.0
        self.longest_node = ""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self._client.list(LEASES, "kube-node-lease")
        now = time.perf_counter()
        self._last = {item["metadata"]["name"]: now for item in listed.get("items") or []}
        revision = listed["metadata"]["resourceVersion"]
        self._task = asyncio.create_task(self._run(revision))

    async def _run(self, revision: str) -> None:
        params = {"resourceVersion": revision, "allowWatchBookmarks": "true"}
        while True:
            with contextlib.suppress(errors.ServiceUnavailable):
                async for event in self._client.watch(LEASES, "kube-node-lease", params=params):
                    obj = event["object"]
                    params["resourceVersion"] = obj["metadata"]["resourceVersion"]
                    if event["type"] == "BOOKMARK":
                        continue
                    now = time.perf_counter()
                    name = obj["metadata"]["name"]
                    gap = now - self._last.get(name, now)
                    self._last[name] = now
                    if gap > self.longest:
                        self.longest, self.longest_node = gap, name
            await asyncio.sleep(0.5)

    def reset(self) -> None:
        now = time.perf_counter()
        self._last = dict.fromkeys(self._last, now)
        self.longest, self.longest_node = 0.0, ""

    def gap_now(self) -> tuple[float, str]:
        """The longest gap, counting nodes not renewed since their last renewal."""
        now = time.perf_counter()
        longest, node = self.longest, self.longest_node
        for name, last in self._last.items():
            if now - last > longest:
                longest, node = now - last, name
        return longest, node

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
