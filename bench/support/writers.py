"""The writing load process: it builds the cluster (namespaces, nodes, leases, the base
pods) and, in the steady window, renews every node's lease (PUT, as the kubelet does),
creates pods and patches pod status (strategic merge on ``/status``, as the kubelet does).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.support import objects as o
from bench.support.load import Call, Obj, Plan, Role, Write, paced

SETUP_CONCURRENCY = 16  # creates in flight while building the cluster


@dataclass(frozen=True, slots=True)
class PodRef:
    namespace: str
    name: str
    node: str


@dataclass(slots=True)
class WriterResult:
    calls: list[Call] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    skipped_renewals: int = 0  # the previous renewal of that lease was still in flight


class Writer(Role):
    def __init__(self, kubeconfig: Path) -> None:
        super().__init__(kubeconfig)
        self._leases: dict[str, Obj] = {}  # the newest copy of each lease, for PUT
        self._pods: list[PodRef] = []
        self._ready: dict[PodRef, bool] = {}
        self._renewing: set[str] = set()
        self._random = random.Random(3)

    # --- building the cluster ---------------------------------------------------------

    async def create_namespaces(self) -> None:
        for name in o.NAMESPACES:
            await self.must("POST", "/api/v1/namespaces", {"metadata": {"name": name}})

    async def create_nodes(self, start: int, stop: int) -> float:
        """Nodes and their leases ``start`` .. ``stop - 1``; returns the seconds taken."""

        async def one(i: int) -> None:
            await self.must("POST", o.NODES, o.node(i))
            self._leases[o.node_name(i)] = await self.must("POST", o.LEASES, o.lease(i))

        return await _bounded(one, range(start, stop))

    async def create_base_pods(self, count: int, nodes: int) -> float:
        """``count`` base pods spread over nodes 0 .. ``nodes - 1``; returns the seconds
        taken."""

        async def one(k: int) -> None:
            namespace, name = o.base_pod(k)
            ref = PodRef(namespace, name, o.node_name(k % nodes))
            await self.must(
                "POST",
                o.pods_path(namespace),
                o.pod(name, namespace, node=ref.node, label_set=o.BASE),
            )
            self._pods.append(ref)

        return await _bounded(one, range(count))

    # --- the steady window ------------------------------------------------------------

    async def steady(self, plan: Plan) -> WriterResult:
        result = WriterResult()
        await asyncio.gather(
            paced(
                plan.nodes / plan.renew_interval,
                plan.start,
                plan.end,
                lambda i: self._renew(result, o.node_name(i % plan.nodes)),
            ),
            paced(
                plan.creates_per_s,
                plan.start,
                plan.end,
                lambda i: self._create(result, i, plan.nodes),
            ),
            paced(plan.patches_per_s, plan.start, plan.end, lambda i: self._patch(result)),
        )
        return result

    async def _renew(self, result: WriterResult, name: str) -> None:
        if name in self._renewing:
            result.skipped_renewals += 1
            return
        self._renewing.add(name)
        try:
            lease = self._leases[name]
            lease["spec"]["renewTime"] = o.micro_now()
            path = f"{o.LEASES}/{name}"
            reply = await self.timed(result.calls, "update", "PUT", path, body=lease)
            if reply is None:  # e.g. a conflict: start again from the stored lease
                await self._reread(name, path)
                return
            self._leases[name] = reply.obj()
            result.writes.append(
                Write("leases", name, _revision(self._leases[name]), reply.answered)
            )
        finally:
            self._renewing.discard(name)

    async def _reread(self, name: str, path: str) -> None:
        """The stored lease, for the next renewal; when even that fails the next PUT
        conflicts and the lease is read again then."""
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            reply = await self.request("GET", path)
            if reply.ok:
                self._leases[name] = reply.obj()

    async def _create(self, result: WriterResult, i: int, nodes: int) -> None:
        namespace = o.NAMESPACES[i % len(o.NAMESPACES)]
        ref = PodRef(namespace, f"stream-{i:05d}", o.node_name(i % nodes))
        body = o.pod(ref.name, namespace, node=ref.node, label_set=o.STREAM)
        reply = await self.timed(result.calls, "create", "POST", o.pods_path(namespace), body=body)
        if reply is not None:
            self._pods.append(ref)
            result.writes.append(Write("pods", ref.node, _revision(reply.obj()), reply.answered))

    async def _patch(self, result: WriterResult) -> None:
        ref = self._random.choice(self._pods)
        self._ready[ref] = ready = not self._ready.get(ref, False)
        reply = await self.timed(
            result.calls,
            "patch",
            "PATCH",
            o.pod_path(ref.namespace, ref.name) + "/status",
            body=o.pod_status(ref.name, ready=ready),
            content_type=o.STRATEGIC,
        )
        if reply is not None:
            result.writes.append(Write("pods", ref.node, _revision(reply.obj()), reply.answered))


def _revision(obj: Obj) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def _bounded(job: Callable[[int], Awaitable[None]], items: Iterable[int]) -> float:
    """``job(i)`` for every item, SETUP_CONCURRENCY at a time; returns the seconds taken."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def gated(i: int) -> None:
        async with gate:
            await job(i)

    started = time.monotonic()
    await asyncio.gather(*(gated(i) for i in items))
    return time.monotonic() - started
