"""metrics.k8s.io/v1beta1 (``kubectl top``), built from the agents' usage summaries.

Like metrics-server, the apiserver asks each node's agent for its summary (kubelet
``/stats/summary`` shape) and answers NodeMetrics and PodMetrics from it. Summaries are
kept for ``ttl`` seconds so that repeated ``kubectl top`` calls do not hit every agent;
a node whose agent does not answer is left out, as metrics-server does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from api import errors
from api.resources import resource
from controlplane.apiserver import respond
from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.httpd import Answer, Request
from controlplane.apiserver.nodeproxy import NodeProxy
from controlplane.apiserver.routes import Target

NODES = resource("", "Node")
API_VERSION = "metrics.k8s.io/v1beta1"
WINDOW = "10s"

Obj = dict[str, Any]


class MetricsApi:
    def __init__(self, cache: WatchCache, proxy: NodeProxy, *, ttl: float = 10.0) -> None:
        self._cache = cache
        self._proxy = proxy
        self._ttl = ttl
        self._summaries: dict[str, tuple[float, Obj]] = {}

    async def serve(self, request: Request, target: Target) -> Answer:
        if request.method != "GET" or request.query.get("watch") in ("true", "1"):
            raise errors.MethodNotAllowed("metrics.k8s.io is read-only and cannot be watched")
        if target.resource.kind == "NodeMetrics":
            nodes = [target.name] if target.name else self._node_names()
            items = [_node_metrics(n, s) for n, s in await self._gather(nodes)]
            if target.name:
                if not items:
                    raise errors.NotFound(
                        f'nodemetrics.metrics.k8s.io "{target.name}" not found',
                        name=target.name, group="metrics.k8s.io", kind="nodes",
                    )  # fmt: skip
                return respond.json(items[0])
            return respond.json(_list("NodeMetricsList", items))
        pods = [
            _pod_metrics(p, s["time"])
            for _, summary in await self._gather(self._node_names())
            for p, s in _pods(summary)
        ]
        if target.namespace:
            pods = [p for p in pods if p["metadata"]["namespace"] == target.namespace]
        if target.name:
            pods = [p for p in pods if p["metadata"]["name"] == target.name]
            if not pods:
                raise errors.NotFound(
                    f'podmetrics.metrics.k8s.io "{target.name}" not found',
                    name=target.name, group="metrics.k8s.io", kind="pods",
                )  # fmt: skip
            return respond.json(pods[0])
        return respond.json(_list("PodMetricsList", pods))

    def _node_names(self) -> list[str]:
        return sorted(e.name for e in self._cache.resource(NODES).objects.values())

    async def _gather(self, nodes: Iterable[str]) -> list[tuple[str, Obj]]:
        names = list(nodes)
        results = await asyncio.gather(*(self._summary(n) for n in names), return_exceptions=True)
        return [(n, r) for n, r in zip(names, results, strict=True) if isinstance(r, dict)]

    async def _summary(self, node: str) -> Obj:
        now = time.monotonic()
        cached = self._summaries.get(node)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        summary = await self._proxy.summary(node)
        self._summaries[node] = (now, summary)
        return summary


def cpu(nano_cores: object) -> str:
    return f"{int(nano_cores)}n" if isinstance(nano_cores, int | float) else "0"


def memory(working_set: object) -> str:
    if not isinstance(working_set, int | float):
        return "0"
    value = int(working_set)
    return f"{value // 1024}Ki" if value % 1024 == 0 else str(value)


def _usage(stats: Obj) -> Obj:
    return {
        "cpu": cpu((stats.get("cpu") or {}).get("usageNanoCores")),
        "memory": memory((stats.get("memory") or {}).get("workingSetBytes")),
    }


def _timestamp(stats: Obj) -> str:
    cpu_time = (stats.get("cpu") or {}).get("time")
    return str(cpu_time or (stats.get("memory") or {}).get("time") or "")


def _node_metrics(name: str, summary: Obj) -> Obj:
    node = summary.get("node") or {}
    return {
        "kind": "NodeMetrics",
        "apiVersion": API_VERSION,
        "metadata": {"name": name},
        "timestamp": _timestamp(node),
        "window": WINDOW,
        "usage": _usage(node),
    }


def _pods(summary: Obj) -> Iterable[tuple[Obj, Obj]]:
    for pod in summary.get("pods") or []:
        if isinstance(pod, dict) and isinstance(pod.get("podRef"), dict):
            yield pod, {"time": _timestamp(pod)}


def _pod_metrics(pod: Obj, when: str) -> Obj:
    ref = pod["podRef"]
    return {
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": {"name": ref.get("name", ""), "namespace": ref.get("namespace", "")},
        "timestamp": when,
        "window": WINDOW,
        "containers": [
            {"name": c.get("name", ""), "usage": _usage(c)}
            for c in pod.get("containers") or []
            if isinstance(c, dict)
        ],
    }


def _list(kind: str, items: list[Obj]) -> Obj:
    return {"kind": kind, "apiVersion": API_VERSION, "metadata": {}, "items": items}
