"""What one request costs the apiserver: CPU time per request, by kind, for the requests
a scheduled pod is made of (its create, its binding, the ``Scheduled`` event) and a few
others, each kind measured on its own.

    .venv/bin/python -m bench.requests [--count N] [--in-flight N]

A real ``bramble server`` (``--no-agent --no-controllers --no-scheduler``: nothing but
these requests reaches it) with 100 nodes and one watch of every pod open, as a
scheduler keeps one. Then, one kind after another, ``--count`` requests (3000) with
``--in-flight`` (32) at a time from this process; the server's CPU time (all its
threads, from /proc) over the phase, divided by the requests. The server is busy for
the whole phase (its CPU share is printed: near 100 % means the figure is the server's
cost, not the client's pace).

This is the figure that bounds the scheduler benchmark's end-to-end throughput at 100
nodes (docs/benchmarks.md): the sum of create, binding and event is the apiserver CPU
per scheduled pod, and a GET of one pod is the floor of any request (TLS, HTTP,
authentication, routing, metrics). The VM's speed varies: compare runs made back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.client import ApiClient
from api.resources import resource
from bench.support import procfs
from bench.support.server import BrambleServer
from bench.support.stats import machine

PODS = resource("", "Pod")
NODES = resource("", "Node")
EVENTS = resource("", "Event")
NAMESPACE = "default"
NODE_COUNT = 100
STRATEGIC = "application/strategic-merge-patch+json"


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    per_second: float
    cpu_us: float  # server CPU per request, microseconds
    cpu_share: float  # of one core, over the phase


def node(i: int) -> dict[str, Any]:
    capacity = {"cpu": "4", "memory": "32Gi", "pods": "110"}
    return {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": f"n{i}"},
        "status": {"capacity": capacity, "allocatable": capacity},
    }  # fmt: skip


def pod(i: int) -> dict[str, Any]:
    requests = {"cpu": "100m", "memory": "500Mi"}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"p{i}", "namespace": NAMESPACE, "labels": {"app": "bench"}},
        "spec": {
            "schedulerName": "nobody",  # nothing binds them but this benchmark
            "containers": [{"name": "c", "image": "busybox", "resources": {"requests": requests}}],
        },
    }  # fmt: skip


def binding(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": f"p{i}"},
        "target": {"kind": "Node", "name": f"n{i % NODE_COUNT}"},
    }  # fmt: skip


def event(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"p{i}.scheduled", "namespace": NAMESPACE},
        "involvedObject": {"kind": "Pod", "name": f"p{i}", "namespace": NAMESPACE},
        "reason": "Scheduled", "type": "Normal",
        "message": f"Successfully assigned {NAMESPACE}/p{i} to n{i % NODE_COUNT}",
        "source": {"component": "default-scheduler"},
    }  # fmt: skip


async def phase(
    name: str, pid: int, count: int, in_flight: int, call: Callable[[int], Awaitable[Any]]
) -> Phase:
    slots = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with slots:
            await call(i)

    cpu_before, started = procfs.cpu_seconds(pid), time.monotonic()
    await asyncio.gather(*(one(i) for i in range(count)))
    cpu, elapsed = procfs.cpu_seconds(pid) - cpu_before, time.monotonic() - started
    return Phase(name, count / elapsed, cpu / count * 1e6, cpu / elapsed)


async def measure(running_pid: int, kubeconfig: Path, count: int, in_flight: int) -> list[Phase]:
    client = await ApiClient.from_kubeconfig(kubeconfig)
    try:
        for i in range(NODE_COUNT):
            await client.create(NODES, None, node(i))
        watch = asyncio.create_task(watch_pods(client))
        pods = f"/api/v1/namespaces/{NAMESPACE}/pods"
        calls: list[tuple[str, Callable[[int], Awaitable[Any]]]] = [
            ("create pod", lambda i: client.create(PODS, NAMESPACE, pod(i))),
            (
                "bind pod (pods/binding)",
                lambda i: client.request("POST", f"{pods}/p{i}/binding", body=binding(i)),
            ),
            ("create event", lambda i: client.create(EVENTS, NAMESPACE, event(i))),
            ("get pod", lambda i: client.get(PODS, NAMESPACE, f"p{i}")),
            (
                "patch pod status (strategic merge)",
                lambda i: client.request(
                    "PATCH", f"{pods}/p{i}/status", body={"status": {"phase": "Running"}},
                    content_type=STRATEGIC,
                ),
            ),
        ]  # fmt: skip
        results = [await phase(name, running_pid, count, in_flight, c) for name, c in calls]
        watch.cancel()
        return results
    finally:
        await client.close()


async def watch_pods(client: ApiClient) -> None:
    async for _ in client.watch(PODS, None, params={"resourceVersion": "0"}):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000, help="requests of each kind")
    parser.add_argument("--in-flight", type=int, default=32, help="requests at a time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bramble-bench-requests-") as tmp:
        server = BrambleServer(Path(tmp) / "data", args=["--no-scheduler"])
        running = server.start()
        try:
            results = asyncio.run(
                measure(running.pid, running.kubeconfig, args.count, args.in_flight)
            )
        finally:
            server.stop()
    print(f"machine: {machine()}")
    print(f"{args.count} requests of each kind, {args.in_flight} in flight, {NODE_COUNT} nodes")
    print()
    print("| request | per second | server CPU per request | server CPU |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r.name} | {r.per_second:,.0f} | {r.cpu_us:,.0f} µs | {r.cpu_share:.0%} |")
    per_pod = sum(r.cpu_us for r in results[:3])
    print()
    print(
        f"a scheduled pod (create + binding + event): {per_pod:,.0f} µs of server CPU, "
        f"at most {1e6 / per_pod:,.0f} pods/s on one core"
    )


if __name__ == "__main__":
    main()
